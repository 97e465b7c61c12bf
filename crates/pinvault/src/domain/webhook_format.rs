//! A webhook endpoint's format: which names an event goes out under.
//! `pinvault` (v1): each event under its own type. `spidr` (COMPAT.md):
//! Spidr's PIN webhook names, one v1 event becoming none, one or two of them.

/// An endpoint's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    #[default]
    Pinvault,
    Spidr,
}

/// Spidr's PIN webhooks and the v1 event each comes from. `card.pinToken`
/// comes only from a `set_pin` token (Spidr's tokens are PIN change tokens).
pub const SPIDR_NAMES: [(&str, &str); 6] = [
    ("card.pinToken", "pin.token_created"),
    ("account.pinChangeStageSuccess", "pin.staged"),
    ("account.pinChangeStageFail", "pin.stage_failed"),
    ("card.pinChanged", "pin.changed"),
    ("account.pinChange", "pin.changed"),
    ("card.resetPin", "pin.fail_count_reset"),
];

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Pinvault => "pinvault",
            WebhookFormat::Spidr => "spidr",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [WebhookFormat::Pinvault, WebhookFormat::Spidr]
            .into_iter()
            .find(|f| f.as_str() == text)
    }

    /// Whether an endpoint of this format may subscribe to `name`, given the
    /// v1 event types (for `pinvault`).
    pub fn knows(self, name: &str, v1_types: &[&str]) -> bool {
        match self {
            WebhookFormat::Pinvault => v1_types.contains(&name),
            WebhookFormat::Spidr => SPIDR_NAMES.iter().any(|(n, _)| *n == name),
        }
    }

    /// The names a v1 event of type `kind` goes out under to an endpoint of
    /// this format. `set_pin_token` says, for a `pin.token_created`, whether
    /// the token is a `set_pin` one.
    pub fn names(self, kind: &str, set_pin_token: impl Fn() -> bool) -> Vec<&str> {
        match self {
            WebhookFormat::Pinvault => vec![kind],
            WebhookFormat::Spidr => {
                if kind == "pin.token_created" && !set_pin_token() {
                    return Vec::new();
                }
                SPIDR_NAMES
                    .iter()
                    .filter(|(_, from)| *from == kind)
                    .map(|(name, _)| *name)
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinvault_keeps_each_type() {
        assert_eq!(
            WebhookFormat::Pinvault.names("pin.changed", || true),
            ["pin.changed"]
        );
    }

    #[test]
    fn spidr_names_one_event_as_none_one_or_two() {
        let f = WebhookFormat::Spidr;
        assert_eq!(
            f.names("pin.changed", || true),
            ["card.pinChanged", "account.pinChange"]
        );
        assert_eq!(
            f.names("pin.staged", || true),
            ["account.pinChangeStageSuccess"]
        );
        assert_eq!(
            f.names("pin.stage_failed", || true),
            ["account.pinChangeStageFail"]
        );
        assert_eq!(f.names("pin.fail_count_reset", || true), ["card.resetPin"]);
        assert_eq!(f.names("pin.token_created", || true), ["card.pinToken"]);
        assert!(f.names("pin.token_created", || false).is_empty());
        assert!(f.names("pin.revealed", || true).is_empty());
        assert!(f.names("pin.unblocked", || true).is_empty());
    }

    #[test]
    fn each_format_knows_only_its_names() {
        let v1 = ["pin.changed"];
        assert!(WebhookFormat::Pinvault.knows("pin.changed", &v1));
        assert!(!WebhookFormat::Pinvault.knows("card.pinChanged", &v1));
        assert!(WebhookFormat::Spidr.knows("card.pinChanged", &v1));
        assert!(!WebhookFormat::Spidr.knows("pin.changed", &v1));
        assert_eq!(WebhookFormat::parse("spidr"), Some(WebhookFormat::Spidr));
        assert_eq!(WebhookFormat::parse("Spidr"), None);
    }
}
