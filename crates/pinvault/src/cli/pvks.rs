//! `pinvault pin-verification-keys`: load a program's PIN verification keys
//! (a Visa PVK, or an IBM 3624 key with its parameters) from clear components,
//! for cards migrated with PVVs or offsets, and list them. Prints JSON on
//! stdout; the keys are stored wrapped by the master key and never shown again.

use clap::{Subcommand, ValueEnum};
use pinblock::ibm3624::Ibm3624Params;
use serde_json::{Value, json};

use super::data::{DataArgs, open_app};
use super::output::{CliError, pretty, read_components};
use crate::domain::legacy::Method;
use crate::domain::time::rfc3339;
use crate::store::prelude::*;
use crate::store::pvk_params_json;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MethodArg {
    /// A Visa PVK: cards carry a PVV and its PVK index.
    #[value(name = "visa_pvv")]
    VisaPvv,
    /// An IBM 3624 PIN verification key: cards carry an offset.
    #[value(name = "ibm_3624")]
    Ibm3624,
}

#[derive(Debug, Subcommand)]
pub enum PvksCommand {
    /// Load a PIN verification key (double- or triple-length TDES) from clear
    /// components (XORed). Prints its id and check value.
    Import {
        /// The program (`prg_…`) whose migrated cards it verifies.
        #[arg(long, value_name = "PRG")]
        program: String,
        /// A name for people (which system it comes from).
        #[arg(long)]
        name: String,
        /// What the key verifies: Visa PVVs or IBM 3624 offsets.
        #[arg(long, value_enum)]
        method: MethodArg,
        /// The key (32 or 48 hex digits), or a component of it: repeat for
        /// each custodian's. `-` reads one line from standard input.
        #[arg(
            long = "component",
            value_name = "HEX",
            required_unless_present = "tr31",
            conflicts_with = "tr31"
        )]
        components: Vec<String>,
        /// The key as a TR-31 key block (usage V2 for visa_pvv, V1 for
        /// ibm_3624) under --kbpk, in place of components. `-` reads it
        /// from standard input.
        #[arg(long, value_name = "BLOCK", requires = "kbpk")]
        tr31: Option<String>,
        /// The key block protection key (`kbpk_…`) the --tr31 block is under.
        #[arg(long, value_name = "KBPK", requires = "tr31")]
        kbpk: Option<String>,
        /// The expected check value: refused if it differs.
        #[arg(long, value_name = "HEX")]
        kcv: Option<String>,
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
        #[command(flatten)]
        data: DataArgs,
    },
    /// List PIN verification keys (id, program, name, method, check value,
    /// IBM 3624 parameters; never a key).
    List {
        /// Only this program's.
        #[arg(long, value_name = "PRG")]
        program: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub async fn pvks(cmd: PvksCommand) -> Result<String, CliError> {
    match cmd {
        PvksCommand::Import {
            program,
            name,
            method,
            components,
            tr31,
            kbpk,
            kcv,
            decimalization_table,
            validation_data_offset,
            validation_data_length,
            pad_character,
            pin_length,
            data,
        } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
                return Err(CliError::Refused(
                    "--name must be 1 to 200 characters".into(),
                ));
            }
            let method = match method {
                MethodArg::VisaPvv => Method::VisaPvv,
                MethodArg::Ibm3624 => Method::Ibm3624,
            };
            let given = decimalization_table.is_some()
                || validation_data_offset.is_some()
                || validation_data_length.is_some()
                || pad_character.is_some()
                || pin_length.is_some();
            let params = match method {
                Method::VisaPvv if given => {
                    return Err(CliError::Refused(
                        "--decimalization-table, --validation-data-*, --pad-character and --pin-length are for --method ibm_3624".into(),
                    ));
                }
                Method::VisaPvv => None,
                Method::Ibm3624 => {
                    let d = Ibm3624Params::default();
                    let pad = match pad_character {
                        None => d.pad(),
                        Some(c) if c.is_ascii() => c as u8,
                        Some(_) => {
                            return Err(CliError::Refused(
                                "--pad-character must be a hex digit".into(),
                            ));
                        }
                    };
                    let table = decimalization_table.unwrap_or_else(|| {
                        String::from_utf8_lossy(d.decimalization()).into_owned()
                    });
                    Some(
                        Ibm3624Params::new(
                            &table,
                            validation_data_offset.unwrap_or(d.validation_offset()),
                            validation_data_length.unwrap_or(d.validation_length()),
                            pad,
                            pin_length.unwrap_or(d.pin_length()),
                        )
                        .map_err(|e| CliError::Refused(e.to_string()))?,
                    )
                }
            };
            let (id, kcv) = match (tr31, kbpk) {
                (Some(block), Some(kbpk)) => {
                    let block = super::output::read_secret("--tr31", block)?;
                    let app = open_app(&data, String::new()).await?;
                    app.import_pvk_tr31(
                        &program,
                        name,
                        method,
                        &kbpk,
                        &block,
                        kcv.as_deref(),
                        params,
                    )
                    .await?
                }
                _ => {
                    let components = read_components("--component", components)?;
                    let app = open_app(&data, String::new()).await?;
                    app.import_pvk(&program, name, method, &components, kcv.as_deref(), params)
                        .await?
                }
            };
            Ok(pretty(
                &json!({ "pin_verification_key_id": id, "kcv": kcv }),
            ))
        }
        PvksCommand::List { program, data } => {
            let app = open_app(&data, String::new()).await?;
            let (store, program) = (&app.store, program.as_deref());
            let rows = crate::store::every_page(
                |after| async move { store.list_pvks(program, 100, after.as_deref()).await },
                |k: &crate::store::PvkRow| k.id.clone(),
            )
            .await?;
            let out: Vec<Value> = rows
                .iter()
                .map(|k| {
                    json!({
                        "id": k.id,
                        "program_id": k.program_id,
                        "name": k.name,
                        "method": k.method.as_str(),
                        "kcv": k.kcv,
                        "ibm_3624": k.params.as_ref().map(pvk_params_json),
                        "tr31": k.tr31,
                        "created_at": rfc3339(k.created_at),
                    })
                })
                .collect();
            Ok(pretty(&Value::Array(out)))
        }
    }
}
