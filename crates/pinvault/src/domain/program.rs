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

/// What values a setting takes.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// An integer in a range.
    Int {
        min: u64,
        max: u64,
    },
    Bool,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A list of at most 20 origins.
    Origins,
    /// An issuer key set id (`iks_…`) or null.
    IssuerKeySet,
}

impl Rule {
    /// The value as the setting stores it, if the rule allows it.
    fn check(self, value: &Value) -> Option<Value> {
        match self {
            Rule::Int { min, max } => int(value, min, max).map(Value::from),
            Rule::Bool => value.as_bool().map(Value::Bool),
            Rule::OneOf(allowed) => value
                .as_str()
                .filter(|v| allowed.contains(v))
                .map(|v| Value::String(v.to_owned())),
            Rule::Origins => origins(value).map(|list| list.into()),
            Rule::IssuerKeySet => match value {
                Value::Null => Some(Value::Null),
                Value::String(id) if super::ids::is_id(id, "iks_") => Some(value.clone()),
                _ => None,
            },
        }
    }

    /// What the rule allows, in words (the end of "`name` must be …").
    pub fn describe(self) -> String {
        match self {
            Rule::Int { min, max } => format!("an integer from {min} to {max}"),
            Rule::Bool => "true or false".into(),
            Rule::OneOf(allowed) => allowed
                .iter()
                .map(|v| format!("\"{v}\""))
                .collect::<Vec<_>>()
                .join(" or "),
            Rule::Origins => {
                "a list of at most 20 origins such as \"https://app.example.com\"".into()
            }
            Rule::IssuerKeySet => "an issuer key set id (`iks_…`) or null".into(),
        }
    }
}

/// One setting of a program: its name (the field of [`Settings`]), the values
/// it takes, whether only the operator's command line may change it, and what
/// it does.
#[derive(Debug)]
pub struct Setting {
    pub name: &'static str,
    pub rule: Rule,
    pub operator_only: bool,
    pub about: &'static str,
}

const fn setting(name: &'static str, rule: Rule, about: &'static str) -> Setting {
    Setting {
        name,
        rule,
        operator_only: false,
        about,
    }
}

const fn operator_setting(name: &'static str, rule: Rule, about: &'static str) -> Setting {
    Setting {
        name,
        rule,
        operator_only: true,
        about,
    }
}

const LENGTH: Rule = Rule::Int { min: 4, max: 12 };
const TRIES: Rule = Rule::Int { min: 1, max: 10 };
const SECONDS: Rule = Rule::Int { min: 1, max: 3600 };

/// Every setting a program has: the one place their names and rules are
/// written ([`Settings::apply`] checks by it, `programs update --help` and the
/// error for an unknown name list it).
pub const SETTINGS: &[Setting] = &[
    setting(
        "pin_length_min",
        LENGTH,
        "the fewest digits a new PIN may have",
    ),
    setting(
        "pin_length_max",
        LENGTH,
        "the most digits a new PIN may have",
    ),
    setting("max_tries", TRIES, "wrong PINs in a row that block the PIN"),
    setting(
        "set_token_attempts",
        TRIES,
        "PINs one set_pin control token may try before it is used up",
    ),
    setting(
        "set_token_ttl_s",
        SECONDS,
        "seconds a set_pin control token lives",
    ),
    setting(
        "reveal_token_ttl_s",
        SECONDS,
        "seconds a reveal_pin control token lives",
    ),
    setting(
        "reveal_display_s",
        SECONDS,
        "seconds the reveal widget shows the PIN",
    ),
    setting(
        "reject_weak_pins",
        Rule::Bool,
        "refuse weak PINs (one digit repeated, a run such as 1234, the PAN's last digits)",
    ),
    operator_setting("reveal_enabled", Rule::Bool, "PINs may be revealed"),
    operator_setting(
        "allow_plaintext_pin",
        Rule::Bool,
        "the API takes PINs in clear (`pin`), not only encrypted",
    ),
    operator_setting(
        "allow_plaintext_reveal",
        Rule::Bool,
        "a reveal may answer the PIN in clear, not only to a device key",
    ),
    setting(
        "pin_set_mode",
        Rule::OneOf(&["direct", "staged"]),
        "staged: a set waits for POST /v1/cards/{id}/pin/commit",
    ),
    setting(
        "widget_allowed_origins",
        Rule::Origins,
        "the web pages that may frame the hosted widgets",
    ),
    setting(
        "chip_issuer_key_set_id",
        Rule::IssuerKeySet,
        "the issuer key set of a chip card created without one",
    ),
    operator_setting(
        "allow_pin_export",
        Rule::Bool,
        "POST /v1/cards/{id}/pin/export is allowed",
    ),
    setting(
        "migrate_legacy_pins",
        Rule::Bool,
        "a migrated card's first matching verification stores its PIN",
    ),
];

/// The names of [`SETTINGS`], for messages.
pub fn setting_names() -> String {
    SETTINGS
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The settings as `programs update --help` lists them: each with the values
/// it takes, its default and what it does.
pub fn settings_help() -> String {
    let defaults = serde_json::to_value(Settings::default()).unwrap_or_default();
    let width = SETTINGS.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = String::from("Settings (KEY  the values it takes, its default: what it does):\n");
    for s in SETTINGS {
        let default = defaults
            .get(s.name)
            .map(Value::to_string)
            .unwrap_or_default();
        let who = if s.operator_only {
            " (only from the command line)"
        } else {
            ""
        };
        out.push_str(&format!(
            "  {:<width$}  {}, default {default}: {}{who}\n",
            s.name,
            s.rule.describe(),
            s.about,
        ));
    }
    out.push_str(&format!(
        "  {:<width$}  test or live (the program's mode, not a setting)\n",
        "mode"
    ));
    out
}

impl Settings {
    /// Applies changes given as a JSON object of setting names to values, checking
    /// every value (by [`SETTINGS`]) and the settings as a whole; on any error
    /// nothing changes. `privileged` allows the operator-only settings.
    pub fn apply(
        &self,
        changes: &Map<String, Value>,
        privileged: bool,
    ) -> Result<Self, DomainError> {
        let Value::Object(mut fields) = serde_json::to_value(self)
            .map_err(|e| DomainError::Invalid(format!("the settings cannot be read: {e}")))?
        else {
            return Err(DomainError::Invalid("the settings cannot be read".into()));
        };
        for (name, value) in changes {
            let setting = SETTINGS.iter().find(|s| s.name == name);
            if name == "mode" || !privileged && setting.is_some_and(|s| s.operator_only) {
                return Err(DomainError::Forbidden(format!(
                    "`{name}` can only be changed by the operator's command line"
                )));
            }
            let Some(setting) = setting else {
                return Err(DomainError::Invalid(format!(
                    "unknown setting `{name}`: the settings are {}",
                    setting_names()
                )));
            };
            let value = setting.rule.check(value).ok_or_else(|| {
                DomainError::Invalid(format!("`{name}` must be {}", setting.rule.describe()))
            })?;
            fields.insert(name.clone(), value);
        }
        let next: Settings = serde_json::from_value(Value::Object(fields))
            .map_err(|e| DomainError::Invalid(format!("the settings cannot be applied: {e}")))?;
        if next.pin_length_min > next.pin_length_max {
            return Err(DomainError::Invalid(
                "`pin_length_min` must not exceed `pin_length_max`".into(),
            ));
        }
        Ok(next)
    }
}

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
        for name in SETTINGS.iter().map(|s| s.name) {
            let mut changes = Map::new();
            // A value no setting takes (null clears `chip_issuer_key_set_id`).
            changes.insert(name.to_owned(), Value::from(-1));
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

    #[test]
    fn the_table_names_every_field_of_the_settings() {
        let fields = serde_json::to_value(Settings::default()).unwrap();
        let mut fields: Vec<&str> = fields
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut listed: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        fields.sort_unstable();
        listed.sort_unstable();
        assert_eq!(fields, listed);
        let help = settings_help();
        assert!(
            help.contains("max_tries") && help.contains("an integer from 1 to 10, default 3"),
            "{help}"
        );
    }

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
