//! Zone keys unwrapped for PIN verification, held in memory with whom they
//! are granted to.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use pinblock::ZoneKey;

use crate::domain::zone_key::{Grants, Usage};

/// Who may use a zone key, as last read from the database.
#[derive(Debug, Clone)]
pub struct Access {
    pub usage: Usage,
    pub grants: Grants,
}

/// A cached key: the key, when it was unwrapped, its access and when that
/// was last read.
#[derive(Clone)]
pub struct Cached {
    pub key: Arc<ZoneKey>,
    pub access: Arc<Access>,
    unwrapped_at: Instant,
    pub checked_at: Instant,
}

/// Unwrapped zone keys by id. The key material never changes once imported;
/// an entry is dropped (zeroed) after the key cache TTL, as data keys are,
/// and unwrapped again on next use. Its grants can change: callers read them
/// again when `checked_at` is older than they accept.
#[derive(Default)]
pub struct ZoneKeyCache {
    keys: RwLock<HashMap<String, Cached>>,
}

impl ZoneKeyCache {
    /// Drops (and so zeroes) keys held longer than `ttl`.
    pub fn prune(&self, ttl: Option<Duration>) {
        if let Some(ttl) = ttl {
            self.keys
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|_, c| c.unwrapped_at.elapsed() < ttl);
        }
    }

    /// The key with this id, if it was unwrapped less than `ttl` ago.
    pub fn get(&self, id: &str, ttl: Option<Duration>) -> Option<Cached> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .filter(|c| ttl.is_none_or(|ttl| c.unwrapped_at.elapsed() < ttl))
            .cloned()
    }

    /// A key just unwrapped, with its access just read.
    pub fn insert(&self, id: String, key: Arc<ZoneKey>, access: Access) -> Cached {
        let now = Instant::now();
        let cached = Cached {
            key,
            access: Arc::new(access),
            unwrapped_at: now,
            checked_at: now,
        };
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, cached.clone());
        cached
    }

    /// Drops a key (its grants changed here).
    pub fn forget(&self, id: &str) {
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// A held key's access, read again just now.
    pub fn recheck(&self, id: &str, access: Access) {
        if let Some(c) = self
            .keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
        {
            c.access = Arc::new(access);
            c.checked_at = Instant::now();
        }
    }
}

impl std::fmt::Debug for ZoneKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ZoneKeyCache")
    }
}

debug_fields!(Cached: access);
