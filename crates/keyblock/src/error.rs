use core::fmt;

/// Everything that can be wrong with a key block, a key block protection key or a
/// key to wrap.
///
/// No variant carries key material, a MAC or any byte of the payload, so an error
/// can be logged or shown as it is. A block that fails its MAC says only
/// [`Tr31Error::BadMac`], whatever in it was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tr31Error {
    /// A character outside printable ASCII.
    NotAscii,
    /// A version other than B, C or D (A is deprecated and not read).
    UnsupportedVersion(char),
    /// The length field does not give the block's length.
    Length { declared: usize, actual: usize },
    /// A key block protection key of a length the version does not take.
    KbpkLength { version: char, found: usize },
    /// The block's structure is wrong; the reason says where.
    Malformed(&'static str),
    /// The MAC does not match: the block was changed, or the KBPK is not the one
    /// it was made under.
    BadMac,
    /// The MAC matched but the key length field does not fit the payload (the
    /// sender made a bad block).
    KeyLength,
    /// A key to wrap that is empty or longer than the KBPK protecting it.
    WrapKeyLength { found: usize, kbpk: usize },
}

impl fmt::Display for Tr31Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tr31Error::NotAscii => {
                f.write_str("key block holds a character outside printable ASCII")
            }
            Tr31Error::UnsupportedVersion(v) => write!(
                f,
                "key block version {:?} is not supported (B, C and D are)",
                v
            ),
            Tr31Error::Length { declared, actual } => write!(
                f,
                "key block length field says {declared} characters, the block has {actual}"
            ),
            Tr31Error::KbpkLength { version, found } => {
                let allowed = match version {
                    'D' => "16, 24 or 32 (AES)",
                    _ => "16 or 24 (TDES)",
                };
                write!(
                    f,
                    "key block protection key is {found} bytes long, version {version} needs {allowed}"
                )
            }
            Tr31Error::Malformed(reason) => write!(f, "malformed key block: {reason}"),
            Tr31Error::BadMac => f.write_str(
                "key block MAC does not match (the block was altered or the KBPK is not its own)",
            ),
            Tr31Error::KeyLength => {
                f.write_str("key block key length field does not fit its payload")
            }
            Tr31Error::WrapKeyLength { found, kbpk } => write!(
                f,
                "a key of {found} bytes cannot be wrapped under a {kbpk}-byte KBPK (1 to {kbpk} bytes)"
            ),
        }
    }
}

impl std::error::Error for Tr31Error {}
