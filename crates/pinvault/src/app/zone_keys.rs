//! Zone PIN keys: imported from clear components for the programs they are
//! granted to, granted and revoked, and unwrapped for use by those programs
//! only (the rules are `domain::zone_key`).

use std::sync::Arc;

use pinblock::{SecretKey, ZoneKey};
use serde_json::json;
use zeroize::Zeroizing;

use super::keys::KEY_REFRESH;
use super::{App, ServiceError};
use crate::audit::Actor;
use crate::domain::ids::new_id;
use crate::domain::time::now;
use crate::domain::zone_key::{self as rules, Grants, Refusal, RevokeError, Usage};
use crate::keys::ZoneAlgorithm;
use crate::keys::tr31::{self, Tr31Origin};
use crate::keys::wrapped::{self, Wrapped};
use crate::keys::zone;
use crate::keys::zone_cache::Access;
use crate::store::{GrantChange, Store, WrappedKey, ZoneKeyRow};

/// A new zone key's or key block protection key's public facts.
#[derive(Debug, Clone)]
pub struct ImportedKey {
    pub id: String,
    pub kcv: String,
}

/// A new key as stored: a new id of `prefix`, `key` wrapped by the master key
/// as `kind` binds it (`Wrapped::zone`, `Wrapped::kbpk`), made now.
pub(super) fn new_wrapped_key<S: Store>(
    app: &App<S>,
    (prefix, kind): (
        &str,
        impl for<'k> Fn(&'k str, ZoneAlgorithm, &'k str) -> Wrapped<'k>,
    ),
    (name, algorithm, kcv): (&str, ZoneAlgorithm, String),
    key: &SecretKey,
) -> Result<WrappedKey, ZoneKeyAdminError> {
    let id = new_id(prefix);
    let wrapped = kind(&id, algorithm, &kcv).wrap(&*app.keys.provider(), key)?;
    let name = name.to_owned();
    Ok(WrappedKey {
        id,
        name,
        algorithm,
        kcv,
        wrapped,
        created_at: now(),
    })
}

/// Where an imported key comes from: clear components (XORed), or a TR-31
/// key block under a key block protection key.
#[derive(Debug, Clone, Copy)]
pub enum KeySource<'a> {
    Components(&'a [Zeroizing<String>]),
    Tr31 { kbpk_id: &'a str, block: &'a str },
}

/// What the operator gives for a key: its components or a TR-31 key block
/// (for an issuer key set's keys: usage `E0` for AC, `E2` for SMI, `E1` for
/// SMC), and the check value expected.
#[derive(Debug)]
pub struct KeyInput<'a> {
    pub source: KeySource<'a>,
    pub kcv: Option<&'a str>,
}

/// The message of a refused key block import, for the flag that gave it.
pub(super) fn refused_for(flag: &str) -> impl Fn(ZoneKeyAdminError) -> ZoneKeyAdminError + '_ {
    move |e| match e {
        ZoneKeyAdminError::Refused(m) => ZoneKeyAdminError::Refused(format!("{flag}: {m}")),
        other => other,
    }
}

/// A check of a key block's key refused: the message names the block, not
/// components.
pub(super) fn tr31_key_refused(flag: &str, e: zone::ImportError) -> ZoneKeyAdminError {
    ZoneKeyAdminError::Refused(match e {
        zone::ImportError::KcvMismatch { computed } => format!(
            "{flag}: key check value mismatch: the key in the key block has check value \
             {computed}; nothing was stored"
        ),
        other => format!("{flag}: {other}"),
    })
}

/// A zone key import, or a change of grants, refused or failed.
#[derive(Debug)]
pub enum ZoneKeyAdminError {
    /// Says why (a KCV that does not match, no such program or key).
    Refused(String),
    Service(ServiceError),
}

super::service_errors!(ZoneKeyAdminError);

super::shown_as_inner!(ZoneKeyAdminError: Refused, Service);

/// Why a program cannot use a zone key.
#[derive(Debug)]
pub enum ZoneKeyError {
    /// No such key, or not granted to the program: the same answer.
    NotFound,
    /// Granted, but of the other usage.
    WrongUsage(Usage),
    Service(ServiceError),
}

super::service_errors!(ZoneKeyError);

impl<S: Store> App<S> {
    /// Refuses a program that does not exist (a key imported for it).
    pub(super) async fn program_exists(&self, program_id: &str) -> Result<(), ZoneKeyAdminError> {
        match self.store.get_program(program_id).await? {
            Some(_) => Ok(()),
            None => Err(ZoneKeyAdminError::Refused(format!(
                "no program {program_id}"
            ))),
        }
    }

    /// Refuses any of `programs` that does not exist.
    async fn check_programs(&self, programs: &[String]) -> Result<(), ZoneKeyAdminError> {
        for p in programs {
            self.program_exists(p).await?;
        }
        Ok(())
    }

    /// Combines clear components into a zone key, or takes it from a TR-31
    /// key block (usage `P0`; its algorithm from the block, which must agree
    /// with `algorithm` where one is given), checks its KCV where one is
    /// given, and stores it wrapped by the master key, granted to `programs`.
    pub async fn import_zone_key(
        &self,
        name: &str,
        algorithm: Option<ZoneAlgorithm>,
        key: KeyInput<'_>,
        programs: &[String],
        usage: Usage,
    ) -> Result<ImportedKey, ZoneKeyAdminError> {
        if programs.is_empty() {
            return Err(ZoneKeyAdminError::Refused(
                "a zone key is granted to at least one program (--program)".into(),
            ));
        }
        self.check_programs(programs).await?;
        let expected_kcv = key.kcv;
        let (key, kcv, algorithm, tr31) = match key.source {
            KeySource::Components(components) => {
                let algorithm = algorithm.ok_or_else(|| {
                    ZoneKeyAdminError::Refused("--algorithm is required with --component".into())
                })?;
                let (key, kcv) = zone::combine(algorithm, components, expected_kcv)
                    .map_err(|e| ZoneKeyAdminError::Refused(e.to_string()))?;
                (key, kcv, algorithm, None)
            }
            KeySource::Tr31 { kbpk_id, block } => {
                let flag = "--tr31";
                let (key, header) = self
                    .unwrap_tr31(kbpk_id, block, &["P0"])
                    .await
                    .map_err(refused_for(flag))?;
                let found = tr31::zone_algorithm(&header, key.len())
                    .map_err(|m| ZoneKeyAdminError::Refused(format!("{flag}: {m}")))?;
                if let Some(given) = algorithm.filter(|a| *a != found) {
                    return Err(ZoneKeyAdminError::Refused(format!(
                        "{flag}: the key block's key is {} (algorithm {}, {} bytes), not {}",
                        found.as_str(),
                        header.algorithm(),
                        key.len(),
                        given.as_str()
                    )));
                }
                let kcv = zone::check_key(found, &key, expected_kcv)
                    .map_err(|e| tr31_key_refused(flag, e))?;
                (key, kcv, found, Some(Tr31Origin::new(kbpk_id, &header)))
            }
        };
        let row = new_wrapped_key(
            self,
            ("zpk_", |i, a, k| Wrapped::zone(i, a, k)),
            (name, algorithm, kcv),
            &key,
        )?;
        drop(key);
        let (id, kcv) = (row.id.clone(), row.kcv.clone());
        let grants = Grants::to(programs.iter().cloned());
        let mut details = json!({ "zone_key_id": id, "name": name, "algorithm": algorithm.as_str(),
                                  "kcv": kcv, "usage": usage.as_str(), "programs": grants_json(&grants) });
        if let (Some(origin), Some(map)) = (&tr31, details.as_object_mut()) {
            map.insert("tr31".into(), json!(origin));
        }
        let audit = Actor::operator().record("zone_key.imported", None, None, details);
        let row = ZoneKeyRow {
            key: row,
            usage,
            grants,
            tr31,
        };
        self.store.insert_zone_key(row, audit).await?;
        Ok(ImportedKey { id, kcv })
    }

    /// Grants a zone key to a program (`grant`) or revokes the grant; the
    /// grants after the change. Running servers apply it within
    /// [`KEY_REFRESH`].
    pub async fn change_zone_key_grant(
        &self,
        id: &str,
        program: &str,
        grant: bool,
    ) -> Result<Grants, ZoneKeyAdminError> {
        self.check_programs(&[program.to_owned()]).await?;
        let (key_id, program_id) = (id.to_owned(), program.to_owned());
        let audit = move |after: &Grants| {
            Actor::operator().record(
                if grant {
                    "zone_key.granted"
                } else {
                    "zone_key.revoked"
                },
                Some(&program_id),
                None,
                json!({ "zone_key_id": key_id, "programs": grants_json(after) }),
            )
        };
        match self
            .store
            .change_zone_key_grant(id, program, grant, now(), audit)
            .await?
        {
            GrantChange::NoKey => Err(ZoneKeyAdminError::Refused(format!("no zone key {id}"))),
            GrantChange::Refused(RevokeError::NotGranted) => Err(ZoneKeyAdminError::Refused(
                format!("zone key {id} is not granted to {program}"),
            )),
            GrantChange::Refused(RevokeError::GrantedToAll) => {
                Err(ZoneKeyAdminError::Refused(format!(
                    "zone key {id} was imported before grants and is usable by every program: \
                     grant it to the programs that use it first (the first grant ends \"all\")"
                )))
            }
            GrantChange::Done(after) => {
                self.zone_keys.forget(id);
                Ok(after)
            }
        }
    }

    /// A zone key `program` may use for `wanted`: unwrapped once and then held
    /// in memory; whom it is granted to is read again at most [`KEY_REFRESH`]
    /// after it was last read.
    pub async fn zone_key_for(
        &self,
        id: &str,
        program: &str,
        wanted: Usage,
    ) -> Result<Arc<ZoneKey>, ZoneKeyError> {
        let cached = self.zone_keys.get(id, self.keys.cache_ttl());
        let (key, access) = match cached {
            Some(c) if c.checked_at.elapsed() < KEY_REFRESH => (c.key, c.access),
            Some(c) => {
                let row = self
                    .store
                    .get_zone_key(id)
                    .await?
                    .ok_or(ZoneKeyError::NotFound)?;
                let access = Access {
                    usage: row.usage,
                    grants: row.grants,
                };
                self.zone_keys.recheck(id, access.clone());
                (c.key, Arc::new(access))
            }
            None => {
                let row = self
                    .store
                    .get_zone_key(id)
                    .await?
                    .ok_or(ZoneKeyError::NotFound)?;
                // Not granted: refused before the key is unwrapped.
                rules::check_use(&row.grants, row.usage, program, wanted)
                    .map_err(|r| refusal(r, row.usage))?;
                // The provider may be a token across a network: off the async threads.
                let provider = self.keys.provider();
                let (kid, algorithm, kcv, wrapped) = (
                    row.key.id.clone(),
                    row.key.algorithm,
                    row.key.kcv,
                    row.key.wrapped,
                );
                let key = tokio::task::spawn_blocking(move || {
                    wrapped::zone_key(&*provider, &kid, algorithm, &kcv, &wrapped)
                })
                .await
                .map_err(|e| crate::keys::KeyError::Provider(format!("key task failed: {e}")))??;
                let access = Access {
                    usage: row.usage,
                    grants: row.grants,
                };
                let c = self.zone_keys.insert(row.key.id, Arc::new(key), access);
                (c.key, c.access)
            }
        };
        rules::check_use(&access.grants, access.usage, program, wanted)
            .map_err(|r| refusal(r, access.usage))?;
        Ok(key)
    }

    /// Says loudly which zone keys every program may use (imported before
    /// grants): run when a server starts.
    pub async fn warn_zone_keys_for_all(&self) -> Result<(), ServiceError> {
        let store = &self.store;
        let keys = crate::store::every_page(
            |after| async move { store.list_zone_keys(100, after.as_deref()).await },
            |k: &ZoneKeyRow| k.key.id.clone(),
        )
        .await?;
        for k in keys.iter().filter(|k| k.grants == Grants::All) {
            tracing::warn!(
                zone_key_id = %k.key.id,
                name = %k.key.name,
                "zone key imported before grants: every program may use it until it is granted \
                 (`pinvault zone-keys grant {} --program PRG`)",
                k.key.id
            );
        }
        Ok(())
    }
}

fn refusal(r: Refusal, usage: Usage) -> ZoneKeyError {
    match r {
        Refusal::NotFound => ZoneKeyError::NotFound,
        Refusal::WrongUsage => ZoneKeyError::WrongUsage(usage),
    }
}

/// Grants as the command line and audit records show them: `"all"` or a list.
pub fn grants_json(g: &Grants) -> serde_json::Value {
    match g {
        Grants::All => json!("all"),
        Grants::Programs(list) => json!(list),
    }
}
