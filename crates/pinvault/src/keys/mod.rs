//! Keys: the master key's provider, and the versioned data keys it wraps.
//!
//! The master key never encrypts data itself. It wraps data keys (AES-256-GCM,
//! the key's kind and version as associated data), which live wrapped in the
//! database. Three kinds:
//! - `pin`: AES-256, enciphers stored PINs as ISO 9564 format 4 blocks bound to
//!   the card's PAN;
//! - `pan`: AES-256-GCM, seals PANs (the card id as associated data) and other
//!   sealed records;
//! - `lookup`: HMAC-SHA256, the keyed hash by which a PAN is found;
//! - `transport`: an RSA key pair (PKCS#8) whose public half is published for
//!   PIN encryption (see [`transport`]).
//!
//! Rotation adds a version of each kind; rows name the version that protects
//! them, old versions stay readable, and `pinvault keys rotate` re-encrypts rows
//! until none uses an old version. Transport keys protect no stored row: an old
//! one keeps decrypting for a grace period after its successor is made.

pub mod aad;
pub mod config;
pub mod issuer;
mod keyfile;
mod keyring;
pub mod pkcs11;
pub mod tr31;
pub mod transport;
pub mod wrapped;
pub mod zone;
pub mod zone_cache;

pub use keyfile::{FILE_NAME as KEY_FILE_NAME, KeyFile};
pub use keyring::{DataKeyRow, KeyKind, Keyring};
pub use zone::ZoneAlgorithm;

use zeroize::Zeroizing;

/// Where the master key lives: a key file (`keyfile`), or a PKCS#11 token, an
/// HSM (`pkcs11`). Wrap and unwrap happen inside the provider, and the master key
/// never leaves it. The data directory's `keys.json` says which (`config`).
pub trait KeyProvider: Send + Sync + 'static {
    /// A short name for logs and `keys list` (`file`, `pkcs11`).
    fn name(&self) -> &'static str;
    /// Encrypts a data key under the master key, bound to `aad`.
    fn wrap(&self, key: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError>;
    /// Decrypts a wrapped data key; fails if it or `aad` was altered.
    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError>;
    /// Checks the master key is reachable now (readiness): a token that went
    /// away fails here.
    fn check(&self) -> Result<(), KeyError> {
        Ok(())
    }
}

#[derive(Debug)]
pub enum KeyError {
    /// The master key file or token is missing, unreadable or unsafe.
    Provider(String),
    /// A wrapped key or sealed value failed authentication.
    Integrity(String),
    /// A row names a key version that does not exist.
    UnknownVersion { kind: KeyKind, version: u32 },
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Provider(m) => write!(f, "key provider: {m}"),
            KeyError::Integrity(m) => write!(f, "integrity check failed: {m}"),
            KeyError::UnknownVersion { kind, version } => {
                write!(f, "no {} data key version {version}", kind.as_str())
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// Moves one key wrapped under `aad` from one master-key provider to another
/// (`keys migrate`): `None` when `to` unwraps it already, else it wrapped by `to`.
pub fn rewrap_if_needed(
    from: &dyn KeyProvider,
    to: &dyn KeyProvider,
    aad: &[u8],
    wrapped: &[u8],
) -> Result<Option<Vec<u8>>, KeyError> {
    if to.unwrap(wrapped, aad).is_ok() {
        return Ok(None);
    }
    let bytes = from.unwrap(wrapped, aad)?;
    to.wrap(&bytes, aad).map(Some)
}
