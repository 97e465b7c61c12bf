//! Programs and their settings (API.md "Programs").

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "test" => Some(Mode::Test),
            "live" => Some(Mode::Live),
            _ => None,
        }
    }

    /// The prefix of this mode's API keys.
    pub fn api_key_prefix(self) -> &'static str {
        match self {
            Mode::Test => "pv_test_",
            Mode::Live => "pv_live_",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PinSetMode {
    Direct,
    Staged,
}

/// A program's settings, always valid: built only by [`Settings::default`] and
/// [`Settings::apply`], which check every rule.
/// A program's settings (API.md "Programs"). `PATCH /v1/program` takes any
/// subset of them, except `reveal_enabled` and `allow_plaintext_*`, which only
/// the operator's command line changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub pin_length_min: u8,
    pub pin_length_max: u8,
    pub max_tries: u8,
    pub reject_weak_pins: bool,
    pub set_token_ttl_s: u32,
    pub set_token_attempts: u8,
    pub reveal_token_ttl_s: u32,
    pub reveal_enabled: bool,
    pub reveal_display_s: u32,
    pub pin_set_mode: PinSetMode,
    pub allow_plaintext_pin: bool,
    pub allow_plaintext_reveal: bool,
    pub widget_allowed_origins: Vec<String>,
    /// The issuer key set (`iks_…`) of a chip card created without one.
    #[serde(default)]
    pub chip_issuer_key_set_id: Option<String>,
    /// `POST /v1/cards/{id}/pin/export` is allowed (operator only).
    #[serde(default)]
    pub allow_pin_export: bool,
    /// A legacy card's first matching verification stores its PIN.
    #[serde(default = "yes")]
    pub migrate_legacy_pins: bool,
}

fn yes() -> bool {
    true
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            pin_length_min: 4,
            pin_length_max: 12,
            max_tries: 3,
            reject_weak_pins: true,
            set_token_ttl_s: 300,
            set_token_attempts: 5,
            reveal_token_ttl_s: 60,
            reveal_enabled: true,
            reveal_display_s: 60,
            pin_set_mode: PinSetMode::Direct,
            allow_plaintext_pin: false,
            allow_plaintext_reveal: false,
            widget_allowed_origins: Vec::new(),
            chip_issuer_key_set_id: None,
            allow_pin_export: false,
            migrate_legacy_pins: true,
        }
    }
}

/// Settings only the operator's command line may change.
pub const PRIVILEGED: &[&str] = &[
    "reveal_enabled",
    "allow_plaintext_pin",
    "allow_plaintext_reveal",
    "allow_pin_export",
];

/// Every setting a program has, by the name `apply` takes.
pub const SETTING_NAMES: [&str; 17] = [
    "pin_length_min",
    "pin_length_max",
    "max_tries",
    "set_token_attempts",
    "set_token_ttl_s",
    "reveal_token_ttl_s",
    "reveal_display_s",
    "reject_weak_pins",
    "reveal_enabled",
    "allow_plaintext_pin",
    "allow_plaintext_reveal",
    "pin_set_mode",
    "widget_allowed_origins",
    "chip_issuer_key_set_id",
    "allow_pin_export",
    "migrate_legacy_pins",
    "mode",
];

impl Settings {
    /// Applies changes given as a JSON object of setting names to values, checking
    /// every value and the settings as a whole; on any error nothing changes.
    /// `privileged` allows the settings in [`PRIVILEGED`] (every name is in
    /// [`SETTING_NAMES`]).
    pub fn apply(
        &self,
        changes: &Map<String, Value>,
        privileged: bool,
    ) -> Result<Self, DomainError> {
        let mut next = self.clone();
        for (name, value) in changes {
            if !privileged && PRIVILEGED.contains(&name.as_str()) || name == "mode" {
                return Err(DomainError::Forbidden(format!(
                    "`{name}` can only be changed by the operator's command line"
                )));
            }
            let bad = |what: &str| DomainError::Invalid(format!("`{name}` must be {what}"));
            if let Some((_, min, max, set)) = INTEGERS.iter().find(|i| i.0 == name) {
                let n = int(value, *min, *max)
                    .ok_or_else(|| bad(&format!("an integer from {min} to {max}")))?;
                set(&mut next, n);
                continue;
            }
            if let Some((_, flag)) = FLAGS.iter().find(|f| f.0 == name) {
                *flag(&mut next) = value.as_bool().ok_or_else(|| bad("true or false"))?;
                continue;
            }
            match name.as_str() {
                "pin_set_mode" => {
                    next.pin_set_mode = match value.as_str() {
                        Some("direct") => PinSetMode::Direct,
                        Some("staged") => PinSetMode::Staged,
                        _ => return Err(bad("\"direct\" or \"staged\"")),
                    }
                }
                "widget_allowed_origins" => {
                    next.widget_allowed_origins = origins(value).ok_or_else(|| {
                        bad("a list of at most 20 origins such as \"https://app.example.com\"")
                    })?
                }
                "chip_issuer_key_set_id" => {
                    next.chip_issuer_key_set_id = match value {
                        Value::Null => None,
                        Value::String(id) if super::ids::is_id(id, "iks_") => Some(id.clone()),
                        _ => return Err(bad("an issuer key set id (`iks_…`) or null")),
                    }
                }
                _ => {
                    return Err(DomainError::Invalid(format!(
                        "unknown setting `{name}`: the settings are {}",
                        SETTING_NAMES.join(", ")
                    )));
                }
            }
        }
        if next.pin_length_min > next.pin_length_max {
            return Err(DomainError::Invalid(
                "`pin_length_min` must not exceed `pin_length_max`".into(),
            ));
        }
        Ok(next)
    }
}

/// The settings that take an integer: name, least and greatest value, and
/// where it goes (the range fits the field).
type IntSetting = (&'static str, u64, u64, fn(&mut Settings, u64));
const INTEGERS: &[IntSetting] = &[
    ("pin_length_min", 4, 12, |s, n| s.pin_length_min = n as u8),
    ("pin_length_max", 4, 12, |s, n| s.pin_length_max = n as u8),
    ("max_tries", 1, 10, |s, n| s.max_tries = n as u8),
    ("set_token_attempts", 1, 10, |s, n| {
        s.set_token_attempts = n as u8
    }),
    ("set_token_ttl_s", 1, 3600, |s, n| {
        s.set_token_ttl_s = n as u32
    }),
    ("reveal_token_ttl_s", 1, 3600, |s, n| {
        s.reveal_token_ttl_s = n as u32
    }),
    ("reveal_display_s", 1, 3600, |s, n| {
        s.reveal_display_s = n as u32
    }),
];

/// The settings that take `true` or `false`, and their field.
type FlagSetting = (&'static str, fn(&mut Settings) -> &mut bool);
const FLAGS: &[FlagSetting] = &[
    ("reject_weak_pins", |s| &mut s.reject_weak_pins),
    ("reveal_enabled", |s| &mut s.reveal_enabled),
    ("allow_plaintext_pin", |s| &mut s.allow_plaintext_pin),
    ("allow_plaintext_reveal", |s| &mut s.allow_plaintext_reveal),
    ("allow_pin_export", |s| &mut s.allow_pin_export),
    ("migrate_legacy_pins", |s| &mut s.migrate_legacy_pins),
];

fn int(value: &Value, min: u64, max: u64) -> Option<u64> {
    value.as_u64().filter(|v| (min..=max).contains(v))
}

/// An origin: scheme, host and optional port, nothing else (what a browser puts
/// in `Origin` and what CSP `frame-ancestors` matches).
pub fn is_origin(s: &str) -> bool {
    let rest = if let Some(r) = s.strip_prefix("https://") {
        r
    } else if let Some(r) = s.strip_prefix("http://") {
        r
    } else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn origins(value: &Value) -> Option<Vec<String>> {
    let list = value.as_array()?;
    if list.len() > 20 {
        return None;
    }
    list.iter()
        .map(|v| v.as_str().filter(|s| is_origin(s)).map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_setting_is_known_and_an_unknown_one_names_them() {
        let s = Settings::default();
        for name in SETTING_NAMES.iter().filter(|n| **n != "mode") {
            let mut changes = Map::new();
            // A value no setting takes (null clears `chip_issuer_key_set_id`).
            changes.insert((*name).to_owned(), Value::from(-1));
            let e = s.apply(&changes, true).err();
            let text = format!("{e:?}");
            assert!(
                e.is_some() && !text.contains("unknown setting"),
                "{name}: {text}"
            );
        }
        let mut changes = Map::new();
        changes.insert("max_try".to_owned(), Value::from(5));
        let text = format!("{:?}", s.apply(&changes, true).err());
        assert!(
            text.contains("unknown setting `max_try`") && text.contains("max_tries"),
            "{text}"
        );
    }
    use serde_json::json;

    fn apply(changes: Value, privileged: bool) -> Result<Settings, DomainError> {
        Settings::default().apply(changes.as_object().unwrap(), privileged)
    }

    #[test]
    fn ranges_and_privileges() {
        assert_eq!(apply(json!({"max_tries": 5}), false).unwrap().max_tries, 5);
        assert!(apply(json!({"max_tries": 0}), false).is_err());
        assert!(apply(json!({"max_tries": 11}), false).is_err());
        assert!(apply(json!({"set_token_ttl_s": 3601}), false).is_err());
        assert!(apply(json!({"set_token_ttl_s": "60"}), false).is_err());
        assert!(apply(json!({"pin_length_min": 6, "pin_length_max": 5}), false).is_err());
        assert!(apply(json!({"pin_length_max": 13}), false).is_err());
        assert!(apply(json!({"nope": 1}), false).is_err());
        assert!(matches!(
            apply(json!({"allow_plaintext_pin": true}), false),
            Err(DomainError::Forbidden(_))
        ));
        assert!(matches!(
            apply(json!({"mode": "live"}), true),
            Err(DomainError::Forbidden(_))
        ));
        assert!(
            apply(json!({"allow_plaintext_pin": true}), true)
                .unwrap()
                .allow_plaintext_pin
        );
        let s = apply(
            json!({"widget_allowed_origins": ["https://a.example", "http://localhost:3000"]}),
            false,
        )
        .unwrap();
        assert_eq!(s.widget_allowed_origins.len(), 2);
        assert!(
            apply(
                json!({"widget_allowed_origins": ["https://a.example/path"]}),
                false
            )
            .is_err()
        );
        assert!(apply(json!({"widget_allowed_origins": ["*"]}), false).is_err());
        assert_eq!(
            apply(json!({"pin_set_mode": "staged"}), false)
                .unwrap()
                .pin_set_mode,
            PinSetMode::Staged
        );
        assert!(apply(json!({"pin_set_mode": "later"}), false).is_err());
        assert!(
            apply(
                json!({"widget_allowed_origins": ["https://a.example; script-src *"]}),
                false
            )
            .is_err()
        );
    }
}
