//! Key block protection keys and the keys that arrive under them as TR-31
//! key blocks (API.md "Key exchange"): importing a KBPK from clear components,
//! and [`App::unwrap_tr31`], which every import of a key from a key block
//! (`zone-keys`, `issuer-keys`, `pin-verification-keys`) goes through. The
//! rules a block must meet are `keys::tr31`.

use pinblock::SecretKey;
use serde_json::json;
use zeroize::Zeroizing;

use super::App;
use super::zone_keys::{ImportedKey, ZoneKeyAdminError, new_wrapped_key};
use crate::audit::Actor;
use crate::keys::wrapped::Wrapped;
use crate::keys::{ZoneAlgorithm, tr31, zone};
use crate::store::{KbpkRow, Store};

pub const KBPK_PREFIX: &str = "kbpk_";

impl<S: Store> App<S> {
    /// Combines clear components (XOR) into a key block protection key of
    /// `algorithm` (TDES double or triple length, or AES), checks its check
    /// value where one is given, and stores it wrapped by the master key.
    /// Audit record `kbpk.imported`.
    pub async fn import_kbpk(
        &self,
        name: &str,
        algorithm: ZoneAlgorithm,
        components: &[Zeroizing<String>],
        expected_kcv: Option<&str>,
    ) -> Result<ImportedKey, ZoneKeyAdminError> {
        let (key, kcv) = zone::combine(algorithm, components, expected_kcv)
            .map_err(|e| ZoneKeyAdminError::Refused(e.to_string()))?;
        let row = new_wrapped_key(
            self,
            (KBPK_PREFIX, |i, a, k| Wrapped::kbpk(i, a, k)),
            (name, algorithm, kcv),
            &key,
        )?;
        drop(key);
        let (id, kcv) = (row.id.clone(), row.kcv.clone());
        let audit = Actor::operator().record(
            "kbpk.imported",
            None,
            None,
            json!({ "kbpk_id": id, "name": name, "algorithm": algorithm.as_str(), "kcv": kcv }),
        );
        self.store.insert_key(row, audit).await?;
        Ok(ImportedKey { id, kcv })
    }

    /// Takes the key out of a TR-31 key block: unwraps the key block
    /// protection key `kbpk_id` from the master key, opens `block` under it
    /// (the MAC is checked before anything of the block is read), and checks
    /// the block's key usage is one of `wanted_usages` (`["P0"]` for a zone
    /// key, `["E0"]` for IMK-AC, `["V2"]` for a Visa PVK…), its mode of use
    /// fits that usage (`keys::tr31::modes_of_use`), its exportability is E, N
    /// or S and it holds no key component. Returns the key and the block's
    /// header; keep `keys::tr31::Tr31Origin::new(kbpk_id, &header)` with the
    /// key. The caller checks the key's algorithm and length
    /// (`keys::tr31::zone_algorithm`, `keys::tr31::double_length_tdes`) and its
    /// check value. A refusal says why and never holds key material: an
    /// unknown KBPK, a block that fails its MAC, a usage or mode that does not
    /// fit, a KBPK of the other algorithm than the block's version needs.
    pub async fn unwrap_tr31(
        &self,
        kbpk_id: &str,
        block: &str,
        wanted_usages: &[&str],
    ) -> Result<(SecretKey, keyblock::Header), ZoneKeyAdminError> {
        let row = self
            .store
            .get_key::<KbpkRow>(None, kbpk_id)
            .await?
            .ok_or_else(|| {
                ZoneKeyAdminError::Refused(format!("no key block protection key {kbpk_id}"))
            })?;
        let provider = self.keys.provider();
        let key =
            Wrapped::kbpk(&row.id, row.algorithm, &row.kcv).unwrap(&*provider, &row.wrapped)?;
        tr31::open(row.algorithm, &key, block, wanted_usages).map_err(ZoneKeyAdminError::Refused)
    }
}
