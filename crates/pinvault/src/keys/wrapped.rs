//! Keys the master key wraps for storage: zone keys, key block protection keys
//! (the keys TR-31 blocks arrive under, operator-level), PIN verification keys
//! (a program's Visa PVK or IBM 3624 key) and issuer master keys (a program's
//! AC, SMI and SMC keys for chip cards). What a key is, its kind, id, algorithm
//! or part and check value, is its wrapping's associated data: a wrapped key
//! copied to another row does not unwrap, and an unwrapped key is checked again
//! against its length and check value before use.

use pinblock::{SecretKey, ZoneKey};

use super::issuer::Part;
use super::zone::ZoneAlgorithm;
use super::{KeyError, KeyProvider};

/// A stored key's description, as bound to its wrapping.
#[derive(Debug, Clone, Copy)]
pub struct Wrapped<'a> {
    kind: &'static str,
    id: &'a str,
    /// The algorithm's or the part's name, where the kind has one in its
    /// associated data.
    detail: Option<&'static str>,
    algorithm: ZoneAlgorithm,
    /// A key length the kind requires beyond its algorithm's, in bytes.
    length: Option<usize>,
    kcv: &'a str,
}

impl<'a> Wrapped<'a> {
    pub fn zone(id: &'a str, algorithm: ZoneAlgorithm, kcv: &'a str) -> Self {
        Self::of("zone key", id, Some(algorithm.as_str()), algorithm, kcv)
    }

    pub fn kbpk(id: &'a str, algorithm: ZoneAlgorithm, kcv: &'a str) -> Self {
        let detail = Some(algorithm.as_str());
        Self::of("key block protection key", id, detail, algorithm, kcv)
    }

    /// A PIN verification key: double- or triple-length TDES.
    pub fn pvk(id: &'a str, kcv: &'a str) -> Self {
        Self::of("pin verification key", id, None, ZoneAlgorithm::Tdes, kcv)
    }

    /// One key of an issuer key set: double-length TDES.
    pub fn issuer(id: &'a str, part: Part, kcv: &'a str) -> Self {
        Wrapped {
            length: Some(16),
            ..Self::of(
                "issuer key",
                id,
                Some(part.as_str()),
                ZoneAlgorithm::Tdes,
                kcv,
            )
        }
    }

    fn of(
        kind: &'static str,
        id: &'a str,
        detail: Option<&'static str>,
        algorithm: ZoneAlgorithm,
        kcv: &'a str,
    ) -> Self {
        Wrapped {
            kind,
            id,
            detail,
            algorithm,
            length: None,
            kcv,
        }
    }

    fn aad(&self) -> Vec<u8> {
        let (kind, id, kcv) = (self.kind, self.id, self.kcv);
        match self.detail {
            Some(detail) => format!("pinvault {kind} {id} {detail} {kcv}"),
            None => format!("pinvault {kind} {id} {kcv}"),
        }
        .into_bytes()
    }

    /// The key wrapped for storage under the master key.
    pub fn wrap(&self, provider: &dyn KeyProvider, key: &SecretKey) -> Result<Vec<u8>, KeyError> {
        provider.wrap(key.expose(), &self.aad())
    }

    /// The stored key, checked: its length and check value are still this
    /// description's.
    pub fn unwrap(
        &self,
        provider: &dyn KeyProvider,
        wrapped: &[u8],
    ) -> Result<SecretKey, KeyError> {
        let bytes = provider.unwrap(wrapped, &self.aad())?;
        let unusable = || {
            let detail = self.detail.map_or(String::new(), |d| format!(" ({d})"));
            KeyError::Integrity(format!("{} {}{detail} is unusable", self.kind, self.id))
        };
        let key = SecretKey::from_slice(&bytes).map_err(|_| unusable())?;
        let fits = self.length.is_none_or(|n| key.len() == n) && self.algorithm.fits(key.len());
        if !fits {
            return Err(unusable());
        }
        let zone = ZoneKey::new(self.algorithm.block_algorithm(), &key).map_err(|_| unusable())?;
        if zone.kcv().to_string() != self.kcv {
            return Err(unusable());
        }
        Ok(key)
    }

    /// Moves the stored key from one master-key provider to another (`keys
    /// migrate`): `None` when `to` unwraps it already, else it wrapped by `to`.
    pub fn rewrap(
        &self,
        from: &dyn KeyProvider,
        to: &dyn KeyProvider,
        wrapped: &[u8],
    ) -> Result<Option<Vec<u8>>, KeyError> {
        super::rewrap_if_needed(from, to, &self.aad(), wrapped)
    }
}

/// A stored zone key, unwrapped and checked, ready for PIN blocks.
pub fn zone_key(
    provider: &dyn KeyProvider,
    id: &str,
    algorithm: ZoneAlgorithm,
    kcv: &str,
    wrapped: &[u8],
) -> Result<ZoneKey, KeyError> {
    let secret = Wrapped::zone(id, algorithm, kcv).unwrap(provider, wrapped)?;
    ZoneKey::new(algorithm.block_algorithm(), &secret)
        .map_err(|_| KeyError::Integrity(format!("zone key {id} is unusable")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_associated_data_of_each_kind_is_what_stored_keys_were_wrapped_with() {
        let t = ZoneAlgorithm::Tdes;
        let cases = [
            (
                Wrapped::zone("zpk_1", t, "08D7B4"),
                "pinvault zone key zpk_1 tdes 08D7B4",
            ),
            (
                Wrapped::kbpk("kbpk_1", ZoneAlgorithm::Aes256, "0A1B2C"),
                "pinvault key block protection key kbpk_1 aes256 0A1B2C",
            ),
            (
                Wrapped::pvk("pvk_1", "08D7B4"),
                "pinvault pin verification key pvk_1 08D7B4",
            ),
            (
                Wrapped::issuer("iks_1", Part::Smi, "08D7B4"),
                "pinvault issuer key iks_1 smi 08D7B4",
            ),
        ];
        for (wrapped, aad) in cases {
            assert_eq!(String::from_utf8(wrapped.aad()).unwrap(), aad);
        }
    }
}
