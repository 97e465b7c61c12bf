use core::fmt;

use crate::{Format, KeyAlgorithm};

/// Everything that can be wrong with a PIN, a PAN, a key or a PIN block.
///
/// No variant carries a PIN digit, a key byte or a PAN digit, so an error can be
/// logged or shown without leaking a secret. (Callers that decipher blocks from
/// the outside should still answer every variant the same way, so that the
/// error does not become an oracle: see the service's `decryption_failed`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Input that should be hexadecimal is not (or has an odd number of digits).
    NotHex,
    /// A PIN block of the wrong length in bytes.
    BlockLength { expected: usize, found: usize },
    /// The control field (first nibble) does not name the expected format.
    ControlField { expected: u8, found: u8 },
    /// A PIN length outside ISO 9564's 4 to 12 digits.
    PinLength { found: usize },
    /// A PIN position that holds something other than a decimal digit.
    PinDigit,
    /// The fill after the PIN does not match the format (F for format 0,
    /// A to F for format 3, A for format 4).
    Fill,
    /// A format 0, 1 or 3 block enciphered under AES whose padding is not zero.
    Padding,
    /// A PAN outside 1 to 19 digits.
    PanLength { found: usize },
    /// A PAN that holds something other than decimal digits.
    PanDigit,
    /// A key of a length its algorithm does not have.
    KeyLength {
        algorithm: KeyAlgorithm,
        found: usize,
    },
    /// Key components of different lengths.
    ComponentLength,
    /// The format cannot be enciphered under this key algorithm (format 4 is AES only).
    KeyAlgorithmNotAllowed {
        format: Format,
        algorithm: KeyAlgorithm,
    },
    /// PCI PIN requirement 3-3 forbids this translation.
    TranslationNotAllowed { from: Format, to: Format },
    /// A format name other than `iso_0`, `iso_1`, `iso_3`, `iso_4`.
    UnknownFormat,
    /// A key algorithm name other than `tdes` or `aes`.
    UnknownKeyAlgorithm,
    /// A PIN verification key of a length its method does not take (`allowed`
    /// names the lengths in bytes).
    PvkLength { found: usize, allowed: &'static str },
    /// A PAN too short for a PIN verification method: the Visa PVV takes 11
    /// digits before the check digit, IBM 3624 its validation data window.
    PanTooShort { found: usize, needed: usize },
    /// A PIN verification key index other than 0 to 9.
    Pvki,
    /// A PIN with fewer digits than the IBM 3624 PIN check length.
    PinShorterThanCheck { found: usize, check: usize },
    /// IBM 3624 parameters out of range (the reason says which).
    Ibm3624Params(&'static str),
    /// A PVV or IBM 3624 offset to verify that is not `expected` decimal digits.
    VerificationValue { expected: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotHex => f.write_str("not an even number of hexadecimal digits"),
            Error::BlockLength { expected, found } => write!(
                f,
                "PIN block is {found} bytes long, this format and key need {expected}"
            ),
            Error::ControlField { expected, found } => write!(
                f,
                "control field is {found:X}, format {expected} needs {expected:X}"
            ),
            Error::PinLength { found } => {
                write!(f, "PIN length {found} is outside ISO 9564's 4 to 12 digits")
            }
            Error::PinDigit => f.write_str("PIN field holds a character that is not a digit"),
            Error::Fill => f.write_str("PIN block fill does not match its format"),
            Error::Padding => f.write_str("padding of the AES-enciphered block is not zero"),
            Error::PanLength { found } => {
                write!(f, "PAN has {found} digits, it must have 1 to 19")
            }
            Error::PanDigit => f.write_str("PAN holds a character that is not a digit"),
            Error::KeyLength { algorithm, found } => {
                let allowed = match algorithm {
                    KeyAlgorithm::Tdes => "16 or 24",
                    KeyAlgorithm::Aes => "16, 24 or 32",
                };
                write!(
                    f,
                    "{algorithm} key is {found} bytes long, it must be {allowed} bytes"
                )
            }
            Error::ComponentLength => f.write_str("key components differ in length"),
            Error::KeyAlgorithmNotAllowed { format, algorithm } => {
                write!(
                    f,
                    "format {format} cannot be enciphered under a {algorithm} key"
                )
            }
            Error::TranslationNotAllowed { from, to } => write!(
                f,
                "translation from {from} to {to} is not allowed (PCI PIN requirement 3-3)"
            ),
            Error::UnknownFormat => f.write_str("format must be one of iso_0, iso_1, iso_3, iso_4"),
            Error::UnknownKeyAlgorithm => f.write_str("key algorithm must be tdes or aes"),
            Error::PvkLength { found, allowed } => write!(
                f,
                "PIN verification key is {found} bytes long, it must be {allowed} bytes"
            ),
            Error::PanTooShort { found, needed } => write!(
                f,
                "PAN has {found} digits, this PIN verification method needs at least {needed}"
            ),
            Error::Pvki => f.write_str("PVKI must be one digit, 0 to 9"),
            Error::PinShorterThanCheck { found, check } => write!(
                f,
                "PIN has {found} digits, fewer than the IBM 3624 PIN check length {check}"
            ),
            Error::Ibm3624Params(reason) => write!(f, "IBM 3624 parameters: {reason}"),
            Error::VerificationValue { expected } => {
                write!(f, "verification value must be {expected} decimal digits")
            }
        }
    }
}

impl std::error::Error for Error {}
