//! `pinvault keys`: rotate and list the data keys; `keys init` and
//! `keys migrate` (where the master key lives) are in [`super::key_provider`].
//! Prints JSON on stdout and works while servers run (the database arbitrates).

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::data::{DataArgs, TransportArgs, open_app_with};
use super::key_provider::{ProviderArg, TokenArgs, keys_init, keys_migrate};
use super::output::{CliError, pretty};
use super::progress::reporter;
use crate::app::ServerSettings;
use crate::app::keys::Step;
use crate::audit::Actor;
use crate::domain::time::{now, rfc3339};
use crate::keys::KeyKind;
use crate::keys::transport::{in_service, retires_at};
use crate::store::prelude::*;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// The data keys that protect stored PINs and PANs.
    Storage,
    /// The published PIN encryption keys.
    Transport,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add new key versions and re-encrypt everything the old ones protect.
    ///
    /// Storage keys: every stored PIN and PAN is re-encrypted. Transport keys: a
    /// new key pair is published; the previous one still decrypts for the grace
    /// period (--transport-key-grace), then is retired. A storage rotation that
    /// did not finish (stopped, or killed) is finished by the next `keys rotate`
    /// with the versions it made (`"resumed": true`): no card is re-encrypted twice.
    Rotate {
        /// Only this kind (default: every kind).
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// Pause this long after each batch of 1,000 cards re-encrypted (a
        /// gentler rotation, leaving a busy database more to the servers;
        /// default: none).
        #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
        pause_ms: Option<u64>,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        transport: TransportArgs,
    },
    /// List key versions and how many records each protects.
    List {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        transport: TransportArgs,
    },
    /// Choose where the master key lives, on a new data directory: a key file,
    /// or a PKCS#11 token (the key is created inside it unless one with the
    /// label exists). The user PIN comes from PINVAULT_PKCS11_PIN or
    /// PINVAULT_PKCS11_PIN_FILE and is never recorded.
    Init {
        /// Where the master key lives.
        #[arg(long, value_enum)]
        provider: ProviderArg,
        #[command(flatten)]
        token: TokenArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Move the master key to another provider: every key it wraps is
    /// re-wrapped, and running servers switch within seconds.
    Migrate {
        /// Where the master key is to live from now on.
        #[arg(long = "to", value_enum)]
        to: ProviderArg,
        #[command(flatten)]
        token: TokenArgs,
        #[command(flatten)]
        data: DataArgs,
    },
}

fn settings(transport: &TransportArgs) -> ServerSettings {
    ServerSettings {
        transport: transport.settings(),
        ..ServerSettings::default()
    }
}

pub async fn keys(cmd: KeysCommand) -> Result<String, CliError> {
    match cmd {
        KeysCommand::Rotate {
            kind,
            pause_ms,
            data,
            transport,
        } => {
            let app = open_app_with(&data, settings(&transport)).await?;
            let (storage, transport) = match kind {
                None => (true, true),
                Some(KindArg::Storage) => (true, false),
                Some(KindArg::Transport) => (false, true),
            };
            let mut rotated: Vec<Value> = Vec::new();
            let (mut cards_reencrypted, mut secrets_resealed, mut resumed) = (0, 0, false);
            let (on, display) = reporter("keys rotate", "cards");
            if storage {
                let report = app
                    .rotate_keys(
                        &KeyKind::STORAGE,
                        pause_ms.map(std::time::Duration::from_millis),
                        &on,
                    )
                    .await?;
                rotated.extend(
                    report
                        .new_versions
                        .iter()
                        .map(|(k, v)| json!({ "kind": k.as_str(), "version": v })),
                );
                cards_reencrypted = report.cards_reencrypted;
                secrets_resealed = report.secrets_resealed;
                resumed = report.resumed;
            }
            if transport {
                on(Step {
                    what: "cards re-encrypted, making a new PIN encryption key pair",
                    done: cards_reencrypted,
                    total: None,
                });
                let previous = app.keys.current_version(KeyKind::Transport);
                let version = app.rotate_transport_key().await?;
                on(Step {
                    what: "cards re-encrypted, new PIN encryption key published",
                    done: cards_reencrypted,
                    total: None,
                });
                let keys = app.keys.transport_keys();
                let kid = keys
                    .iter()
                    .find(|k| k.version == version)
                    .map(|k| k.kid.clone());
                let previous_retires_at = previous
                    .and_then(|v| retires_at(&keys, v, app.settings.transport.grace_s))
                    .map(rfc3339);
                rotated.push(json!({
                    "kind": "transport",
                    "version": version,
                    "kid": kid,
                    "previous_retires_at": previous_retires_at,
                }));
            }
            app.store
                .append_audit(Actor::operator().record(
                    "keys.rotated",
                    None,
                    None,
                    json!({ "rotated": rotated, "cards_reencrypted": cards_reencrypted,
                            "secrets_resealed": secrets_resealed, "resumed": resumed }),
                ))
                .await?;
            display.end();
            Ok(pretty(
                &json!({ "rotated": rotated, "cards_reencrypted": cards_reencrypted,
                               "secrets_resealed": secrets_resealed, "resumed": resumed }),
            ))
        }
        KeysCommand::Init {
            provider,
            token,
            data,
        } => keys_init(provider, &token, &data).await,
        KeysCommand::Migrate { to, token, data } => keys_migrate(to, &token, &data).await,
        KeysCommand::List { data, transport } => {
            let app = open_app_with(&data, settings(&transport)).await?;
            let transport_keys = app.keys.transport_keys();
            let grace = app.settings.transport.grace_s;
            let t = now();
            let rows = app.store.data_keys().await?;
            let usage = app.store.key_usage().await?;
            let list: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let protects: u64 = usage
                        .iter()
                        .filter(|(k, v, _)| *k == r.kind && *v == r.version)
                        .map(|(_, _, n)| n)
                        .sum();
                    let mut entry = json!({
                        "kind": r.kind.as_str(),
                        "version": r.version,
                        "created_at": rfc3339(r.created_at),
                        "current": app.keys.current_version(r.kind) == Some(r.version),
                        "protects": protects,
                        "provider": app.keys.provider_name(),
                    });
                    if r.kind == KeyKind::Transport {
                        if let Some(k) = transport_keys.iter().find(|k| k.version == r.version) {
                            entry["kid"] = json!(k.kid);
                            entry["bits"] = json!(k.bits);
                            entry["retires_at"] =
                                json!(retires_at(&transport_keys, r.version, grace).map(rfc3339));
                            entry["retired"] =
                                json!(!in_service(&transport_keys, r.version, t, grace));
                        }
                    }
                    entry
                })
                .collect();
            Ok(pretty(&Value::Array(list)))
        }
    }
}
