//! Zone PIN keys: imported from clear components, and unwrapped for use.

use std::sync::Arc;

use pinblock::ZoneKey;
use serde_json::json;
use zeroize::Zeroizing;

use super::verify::VerifyError;
use super::{App, ServiceError};
use crate::audit::Actor;
use crate::domain::ids::new_id;
use crate::domain::time::now;
use crate::keys::ZoneAlgorithm;
use crate::keys::zone::{self, ImportError};
use crate::store::{Store, ZoneKeyRow};

/// A new zone key's public facts.
#[derive(Debug, Clone)]
pub struct ImportedZoneKey {
    pub id: String,
    pub kcv: String,
}

#[derive(Debug)]
pub enum ImportZoneKeyError {
    Refused(ImportError),
    Service(ServiceError),
}

impl std::fmt::Display for ImportZoneKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportZoneKeyError::Refused(e) => e.fmt(f),
            ImportZoneKeyError::Service(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ImportZoneKeyError {}

impl<S: Store> App<S> {
    /// Combines clear components into a zone key, checks its KCV where one is
    /// given, and stores it wrapped by the master key.
    pub async fn import_zone_key(
        &self,
        name: &str,
        algorithm: ZoneAlgorithm,
        components: &[Zeroizing<String>],
        expected_kcv: Option<&str>,
    ) -> Result<ImportedZoneKey, ImportZoneKeyError> {
        let (key, kcv) = zone::combine(algorithm, components, expected_kcv)
            .map_err(ImportZoneKeyError::Refused)?;
        let id = new_id("zpk_");
        let wrapped = zone::wrap(&*self.keys.provider(), &id, algorithm, &kcv, &key)
            .map_err(|e| ImportZoneKeyError::Service(e.into()))?;
        drop(key);
        let audit = Actor::operator().record(
            "zone_key.imported",
            None,
            None,
            json!({ "zone_key_id": id, "name": name, "algorithm": algorithm.as_str(), "kcv": kcv }),
        );
        self.store
            .insert_zone_key(
                ZoneKeyRow {
                    id: id.clone(),
                    name: name.to_owned(),
                    algorithm,
                    kcv: kcv.clone(),
                    wrapped,
                    created_at: now(),
                },
                audit,
            )
            .await
            .map_err(|e| ImportZoneKeyError::Service(e.into()))?;
        Ok(ImportedZoneKey { id, kcv })
    }

    /// A zone key, unwrapped once and then held in memory.
    pub(super) async fn zone_key(&self, id: &str) -> Result<Arc<ZoneKey>, VerifyError> {
        if let Some(key) = self.zone_keys.get(id, self.keys.cache_ttl()) {
            return Ok(key);
        }
        let row = self
            .store
            .get_zone_key(id)
            .await?
            .ok_or(VerifyError::UnknownZoneKey)?;
        // The provider may be a token across a network: off the async threads.
        let provider = self.keys.provider();
        let (id, algorithm, kcv, wrapped) = (row.id.clone(), row.algorithm, row.kcv, row.wrapped);
        let key = tokio::task::spawn_blocking(move || {
            zone::unwrap(&*provider, &id, algorithm, &kcv, &wrapped)
        })
        .await
        .map_err(|e| crate::keys::KeyError::Provider(format!("key task failed: {e}")))??;
        let key = Arc::new(key);
        self.zone_keys.insert(row.id, key.clone());
        Ok(key)
    }
}
