//! Operator commands: `programs`, `api-keys`, `keys`, `zone-keys`. Each prints JSON on stdout
//! and works while servers run (the database arbitrates).

use clap::{Subcommand, ValueEnum};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::CliError;
use super::serve::{
    DataArgs, TransportArgs, api_key_created, create_program, new_api_key, open_app, open_app_with,
    open_store,
};
use crate::api::program_json;
use crate::app::ServerSettings;
use crate::audit::Actor;
use crate::domain::program::{Mode, Settings};
use crate::domain::time::{now, rfc3339};
use crate::keys::config::{self as key_config, KeysConfig, ProviderConfig};
use crate::keys::pkcs11::{Pkcs11Config, Pkcs11Provider, pin_from_env};
use crate::keys::transport::{in_service, retires_at};
use crate::keys::{KeyKind, ZoneAlgorithm};
use crate::store::prelude::*;

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
    /// Choose where the master key lives, on a new data directory: a key file,
    /// or a PKCS#11 token (the key is created inside it unless one with the
    /// label exists). The user PIN comes from PINVAULT_PKCS11_PIN or
    /// PINVAULT_PKCS11_PIN_FILE and is never recorded.
    Init {
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
        #[arg(long = "to", value_enum)]
        to: ProviderArg,
        #[command(flatten)]
        token: TokenArgs,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    /// `master.key` in the data directory.
    File,
    /// A non-extractable AES key in a PKCS#11 token (an HSM).
    Pkcs11,
}

/// Where the PKCS#11 master key is (with `--provider pkcs11` / `--to pkcs11`).
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The PKCS#11 module (shared library) of the HSM or SoftHSM2.
    #[arg(long, value_name = "PATH")]
    module: Option<std::path::PathBuf>,
    /// The label of the token that holds the master key.
    #[arg(long, value_name = "LABEL")]
    token_label: Option<String>,
    /// The label of the master key inside the token.
    #[arg(long, value_name = "LABEL")]
    key_label: Option<String>,
}

impl TokenArgs {
    fn provider(&self, which: ProviderArg) -> Result<ProviderConfig, CliError> {
        match which {
            ProviderArg::File => {
                if self.module.is_some() || self.token_label.is_some() || self.key_label.is_some() {
                    return Err(CliError(
                        "--module, --token-label and --key-label go with pkcs11 only".into(),
                    ));
                }
                Ok(ProviderConfig::File)
            }
            ProviderArg::Pkcs11 => {
                let (Some(module), Some(token_label), Some(key_label)) =
                    (&self.module, &self.token_label, &self.key_label)
                else {
                    return Err(CliError(
                        "pkcs11 needs --module PATH --token-label LABEL --key-label LABEL".into(),
                    ));
                };
                if key_label.is_empty() || token_label.is_empty() {
                    return Err(CliError("labels cannot be empty".into()));
                }
                Ok(ProviderConfig::Pkcs11(Pkcs11Config {
                    module: module.clone(),
                    token_label: token_label.clone(),
                    key_label: key_label.clone(),
                }))
            }
        }
    }
}

fn provider_json(p: &ProviderConfig) -> Value {
    match p {
        ProviderConfig::File => json!({ "provider": "file" }),
        ProviderConfig::Pkcs11(c) => json!({
            "provider": "pkcs11",
            "module": c.module.display().to_string(),
            "token_label": c.token_label,
            "key_label": c.key_label,
        }),
    }
}

/// Makes sure the master key exists in (or for) `p`: creates the token key or
/// the key file. Returns whether it was created.
fn ensure_master(dir: &std::path::Path, p: &ProviderConfig) -> Result<bool, CliError> {
    match p {
        ProviderConfig::File => {
            let existed = dir.join(crate::keys::KEY_FILE_NAME).exists();
            crate::keys::KeyFile::open_or_create(dir).map_err(err)?;
            Ok(!existed)
        }
        ProviderConfig::Pkcs11(c) => {
            let token =
                Pkcs11Provider::new(c.clone(), pin_from_env().map_err(err)?).map_err(err)?;
            token.create_key().map_err(err)
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ZoneAlgorithmArg {
    /// Triple DES, double or triple length (32 or 48 hex digits).
    Tdes,
    Aes128,
    Aes192,
    Aes256,
}

#[derive(Debug, Subcommand)]
pub enum ZoneKeysCommand {
    /// Load a zone PIN key from clear components (XORed together). Prints its id
    /// and key check value; the key itself is stored wrapped by the master key and
    /// never shown again.
    Import {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        algorithm: ZoneAlgorithmArg,
        /// A clear component in hex; repeat for each custodian's component. `-`
        /// reads one line from standard input instead (keeps it out of the
        /// process list and shell history).
        #[arg(long = "component", value_name = "HEX", required = true)]
        components: Vec<String>,
        /// The expected key check value (hex, at least 4 digits): the import is
        /// refused if the combined key's differs.
        #[arg(long)]
        kcv: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List zone keys (id, name, algorithm, key check value; never the key).
    List {
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
            let (program, key) =
                create_program(&app, name, mode, Settings::default(), "program.created").await?;
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
            let mut details = json!({ "changes": changes });
            if mode != program.mode {
                details["mode"] = json!({ "from": program.mode.as_str(), "to": mode.as_str() });
            }
            let audit =
                Actor::operator().record("program.updated", Some(&program.id), None, details);
            app.store
                .update_program(&program.id, settings.clone(), mode, t, audit)
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
            let audit = api_key_created(&program, &row);
            app.store.create_api_key(row, audit).await.map_err(err)?;
            Ok(pretty(
                &json!({ "api_key_id": id, "program_id": program.id, "api_key": secret.expose() }),
            ))
        }
        ApiKeysCommand::Revoke { api_key_id, data } => {
            let app = open_app(&data, String::new()).await?;
            let audit = Actor::operator().record(
                "api_key.revoked",
                None,
                None,
                json!({ "api_key_id": api_key_id }),
            );
            if app
                .store
                .revoke_api_key(&api_key_id, now(), audit)
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
            app.store
                .append_audit(Actor::operator().record(
                    "keys.rotated",
                    None,
                    None,
                    json!({ "rotated": rotated, "cards_reencrypted": cards_reencrypted }),
                ))
                .await
                .map_err(err)?;
            Ok(pretty(
                &json!({ "rotated": rotated, "cards_reencrypted": cards_reencrypted }),
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

pub async fn zone_keys(cmd: ZoneKeysCommand) -> Result<String, CliError> {
    match cmd {
        ZoneKeysCommand::Import {
            name,
            algorithm,
            components,
            kcv,
            data,
        } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
                return Err(CliError("--name must be 1 to 200 characters".into()));
            }
            let algorithm = match algorithm {
                ZoneAlgorithmArg::Tdes => ZoneAlgorithm::Tdes,
                ZoneAlgorithmArg::Aes128 => ZoneAlgorithm::Aes128,
                ZoneAlgorithmArg::Aes192 => ZoneAlgorithm::Aes192,
                ZoneAlgorithmArg::Aes256 => ZoneAlgorithm::Aes256,
            };
            let mut clear = Vec::with_capacity(components.len());
            for (i, c) in components.into_iter().enumerate() {
                let c = Zeroizing::new(c);
                if c.as_str() == "-" {
                    let mut line = Zeroizing::new(String::new());
                    std::io::stdin().read_line(&mut line).map_err(|e| {
                        CliError(format!("reading component {} from stdin: {e}", i + 1))
                    })?;
                    clear.push(Zeroizing::new(line.trim().to_owned()));
                } else {
                    clear.push(c);
                }
            }
            let app = open_app(&data, String::new()).await?;
            let imported = app
                .import_zone_key(name, algorithm, &clear, kcv.as_deref())
                .await
                .map_err(err)?;
            Ok(pretty(
                &json!({ "zone_key_id": imported.id, "kcv": imported.kcv }),
            ))
        }
        ZoneKeysCommand::List { data } => {
            let app = open_app(&data, String::new()).await?;
            let mut out = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let Some((rows, more)) = app
                    .store
                    .list_zone_keys(100, after.as_deref())
                    .await
                    .map_err(err)?
                else {
                    break;
                };
                after = rows.last().map(|r| r.id.clone());
                out.extend(rows.iter().map(|k| {
                    json!({
                        "id": k.id,
                        "name": k.name,
                        "algorithm": k.algorithm.as_str(),
                        "kcv": k.kcv,
                        "created_at": rfc3339(k.created_at),
                    })
                }));
                if !more {
                    break;
                }
            }
            Ok(pretty(&Value::Array(out)))
        }
    }
}

async fn keys_init(
    which: ProviderArg,
    token: &TokenArgs,
    data: &DataArgs,
) -> Result<String, CliError> {
    let target = token.provider(which)?;
    let store = open_store(data).await?;
    let dir = &data.data_dir;
    let current = key_config::read(dir).map_err(err)?;
    if current.previous.is_some() {
        return Err(CliError(
            "a key migration was interrupted: run `pinvault keys migrate` again to finish it"
                .into(),
        ));
    }
    let rows = store.data_keys().await.map_err(err)?;
    if let Some(row) = rows.first() {
        // Keys exist: only a provider that already unwraps them may be recorded.
        let provider = key_config::open_one(dir, &target, false).map_err(|e| {
            CliError(format!(
                "this data directory already has keys under the {} provider, and {e}: use `pinvault keys migrate --to …` to move them",
                match current.provider { ProviderConfig::File => "file", ProviderConfig::Pkcs11(_) => "pkcs11" },
            ))
        })?;
        crate::keys::Keyring::rewrap_row(provider.as_ref(), provider.as_ref(), row).map_err(|_| {
            CliError(
                "this data directory already has keys that this provider's master key does not unwrap: use `pinvault keys migrate --to …` to move them".into(),
            )
        })?;
    }
    let created = ensure_master(dir, &target)?;
    key_config::write(dir, &KeysConfig::single(target.clone())).map_err(err)?;
    let mut out = provider_json(&target);
    out["master_key_created"] = json!(created);
    Ok(pretty(&out))
}

async fn keys_migrate(
    which: ProviderArg,
    token: &TokenArgs,
    data: &DataArgs,
) -> Result<String, CliError> {
    let dir = &data.data_dir;
    let target = token.provider(which)?;
    let current = key_config::read(dir).map_err(err)?;
    let from_config = match &current.previous {
        // An interrupted migration: finish it (to the same target only).
        Some(prev) => {
            if current.provider != target {
                return Err(CliError(
                    "an interrupted migration to another provider is recorded in keys.json: finish it first".into(),
                ));
            }
            prev.clone()
        }
        None => {
            if current.provider == target {
                return Err(CliError(
                    "the master key is already with this provider".into(),
                ));
            }
            current.provider.clone()
        }
    };
    let store = open_store(data).await?;
    let from = key_config::open_one(dir, &from_config, false).map_err(err)?;
    ensure_master(dir, &target)?;
    let to = key_config::open_one(dir, &target, false).map_err(err)?;
    // Phase 1: servers wrap with the new provider and unwrap with either.
    key_config::write(
        dir,
        &KeysConfig {
            provider: target.clone(),
            previous: Some(from_config.clone()),
        },
    )
    .map_err(err)?;
    // Let running servers read it before the keys move.
    tokio::time::sleep(crate::app::keys::KEY_REFRESH + std::time::Duration::from_millis(500)).await;
    // Phase 2: every wrapped key moves, in one transaction per pass.
    let report = crate::app::keys::migrate_master(&store, from, to)
        .await
        .map_err(err)?;
    // Phase 3: the new provider only.
    key_config::write(dir, &KeysConfig::single(target.clone())).map_err(err)?;
    let mut out = json!({
        "from": provider_json(&from_config),
        "to": provider_json(&target),
        "data_keys": report.data_keys,
        "zone_keys": report.zone_keys,
        "rewrapped": report.rewrapped,
    });
    store
        .append_audit(Actor::operator().record("keys.provider_migrated", None, None, out.clone()))
        .await
        .map_err(err)?;
    if from_config == ProviderConfig::File {
        // The old key file no longer protects anything in the database, but it
        // still opens backups taken before now: set it aside, for the operator
        // to destroy once those backups are gone.
        let old = dir.join(crate::keys::KEY_FILE_NAME);
        if old.exists() {
            let retired = dir.join(format!(
                "{}.retired-{}",
                crate::keys::KEY_FILE_NAME,
                crate::domain::time::now()
            ));
            std::fs::rename(&old, &retired).map_err(err)?;
            out["retired_key_file"] = json!(retired.display().to_string());
        }
    }
    Ok(pretty(&out))
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain from the first record; prints how many records
    /// were checked and the head hash, or the first broken record (exit 1).
    Verify {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print audit records, oldest first, as a JSON array.
    List {
        /// Only records after this sequence number.
        #[arg(long, default_value_t = 0, value_name = "SEQ")]
        after: i64,
        /// At most this many records (1 to 10000).
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
        /// Only records about this card.
        #[arg(long, value_name = "CARD_ID")]
        card_id: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub async fn audit(cmd: AuditCommand) -> Result<String, CliError> {
    match cmd {
        AuditCommand::Verify { data } => {
            // The chain needs no key: only the database is opened.
            let store = open_store(&data).await?;
            let check = crate::audit::verify(&store).await.map_err(err)?;
            let out = pretty(&check.to_json());
            match check {
                crate::audit::ChainCheck::Intact { .. } => Ok(out),
                crate::audit::ChainCheck::Broken { seq, reason, .. } => {
                    super::print_stdout(&out);
                    Err(CliError(format!(
                        "the audit chain is broken at record {seq}: {reason}"
                    )))
                }
            }
        }
        AuditCommand::List {
            after,
            limit,
            card_id,
            data,
        } => {
            if !(1..=10_000).contains(&limit) {
                return Err(CliError("--limit must be from 1 to 10000".into()));
            }
            let store = open_store(&data).await?;
            let mut out = Vec::new();
            let mut from = after;
            while out.len() < limit as usize {
                let batch = store.list_audit(from, 1000).await.map_err(err)?;
                let Some(last) = batch.last() else { break };
                from = last.seq;
                out.extend(
                    batch
                        .iter()
                        .filter(|r| card_id.is_none() || r.entry.card_id == card_id)
                        .map(crate::audit::record_json),
                );
            }
            out.truncate(limit as usize);
            Ok(pretty(&Value::Array(out)))
        }
    }
}
