//! `pinvault keys init` and `keys migrate`: where the master key lives (a key
//! file or a PKCS#11 token), and moving it from one provider to another.

use clap::ValueEnum;
use serde_json::{Value, json};

use super::data::{DataArgs, open_store};
use super::output::{CliError, err, pretty};
use crate::audit::Actor;
use crate::keys::config::{self as key_config, KeysConfig, ProviderConfig};
use crate::keys::pkcs11::{Pkcs11Config, Pkcs11Provider, pin_from_env};
use crate::store::prelude::*;

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
                    return Err(CliError::Refused(
                        "--module, --token-label and --key-label go with pkcs11 only".into(),
                    ));
                }
                Ok(ProviderConfig::File)
            }
            ProviderArg::Pkcs11 => {
                let (Some(module), Some(token_label), Some(key_label)) =
                    (&self.module, &self.token_label, &self.key_label)
                else {
                    return Err(CliError::Refused(
                        "pkcs11 needs --module PATH --token-label LABEL --key-label LABEL".into(),
                    ));
                };
                if key_label.is_empty() || token_label.is_empty() {
                    return Err(CliError::Refused("labels cannot be empty".into()));
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
            crate::keys::KeyFile::open_or_create(dir)?;
            Ok(!existed)
        }
        ProviderConfig::Pkcs11(c) => {
            let token = Pkcs11Provider::new(c.clone(), pin_from_env()?)?;
            token.create_key().map_err(err)
        }
    }
}

pub(super) async fn keys_init(
    which: ProviderArg,
    token: &TokenArgs,
    data: &DataArgs,
) -> Result<String, CliError> {
    let target = token.provider(which)?;
    let store = open_store(data).await?;
    let dir = &data.data_dir;
    let current = key_config::read(dir)?;
    if current.previous.is_some() {
        return Err(CliError::Refused(
            "a key migration was interrupted: run `pinvault keys migrate` again to finish it"
                .into(),
        ));
    }
    let rows = store.data_keys().await?;
    if let Some(row) = rows.first() {
        // Keys exist: only a provider that already unwraps them may be recorded.
        let provider = key_config::open_one(dir, &target, false).map_err(|e| {
            CliError::Refused(format!(
                "this data directory already has keys under the {} provider, and {e}: use `pinvault keys migrate --to …` to move them",
                match current.provider { ProviderConfig::File => "file", ProviderConfig::Pkcs11(_) => "pkcs11" },
            ))
        })?;
        crate::keys::Keyring::rewrap_row(provider.as_ref(), provider.as_ref(), row).map_err(|_| {
            CliError::Refused(
                "this data directory already has keys that this provider's master key does not unwrap: use `pinvault keys migrate --to …` to move them".into(),
            )
        })?;
    }
    let created = ensure_master(dir, &target)?;
    key_config::write(dir, &KeysConfig::single(target.clone()))?;
    let mut out = provider_json(&target);
    out["master_key_created"] = json!(created);
    Ok(pretty(&out))
}

pub(super) async fn keys_migrate(
    which: ProviderArg,
    token: &TokenArgs,
    data: &DataArgs,
) -> Result<String, CliError> {
    let dir = &data.data_dir;
    let target = token.provider(which)?;
    let current = key_config::read(dir)?;
    let from_config = match &current.previous {
        // An interrupted migration: finish it (to the same target only).
        Some(prev) => {
            if current.provider != target {
                return Err(CliError::Refused(
                    "an interrupted migration to another provider is recorded in keys.json: finish it first".into(),
                ));
            }
            prev.clone()
        }
        None => {
            if current.provider == target {
                return Err(CliError::Refused(
                    "the master key is already with this provider".into(),
                ));
            }
            current.provider.clone()
        }
    };
    let store = open_store(data).await?;
    let from = key_config::open_one(dir, &from_config, false)?;
    ensure_master(dir, &target)?;
    let to = key_config::open_one(dir, &target, false)?;
    // Phase 1: servers wrap with the new provider and unwrap with either.
    key_config::write(
        dir,
        &KeysConfig {
            provider: target.clone(),
            previous: Some(from_config.clone()),
        },
    )?;
    let (on, display) = super::progress::reporter("keys migrate", "keys");
    // Let running servers read it before the keys move.
    on(crate::app::keys::Step {
        what: "keys.json names both providers; waiting for running servers to read it",
        done: 0,
        total: None,
    });
    tokio::time::sleep(crate::app::keys::KEY_REFRESH + std::time::Duration::from_millis(500)).await;
    // Phase 2: every wrapped key moves, in one transaction per pass.
    let report = crate::app::keys::migrate_master(&store, from, to, &on).await?;
    display.end();
    // Phase 3: the new provider only.
    key_config::write(dir, &KeysConfig::single(target.clone()))?;
    let mut out = json!({
        "from": provider_json(&from_config),
        "to": provider_json(&target),
        "data_keys": report.data_keys,
        "zone_keys": report.zone_keys,
        "issuer_keys": report.issuer_keys,
        "pin_verification_keys": report.pin_verification_keys,
        "key_block_protection_keys": report.kbpks,
        "rewrapped": report.rewrapped,
    });
    store
        .append_audit(Actor::operator().record("keys.provider_migrated", None, None, out.clone()))
        .await?;
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
            std::fs::rename(&old, &retired)?;
            out["retired_key_file"] = json!(retired.display().to_string());
        }
    }
    Ok(pretty(&out))
}
