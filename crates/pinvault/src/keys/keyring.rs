//! Unwrapped data keys, by kind and version, held in memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, RandomizedNonceKey};
use aws_lc_rs::hmac;
use pinblock::{Format, KeyAlgorithm, Pan, Pin, SecretKey, ZoneKey};
use rand::RngCore;
use zeroize::Zeroizing;

use super::keyfile::{open, seal};
use super::transport::{TransportBits, TransportKey, generate_pkcs8};
use super::{KeyError, KeyProvider};
use crate::domain::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    Pin,
    Pan,
    Lookup,
    /// An RSA key pair whose public half is published for PIN encryption.
    Transport,
    /// Seals webhook endpoints' signing secrets.
    Webhook,
    /// Seals the responses idempotency records replay (they hold a card's
    /// last four digits and, for a created card, its control token).
    Idempotency,
}

impl KeyKind {
    pub const ALL: [KeyKind; 6] = [
        KeyKind::Pin,
        KeyKind::Pan,
        KeyKind::Lookup,
        KeyKind::Transport,
        KeyKind::Webhook,
        KeyKind::Idempotency,
    ];
    /// The kinds that protect stored data (rotation re-encrypts under them).
    pub const STORAGE: [KeyKind; 5] = [
        KeyKind::Pin,
        KeyKind::Pan,
        KeyKind::Lookup,
        KeyKind::Webhook,
        KeyKind::Idempotency,
    ];
    /// The kinds whose keys seal bytes (AES-256-GCM): [`Keyring::seal`].
    pub const SEALING: [KeyKind; 3] = [KeyKind::Pan, KeyKind::Webhook, KeyKind::Idempotency];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Pin => "pin",
            KeyKind::Pan => "pan",
            KeyKind::Lookup => "lookup",
            KeyKind::Transport => "transport",
            KeyKind::Webhook => "webhook",
            KeyKind::Idempotency => "idempotency",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        KeyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A data key as stored: wrapped by the master key.
#[derive(Debug, Clone)]
pub struct DataKeyRow {
    pub kind: KeyKind,
    pub version: u32,
    pub wrapped: Vec<u8>,
    pub created_at: Timestamp,
}

#[allow(clippy::large_enum_variant)] // one per key version, behind an Arc
enum DataKey {
    Pin(Box<ZoneKey>),
    /// AES-256-GCM, for the kinds in [`KeyKind::SEALING`].
    Sealing(RandomizedNonceKey),
    Lookup(hmac::Key),
    Transport(Arc<TransportKey>),
}

#[derive(Default)]
struct State {
    /// Unwrapped keys and when they were unwrapped.
    keys: HashMap<(KeyKind, u32), (Arc<DataKey>, Instant)>,
    current: HashMap<KeyKind, u32>,
}

pub struct Keyring {
    provider: RwLock<Arc<dyn KeyProvider>>,
    state: RwLock<State>,
    /// How long an unwrapped key is held before it is unwrapped again by the
    /// provider (and dropped, zeroed, if the provider cannot). `None`: for the
    /// life of the process.
    cache_ttl: Option<Duration>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("provider", &self.provider_name())
            .finish_non_exhaustive()
    }
}

fn aad(kind: KeyKind, version: u32) -> Vec<u8> {
    format!("pinvault data key {} v{version}", kind.as_str()).into_bytes()
}

impl Keyring {
    pub fn new(provider: Arc<dyn KeyProvider>) -> Self {
        Self::with_cache_ttl(provider, None)
    }

    pub fn with_cache_ttl(provider: Arc<dyn KeyProvider>, cache_ttl: Option<Duration>) -> Self {
        Keyring {
            provider: RwLock::new(provider),
            state: RwLock::new(State::default()),
            cache_ttl,
        }
    }

    pub fn provider_name(&self) -> &'static str {
        self.provider().name()
    }

    /// The master key's provider (zone keys are wrapped by it directly).
    pub fn provider(&self) -> Arc<dyn KeyProvider> {
        self.provider
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Switches to another provider (after `pinvault keys migrate`). Keys
    /// already unwrapped stay; new ones are unwrapped by `provider`.
    pub fn set_provider(&self, provider: Arc<dyn KeyProvider>) {
        *self.provider.write().unwrap_or_else(|p| p.into_inner()) = provider;
    }

    pub fn cache_ttl(&self) -> Option<Duration> {
        self.cache_ttl
    }

    /// A new random data key of `kind`, wrapped for storage.
    pub fn new_row(
        &self,
        kind: KeyKind,
        version: u32,
        now: Timestamp,
    ) -> Result<DataKeyRow, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut_slice());
        let wrapped = self
            .provider()
            .wrap(bytes.as_slice(), &aad(kind, version))?;
        Ok(DataKeyRow {
            kind,
            version,
            wrapped,
            created_at: now,
        })
    }

    /// A new transport key pair (RSA, PKCS#8), wrapped for storage. Slow: call
    /// it off the async threads.
    pub fn new_transport_row(
        &self,
        bits: TransportBits,
        version: u32,
        now: Timestamp,
    ) -> Result<DataKeyRow, KeyError> {
        let pkcs8 = generate_pkcs8(bits)?;
        let kind = KeyKind::Transport;
        let wrapped = self.provider().wrap(&pkcs8, &aad(kind, version))?;
        Ok(DataKeyRow {
            kind,
            version,
            wrapped,
            created_at: now,
        })
    }

    /// Unwraps the rows not yet held (or held longer than the cache TTL), and
    /// makes the highest version of each kind the current one. Rows are
    /// unwrapped before the lock is taken. A key past its TTL that cannot be
    /// unwrapped again is dropped (and zeroed); the first failure is returned
    /// after every other row was tried.
    pub fn install(&self, rows: &[DataKeyRow]) -> Result<(), KeyError> {
        let now = Instant::now();
        let fresh_enough = |at: &Instant| {
            self.cache_ttl
                .is_none_or(|ttl| now.duration_since(*at) < ttl)
        };
        let known: Vec<(KeyKind, u32)> = self.read(|s| {
            s.keys
                .iter()
                .filter(|(_, (_, at))| fresh_enough(at))
                .map(|(k, _)| *k)
                .collect()
        });
        let provider = self.provider();
        let mut fresh = Vec::new();
        let mut first_error = None;
        for row in rows {
            if known.contains(&(row.kind, row.version)) {
                continue;
            }
            match Self::unwrap_row(provider.as_ref(), row) {
                Ok(key) => fresh.push(((row.kind, row.version), (Arc::new(key), now))),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state
            .keys
            .retain(|k, (_, at)| fresh_enough(at) || known.contains(k));
        state.keys.extend(fresh);
        for row in rows {
            let cur = state.current.entry(row.kind).or_insert(row.version);
            *cur = (*cur).max(row.version);
        }
        first_error.map_or(Ok(()), Err)
    }

    fn unwrap_row(provider: &dyn KeyProvider, row: &DataKeyRow) -> Result<DataKey, KeyError> {
        let bytes = provider.unwrap(&row.wrapped, &aad(row.kind, row.version))?;
        Ok(match row.kind {
            KeyKind::Pin => DataKey::Pin(Box::new(
                ZoneKey::new(
                    KeyAlgorithm::Aes,
                    &SecretKey::from_slice(&bytes)
                        .map_err(|e| KeyError::Integrity(e.to_string()))?,
                )
                .map_err(|e| KeyError::Integrity(e.to_string()))?,
            )),
            KeyKind::Pan | KeyKind::Webhook | KeyKind::Idempotency => DataKey::Sealing(
                RandomizedNonceKey::new(&AES_256_GCM, &bytes)
                    .map_err(|_| KeyError::Integrity(format!("bad {} key", row.kind.as_str())))?,
            ),
            KeyKind::Lookup => DataKey::Lookup(hmac::Key::new(hmac::HMAC_SHA256, &bytes)),
            KeyKind::Transport => DataKey::Transport(Arc::new(TransportKey::from_pkcs8(
                row.version,
                row.created_at,
                &bytes,
            )?)),
        })
    }

    /// Re-wraps a stored data key from one provider to another (migration).
    pub fn rewrap_row(
        from: &dyn KeyProvider,
        to: &dyn KeyProvider,
        row: &DataKeyRow,
    ) -> Result<Vec<u8>, KeyError> {
        let a = aad(row.kind, row.version);
        let bytes = from.unwrap(&row.wrapped, &a)?;
        to.wrap(&bytes, &a)
    }

    /// The current version of `kind`, if any key of it is installed.
    pub fn current_version(&self, kind: KeyKind) -> Option<u32> {
        self.read(|s| s.current.get(&kind).copied())
    }

    /// The versions of `kind` held, newest first.
    pub fn versions(&self, kind: KeyKind) -> Vec<u32> {
        let mut v: Vec<u32> = self.read(|s| {
            s.keys
                .keys()
                .filter(|(k, _)| *k == kind)
                .map(|(_, v)| *v)
                .collect()
        });
        v.sort_unstable_by(|a, b| b.cmp(a));
        v
    }

    pub fn has(&self, kind: KeyKind, version: u32) -> bool {
        self.read(|s| s.keys.contains_key(&(kind, version)))
    }

    /// Every loaded transport key, oldest first (retired ones included).
    pub fn transport_keys(&self) -> Vec<Arc<TransportKey>> {
        let mut keys: Vec<Arc<TransportKey>> = self.read(|s| {
            s.keys
                .values()
                .filter_map(|(k, _)| match &**k {
                    DataKey::Transport(t) => Some(t.clone()),
                    _ => None,
                })
                .collect()
        });
        keys.sort_by_key(|t| t.version);
        keys
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match self.state.read() {
            Ok(s) => f(&s),
            Err(p) => f(&p.into_inner()),
        }
    }

    fn key(&self, kind: KeyKind, version: u32) -> Result<Arc<DataKey>, KeyError> {
        self.read(|s| s.keys.get(&(kind, version)).map(|(k, _)| k.clone()))
            .ok_or(KeyError::UnknownVersion { kind, version })
    }

    fn current(&self, kind: KeyKind) -> Result<(u32, Arc<DataKey>), KeyError> {
        self.read(|s| {
            let v = *s.current.get(&kind)?;
            Some((v, s.keys.get(&(kind, v))?.0.clone()))
        })
        .ok_or(KeyError::UnknownVersion { kind, version: 0 })
    }

    /// Enciphers a PIN for storage: an ISO 9564 format 4 block bound to the PAN,
    /// under the current PIN storage key.
    pub fn encipher_pin(&self, pin: &Pin, pan: &Pan) -> Result<(u32, Vec<u8>), KeyError> {
        let (version, key) = self.current(KeyKind::Pin)?;
        let DataKey::Pin(key) = &*key else {
            return Err(KeyError::Integrity("pin key of the wrong type".into()));
        };
        let block = pinblock::encipher(Format::Iso4, pin, pan, key, &mut rand::rng())
            .map_err(|e| KeyError::Integrity(e.to_string()))?;
        Ok((version, block.as_bytes().to_vec()))
    }

    /// Reads a stored PIN.
    pub fn decipher_pin(&self, version: u32, block: &[u8], pan: &Pan) -> Result<Pin, KeyError> {
        let key = self.key(KeyKind::Pin, version)?;
        let DataKey::Pin(key) = &*key else {
            return Err(KeyError::Integrity("pin key of the wrong type".into()));
        };
        pinblock::decipher(Format::Iso4, block, pan, key)
            .map_err(|_| KeyError::Integrity("stored PIN block does not decipher".into()))
    }

    /// Seals bytes under the current key of `kind` (one of
    /// [`KeyKind::SEALING`]: one key per purpose), bound to `aad`.
    pub fn seal(&self, kind: KeyKind, data: &[u8], aad: &[u8]) -> Result<(u32, Vec<u8>), KeyError> {
        let (version, key) = self.current(kind)?;
        let DataKey::Sealing(key) = &*key else {
            return Err(KeyError::Integrity(format!(
                "{} key of the wrong type",
                kind.as_str()
            )));
        };
        Ok((version, seal(key, data, aad)?))
    }

    /// Opens what [`Keyring::seal`] sealed under version `version` of `kind`.
    pub fn open(
        &self,
        kind: KeyKind,
        version: u32,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let key = self.key(kind, version)?;
        let DataKey::Sealing(key) = &*key else {
            return Err(KeyError::Integrity(format!(
                "{} key of the wrong type",
                kind.as_str()
            )));
        };
        open(key, sealed, aad)
    }

    /// Seals a PAN with the card's id as associated data.
    pub fn seal_pan(&self, card_id: &str, pan: &Pan) -> Result<(u32, Vec<u8>), KeyError> {
        self.seal(KeyKind::Pan, pan.expose().as_bytes(), card_id.as_bytes())
    }

    pub fn open_pan(&self, card_id: &str, version: u32, sealed: &[u8]) -> Result<Pan, KeyError> {
        let digits = self.open(KeyKind::Pan, version, sealed, card_id.as_bytes())?;
        let text = std::str::from_utf8(&digits)
            .map_err(|_| KeyError::Integrity("PAN is not text".into()))?;
        Pan::new(text).map_err(|_| KeyError::Integrity("sealed PAN is not a PAN".into()))
    }

    /// The keyed hash by which a PAN is found, under the current lookup key.
    pub fn pan_hash(&self, pan: &Pan) -> Result<(u32, Vec<u8>), KeyError> {
        let (version, _) = self.current(KeyKind::Lookup)?;
        Ok((version, self.pan_hash_with(version, pan)?))
    }

    /// A keyed hash (HMAC-SHA256 under the current `lookup` key) of `data`,
    /// for `purpose` (hashed first, so no two purposes and no PAN hash share
    /// a value): what recognises data that may hold a PAN or a PIN without a
    /// plain hash of it.
    pub fn keyed_hash(&self, purpose: &str, data: &[u8]) -> Result<(u32, Vec<u8>), KeyError> {
        let (version, _) = self.current(KeyKind::Lookup)?;
        Ok((version, self.keyed_hash_with(version, purpose, data)?))
    }

    pub fn keyed_hash_with(
        &self,
        version: u32,
        purpose: &str,
        data: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let key = self.key(KeyKind::Lookup, version)?;
        let DataKey::Lookup(key) = &*key else {
            return Err(KeyError::Integrity("lookup key of the wrong type".into()));
        };
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(b"pinvault keyed hash\0");
        ctx.update(purpose.as_bytes());
        ctx.update(b"\0");
        ctx.update(data);
        Ok(ctx.sign().as_ref().to_vec())
    }

    pub fn pan_hash_with(&self, version: u32, pan: &Pan) -> Result<Vec<u8>, KeyError> {
        let key = self.key(KeyKind::Lookup, version)?;
        let DataKey::Lookup(key) = &*key else {
            return Err(KeyError::Integrity("lookup key of the wrong type".into()));
        };
        Ok(hmac::sign(key, pan.expose().as_bytes()).as_ref().to_vec())
    }
}
