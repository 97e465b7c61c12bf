//! `pinvault issuer-keys`: load a program's issuer master keys for chip cards
//! (AC, SMI, SMC: double-length TDES) from clear components, and list them.
//! Prints JSON on stdout; the keys are stored wrapped by the master key and
//! never shown again.

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::data::{DataArgs, open_app};
use super::output::{CliError, pretty, read_components};
use crate::app::issuer_keys::{KeyInput, kcv_json};
use crate::domain::chip::Cvn;
use crate::domain::time::rfc3339;
use crate::store::prelude::*;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CvnArg {
    #[value(name = "visa_10")]
    Visa10,
    #[value(name = "visa_18")]
    Visa18,
    #[value(name = "visa_22")]
    Visa22,
    #[value(name = "mastercard_16")]
    Mastercard16,
    #[value(name = "mastercard_17")]
    Mastercard17,
    #[value(name = "mastercard_20")]
    Mastercard20,
    #[value(name = "mastercard_21")]
    Mastercard21,
}

impl From<CvnArg> for Cvn {
    fn from(c: CvnArg) -> Cvn {
        match c {
            CvnArg::Visa10 => Cvn::Visa10,
            CvnArg::Visa18 => Cvn::Visa18,
            CvnArg::Visa22 => Cvn::Visa22,
            CvnArg::Mastercard16 => Cvn::Mastercard16,
            CvnArg::Mastercard17 => Cvn::Mastercard17,
            CvnArg::Mastercard20 => Cvn::Mastercard20,
            CvnArg::Mastercard21 => Cvn::Mastercard21,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum IssuerKeysCommand {
    /// Load a program's issuer master keys (AC, SMI, SMC) from clear
    /// components. Prints the set's id and the keys' check values.
    Import {
        /// The program (`prg_…`) whose chip cards use the keys.
        #[arg(long, value_name = "PRG")]
        program: String,
        #[arg(long)]
        name: String,
        /// The cryptogram version: it fixes the card key derivation, the
        /// secure-messaging session keys and the chip's PIN block.
        #[arg(long, value_enum)]
        cvn: CvnArg,
        /// The AC master key (32 hex digits), or a component of it: repeat for
        /// each custodian's (XORed). `-` reads one line from standard input.
        #[arg(long = "imk-ac", value_name = "HEX", required = true)]
        imk_ac: Vec<String>,
        /// The secure-messaging integrity master key, or a component (as --imk-ac).
        #[arg(long = "imk-smi", value_name = "HEX", required = true)]
        imk_smi: Vec<String>,
        /// The secure-messaging confidentiality master key, or a component.
        #[arg(long = "imk-smc", value_name = "HEX", required = true)]
        imk_smc: Vec<String>,
        /// The expected check value of the AC key: refused if it differs.
        #[arg(long = "kcv-ac", value_name = "HEX")]
        kcv_ac: Option<String>,
        #[arg(long = "kcv-smi", value_name = "HEX")]
        kcv_smi: Option<String>,
        #[arg(long = "kcv-smc", value_name = "HEX")]
        kcv_smc: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List issuer key sets (id, program, name, CVN, check values; never a key).
    List {
        /// Only this program's.
        #[arg(long, value_name = "PRG")]
        program: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub async fn issuer_keys(cmd: IssuerKeysCommand) -> Result<String, CliError> {
    match cmd {
        IssuerKeysCommand::Import {
            program,
            name,
            cvn,
            imk_ac,
            imk_smi,
            imk_smc,
            kcv_ac,
            kcv_smi,
            kcv_smc,
            data,
        } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
                return Err(CliError::Refused(
                    "--name must be 1 to 200 characters".into(),
                ));
            }
            let ac = read_components("--imk-ac", imk_ac)?;
            let smi = read_components("--imk-smi", imk_smi)?;
            let smc = read_components("--imk-smc", imk_smc)?;
            let app = open_app(&data, String::new()).await?;
            let keys = [
                KeyInput {
                    components: &ac,
                    kcv: kcv_ac.as_deref(),
                },
                KeyInput {
                    components: &smi,
                    kcv: kcv_smi.as_deref(),
                },
                KeyInput {
                    components: &smc,
                    kcv: kcv_smc.as_deref(),
                },
            ];
            let made = app
                .import_issuer_keys(&program, name, cvn.into(), keys)
                .await?;
            Ok(pretty(&json!({
                "issuer_key_set_id": made.id,
                "cvn": made.cvn.as_str(),
                "kcv": kcv_json(&made.kcv),
            })))
        }
        IssuerKeysCommand::List { program, data } => {
            let app = open_app(&data, String::new()).await?;
            let (store, program) = (&app.store, program.as_deref());
            let rows = crate::store::every_page(
                |after| async move {
                    store
                        .list_issuer_key_sets(program, 100, after.as_deref())
                        .await
                },
                |k: &crate::store::IssuerKeySetRow| k.id.clone(),
            )
            .await?;
            let out: Vec<Value> = rows
                .iter()
                .map(|k| {
                    json!({
                        "id": k.id,
                        "program_id": k.program_id,
                        "name": k.name,
                        "cvn": k.cvn.as_str(),
                        "kcv": kcv_json(&k.kcv),
                        "created_at": rfc3339(k.created_at),
                    })
                })
                .collect();
            Ok(pretty(&Value::Array(out)))
        }
    }
}
