//! `pinvault pin-verification-keys`: load a program's PIN verification keys
//! (a Visa PVK, or an IBM 3624 key with its parameters) from clear components,
//! for cards migrated with PVVs or offsets, and list them. Prints JSON on
//! stdout; the keys are stored wrapped by the master key and never shown again.

use clap::{Subcommand, ValueEnum};
use pinblock::ibm3624::Ibm3624Params;
use serde_json::json;

use super::data::{DataArgs, open_app};
use super::key_material::{KeyListArgs, KeyMaterialArgs, KeyOwnerArgs};
use super::output::{CliError, check_name, pretty};
use crate::domain::legacy::Method;
use crate::domain::time::rfc3339;
use crate::store::{PvkRow, pvk_params_json};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MethodArg {
    /// A Visa PVK: cards carry a PVV and its PVK index.
    #[value(name = "visa_pvv")]
    VisaPvv,
    /// An IBM 3624 PIN verification key: cards carry an offset.
    #[value(name = "ibm_3624")]
    Ibm3624,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Method {
        match m {
            MethodArg::VisaPvv => Method::VisaPvv,
            MethodArg::Ibm3624 => Method::Ibm3624,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PvksCommand {
    /// Load a PIN verification key (double- or triple-length TDES) from clear
    /// components (XORed) or a TR-31 key block (`--tr31 BLOCK --kbpk
    /// kbpk_…`). Prints its id and check value.
    Import {
        #[command(flatten)]
        owner: KeyOwnerArgs,
        /// What the key verifies: Visa PVVs or IBM 3624 offsets.
        #[arg(long, value_enum)]
        method: MethodArg,
        #[command(flatten)]
        key: KeyMaterialArgs,
        #[command(flatten)]
        ibm_3624: Ibm3624Args,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List PIN verification keys (id, program, name, method, check value,
    /// IBM 3624 parameters; never a key).
    List(KeyListArgs),
}

/// The parameters of an IBM 3624 key; each defaults to API.md's.
#[derive(Debug, clap::Args)]
pub struct Ibm3624Args {
    /// IBM 3624: the decimalization table (16 digits).
    #[arg(long, value_name = "DIGITS")]
    decimalization_table: Option<String>,
    /// IBM 3624: where the validation data starts in the PAN (0 = its
    /// first digit).
    #[arg(long, value_name = "N")]
    validation_data_offset: Option<u8>,
    /// IBM 3624: how many PAN digits the validation data takes.
    #[arg(long, value_name = "N")]
    validation_data_length: Option<u8>,
    /// IBM 3624: the hex digit the validation data is padded with.
    #[arg(long, value_name = "HEX")]
    pad_character: Option<char>,
    /// IBM 3624: how many PIN digits the offset covers (4 to 12).
    #[arg(long, value_name = "N")]
    pin_length: Option<u8>,
}

impl Ibm3624Args {
    /// The parameters for `method`: refused for a Visa PVK.
    fn params(self, method: Method) -> Result<Option<Ibm3624Params>, CliError> {
        let given = self.decimalization_table.is_some()
            || self.validation_data_offset.is_some()
            || self.validation_data_length.is_some()
            || self.pad_character.is_some()
            || self.pin_length.is_some();
        match method {
            Method::VisaPvv if given => Err(CliError::Refused(
                "--decimalization-table, --validation-data-*, --pad-character and --pin-length are for --method ibm_3624".into(),
            )),
            Method::VisaPvv => Ok(None),
            Method::Ibm3624 => {
                let d = Ibm3624Params::default();
                let pad = match self.pad_character {
                    None => d.pad(),
                    Some(c) if c.is_ascii() => c as u8,
                    Some(_) => {
                        return Err(CliError::Refused(
                            "--pad-character must be a hex digit".into(),
                        ));
                    }
                };
                let table = self.decimalization_table.unwrap_or_else(|| {
                    String::from_utf8_lossy(d.decimalization()).into_owned()
                });
                Ibm3624Params::new(
                    &table,
                    self.validation_data_offset.unwrap_or(d.validation_offset()),
                    self.validation_data_length.unwrap_or(d.validation_length()),
                    pad,
                    self.pin_length.unwrap_or(d.pin_length()),
                )
                .map(Some)
                .map_err(|e| CliError::Refused(e.to_string()))
            }
        }
    }
}

pub async fn pvks(cmd: PvksCommand) -> Result<String, CliError> {
    match cmd {
        PvksCommand::Import {
            owner,
            method,
            key,
            ibm_3624,
            data,
        } => {
            let (program, name) = (owner.program, check_name(&owner.name)?);
            let method = method.into();
            let params = ibm_3624.params(method)?;
            let key = key.read()?;
            let app = open_app(&data, String::new()).await?;
            let imported = app
                .import_pvk(&program, name, method, key.input(), params)
                .await?;
            Ok(pretty(
                &json!({ "pin_verification_key_id": imported.id, "kcv": imported.kcv }),
            ))
        }
        PvksCommand::List(list) => {
            list.list(|k: &PvkRow| {
                json!({ "id": k.id, "program_id": k.program_id, "name": k.name,
                        "method": k.method.as_str(), "kcv": k.kcv,
                        "ibm_3624": k.params.as_ref().map(pvk_params_json), "tr31": k.tr31,
                        "created_at": rfc3339(k.created_at) })
            })
            .await
        }
    }
}
