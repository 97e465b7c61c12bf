//! PIN verification keys for cards migrated with legacy verification data:
//! imported per program from clear components (the keys' rules are
//! `keys::wrapped`; the PVV and IBM 3624 arithmetic is `pinblock`).

use pinblock::SecretKey;
use pinblock::ibm3624::Ibm3624Params;
use serde_json::json;

use super::App;
use super::error::{AppError, AppResult};
use super::zone_keys::{
    ImportedKey, KeyInput, KeySource, ZoneKeyAdminError, refused_for, tr31_key_refused,
};
use crate::audit::Actor;
use crate::domain::ids::new_id;
use crate::domain::legacy::Method;
use crate::domain::time::now;
use crate::keys::wrapped::Wrapped;
use crate::keys::{ZoneAlgorithm, zone};
use crate::store::{PvkRow, Store, pvk_params_json};

pub const PVK_PREFIX: &str = "pvk_";

impl<S: Store> App<S> {
    /// Takes the key from its components (XORed) or from a TR-31 key block
    /// under the key block protection key `kbpk_id` (usage `V2` for a Visa
    /// PVK, `V1` for IBM 3624; the MAC, mode of use and exportability checked
    /// by [`App::unwrap_tr31`]; TDES, double or triple length), checks the
    /// check value where given, and stores the key wrapped by the master key
    /// for `program_id`. `params`: IBM 3624's (required for it, refused for a
    /// Visa PVK).
    pub async fn import_pvk(
        &self,
        program_id: &str,
        name: &str,
        method: Method,
        key: KeyInput<'_>,
        params: Option<Ibm3624Params>,
    ) -> Result<ImportedKey, ZoneKeyAdminError> {
        self.program_exists(program_id).await?;
        let expected_kcv = key.kcv;
        let (key, kcv, origin) = match key.source {
            KeySource::Components(components) => {
                let (key, kcv) = zone::combine(ZoneAlgorithm::Tdes, components, expected_kcv)
                    .map_err(|e| ZoneKeyAdminError::Refused(format!("--component: {e}")))?;
                (key, kcv, None)
            }
            KeySource::Tr31 { kbpk_id, block } => {
                let usage = match method {
                    Method::VisaPvv => "V2",
                    Method::Ibm3624 => "V1",
                };
                let (key, header) = self
                    .unwrap_tr31(kbpk_id, block, &[usage])
                    .await
                    .map_err(refused_for("--tr31"))?;
                if header.algorithm() != 'T' {
                    return Err(ZoneKeyAdminError::Refused(format!(
                        "--tr31: the key block holds a key of algorithm {}: a PIN verification key is TDES (T)",
                        header.algorithm()
                    )));
                }
                let kcv = zone::check_key(ZoneAlgorithm::Tdes, &key, expected_kcv)
                    .map_err(|e| tr31_key_refused("--tr31", e))?;
                let origin = crate::keys::tr31::Tr31Origin::new(kbpk_id, &header);
                (key, kcv, Some(origin))
            }
        };
        self.store_pvk(program_id, name, method, key, kcv, params, origin)
            .await
    }

    /// Stores a combined (or unwrapped) key.
    #[allow(clippy::too_many_arguments)]
    async fn store_pvk(
        &self,
        program_id: &str,
        name: &str,
        method: Method,
        key: SecretKey,
        kcv: String,
        params: Option<Ibm3624Params>,
        tr31: Option<crate::keys::tr31::Tr31Origin>,
    ) -> Result<ImportedKey, ZoneKeyAdminError> {
        let params = match (method, params) {
            (Method::Ibm3624, Some(p)) => Some(p),
            (Method::Ibm3624, None) => Some(Ibm3624Params::default()),
            (Method::VisaPvv, None) => None,
            (Method::VisaPvv, Some(_)) => {
                return Err(ZoneKeyAdminError::Refused(
                    "the IBM 3624 parameters are for --method ibm_3624 only".into(),
                ));
            }
        };
        let id = new_id(PVK_PREFIX);
        let provider = self.keys.provider();
        let wrapped = Wrapped::pvk(&id, &kcv).wrap(&*provider, &key)?;
        drop(key);
        let mut details = json!({ "pin_verification_key_id": id, "name": name,
            "method": method.as_str(), "kcv": kcv });
        if let Some(p) = &params {
            details["ibm_3624"] = pvk_params_json(p);
        }
        if let Some(o) = &tr31 {
            details["tr31"] = json!(o);
        }
        let audit = Actor::operator().record(
            "pin_verification_key.imported",
            Some(program_id),
            None,
            details,
        );
        let row = PvkRow {
            id: id.clone(),
            program_id: program_id.to_owned(),
            name: name.to_owned(),
            method,
            kcv: kcv.clone(),
            wrapped,
            params,
            tr31,
            created_at: now(),
        };
        self.store.insert_key(row, audit).await?;
        Ok(ImportedKey { id, kcv })
    }

    /// The program's PIN verification key `id` and the key itself, unwrapped.
    pub async fn pvk(&self, program_id: &str, id: &str) -> AppResult<(PvkRow, SecretKey)> {
        let row = self
            .store
            .get_key::<PvkRow>(Some(program_id), id)
            .await?
            .ok_or(AppError::NotFound("PIN verification key for this program"))?;
        let key = Wrapped::pvk(&row.id, &row.kcv)
            .unwrap(&*self.keys.provider(), &row.wrapped)
            .map_err(super::ServiceError::from)?;
        Ok((row, key))
    }
}
