//! EMV issuer scripts for the chip's offline PIN. Pure functions: no I/O, no
//! global state, no panics on any input; keys, PINs and PIN blocks live in
//! types that zero themselves and do not print.
//!
//! - [`cvn`]: the seven CVNs and what each fixes (master key option, session
//!   keys, PIN block, encipherment), and where that was checked.
//! - [`kd`]: ICC master keys (EMV options A and B), the EMV common session key
//!   and Visa's secure-messaging session key.
//! - [`mac`]: ISO/IEC 9797-1 MAC algorithm 3 with padding method 2.
//! - [`pin`]: the VIS PIN block and ISO 9564 format 2.
//! - [`sm`]: command data encipherment, the Visa and Mastercard ways.
//! - [`script`]: PIN CHANGE / PIN UNBLOCK commands and the `72` template.
//! - [`tlv`] and [`icc`]: BER-TLV, and the tags pinvault reads from DE 55.
//!
//! ```
//! use emv::{Cvn, IssuerMasterKeys, Pan, Pin, Psn, ScriptContext, TdesKey};
//! let keys = IssuerMasterKeys {
//!     ac: TdesKey::new([0x11; 16]),
//!     smi: TdesKey::new([0x22; 16]),
//!     smc: TdesKey::new([0x33; 16]),
//! };
//! let de55 = [0x9F, 0x26, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x9F, 0x36, 0x02, 0x00, 0x1C];
//! let icc = emv::parse_icc_data(&de55)?;
//! let pan = Pan::new("5413330089010434").map_err(|_| "pan")?;
//! let ctx = ScriptContext {
//!     cvn: Cvn::parse("mastercard_16")?,
//!     keys: &keys,
//!     pan: &pan,
//!     psn: Psn::parse("01")?,
//!     atc: icc.atc,
//!     arqc: icc.arqc,
//! };
//! let command = ctx.change_pin(&Pin::new("1234").map_err(|_| "pin")?);
//! let script = emv::issuer_script([0, 0, 0, 1], &command);
//! assert_eq!(&script.as_bytes()[..2], &[0x72, 0x1E]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod cvn;
mod error;
pub mod icc;
pub mod kd;
mod key;
pub mod mac;
pub mod pin;
pub mod script;
pub mod sm;
pub mod tlv;

pub use cvn::Cvn;
pub use error::{Error, IccDataError, TlvError};
pub use icc::{IccData, ScriptOutcome, ScriptResult, parse_icc_data};
pub use kd::Psn;
pub use key::{IssuerMasterKeys, TdesKey};
pub use pinblock::{Pan, Pin};
pub use script::{IssuerScript, ScriptCommand, ScriptContext, issuer_script};
