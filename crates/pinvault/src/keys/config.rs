//! Which key provider holds the master key, recorded in the data directory as
//! `keys.json` (never a PIN or a key: the PKCS#11 user PIN comes from the
//! environment). Without the file, the provider is the key file `master.key`.
//!
//! During `pinvault keys migrate` the file names two providers: the new one
//! wraps, and either unwraps, so that servers reading it mid-migration keep
//! working whichever wrapping a row has. When every wrapped key has moved, the
//! file names the new provider only.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::pkcs11::{Pkcs11Config, Pkcs11Provider, pin_from_env};
use super::{KeyError, KeyFile, KeyProvider};

pub const FILE_NAME: &str = "keys.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum ProviderConfig {
    /// `master.key` in the data directory.
    File,
    /// A non-extractable AES key in a PKCS#11 token.
    Pkcs11(Pkcs11Config),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysConfig {
    #[serde(flatten)]
    pub provider: ProviderConfig,
    /// The provider being migrated away from, while a migration runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<ProviderConfig>,
}

impl KeysConfig {
    pub fn single(provider: ProviderConfig) -> Self {
        KeysConfig {
            provider,
            previous: None,
        }
    }
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// The configuration of `dir` (the key file when none is recorded).
pub fn read(dir: &Path) -> Result<KeysConfig, KeyError> {
    match std::fs::read(path(dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| KeyError::Provider(format!("{} is not valid: {e}", path(dir).display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(KeysConfig::single(ProviderConfig::File))
        }
        Err(e) => Err(KeyError::Provider(format!(
            "cannot read {}: {e}",
            path(dir).display()
        ))),
    }
}

/// Records the configuration atomically (a temporary file renamed over it).
pub fn write(dir: &Path, config: &KeysConfig) -> Result<(), KeyError> {
    let target = path(dir);
    let tmp = dir.join(format!(".{FILE_NAME}.tmp"));
    let text = serde_json::to_vec_pretty(config)
        .map_err(|e| KeyError::Provider(format!("cannot encode {FILE_NAME}: {e}")))?;
    let io =
        |e: std::io::Error| KeyError::Provider(format!("cannot write {}: {e}", target.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(&text).and_then(|()| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, &target).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Opens one provider. The key file is created when absent only if `create`.
pub fn open_one(
    dir: &Path,
    config: &ProviderConfig,
    create: bool,
) -> Result<Arc<dyn KeyProvider>, KeyError> {
    Ok(match config {
        ProviderConfig::File if create => Arc::new(KeyFile::open_or_create(dir)?),
        ProviderConfig::File => Arc::new(KeyFile::open(dir)?),
        ProviderConfig::Pkcs11(c) => Arc::new(Pkcs11Provider::new(c.clone(), pin_from_env()?)?),
    })
}

/// The provider the data directory is configured for. A fresh directory gets a
/// key file; a directory configured for a token never does.
pub fn open(dir: &Path) -> Result<Arc<dyn KeyProvider>, KeyError> {
    let config = read(dir)?;
    let primary = open_one(dir, &config.provider, true)?;
    match &config.previous {
        None => Ok(primary),
        Some(prev) => Ok(Arc::new(Migrating {
            new: primary,
            old: open_one(dir, prev, false)?,
        })),
    }
}

/// Mid-migration: wraps with the new provider, unwraps with whichever can.
pub struct Migrating {
    pub new: Arc<dyn KeyProvider>,
    pub old: Arc<dyn KeyProvider>,
}

impl std::fmt::Debug for Migrating {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Migrating({} -> {})", self.old.name(), self.new.name())
    }
}

impl KeyProvider for Migrating {
    fn name(&self) -> &'static str {
        self.new.name()
    }
    fn wrap(&self, key: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.new.wrap(key, aad)
    }
    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match self.new.unwrap(wrapped, aad) {
            Ok(k) => Ok(k),
            Err(new_err) => match self.old.unwrap(wrapped, aad) {
                Ok(k) => Ok(k),
                // A provider that cannot answer says more than an integrity failure.
                Err(old_err) => Err(match new_err {
                    KeyError::Provider(_) => new_err,
                    _ => old_err,
                }),
            },
        }
    }
    fn check(&self) -> Result<(), KeyError> {
        self.new.check().and_then(|()| self.old.check())
    }
}
