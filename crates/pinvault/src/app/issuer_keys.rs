//! Issuer master keys for chip cards: imported per program from clear
//! components or TR-31 key blocks (the rules of the keys are `keys::issuer`
//! and `keys::tr31`).

use serde_json::json;

use super::App;
use super::zone_keys::{KeyInput, KeySource, ZoneKeyAdminError, refused_for, tr31_key_refused};
use crate::audit::Actor;
use crate::domain::chip::Cvn;
use crate::domain::ids::new_id;
use crate::domain::time::now;
use crate::keys::issuer::{self, Part};
use crate::keys::tr31::{self, Tr31Origin};
use crate::keys::wrapped::Wrapped;
use crate::keys::{ZoneAlgorithm, zone};
use crate::store::{IssuerKeySetRow, Store};

pub const ISSUER_KEY_SET_PREFIX: &str = "iks_";

/// A new set's public facts: its id and the check values (AC, SMI, SMC).
#[derive(Debug, Clone)]
pub struct ImportedIssuerKeys {
    pub id: String,
    pub cvn: Cvn,
    pub kcv: [String; 3],
}

impl<S: Store> App<S> {
    /// Combines each key's components or takes it from its key block, checks
    /// each check value where given, and stores the set wrapped by the master
    /// key for `program_id`.
    pub async fn import_issuer_keys(
        &self,
        program_id: &str,
        name: &str,
        cvn: Cvn,
        keys: [KeyInput<'_>; 3],
    ) -> Result<ImportedIssuerKeys, ZoneKeyAdminError> {
        self.program_exists(program_id).await?;
        let id = new_id(ISSUER_KEY_SET_PREFIX);
        let provider = self.keys.provider();
        let mut kcv: [String; 3] = Default::default();
        let mut wrapped: [Vec<u8>; 3] = Default::default();
        let mut tr31: [Option<Tr31Origin>; 3] = Default::default();
        for (part, input) in Part::ALL.into_iter().zip(&keys) {
            let i = part as usize;
            let (key, check) = match input.source {
                KeySource::Components(components) => issuer::combine(components, input.kcv)
                    .map_err(|e| {
                        ZoneKeyAdminError::Refused(format!("--imk-{}: {e}", part.as_str()))
                    })?,
                KeySource::Tr31 { kbpk_id, block } => {
                    let flag = format!("--imk-{}-tr31", part.as_str());
                    let (key, header) = self
                        .unwrap_tr31(kbpk_id, block, &[part.tr31_usage()])
                        .await
                        .map_err(refused_for(&flag))?;
                    tr31::double_length_tdes(&header, key.len())
                        .map_err(|m| ZoneKeyAdminError::Refused(format!("{flag}: {m}")))?;
                    let check = zone::check_key(ZoneAlgorithm::Tdes, &key, input.kcv)
                        .map_err(|e| tr31_key_refused(&flag, e))?;
                    tr31[i] = Some(Tr31Origin::new(kbpk_id, &header));
                    (key, check)
                }
            };
            wrapped[i] = Wrapped::issuer(&id, part, &check).wrap(&*provider, &key)?;
            kcv[i] = check;
        }
        let mut details = json!({ "issuer_key_set_id": id, "name": name, "cvn": cvn.as_str(),
                                  "kcv": { "ac": kcv[0], "smi": kcv[1], "smc": kcv[2] } });
        if let (true, Some(map)) = (tr31.iter().any(Option::is_some), details.as_object_mut()) {
            map.insert("tr31".into(), tr31_json(&tr31));
        }
        let audit =
            Actor::operator().record("issuer_keys.imported", Some(program_id), None, details);
        let row = IssuerKeySetRow {
            id: id.clone(),
            program_id: program_id.to_owned(),
            name: name.to_owned(),
            cvn,
            kcv: kcv.clone(),
            wrapped,
            created_at: now(),
            tr31,
        };
        self.store.insert_key(row, audit).await?;
        Ok(ImportedIssuerKeys { id, cvn, kcv })
    }
}

/// A set's check values as the command line and the API show them.
pub fn kcv_json(kcv: &[String; 3]) -> serde_json::Value {
    json!({ "ac": kcv[0], "smi": kcv[1], "smc": kcv[2] })
}

/// Each key's TR-31 origin (`null`: loaded from components), as the command
/// line and the audit trail show them.
pub fn tr31_json(tr31: &[Option<Tr31Origin>; 3]) -> serde_json::Value {
    json!({ "ac": tr31[0], "smi": tr31[1], "smc": tr31[2] })
}
