//! `pinvault issuer-keys`: load a program's issuer master keys for chip cards
//! (AC, SMI, SMC: double-length TDES) from clear components or TR-31 key
//! blocks, and list them.
//! Prints JSON on stdout; the keys are stored wrapped by the master key and
//! never shown again.

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::data::{DataArgs, open_app};
use super::key_material::{KeyListArgs, KeyMaterial};
use super::output::{CliError, check_name, pretty};
use crate::app::issuer_keys::{kcv_json, tr31_json};
use crate::domain::chip::Cvn;
use crate::domain::time::rfc3339;
use crate::store::IssuerKeySetRow;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CvnArg {
    /// Visa CVN 10: option A master keys, Visa session keys from the ATC.
    #[value(name = "visa_10")]
    Visa10,
    /// Visa CVN 18: option B master keys, Visa session keys from the ATC.
    #[value(name = "visa_18")]
    Visa18,
    /// Visa CVN 22: option B master keys, EMV common session keys.
    #[value(name = "visa_22")]
    Visa22,
    /// Mastercard CVN 16: option A master keys, EMV common session keys.
    #[value(name = "mastercard_16")]
    Mastercard16,
    /// Mastercard CVN 17: as CVN 16 for issuer scripts.
    #[value(name = "mastercard_17")]
    Mastercard17,
    /// Mastercard CVN 20: as CVN 16 for issuer scripts.
    #[value(name = "mastercard_20")]
    Mastercard20,
    /// Mastercard CVN 21: as CVN 16 for issuer scripts.
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
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum IssuerKeysCommand {
    /// Load a program's issuer master keys (AC, SMI, SMC), each from clear
    /// components or from a TR-31 key block (`--imk-ac-tr31 BLOCK … --kbpk
    /// kbpk_…`). Prints the set's id and the keys' check values.
    Import {
        /// The program (`prg_…`) whose chip cards use the keys.
        #[arg(long, value_name = "PRG")]
        program: String,
        /// A name for people (which keys, which year).
        #[arg(long)]
        name: String,
        /// The cryptogram version: it fixes the card key derivation, the
        /// secure-messaging session keys and the chip's PIN block.
        #[arg(long, value_enum)]
        cvn: CvnArg,
        /// The AC master key (32 hex digits), or a component of it: repeat for
        /// each custodian's (XORed). `-` reads one line from standard input.
        #[arg(
            long = "imk-ac",
            value_name = "HEX",
            required_unless_present = "imk_ac_tr31",
            conflicts_with = "imk_ac_tr31"
        )]
        imk_ac: Vec<String>,
        /// The secure-messaging integrity master key, or a component (as --imk-ac).
        #[arg(
            long = "imk-smi",
            value_name = "HEX",
            required_unless_present = "imk_smi_tr31",
            conflicts_with = "imk_smi_tr31"
        )]
        imk_smi: Vec<String>,
        /// The secure-messaging confidentiality master key, or a component.
        #[arg(
            long = "imk-smc",
            value_name = "HEX",
            required_unless_present = "imk_smc_tr31",
            conflicts_with = "imk_smc_tr31"
        )]
        imk_smc: Vec<String>,
        /// The AC master key as a TR-31 key block (key usage E0, a double-length
        /// TDES key) under --kbpk, in place of --imk-ac. `-` reads it from one
        /// line of standard input. Its mode of use and exportability are kept.
        #[arg(long = "imk-ac-tr31", value_name = "BLOCK", requires = "kbpk")]
        imk_ac_tr31: Option<String>,
        /// The SMI master key as a TR-31 key block (key usage E2), in place of --imk-smi.
        #[arg(long = "imk-smi-tr31", value_name = "BLOCK", requires = "kbpk")]
        imk_smi_tr31: Option<String>,
        /// The SMC master key as a TR-31 key block (key usage E1), in place of --imk-smc.
        #[arg(long = "imk-smc-tr31", value_name = "BLOCK", requires = "kbpk")]
        imk_smc_tr31: Option<String>,
        /// The key block protection key (`kbpk_…`) the --imk-*-tr31 blocks are under.
        #[arg(long, value_name = "KBPK")]
        kbpk: Option<String>,
        /// The expected check value of the AC key: refused if it differs.
        #[arg(long = "kcv-ac", value_name = "HEX")]
        kcv_ac: Option<String>,
        /// The expected check value of the SMI key: refused if it differs.
        #[arg(long = "kcv-smi", value_name = "HEX")]
        kcv_smi: Option<String>,
        /// The expected check value of the SMC key: refused if it differs.
        #[arg(long = "kcv-smc", value_name = "HEX")]
        kcv_smc: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List issuer key sets (id, program, name, CVN, check values, the TR-31
    /// key block each key came in or null; never a key).
    List(KeyListArgs),
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
            imk_ac_tr31,
            imk_smi_tr31,
            imk_smc_tr31,
            kbpk,
            kcv_ac,
            kcv_smi,
            kcv_smc,
            data,
        } => {
            let name = check_name(&name)?;
            let given = [
                ("--imk-ac", imk_ac, imk_ac_tr31),
                ("--imk-smi", imk_smi, imk_smi_tr31),
                ("--imk-smc", imk_smc, imk_smc_tr31),
            ];
            if kbpk.is_some() && given.iter().all(|(_, _, block)| block.is_none()) {
                return Err(CliError::Refused(
                    "--kbpk is for --imk-ac-tr31, --imk-smi-tr31 or --imk-smc-tr31".into(),
                ));
            }
            // In the order of the flags, so that `-` reads stdin's lines in that order.
            let (kcvs, kbpk) = ([kcv_ac, kcv_smi, kcv_smc], kbpk.as_deref());
            let mut read = Vec::with_capacity(3);
            for ((flag, components, block), kcv) in given.into_iter().zip(kcvs) {
                let block_flag = format!("{flag}-tr31");
                let key = KeyMaterial::read(flag, components, &block_flag, block, kbpk, kcv)?;
                read.push(key);
            }
            let keys = [0, 1, 2].map(|i| read[i].input());
            let app = open_app(&data, String::new()).await?;
            let made = app
                .import_issuer_keys(&program, name, cvn.into(), keys)
                .await?;
            Ok(pretty(&json!({
                "issuer_key_set_id": made.id,
                "cvn": made.cvn.as_str(),
                "kcv": kcv_json(&made.kcv),
            })))
        }
        IssuerKeysCommand::List(list) => {
            list.list(|k: &IssuerKeySetRow| {
                json!({ "id": k.id, "program_id": k.program_id, "name": k.name,
                        "cvn": k.cvn.as_str(), "kcv": kcv_json(&k.kcv),
                        "tr31": tr31_json(&k.tr31), "created_at": rfc3339(k.created_at) })
            })
            .await
        }
    }
}
