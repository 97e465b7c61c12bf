//! The data keys and the published PIN encryption keys: loading, the
//! transport key's rotation, and moving every key to another master-key
//! provider (a storage-key rotation: `rotation.rs`).

use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use super::{App, MAX_JWE_AGE_S, ServiceError};
use crate::domain::time::now;
use crate::jose::{self, DecryptFailed, DeviceKey};
use crate::keys::transport::{self, TransportKey};
use crate::keys::{DataKeyRow, KeyError, KeyKind, KeyProvider, Keyring};
use crate::store::{IssuerKeySetRow, KbpkRow, PvkRow, Store, StoreError};

/// How often a server re-reads the data key versions, so that a rotation made by
/// another process is used everywhere within this time.
pub const KEY_REFRESH: Duration = Duration::from_secs(2);

/// How far a long operation (a rotation, a migration) is: what it is doing,
/// how many items of it are done, and of how many when that is known.
#[derive(Debug, Clone)]
pub struct Step {
    pub what: &'static str,
    pub done: u64,
    pub total: Option<u64>,
}

impl Step {
    /// The share done (0 to 1), when the total is known.
    pub fn share(&self) -> Option<f64> {
        self.total.map(|t| {
            if t == 0 {
                1.0
            } else {
                self.done as f64 / t as f64
            }
        })
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.total {
            Some(total) => write!(f, "{}: {} of {total}", self.what, self.done),
            None => write!(f, "{}: {}", self.what, self.done),
        }
    }
}

/// Where a long operation reports its [`Step`]s (the command line's
/// progress display); called often, so it should be cheap.
pub type OnProgress = Arc<dyn Fn(Step) + Send + Sync>;

impl<S: Store> App<S> {
    pub(super) async fn bootstrap_keys(&self) -> Result<(), ServiceError> {
        let rows = self.store.data_keys().await?;
        for kind in KeyKind::STORAGE {
            if !rows.iter().any(|r| r.kind == kind) {
                // Another process may create it at the same moment: the loser's
                // insert is a no-op and both load the winner's.
                let row = self.keys.new_row(kind, 1, now())?;
                self.store.insert_data_key(row).await?;
            }
        }
        self.reload_keys().await
    }

    /// Makes the first transport key where none exists (at a server's first
    /// start). Two servers starting at once: the loser's insert is a no-op.
    pub async fn bootstrap_transport_key(&self) -> Result<(), ServiceError> {
        let rows = self.store.data_keys().await?;
        if !rows.iter().any(|r| r.kind == KeyKind::Transport) {
            let row = self.new_transport_row(1).await?;
            self.store.insert_data_key(row).await?;
        }
        self.reload_keys().await
    }

    async fn new_transport_row(&self, version: u32) -> Result<DataKeyRow, ServiceError> {
        let keys = self.keys.clone();
        let bits = self.settings.transport.bits;
        tokio::task::spawn_blocking(move || keys.new_transport_row(bits, version, now()))
            .await
            .map_err(|e| ServiceError::Keys(KeyError::Provider(format!("key generation: {e}"))))?
            .map_err(ServiceError::Keys)
    }

    /// The transport keys that decrypt now, newest first: the current one and
    /// those still within the grace period after their successor was made.
    pub fn transport_keys_in_service(&self) -> Vec<Arc<TransportKey>> {
        let all = self.keys.transport_keys();
        let t = now();
        let grace = self.settings.transport.grace_s;
        let mut live: Vec<_> = all
            .iter()
            .filter(|k| transport::in_service(&all, k.version, t, grace))
            .cloned()
            .collect();
        live.reverse();
        live
    }

    /// Decrypts an inbound encrypted PIN (API.md "PIN encryption (inbound)") for
    /// `card_id` (none at card creation) and returns its text for the PIN policy.
    /// A JWE naming a key not yet loaded (made by a rotation elsewhere within the
    /// last refresh) makes the keys be read again once.
    pub async fn decrypt_pin(
        &self,
        jwe: &str,
        card_id: Option<&str>,
    ) -> Result<Result<Zeroizing<String>, DecryptFailed>, ServiceError> {
        if jwe.len() > jose::MAX_JWE_LEN {
            return Ok(Err(DecryptFailed("too long")));
        }
        let mut keys = self.transport_keys_in_service();
        if let Ok(parsed) = jose::parse(jwe) {
            if !keys.iter().any(|k| k.kid == parsed.kid) {
                self.reload_keys().await?;
                keys = self.transport_keys_in_service();
            }
        }
        let jwe = jwe.to_owned();
        let plain = tokio::task::spawn_blocking(move || jose::decrypt_with(&jwe, &keys))
            .await
            .map_err(|e| ServiceError::Keys(KeyError::Provider(format!("decryption task: {e}"))))?;
        Ok(plain.and_then(|p| jose::pin_from_plaintext(&p, card_id, now(), MAX_JWE_AGE_S)))
    }

    /// Encrypts a revealed PIN to a device's key: `{"pin","card_id"}` as a
    /// compact JWE (`ECDH-ES`, `A256GCM`). Runs on the calling thread: one
    /// ephemeral P-256 key and one ECDH (tens of microseconds, in software,
    /// whatever the key provider) cost less than a hand-off to the blocking
    /// pool and back.
    pub fn encrypt_for_device(
        &self,
        device: &DeviceKey,
        pin: Zeroizing<String>,
        card_id: &str,
    ) -> Result<String, ServiceError> {
        let plain = Zeroizing::new(format!(r#"{{"pin":"{}","card_id":"{card_id}"}}"#, &*pin));
        drop(pin);
        jose::encrypt_to_device(device, plain.as_bytes())
            .map_err(|_| ServiceError::Keys(KeyError::Provider("ECDH-ES encryption failed".into())))
    }

    /// Adds a new transport key; the previous one keeps decrypting for the grace
    /// period. Servers publish the new one within [`KEY_REFRESH`].
    pub async fn rotate_transport_key(&self) -> Result<u32, ServiceError> {
        self.reload_keys().await?;
        let next = self.keys.current_version(KeyKind::Transport).unwrap_or(0) + 1;
        let row = self.new_transport_row(next).await?;
        if !self.store.insert_data_key(row).await? {
            return Err(ServiceError::Store(StoreError::Conflict(format!(
                "transport key version {next} was created by another rotation at the same time; run it again"
            ))));
        }
        self.reload_keys().await?;
        Ok(next)
    }

    /// Re-reads the data keys (new versions from a rotation elsewhere), and
    /// unwraps again those held longer than the key cache TTL.
    pub async fn reload_keys(&self) -> Result<(), ServiceError> {
        let rows = self.store.data_keys().await?;
        self.zone_keys.prune(self.keys.cache_ttl());
        let keys = self.keys.clone();
        // The provider may be a token across a network: off the async threads.
        tokio::task::spawn_blocking(move || keys.install(&rows))
            .await
            .map_err(|e| {
                ServiceError::Keys(KeyError::Provider(format!("key task failed: {e}")))
            })??;
        Ok(())
    }

    /// Makes sure a key version a row names is loaded (it may be newer than the
    /// last refresh).
    pub async fn ensure_key(&self, kind: KeyKind, version: u32) -> Result<(), ServiceError> {
        if !self.keys.has(kind, version) {
            self.reload_keys().await?;
        }
        Ok(())
    }
}

/// What `pinvault keys migrate` left: every key, now under the new provider.
#[derive(Debug, Default, Clone, Copy)]
pub struct MigrationReport {
    /// Data key versions under the new provider.
    pub data_keys: u64,
    /// Zone keys under the new provider.
    pub zone_keys: u64,
    /// Issuer master keys (three a set) under the new provider.
    pub issuer_keys: u64,
    /// PIN verification keys under the new provider.
    pub pin_verification_keys: u64,
    /// Key block protection keys under the new provider.
    pub kbpks: u64,
    /// Rows re-wrapped by this run (the rest were already under it).
    pub rewrapped: u64,
}

/// Re-wraps every key the master key protects (data keys, zone keys, issuer
/// master keys, key block protection keys) from one
/// provider to another, and checks that `to` alone unwraps every one of them
/// afterwards. Safe to run again after an interruption: rows `to` already
/// unwraps are left alone.
pub async fn migrate_master<S: Store>(
    store: &S,
    from: Arc<dyn KeyProvider>,
    to: Arc<dyn KeyProvider>,
    on: &OnProgress,
) -> Result<MigrationReport, ServiceError> {
    use crate::keys::issuer::Part;
    use crate::keys::wrapped::Wrapped;
    use crate::store::{MasterRewrap, Rewrapped};
    let mut report = MigrationReport::default();
    // A few passes: a row added meanwhile by a process still wrapping with
    // `from` is caught by the next pass.
    for _ in 0..5 {
        let data = store.data_keys().await?;
        let zones = crate::store::every_page(
            |after| async move { store.list_zone_keys(100, after.as_deref()).await },
            |k: &crate::store::ZoneKeyRow| k.key.id.clone(),
        )
        .await?;
        let issuer_sets: Vec<IssuerKeySetRow> = store.every_key(None).await?;
        report.data_keys = data.len() as u64;
        report.zone_keys = zones.len() as u64;
        let pvks: Vec<PvkRow> = store.every_key(None).await?;
        let kbpks: Vec<KbpkRow> = store.every_key(None).await?;
        report.issuer_keys = 3 * issuer_sets.len() as u64;
        report.pin_verification_keys = pvks.len() as u64;
        report.kbpks = kbpks.len() as u64;
        let (from, to) = (from.clone(), to.clone());
        let total =
            (data.len() + zones.len() + 3 * issuer_sets.len() + pvks.len() + kbpks.len()) as u64;
        let on = on.clone();
        let rewraps = tokio::task::spawn_blocking(move || -> Result<_, KeyError> {
            let mut out = Vec::new();
            let mut checked = 0;
            let mut tick = || {
                checked += 1;
                on(Step {
                    what: "keys checked and re-wrapped",
                    done: checked,
                    total: Some(total),
                });
            };
            for row in &data {
                tick();
                let probe = Keyring::rewrap_row(to.as_ref(), to.as_ref(), row);
                if probe.is_ok() {
                    continue;
                }
                out.push(MasterRewrap {
                    of: Rewrapped::DataKey {
                        kind: row.kind,
                        version: row.version,
                    },
                    old: row.wrapped.clone(),
                    new: Keyring::rewrap_row(from.as_ref(), to.as_ref(), row)?,
                });
            }
            // Every other key: its description, its wrapping now, its row.
            let mut keys: Vec<(Wrapped<'_>, &Vec<u8>, Rewrapped)> = Vec::new();
            for z in &zones {
                let key = Wrapped::zone(&z.key.id, z.key.algorithm, &z.key.kcv);
                keys.push((key, &z.key.wrapped, Rewrapped::ZoneKey(z.key.id.clone())));
            }
            for set in &issuer_sets {
                for part in Part::ALL {
                    let i = part as usize;
                    let key = Wrapped::issuer(&set.id, part, &set.kcv[i]);
                    keys.push((
                        key,
                        &set.wrapped[i],
                        Rewrapped::IssuerKey(set.id.clone(), part),
                    ));
                }
            }
            for k in &pvks {
                let key = Wrapped::pvk(&k.id, &k.kcv);
                keys.push((key, &k.wrapped, Rewrapped::PinVerificationKey(k.id.clone())));
            }
            for k in &kbpks {
                let key = Wrapped::kbpk(&k.id, k.algorithm, &k.kcv);
                keys.push((key, &k.wrapped, Rewrapped::Kbpk(k.id.clone())));
            }
            for (key, old, of) in keys {
                tick();
                if let Some(new) = key.rewrap(from.as_ref(), to.as_ref(), old)? {
                    out.push(MasterRewrap {
                        of,
                        old: old.clone(),
                        new,
                    });
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| ServiceError::Keys(KeyError::Provider(format!("key task failed: {e}"))))??;
        if rewraps.is_empty() {
            return Ok(report);
        }
        report.rewrapped += store.rewrap_master(rewraps).await?;
    }
    Err(ServiceError::Keys(KeyError::Provider(
        "keys kept appearing under the old provider; run the migration again".into(),
    )))
}
