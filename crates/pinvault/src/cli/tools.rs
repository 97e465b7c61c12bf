//! `pinvault pinblock encode|decode` and `pinvault kcv`: ISO 9564 tools for integrators.

use clap::{Args, Subcommand, ValueEnum};
use pinblock::{Format, KeyAlgorithm, Pan, Pin, ZoneKey};
use zeroize::Zeroizing;

use super::output::CliError;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// ISO 9564 format 0: 8 bytes, the PIN XORed with the PAN.
    #[value(name = "iso_0")]
    Iso0,
    /// Format 1: 8 bytes, random fill, no PAN.
    #[value(name = "iso_1")]
    Iso1,
    /// Format 3: 8 bytes, random fill, XORed with the PAN.
    #[value(name = "iso_3")]
    Iso3,
    /// Format 4: 16 bytes, AES only.
    #[value(name = "iso_4")]
    Iso4,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Iso0 => Format::Iso0,
            FormatArg::Iso1 => Format::Iso1,
            FormatArg::Iso3 => Format::Iso3,
            FormatArg::Iso4 => Format::Iso4,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyAlgorithmArg {
    /// Triple DES (16 or 24 bytes).
    Tdes,
    /// AES (16, 24 or 32 bytes).
    Aes,
}

impl From<KeyAlgorithmArg> for KeyAlgorithm {
    fn from(a: KeyAlgorithmArg) -> Self {
        match a {
            KeyAlgorithmArg::Tdes => KeyAlgorithm::Tdes,
            KeyAlgorithmArg::Aes => KeyAlgorithm::Aes,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PinblockCommand {
    /// Print the PIN block of a PIN, in hex: enciphered when a key is given, else
    /// the clear block (for iso_4, the plaintext PIN field).
    Encode(EncodeArgs),
    /// Print the PIN held in a PIN block.
    Decode(DecodeArgs),
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Key in hex: TDES 16 or 24 bytes, AES 16, 24 or 32 bytes.
    #[arg(long, value_name = "HEX")]
    key: Option<String>,
    /// Algorithm of --key: tdes by default; iso_4 always takes an AES key.
    #[arg(long, value_enum, value_name = "ALGORITHM", requires = "key")]
    key_algorithm: Option<KeyAlgorithmArg>,
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// The ISO 9564 format of the block.
    #[arg(long, value_enum)]
    format: FormatArg,
    /// The PIN: 4 to 12 digits.
    #[arg(long, value_name = "PIN")]
    pin: String,
    /// The PAN the block is bound to: 1 to 19 digits (not needed for iso_1).
    #[arg(long, value_name = "PAN")]
    pan: Option<String>,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The ISO 9564 format of the block.
    #[arg(long, value_enum)]
    format: FormatArg,
    /// The PIN block in hex (either case).
    #[arg(long, value_name = "HEX")]
    block: String,
    /// The PAN the block is bound to: 1 to 19 digits (not needed for iso_1).
    #[arg(long, value_name = "PAN")]
    pan: Option<String>,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct KcvArgs {
    /// Key in hex: TDES 16 or 24 bytes, AES 16, 24 or 32 bytes.
    #[arg(long, value_name = "HEX")]
    key: String,
    /// Algorithm of --key (the check value is TDES's or AES-CMAC's).
    #[arg(long, value_enum, default_value = "tdes", value_name = "ALGORITHM")]
    key_algorithm: KeyAlgorithmArg,
}

pub fn pinblock(cmd: PinblockCommand) -> Result<Zeroizing<String>, CliError> {
    match cmd {
        PinblockCommand::Encode(args) => encode(&args),
        PinblockCommand::Decode(args) => decode(&args),
    }
}

pub fn kcv(args: &KcvArgs) -> Result<Zeroizing<String>, CliError> {
    let key = ZoneKey::from_hex(args.key_algorithm.into(), &args.key)
        .map_err(|e| CliError::Refused(format!("invalid --key: {e}")))?;
    Ok(Zeroizing::new(key.kcv().to_string()))
}

fn encode(args: &EncodeArgs) -> Result<Zeroizing<String>, CliError> {
    let format = Format::from(args.format);
    let pin = Pin::new(&args.pin).map_err(|e| CliError::Refused(format!("invalid --pin: {e}")))?;
    let pan = pan_for(format, args.pan.as_deref())?;
    match zone_key(format, &args.key)? {
        Some(key) => Ok(Zeroizing::new(
            pinblock::encipher(format, &pin, &pan, &key, &mut rand::rng())?.to_hex(),
        )),
        None => Ok(pinblock::encode_clear(format, &pin, &pan, &mut rand::rng()).to_hex()),
    }
}

fn decode(args: &DecodeArgs) -> Result<Zeroizing<String>, CliError> {
    let format = Format::from(args.format);
    let pan = pan_for(format, args.pan.as_deref())?;
    let mut block = Zeroizing::new([0u8; 16]);
    let len = pinblock::hex::decode_into(&args.block, block.as_mut_slice())
        .map_err(|e| CliError::Refused(format!("invalid --block: {e}")))?;
    let block = block.get(..len).unwrap_or(&[]);
    let pin = match zone_key(format, &args.key)? {
        Some(key) => pinblock::decipher(format, block, &pan, &key)?,
        None => pinblock::decode_clear(format, block, &pan)?,
    };
    Ok(pin.expose())
}

fn pan_for(format: Format, pan: Option<&str>) -> Result<Pan, CliError> {
    match (pan, format.binds_pan()) {
        (Some(pan), _) => {
            Pan::new(pan).map_err(|e| CliError::Refused(format!("invalid --pan: {e}")))
        }
        // Format 1 binds no PAN; any PAN gives the same block.
        (None, false) => Ok(Pan::new("0")?),
        (None, true) => Err(CliError::Refused(format!("--pan is required for {format}"))),
    }
}

/// The key of --key: TDES unless --key-algorithm says otherwise; iso_4 is always AES.
fn zone_key(format: Format, args: &KeyArgs) -> Result<Option<ZoneKey>, CliError> {
    let Some(hex) = &args.key else {
        return Ok(None);
    };
    let algorithm = match (format, args.key_algorithm) {
        (_, Some(a)) => KeyAlgorithm::from(a),
        (Format::Iso4, None) => KeyAlgorithm::Aes,
        (_, None) => KeyAlgorithm::Tdes,
    };
    ZoneKey::from_hex(algorithm, hex)
        .map(Some)
        .map_err(|e| CliError::Refused(format!("invalid --key: {e}")))
}
