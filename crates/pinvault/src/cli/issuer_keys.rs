//! `pinvault issuer-keys`: load a program's issuer master keys for chip cards
//! (AC, SMI, SMC: double-length TDES) from clear components or TR-31 key
//! blocks, and list them.
//! Prints JSON on stdout; the keys are stored wrapped by the master key and
//! never shown again.

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::data::{DataArgs, open_app};
use super::key_material::{KeyListArgs, KeyMaterial, KeyOwnerArgs};
use super::output::{CliError, check_name, pretty};
use crate::app::issuer_keys::{kcv_json, tr31_json};
use crate::domain::chip::Cvn;
use crate::domain::time::rfc3339;
use crate::keys::issuer::Part;
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
        #[command(flatten)]
        owner: KeyOwnerArgs,
        /// The cryptogram version: it fixes the card key derivation, the
        /// secure-messaging session keys and the chip's PIN block.
        #[arg(long, value_enum)]
        cvn: CvnArg,
        #[command(flatten)]
        keys: MasterKeyArgs,
        /// The key block protection key (`kbpk_…`) the --imk-*-tr31 blocks are under.
        #[arg(long, value_name = "KBPK")]
        kbpk: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List issuer key sets (id, program, name, CVN, check values, the TR-31
    /// key block each key came in or null; never a key).
    List(KeyListArgs),
}

/// Each key of a set: its part, its flags (clear components, TR-31 block,
/// expected check value) and what the help calls it.
type KeyFlags = (Part, &'static str, &'static str, &'static str, &'static str);

const KEY_FLAGS: [KeyFlags; 3] = [
    (Part::Ac, "imk-ac", "imk-ac-tr31", "kcv-ac", "AC master key"),
    (
        Part::Smi,
        "imk-smi",
        "imk-smi-tr31",
        "kcv-smi",
        "secure-messaging integrity (SMI) master key",
    ),
    (
        Part::Smc,
        "imk-smc",
        "imk-smc-tr31",
        "kcv-smc",
        "secure-messaging confidentiality (SMC) master key",
    ),
];

/// The flags of a set's three keys, made from [`KEY_FLAGS`]: `--imk-ac HEX`
/// (repeated: components) or `--imk-ac-tr31 BLOCK`, and `--kcv-ac HEX`; the
/// same for SMI and SMC.
pub struct MasterKeyArgs([GivenKey; 3]);

struct GivenKey {
    components: Vec<String>,
    block: Option<String>,
    kcv: Option<String>,
}

/// Says which flags were given, never a key or a component.
impl std::fmt::Debug for MasterKeyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for k in &self.0 {
            list.entry(&(k.components.len(), k.block.is_some(), &k.kcv));
        }
        list.finish()
    }
}

impl clap::Args for MasterKeyArgs {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        use clap::{Arg, ArgAction};
        for (part, key, block, kcv, what) in KEY_FLAGS {
            let usage = part.tr31_usage();
            cmd = cmd.args([
                Arg::new(key).long(key).value_name("HEX").action(ArgAction::Append)
                    .required_unless_present(block).conflicts_with(block)
                    .help(format!("The {what} (32 hex digits), or a component of it: repeat for each custodian's (XORed). `-` reads one line from standard input")),
                Arg::new(block).long(block).value_name("BLOCK").requires("kbpk")
                    .help(format!("The {what} as a TR-31 key block (key usage {usage}, a double-length TDES key) under --kbpk, in place of --{key}. `-` reads it from one line of standard input. Its mode of use and exportability are kept")),
                Arg::new(kcv).long(kcv).value_name("HEX")
                    .help(format!("The expected check value of the {what}: refused if it differs")),
            ]);
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for MasterKeyArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let one = |id: &str| m.get_one::<String>(id).cloned();
        Ok(MasterKeyArgs(KEY_FLAGS.map(|(_, key, block, kcv, _)| {
            GivenKey {
                components: m
                    .get_many::<String>(key)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
                block: one(block),
                kcv: one(kcv),
            }
        })))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

pub async fn issuer_keys(cmd: IssuerKeysCommand) -> Result<String, CliError> {
    match cmd {
        IssuerKeysCommand::Import {
            owner,
            cvn,
            keys,
            kbpk,
            data,
        } => {
            let (program, name) = (owner.program, check_name(&owner.name)?);
            if kbpk.is_some() && keys.0.iter().all(|k| k.block.is_none()) {
                return Err(CliError::Refused(
                    "--kbpk is for --imk-ac-tr31, --imk-smi-tr31 or --imk-smc-tr31".into(),
                ));
            }
            // In the order of the flags, so that `-` reads stdin's lines in that order.
            let mut read = Vec::with_capacity(3);
            for ((_, key, block, _, _), given) in KEY_FLAGS.iter().zip(keys.0) {
                let (key, block) = (format!("--{key}"), format!("--{block}"));
                let (components, kcv) = (given.components, given.kcv);
                let kbpk = kbpk.as_deref();
                read.push(KeyMaterial::read(
                    &key,
                    components,
                    &block,
                    given.block,
                    kbpk,
                    kcv,
                )?);
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
