//! Issuer master keys for chip cards (API.md "Chip cards"): per program and
//! cryptogram version, three double-length TDES keys — AC (the application
//! cryptogram key, which the Visa chip PIN block is built with), SMI (secure
//! messaging for integrity) and SMC (for confidentiality). Loaded from clear
//! components like zone keys, stored wrapped by the master key with the set's
//! id, the key's part and its check value as associated data.

use pinblock::{KeyAlgorithm, SecretKey, ZoneKey};
use zeroize::Zeroizing;

use super::zone::{self, ImportError, ZoneAlgorithm};
use super::{KeyError, KeyProvider};

/// One of a set's three keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Ac,
    Smi,
    Smc,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Ac, Part::Smi, Part::Smc];

    pub fn as_str(self) -> &'static str {
        match self {
            Part::Ac => "ac",
            Part::Smi => "smi",
            Part::Smc => "smc",
        }
    }

    /// The TR-31 key usage of a key block holding this key: `E0` (EMV/chip
    /// issuer master key: application cryptograms), `E2` (secure messaging
    /// for integrity), `E1` (secure messaging for confidentiality).
    pub fn tr31_usage(self) -> &'static str {
        match self {
            Part::Ac => "E0",
            Part::Smi => "E2",
            Part::Smc => "E1",
        }
    }
}

/// Combines clear components (XOR) into a double-length TDES key, checked
/// against `expected_kcv` where given; the key and its check value.
pub fn combine(
    components: &[Zeroizing<String>],
    expected_kcv: Option<&str>,
) -> Result<(SecretKey, String), ImportError> {
    let (key, kcv) = zone::combine(ZoneAlgorithm::Tdes, components, expected_kcv)?;
    if key.len() != 16 {
        return Err(ImportError::Length {
            component: 1,
            expected: "32 hex digits (a double-length TDES key)",
        });
    }
    Ok((key, kcv))
}

fn aad(id: &str, part: Part, kcv: &str) -> Vec<u8> {
    format!("pinvault issuer key {id} {} {kcv}", part.as_str()).into_bytes()
}

/// Wraps one key of a set for storage under the master key.
pub fn wrap(
    provider: &dyn KeyProvider,
    id: &str,
    part: Part,
    kcv: &str,
    key: &SecretKey,
) -> Result<Vec<u8>, KeyError> {
    provider.wrap(key.expose(), &aad(id, part, kcv))
}

/// Unwraps one key of a set and checks it still has its check value.
pub fn unwrap(
    provider: &dyn KeyProvider,
    id: &str,
    part: Part,
    kcv: &str,
    wrapped: &[u8],
) -> Result<SecretKey, KeyError> {
    let bytes = provider.unwrap(wrapped, &aad(id, part, kcv))?;
    let bad = || KeyError::Integrity(format!("issuer key {id} {} is unusable", part.as_str()));
    let key = SecretKey::from_slice(&bytes).map_err(|_| bad())?;
    let check = ZoneKey::new(KeyAlgorithm::Tdes, &key).map_err(|_| bad())?;
    if key.len() != 16 || check.kcv().to_string() != kcv {
        return Err(bad());
    }
    Ok(key)
}

/// Re-wraps one stored key from one provider to another (migration); `None`
/// when `to` unwraps it already.
pub fn rewrap(
    from: &dyn KeyProvider,
    to: &dyn KeyProvider,
    id: &str,
    part: Part,
    kcv: &str,
    wrapped: &[u8],
) -> Result<Option<Vec<u8>>, KeyError> {
    super::rewrap_if_needed(from, to, &aad(id, part, kcv), wrapped)
}
