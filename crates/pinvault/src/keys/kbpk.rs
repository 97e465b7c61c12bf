//! Key block protection keys (KBPKs): the keys TR-31 key blocks arrive under
//! from networks, bureaus and other processors (API.md "Key exchange"). The
//! operator loads them from clear components like zone keys (TDES double or
//! triple length, AES-128, -192 or -256); they are stored wrapped by the master
//! key with the key's id, algorithm and check value as associated data, are
//! operator-level (no program's), and are used only to unwrap key blocks
//! (`keys::tr31`).

use pinblock::SecretKey;

use super::zone::ZoneAlgorithm;
use super::{KeyError, KeyProvider};

fn aad(id: &str, algorithm: ZoneAlgorithm, kcv: &str) -> Vec<u8> {
    format!(
        "pinvault key block protection key {id} {} {kcv}",
        algorithm.as_str()
    )
    .into_bytes()
}

/// Wraps a KBPK for storage under the master key.
pub fn wrap(
    provider: &dyn KeyProvider,
    id: &str,
    algorithm: ZoneAlgorithm,
    kcv: &str,
    key: &SecretKey,
) -> Result<Vec<u8>, KeyError> {
    provider.wrap(key.expose(), &aad(id, algorithm, kcv))
}

/// Unwraps a stored KBPK and checks it still has its length and check value.
pub fn unwrap(
    provider: &dyn KeyProvider,
    id: &str,
    algorithm: ZoneAlgorithm,
    kcv: &str,
    wrapped: &[u8],
) -> Result<SecretKey, KeyError> {
    let bytes = provider.unwrap(wrapped, &aad(id, algorithm, kcv))?;
    let bad = || KeyError::Integrity(format!("key block protection key {id} is unusable"));
    let key = SecretKey::from_slice(&bytes).map_err(|_| bad())?;
    match super::zone::check_key(algorithm, &key, Some(kcv)) {
        Ok(_) => Ok(key),
        Err(_) => Err(bad()),
    }
}

/// Re-wraps a stored KBPK from one provider to another (migration); `None`
/// when `to` unwraps it already.
pub fn rewrap(
    from: &dyn KeyProvider,
    to: &dyn KeyProvider,
    id: &str,
    algorithm: ZoneAlgorithm,
    kcv: &str,
    wrapped: &[u8],
) -> Result<Option<Vec<u8>>, KeyError> {
    super::rewrap_if_needed(from, to, &aad(id, algorithm, kcv), wrapped)
}
