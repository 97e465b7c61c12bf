//! PIN verification keys (API.md "Portfolio migration"): a program's Visa PVK
//! or IBM 3624 PIN verification key, double- or triple-length TDES, loaded
//! from clear components like zone keys and stored wrapped by the master key
//! with its id and check value as associated data.

use pinblock::{KeyAlgorithm, SecretKey, ZoneKey};
use zeroize::Zeroizing;

use super::zone::{self, ImportError, ZoneAlgorithm};
use super::{KeyError, KeyProvider};

/// Combines clear components (XOR) into a TDES key, checked against
/// `expected_kcv` where given; the key and its check value.
pub fn combine(
    components: &[Zeroizing<String>],
    expected_kcv: Option<&str>,
) -> Result<(SecretKey, String), ImportError> {
    zone::combine(ZoneAlgorithm::Tdes, components, expected_kcv)
}

fn aad(id: &str, kcv: &str) -> Vec<u8> {
    format!("pinvault pin verification key {id} {kcv}").into_bytes()
}

/// Wraps a key for storage under the master key.
pub fn wrap(
    provider: &dyn KeyProvider,
    id: &str,
    kcv: &str,
    key: &SecretKey,
) -> Result<Vec<u8>, KeyError> {
    provider.wrap(key.expose(), &aad(id, kcv))
}

/// Unwraps a key and checks it still has its check value.
pub fn unwrap(
    provider: &dyn KeyProvider,
    id: &str,
    kcv: &str,
    wrapped: &[u8],
) -> Result<SecretKey, KeyError> {
    let bytes = provider.unwrap(wrapped, &aad(id, kcv))?;
    let bad = || KeyError::Integrity(format!("PIN verification key {id} is unusable"));
    let key = SecretKey::from_slice(&bytes).map_err(|_| bad())?;
    let check = ZoneKey::new(KeyAlgorithm::Tdes, &key).map_err(|_| bad())?;
    if check.kcv().to_string() != kcv {
        return Err(bad());
    }
    Ok(key)
}

/// Re-wraps a stored key from one provider to another (migration); `None`
/// when `to` unwraps it already.
pub fn rewrap(
    from: &dyn KeyProvider,
    to: &dyn KeyProvider,
    id: &str,
    kcv: &str,
    wrapped: &[u8],
) -> Result<Option<Vec<u8>>, KeyError> {
    super::rewrap_if_needed(from, to, &aad(id, kcv), wrapped)
}
