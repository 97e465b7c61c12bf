//! Zone keys unwrapped for PIN verification, held in memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use pinblock::ZoneKey;

/// Unwrapped zone keys by id, with when they were unwrapped. Zone keys never
/// change once imported; an entry is dropped (zeroed) after the key cache TTL,
/// as data keys are, and unwrapped again on next use.
#[derive(Default)]
pub struct ZoneKeyCache {
    keys: RwLock<HashMap<String, (Arc<ZoneKey>, Instant)>>,
}

impl ZoneKeyCache {
    /// Drops (and so zeroes) keys held longer than `ttl`.
    pub fn prune(&self, ttl: Option<Duration>) {
        if let Some(ttl) = ttl {
            self.keys
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|_, (_, at)| at.elapsed() < ttl);
        }
    }
}

impl std::fmt::Debug for ZoneKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ZoneKeyCache")
    }
}

impl ZoneKeyCache {
    /// The key with this id, if it was unwrapped less than `ttl` ago.
    pub fn get(&self, id: &str, ttl: Option<Duration>) -> Option<Arc<ZoneKey>> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .filter(|(_, at)| ttl.is_none_or(|ttl| at.elapsed() < ttl))
            .map(|(k, _)| k.clone())
    }

    pub fn insert(&self, id: String, key: Arc<ZoneKey>) {
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (key, Instant::now()));
    }
}
