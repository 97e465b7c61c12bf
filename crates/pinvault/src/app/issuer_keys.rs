//! Issuer master keys for chip cards: imported per program from clear
//! components (the rules of the keys are `keys::issuer`).

use serde_json::json;
use zeroize::Zeroizing;

use super::App;
use super::zone_keys::ZoneKeyAdminError;
use crate::audit::Actor;
use crate::domain::chip::Cvn;
use crate::domain::ids::new_id;
use crate::domain::time::now;
use crate::keys::issuer::{self, Part};
use crate::store::{IssuerKeySetRow, Store};

pub const ISSUER_KEY_SET_PREFIX: &str = "iks_";

/// What the operator gives for one of a set's keys.
#[derive(Debug)]
pub struct KeyInput<'a> {
    pub components: &'a [Zeroizing<String>],
    pub kcv: Option<&'a str>,
}

/// A new set's public facts: its id and the check values (AC, SMI, SMC).
#[derive(Debug, Clone)]
pub struct ImportedIssuerKeys {
    pub id: String,
    pub cvn: Cvn,
    pub kcv: [String; 3],
}

impl<S: Store> App<S> {
    /// Combines each key's components, checks each check value where given,
    /// and stores the set wrapped by the master key for `program_id`.
    pub async fn import_issuer_keys(
        &self,
        program_id: &str,
        name: &str,
        cvn: Cvn,
        keys: [KeyInput<'_>; 3],
    ) -> Result<ImportedIssuerKeys, ZoneKeyAdminError> {
        if self.store.get_program(program_id).await?.is_none() {
            return Err(ZoneKeyAdminError::Refused(format!(
                "no program {program_id}"
            )));
        }
        let id = new_id(ISSUER_KEY_SET_PREFIX);
        let provider = self.keys.provider();
        let mut kcv: [String; 3] = Default::default();
        let mut wrapped: [Vec<u8>; 3] = Default::default();
        for (part, input) in Part::ALL.into_iter().zip(&keys) {
            let i = part as usize;
            let (key, check) = issuer::combine(input.components, input.kcv)
                .map_err(|e| ZoneKeyAdminError::Refused(format!("--imk-{}: {e}", part.as_str())))?;
            wrapped[i] = issuer::wrap(&*provider, &id, part, &check, &key)?;
            kcv[i] = check;
        }
        let audit = Actor::operator().record(
            "issuer_keys.imported",
            Some(program_id),
            None,
            json!({ "issuer_key_set_id": id, "name": name, "cvn": cvn.as_str(),
                    "kcv": { "ac": kcv[0], "smi": kcv[1], "smc": kcv[2] } }),
        );
        let row = IssuerKeySetRow {
            id: id.clone(),
            program_id: program_id.to_owned(),
            name: name.to_owned(),
            cvn,
            kcv: kcv.clone(),
            wrapped,
            created_at: now(),
        };
        self.store.insert_issuer_key_set(row, audit).await?;
        Ok(ImportedIssuerKeys { id, cvn, kcv })
    }
}

/// A set's check values as the command line and the API show them.
pub fn kcv_json(kcv: &[String; 3]) -> serde_json::Value {
    json!({ "ac": kcv[0], "smi": kcv[1], "smc": kcv[2] })
}
