//! The flags by which an import command is given a key: clear components, or
//! a TR-31 key block under a key block protection key, and the check value
//! expected of it (`zone-keys import`, `pin-verification-keys import`; each of
//! `issuer-keys import`'s three keys is read the same way), and the listing of
//! a key table.

use zeroize::Zeroizing;

use super::data::{DataArgs, open_app};
use super::output::{CliError, pretty_list, read_components, read_secret};
use crate::app::zone_keys::{KeyInput, KeySource};
use crate::store::KeyRow;
use crate::store::prelude::*;

/// The program a key is loaded for, and its name.
#[derive(Debug, clap::Args)]
pub struct KeyOwnerArgs {
    /// The program (`prg_…`) whose cards the key is for.
    #[arg(long, value_name = "PRG")]
    pub program: String,
    /// A name for people (where the key comes from, which year).
    #[arg(long)]
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct KeyMaterialArgs {
    /// A clear component in hex; repeat for each custodian's component (they
    /// are XORed). `-` reads one line from standard input instead (keeps it
    /// out of the process list and shell history).
    #[arg(
        long = "component",
        value_name = "HEX",
        required_unless_present = "tr31",
        conflicts_with = "tr31"
    )]
    components: Vec<String>,
    /// The key as a TR-31 key block (versions B, C, D) under the key block
    /// protection key --kbpk, in place of components; its key usage must be
    /// the key's (P0 for a zone key, V2 for a Visa PVK, V1 for an IBM 3624
    /// key). `-` reads it from one line of standard input. Its mode of use
    /// and exportability are kept with the key.
    #[arg(long, value_name = "BLOCK", requires = "kbpk")]
    tr31: Option<String>,
    /// The key block protection key (`kbpk_…`) the --tr31 block is under.
    #[arg(long, value_name = "KBPK", requires = "tr31")]
    kbpk: Option<String>,
    /// The expected key check value (hex, at least 4 digits): the import is
    /// refused if the key's differs.
    #[arg(long, value_name = "HEX")]
    kcv: Option<String>,
}

/// The flags of a list of keys that are a program's.
#[derive(Debug, clap::Args)]
pub struct KeyListArgs {
    /// Only this program's.
    #[arg(long, value_name = "PRG")]
    pub program: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
}

impl KeyListArgs {
    /// Every key of the table (only the program's with --program), shown by `view`.
    pub async fn list<K: KeyRow>(
        self,
        view: fn(&K) -> serde_json::Value,
    ) -> Result<String, CliError> {
        list_keys(&self.data, self.program.as_deref(), view).await
    }
}

/// Every key of a key table (one program's, or all), shown by `view`.
pub async fn list_keys<K: KeyRow>(
    data: &DataArgs,
    program: Option<&str>,
    view: fn(&K) -> serde_json::Value,
) -> Result<String, CliError> {
    let app = open_app(data, String::new()).await?;
    let rows: Vec<K> = app.store.every_key(program).await?;
    Ok(pretty_list(&rows, view))
}

/// A key as given, with `-` values read from standard input.
pub struct KeyMaterial {
    clear: Vec<Zeroizing<String>>,
    block: Option<(Zeroizing<String>, String)>,
    /// The check value expected of the key.
    kcv: Option<String>,
}

impl KeyMaterialArgs {
    /// Reads the `-` values, in the flags' order.
    pub fn read(self) -> Result<KeyMaterial, CliError> {
        KeyMaterial::read(
            "--component",
            self.components,
            "--tr31",
            self.tr31,
            self.kbpk.as_deref(),
            self.kcv,
        )
    }
}

impl KeyMaterial {
    /// Reads a key's `-` values, its components (`component_flag`) first,
    /// then its key block (`block_flag`, under the KBPK `kbpk`).
    pub fn read(
        component_flag: &str,
        components: Vec<String>,
        block_flag: &str,
        block: Option<String>,
        kbpk: Option<&str>,
        kcv: Option<String>,
    ) -> Result<KeyMaterial, CliError> {
        let clear = read_components(component_flag, components)?;
        let block = match (block, kbpk) {
            (Some(block), Some(kbpk)) => Some((read_secret(block_flag, block)?, kbpk.to_owned())),
            _ => None,
        };
        Ok(KeyMaterial { clear, block, kcv })
    }

    /// The key and the check value expected of it, for the import.
    pub fn input(&self) -> KeyInput<'_> {
        let source = match &self.block {
            Some((block, kbpk_id)) => KeySource::Tr31 {
                kbpk_id,
                block: block.as_str(),
            },
            None => KeySource::Components(&self.clear),
        };
        KeyInput {
            source,
            kcv: self.kcv.as_deref(),
        }
    }
}
