//! `pinvault zone-keys`: import zone PIN keys from clear components or TR-31
//! key blocks for the programs they are granted to, grant and revoke them, and
//! list them. Prints JSON on stdout and works while servers run (the database
//! arbitrates).

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::data::{DataArgs, open_app};
use super::key_material::KeyMaterialArgs;
use super::output::{CliError, check_name, pretty, pretty_list};
use crate::app::zone_keys::grants_json;
use crate::domain::time::rfc3339;
use crate::domain::zone_key::Usage;
use crate::keys::ZoneAlgorithm;
use crate::store::ZoneKeyRow;
use crate::store::prelude::*;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ZoneAlgorithmArg {
    /// Triple DES, double or triple length (32 or 48 hex digits).
    Tdes,
    /// AES-128 (32 hex digits).
    Aes128,
    /// AES-192 (48 hex digits).
    Aes192,
    /// AES-256 (64 hex digits).
    Aes256,
}

impl From<ZoneAlgorithmArg> for ZoneAlgorithm {
    fn from(a: ZoneAlgorithmArg) -> ZoneAlgorithm {
        match a {
            ZoneAlgorithmArg::Tdes => ZoneAlgorithm::Tdes,
            ZoneAlgorithmArg::Aes128 => ZoneAlgorithm::Aes128,
            ZoneAlgorithmArg::Aes192 => ZoneAlgorithm::Aes192,
            ZoneAlgorithmArg::Aes256 => ZoneAlgorithm::Aes256,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ZoneKeysCommand {
    /// Load a zone PIN key from clear components (XORed together), or from a
    /// TR-31 key block (`--tr31 BLOCK --kbpk kbpk_…`). Prints its id and key
    /// check value; the key itself is stored wrapped by the master key and
    /// never shown again.
    Import {
        /// A name for people (who sent it, what it is for).
        #[arg(long)]
        name: String,
        /// Required with --component; with --tr31 it is taken from the block
        /// (T: tdes, A: aes128/192/256 by the key's length) and, if given,
        /// must agree with it.
        #[arg(long, value_enum, required_unless_present = "tr31")]
        algorithm: Option<ZoneAlgorithmArg>,
        #[command(flatten)]
        key: KeyMaterialArgs,
        /// A program that may use the key (`prg_…`); repeat for each. Other
        /// programs naming the key get 404, as for a key that does not exist.
        #[arg(long = "program", value_name = "PRG", required = true)]
        programs: Vec<String>,
        /// `verify`: PIN blocks come in (verification, PIN change, import);
        /// `export`: PIN blocks go out. A key has one usage.
        #[arg(long, value_enum, default_value = "verify")]
        usage: UsageArg,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Let a program use a zone key. The first grant of a key imported before
    /// grants (usable by every program) makes it usable by that program only.
    /// Returns once running servers apply it (within 2 seconds).
    Grant(GrantArgs),
    /// Stop a program from using a zone key. Returns once running servers
    /// apply it (within 2 seconds).
    Revoke(GrantArgs),
    /// List zone keys (id, name, algorithm, key check value, usage, the
    /// programs granted, or "all" for a key from before grants, the TR-31
    /// key block it came in or null; never the key).
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}

/// A zone key and a program, for `grant` and `revoke`.
#[derive(Debug, clap::Args)]
pub struct GrantArgs {
    /// The zone key (`zpk_…`).
    #[arg(value_name = "ZPK")]
    zone_key_id: String,
    /// The program (`prg_…`).
    #[arg(long, value_name = "PRG")]
    program: String,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum UsageArg {
    /// PIN blocks come in under it (verification, ATM change, card import).
    Verify,
    /// PIN blocks go out under it (`POST /v1/cards/{id}/pin/export`).
    Export,
}

impl From<UsageArg> for Usage {
    fn from(u: UsageArg) -> Usage {
        match u {
            UsageArg::Verify => Usage::Verify,
            UsageArg::Export => Usage::Export,
        }
    }
}

pub async fn zone_keys(cmd: ZoneKeysCommand) -> Result<String, CliError> {
    match cmd {
        ZoneKeysCommand::Import {
            name,
            algorithm,
            key,
            programs,
            usage,
            data,
        } => {
            let name = check_name(&name)?;
            let key = key.read()?;
            let app = open_app(&data, String::new()).await?;
            let imported = app
                .import_zone_key(
                    name,
                    algorithm.map(Into::into),
                    key.input(),
                    &programs,
                    usage.into(),
                )
                .await?;
            Ok(pretty(
                &json!({ "zone_key_id": imported.id, "kcv": imported.kcv }),
            ))
        }
        ZoneKeysCommand::Grant(args) => change_grant(&args, true).await,
        ZoneKeysCommand::Revoke(args) => change_grant(&args, false).await,
        ZoneKeysCommand::List { data } => {
            let app = open_app(&data, String::new()).await?;
            let store = &app.store;
            let rows = crate::store::every_page(
                |after| async move { store.list_zone_keys(100, after.as_deref()).await },
                |k: &ZoneKeyRow| k.key.id.clone(),
            )
            .await?;
            Ok(pretty_list(&rows, |k| {
                json!({ "id": k.key.id, "name": k.key.name, "algorithm": k.key.algorithm.as_str(),
                        "kcv": k.key.kcv, "usage": k.usage.as_str(),
                        "programs": grants_json(&k.grants), "tr31": k.tr31,
                        "created_at": rfc3339(k.key.created_at) })
            }))
        }
    }
}

async fn change_grant(args: &GrantArgs, grant: bool) -> Result<String, CliError> {
    let (zone_key_id, program) = (&args.zone_key_id, &args.program);
    let app = open_app(&args.data, String::new()).await?;
    let after = app
        .change_zone_key_grant(zone_key_id, program, grant)
        .await?;
    // Running servers read a key's grants again within KEY_REFRESH.
    tokio::time::sleep(crate::app::keys::KEY_REFRESH + std::time::Duration::from_millis(500)).await;
    Ok(pretty(
        &json!({ "zone_key_id": zone_key_id, "programs": grants_json(&after) }),
    ))
}
