//! `pinvault key-block-protection-keys`: import the key block protection keys
//! (KBPKs) TR-31 key blocks arrive under, from clear components, and list them.
//! Operator-level (no program's). Prints JSON on stdout; the keys are stored
//! wrapped by the master key and never shown again.

use clap::Subcommand;
use serde_json::json;

use super::data::{DataArgs, open_app};
use super::key_material::list_keys;
use super::output::{CliError, check_name, pretty, read_components};
use super::zone_keys::ZoneAlgorithmArg;
use crate::domain::time::rfc3339;
use crate::store::KbpkRow;

#[derive(Debug, Subcommand)]
pub enum KbpkCommand {
    /// Load a key block protection key from clear components (XORed together).
    /// Prints its id and key check value. Blocks of versions B and C are read
    /// under a `tdes` KBPK (double or triple length), version D under an AES one.
    Import {
        /// A name for people (whose blocks it protects).
        #[arg(long)]
        name: String,
        /// The KBPK's algorithm: tdes for blocks of versions B and C, an AES
        /// size for version D.
        #[arg(long, value_enum)]
        algorithm: ZoneAlgorithmArg,
        /// A clear component in hex; repeat for each custodian's component. `-`
        /// reads one line from standard input instead.
        #[arg(long = "component", value_name = "HEX", required = true)]
        components: Vec<String>,
        /// The expected key check value (hex, at least 4 digits): the import is
        /// refused if the combined key's differs.
        #[arg(long)]
        kcv: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List key block protection keys (id, name, algorithm, key check value;
    /// never the key).
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}

pub async fn kbpks(cmd: KbpkCommand) -> Result<String, CliError> {
    match cmd {
        KbpkCommand::Import {
            name,
            algorithm,
            components,
            kcv,
            data,
        } => {
            let name = check_name(&name)?;
            let clear = read_components("--component", components)?;
            let app = open_app(&data, String::new()).await?;
            let made = app
                .import_kbpk(name, algorithm.into(), &clear, kcv.as_deref())
                .await?;
            Ok(pretty(&json!({ "kbpk_id": made.id, "kcv": made.kcv })))
        }
        KbpkCommand::List { data } => {
            list_keys(&data, None, |k: &KbpkRow| {
                json!({ "id": k.id, "name": k.name, "algorithm": k.algorithm.as_str(),
                        "kcv": k.kcv, "created_at": rfc3339(k.created_at) })
            })
            .await
        }
    }
}
