//! `serve`'s abuse-limit flags: one per limit scope, each `N/s`, `N/min`,
//! `N/h` or `off`, from one table (flag, environment variable, default).

use clap::Args;

use crate::cli::output::CliError;
use crate::limits::{LimitSettings, Rate, Scope};

/// The flags of the limits and what they set, from one table.
macro_rules! limit_args {
    ($($(#[doc = $doc:tt])* $field:ident => $scope:ident, $flag:tt, $env:tt, $default:tt;)*) => {
        /// Abuse limits: token buckets of N requests refilled over the period
        /// (`N/s`, `N/min`, `N/h`), or `off`. Held in each server's memory: per node.
        #[derive(Debug, Args)]
        pub struct LimitArgs {
            $(
                $(#[doc = $doc])*
                #[arg(long = $flag, env = $env, default_value = $default, value_name = "RATE")]
                pub(super) $field: String,
            )*
            /// Most rate-limit buckets held at once (idle ones are evicted first).
            #[arg(long, env = "PINVAULT_RATE_LIMIT_BUCKETS", default_value_t = 100_000,
                value_parser = clap::value_parser!(u64).range(1024..=100_000_000), value_name = "N")]
            pub(super) rate_limit_buckets: u64,
        }

        impl LimitArgs {
            pub(super) fn settings(&self) -> Result<LimitSettings, CliError> {
                let mut s = LimitSettings::off();
                s.max_buckets = usize::try_from(self.rate_limit_buckets).unwrap_or(usize::MAX);
                $(
                    let rate = Rate::parse(&self.$field)
                        .map_err(|e| CliError::Refused(format!("--{}: {e}", $flag)))?;
                    s.set(Scope::$scope, rate);
                )*
                Ok(s)
            }
        }
    };
}

limit_args! {
    /// PIN verifications (incl. the sandbox's) per API key.
    rate_limit_key_verify => KeyVerify,
        "rate-limit-key-verify", "PINVAULT_RATE_LIMIT_KEY_VERIFY", "50000/s";
    /// Control tokens created per API key.
    rate_limit_key_tokens => KeyTokens,
        "rate-limit-key-tokens", "PINVAULT_RATE_LIMIT_KEY_TOKENS", "10000/s";
    /// PIN reveals per API key.
    rate_limit_key_reveal => KeyReveal,
        "rate-limit-key-reveal", "PINVAULT_RATE_LIMIT_KEY_REVEAL", "10000/s";
    /// Card lookups by PAN per API key.
    rate_limit_key_lookups => KeyLookups,
        "rate-limit-key-lookups", "PINVAULT_RATE_LIMIT_KEY_LOOKUPS", "50000/s";
    /// PIN exports (as PIN blocks under an export zone key) per API key.
    rate_limit_key_export => KeyExport,
        "rate-limit-key-export", "PINVAULT_RATE_LIMIT_KEY_EXPORT", "10000/s";
    /// PIN verifications per card.
    rate_limit_card_verify => CardVerify,
        "rate-limit-card-verify", "PINVAULT_RATE_LIMIT_CARD_VERIFY", "600/min";
    /// Control tokens created per card.
    rate_limit_card_tokens => CardTokens,
        "rate-limit-card-tokens", "PINVAULT_RATE_LIMIT_CARD_TOKENS", "120/min";
    /// PIN reveals per card.
    rate_limit_card_reveal => CardReveal,
        "rate-limit-card-reveal", "PINVAULT_RATE_LIMIT_CARD_REVEAL", "120/min";
    /// PIN exports per card (a bureau asks once a card; a card's PIN asked for
    /// again and again is not a bureau).
    rate_limit_card_export => CardExport,
        "rate-limit-card-export", "PINVAULT_RATE_LIMIT_CARD_EXPORT", "10/h";
    /// PIN blocks per card that do not decipher or parse (`decryption_failed`).
    /// Counted on such a failure only; once spent, every PIN block for the card
    /// is refused (429) before it is deciphered, so the answer cannot be used
    /// as an oracle on blocks (SECURITY.md).
    rate_limit_card_decrypt_failures => CardDecryptFailures,
        "rate-limit-card-decrypt-failures", "PINVAULT_RATE_LIMIT_CARD_DECRYPT_FAILURES", "20/h";
    /// Requests to the hosted widgets per client address.
    rate_limit_widget_address => WidgetAddress,
        "rate-limit-widget-address", "PINVAULT_RATE_LIMIT_WIDGET_ADDRESS", "600/min";
}
