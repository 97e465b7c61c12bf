//! Operator commands: `programs`, `api-keys`, `keys`. Each prints JSON on stdout
//! and works while servers run (the database arbitrates).

use clap::{Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use super::CliError;
use super::serve::{DataArgs, TransportArgs, create_program, new_api_key, open_app, open_app_with};
use crate::api::program_json;
use crate::domain::program::{Mode, Settings};
use crate::domain::time::{now, rfc3339};
use crate::keys::KeyKind;
use crate::keys::transport::{in_service, retires_at};
use crate::service::ServerSettings;
use crate::store::Store;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Test,
    Live,
}

#[derive(Debug, Subcommand)]
pub enum ProgramsCommand {
    /// Create a program and its first API key (shown only here).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "test")]
        mode: ModeArg,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Change settings: --set key=value (values are JSON, or plain text).
    Update {
        program_id: String,
        #[arg(long = "set", value_name = "KEY=VALUE", required = true)]
        set: Vec<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List programs.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Show one program.
    Show {
        program_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create another API key for a program (shown only here).
    Create {
        #[arg(long = "program", value_name = "PROGRAM_ID")]
        program_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke an API key: it stops working at once.
    Revoke {
        api_key_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List a program's API keys (ids and hints, never the keys).
    List {
        #[arg(long = "program", value_name = "PROGRAM_ID")]
        program_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

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
    /// period (--transport-key-grace), then is retired.
    Rotate {
        /// Only this kind (default: every kind).
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
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
}

fn settings(transport: &TransportArgs) -> ServerSettings {
    ServerSettings {
        public_url: String::new(),
        transport: transport.settings(),
    }
}

fn err(e: impl std::fmt::Display) -> CliError {
    CliError(e.to_string())
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

pub async fn programs(cmd: ProgramsCommand) -> Result<String, CliError> {
    match cmd {
        ProgramsCommand::Create { name, mode, data } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
                return Err(CliError("--name must be 1 to 200 characters".into()));
            }
            let app = open_app(&data, String::new()).await?;
            let mode = match mode {
                ModeArg::Test => Mode::Test,
                ModeArg::Live => Mode::Live,
            };
            let (program, key) = create_program(&app, name, mode, Settings::default()).await?;
            Ok(pretty(
                &json!({ "program_id": program.id, "api_key": key.expose() }),
            ))
        }
        ProgramsCommand::Update {
            program_id,
            set,
            data,
        } => {
            let app = open_app(&data, String::new()).await?;
            let program = app.store.get_program(&program_id).await.map_err(err)?;
            let Some(mut program) = program else {
                return Err(CliError(format!("no program {program_id}")));
            };
            let mut changes = Map::new();
            let mut mode = program.mode;
            for item in &set {
                let Some((key, value)) = item.split_once('=') else {
                    return Err(CliError(format!("--set takes key=value, got `{item}`")));
                };
                if key == "mode" {
                    mode = Mode::parse(value)
                        .ok_or_else(|| CliError("mode must be test or live".into()))?;
                    continue;
                }
                let value =
                    serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
                changes.insert(key.to_owned(), value);
            }
            let settings = program
                .settings
                .apply(&changes, true)
                .map_err(|e| match e {
                    crate::domain::DomainError::Invalid(m)
                    | crate::domain::DomainError::Forbidden(m) => CliError(m),
                    other => CliError(format!("{other:?}")),
                })?;
            let t = now();
            app.store
                .update_program(&program.id, settings.clone(), mode, t)
                .await
                .map_err(err)?;
            program.settings = settings;
            program.mode = mode;
            program.updated_at = t;
            Ok(pretty(&program_json(&program)))
        }
        ProgramsCommand::List { data } => {
            let app = open_app(&data, String::new()).await?;
            let list: Vec<Value> = app
                .store
                .list_programs()
                .await
                .map_err(err)?
                .iter()
                .map(program_json)
                .collect();
            Ok(pretty(&Value::Array(list)))
        }
        ProgramsCommand::Show { program_id, data } => {
            let app = open_app(&data, String::new()).await?;
            match app.store.get_program(&program_id).await.map_err(err)? {
                Some(p) => Ok(pretty(&program_json(&p))),
                None => Err(CliError(format!("no program {program_id}"))),
            }
        }
    }
}

pub async fn api_keys(cmd: ApiKeysCommand) -> Result<String, CliError> {
    match cmd {
        ApiKeysCommand::Create { program_id, data } => {
            let app = open_app(&data, String::new()).await?;
            let Some(program) = app.store.get_program(&program_id).await.map_err(err)? else {
                return Err(CliError(format!("no program {program_id}")));
            };
            let (row, secret) = new_api_key(&program);
            let id = row.id.clone();
            app.store.create_api_key(row).await.map_err(err)?;
            Ok(pretty(
                &json!({ "api_key_id": id, "program_id": program.id, "api_key": secret.expose() }),
            ))
        }
        ApiKeysCommand::Revoke { api_key_id, data } => {
            let app = open_app(&data, String::new()).await?;
            if app
                .store
                .revoke_api_key(&api_key_id, now())
                .await
                .map_err(err)?
            {
                Ok(pretty(
                    &json!({ "api_key_id": api_key_id, "revoked": true }),
                ))
            } else {
                Err(CliError(format!("no unrevoked API key {api_key_id}")))
            }
        }
        ApiKeysCommand::List { program_id, data } => {
            let app = open_app(&data, String::new()).await?;
            let keys = app.store.list_api_keys(&program_id).await.map_err(err)?;
            let list: Vec<Value> = keys
                .iter()
                .map(|k| {
                    json!({
                        "id": k.id,
                        "hint": k.hint,
                        "created_at": rfc3339(k.created_at),
                        "revoked_at": k.revoked_at.map(rfc3339),
                    })
                })
                .collect();
            Ok(pretty(&Value::Array(list)))
        }
    }
}

pub async fn keys(cmd: KeysCommand) -> Result<String, CliError> {
    match cmd {
        KeysCommand::Rotate {
            kind,
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
            let mut cards_reencrypted = 0;
            if storage {
                let report = app.rotate_keys(&KeyKind::STORAGE).await.map_err(err)?;
                rotated.extend(
                    report
                        .new_versions
                        .iter()
                        .map(|(k, v)| json!({ "kind": k.as_str(), "version": v })),
                );
                cards_reencrypted = report.cards_reencrypted;
            }
            if transport {
                let previous = app.keys.current_version(KeyKind::Transport);
                let version = app.rotate_transport_key().await.map_err(err)?;
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
            Ok(pretty(
                &json!({ "rotated": rotated, "cards_reencrypted": cards_reencrypted }),
            ))
        }
        KeysCommand::List { data, transport } => {
            let app = open_app_with(&data, settings(&transport)).await?;
            let transport_keys = app.keys.transport_keys();
            let grace = app.settings.transport.grace_s;
            let t = now();
            let rows = app.store.data_keys().await.map_err(err)?;
            let usage = app.store.key_usage().await.map_err(err)?;
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
