//! The default key provider: a 256-bit master key in a file of the data
//! directory, created mode 0600 and refused when group or others can read it.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use rand::RngCore;
use zeroize::Zeroizing;

use super::{KeyError, KeyProvider};

pub const FILE_NAME: &str = "master.key";

pub struct KeyFile {
    key: RandomizedNonceKey,
    path: PathBuf,
}

debug_fields!(KeyFile: path);

impl KeyFile {
    /// Opens the master key file of `dir`, creating it (mode 0600) when absent.
    pub fn open_or_create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(FILE_NAME);
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut_slice());
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(bytes.as_slice())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| {
                        KeyError::Provider(format!("cannot write {}: {e}", path.display()))
                    })?;
                tracing::info!(path = %path.display(), "created master key file");
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(KeyError::Provider(format!(
                    "cannot create {}: {e}",
                    path.display()
                )));
            }
        }
        Self::open(dir)
    }

    /// Opens an existing master key file; refuses one that group or others can
    /// read or write, or that is not exactly 32 bytes.
    pub fn open(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(FILE_NAME);
        let meta = fs::metadata(&path).map_err(|e| {
            KeyError::Provider(format!(
                "cannot read master key file {}: {e}",
                path.display()
            ))
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Provider(format!(
                "master key file {} has mode {mode:o}; it must be readable by its owner only (chmod 600)",
                path.display()
            )));
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(33));
        fs::File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| KeyError::Provider(format!("cannot read {}: {e}", path.display())))?;
        if bytes.len() != 32 {
            return Err(KeyError::Provider(format!(
                "master key file {} is {} bytes long, not 32",
                path.display(),
                bytes.len()
            )));
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| KeyError::Provider("master key rejected by AES-256-GCM".into()))?;
        Ok(KeyFile { key, path })
    }
}

/// AES-256-GCM with a random nonce: `nonce ‖ ciphertext ‖ tag`.
pub(crate) fn seal(
    key: &RandomizedNonceKey,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let mut buf = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
    buf.extend_from_slice(&[0u8; NONCE_LEN]);
    buf.extend_from_slice(plaintext);
    let mut body = buf.split_off(NONCE_LEN);
    let nonce = key
        .seal_in_place_append_tag(Aad::from(aad), &mut body)
        .map_err(|_| KeyError::Integrity("seal failed".into()))?;
    buf.copy_from_slice(nonce.as_ref());
    buf.extend_from_slice(&body);
    Ok(buf)
}

/// The inverse of [`seal`].
pub(crate) fn open(
    key: &RandomizedNonceKey,
    sealed: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let Some((nonce, body)) = sealed.split_at_checked(NONCE_LEN) else {
        return Err(KeyError::Integrity("sealed value too short".into()));
    };
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| KeyError::Integrity("bad nonce".into()))?;
    let mut body = Zeroizing::new(body.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut body)
        .map_err(|_| KeyError::Integrity("authentication failed".into()))?
        .len();
    body.truncate(len);
    Ok(body)
}

impl KeyProvider for KeyFile {
    fn name(&self) -> &'static str {
        "file"
    }

    fn wrap(&self, key: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        seal(&self.key, key, aad)
    }

    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        open(&self.key, wrapped, aad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pinvault-keyfile-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn created_0600_and_reopened() {
        let dir = tempdir("create");
        let a = KeyFile::open_or_create(&dir).unwrap();
        let mode = fs::metadata(dir.join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let wrapped = a.wrap(b"data key", b"pin v1").unwrap();
        let b = KeyFile::open_or_create(&dir).unwrap();
        assert_eq!(
            b.unwrap(&wrapped, b"pin v1").unwrap().as_slice(),
            b"data key"
        );
        assert!(
            b.unwrap(&wrapped, b"pin v2").is_err(),
            "aad binds the version"
        );
        let mut tampered = wrapped.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(b.unwrap(&tampered, b"pin v1").is_err());
        assert!(b.unwrap(&wrapped[..10], b"pin v1").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_readable_or_malformed_files() {
        let dir = tempdir("mode");
        KeyFile::open_or_create(&dir).unwrap();
        let path = dir.join(FILE_NAME);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = KeyFile::open(&dir).unwrap_err().to_string();
        assert!(err.contains("640"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, b"short").unwrap();
        assert!(
            KeyFile::open(&dir)
                .unwrap_err()
                .to_string()
                .contains("not 32")
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
