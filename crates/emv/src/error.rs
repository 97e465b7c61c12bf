//! Errors. No variant carries a key byte, a PIN digit or a PAN digit.

use core::fmt;

use crate::tlv::Tag;

/// Something wrong with an input to the EMV cryptography.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A key that is not a double-length TDES key (16 bytes).
    KeyLength { found: usize },
    /// A PAN sequence number that is not two decimal digits.
    PanSequenceNumber,
    /// A CVN name other than the seven this crate knows.
    UnknownCvn,
    /// Command data longer than fits one command APDU with its MAC.
    CommandDataTooLong { found: usize, max: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::KeyLength { found } => {
                write!(f, "a double-length TDES key is 16 bytes, not {found}")
            }
            Error::PanSequenceNumber => f.write_str("a PAN sequence number is two decimal digits"),
            Error::UnknownCvn => f.write_str(
                "unknown CVN (visa_10, visa_18, visa_22, mastercard_16, mastercard_17, \
                 mastercard_20 or mastercard_21)",
            ),
            Error::CommandDataTooLong { found, max } => {
                write!(
                    f,
                    "command data of {found} bytes is over the {max} that fit an APDU"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// Malformed BER-TLV. `offset` is where, in bytes from the start of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlvError {
    /// The input ends inside a tag.
    TruncatedTag { offset: usize },
    /// A tag whose first byte is `00` or `FF` (padding, not a tag), or whose
    /// second byte is `80` (a leading zero in a multi-byte tag number).
    InvalidTag { offset: usize },
    /// A tag of more than three bytes (EMV uses up to two, ISO/IEC 7816-4 three).
    TagTooLong { offset: usize },
    /// The input ends inside a length.
    TruncatedLength { offset: usize },
    /// The indefinite length `80`, which EMV does not use.
    IndefiniteLength { offset: usize },
    /// A length of more than two bytes after `8x` (EMV lengths fit `82 xx xx`).
    LengthTooLong { offset: usize },
    /// A value that runs past the end of the input or of its template.
    ValueOverrun { offset: usize },
    /// Templates nested deeper than [`crate::tlv::MAX_DEPTH`].
    TooDeep { offset: usize },
    /// The same primitive tag twice in one template (or twice at the top level).
    DuplicateTag { tag: Tag, offset: usize },
    /// Encoding: a primitive value under a constructed tag or the reverse.
    ConstructedMismatch { tag: Tag },
    /// Encoding: a value or template longer than 65,535 bytes.
    ValueTooLong { tag: Tag },
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlvError::TruncatedTag { offset } => write!(f, "TLV ends inside a tag at {offset}"),
            TlvError::InvalidTag { offset } => write!(f, "invalid tag at {offset}"),
            TlvError::TagTooLong { offset } => write!(f, "tag longer than 3 bytes at {offset}"),
            TlvError::TruncatedLength { offset } => {
                write!(f, "TLV ends inside a length at {offset}")
            }
            TlvError::IndefiniteLength { offset } => {
                write!(f, "indefinite length at {offset}")
            }
            TlvError::LengthTooLong { offset } => {
                write!(f, "length field longer than 3 bytes at {offset}")
            }
            TlvError::ValueOverrun { offset } => {
                write!(f, "value at {offset} runs past the end of its data")
            }
            TlvError::TooDeep { offset } => write!(f, "templates nested too deep at {offset}"),
            TlvError::DuplicateTag { tag, offset } => {
                write!(f, "tag {tag} appears twice in one template (at {offset})")
            }
            TlvError::ConstructedMismatch { tag } => {
                write!(f, "tag {tag}: primitive and constructed values mixed up")
            }
            TlvError::ValueTooLong { tag } => write!(f, "tag {tag}: value over 65535 bytes"),
        }
    }
}

impl std::error::Error for TlvError {}

/// Why an ICC data field (ISO 8583 DE 55) cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IccDataError {
    /// Not well-formed BER-TLV.
    Tlv(TlvError),
    /// A required tag (9F26 ARQC, 9F36 ATC) is not at the top level.
    Missing { tag: Tag },
    /// A tag whose value has the wrong length (9F26 is 8 bytes, 9F36 2,
    /// 9F5B a multiple of 5).
    Length { tag: Tag, found: usize },
    /// An issuer script result whose high nibble is not 0, 1 or 2.
    ScriptResult { found: u8 },
}

impl From<TlvError> for IccDataError {
    fn from(e: TlvError) -> Self {
        IccDataError::Tlv(e)
    }
}

impl fmt::Display for IccDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IccDataError::Tlv(e) => write!(f, "malformed ICC data: {e}"),
            IccDataError::Missing { tag } => write!(f, "ICC data without tag {tag}"),
            IccDataError::Length { tag, found } => {
                write!(
                    f,
                    "tag {tag} with a value of the wrong length ({found} bytes)"
                )
            }
            IccDataError::ScriptResult { found } => {
                write!(f, "issuer script result {found:X} is not 0, 1 or 2")
            }
        }
    }
}

impl std::error::Error for IccDataError {}
