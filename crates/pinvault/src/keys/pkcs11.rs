//! The PKCS#11 key provider: the master key is a non-extractable AES-256 key
//! inside a token (an HSM, or SoftHSM2 in tests). Data keys are wrapped and
//! unwrapped by the token with AES-GCM (`CKM_AES_GCM`, 96-bit IV, 128-bit tag,
//! the key's kind and version as associated data); the master key never leaves
//! it. What the token returns, an unwrapped data key, is held by the keyring.
//!
//! One session is kept open and logged in; when the token stops answering (it
//! was removed, the HSM restarted, the network to it broke) the session is
//! dropped and the next call opens a new one, so serving recovers by itself
//! when the token returns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use rand::RngCore;
use zeroize::Zeroizing;

use super::{KeyError, KeyProvider};

const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;

/// Where the master key is: module, token and key label. The user PIN is not
/// part of it (it comes from the environment).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pkcs11Config {
    pub module: PathBuf,
    pub token_label: String,
    pub key_label: String,
}

/// The token user PIN, from `PINVAULT_PKCS11_PIN` or the file named by
/// `PINVAULT_PKCS11_PIN_FILE` (its first line).
pub fn pin_from_env() -> Result<Zeroizing<String>, KeyError> {
    if let Ok(pin) = std::env::var("PINVAULT_PKCS11_PIN") {
        return Ok(Zeroizing::new(pin));
    }
    if let Ok(path) = std::env::var("PINVAULT_PKCS11_PIN_FILE") {
        let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
            KeyError::Provider(format!("cannot read PINVAULT_PKCS11_PIN_FILE {path}: {e}"))
        })?);
        let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
        return Ok(Zeroizing::new(line.to_owned()));
    }
    Err(KeyError::Provider(
        "the PKCS#11 user PIN is needed: set PINVAULT_PKCS11_PIN or PINVAULT_PKCS11_PIN_FILE"
            .into(),
    ))
}

/// A module is loaded and initialized once per process (PKCS#11 allows one
/// `C_Initialize` per library), then shared.
fn module(path: &Path) -> Result<Arc<Pkcs11>, KeyError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Pkcs11>>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(m) = modules.get(path) {
        return Ok(m.clone());
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        KeyError::Provider(format!(
            "cannot load PKCS#11 module {}: {e}",
            path.display()
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(KeyError::Provider(format!(
                "cannot initialize PKCS#11 module {}: {e}",
                path.display()
            )));
        }
    }
    let ctx = Arc::new(ctx);
    modules.insert(path.to_owned(), ctx.clone());
    Ok(ctx)
}

struct Open {
    session: Session,
    key: ObjectHandle,
}

pub struct Pkcs11Provider {
    ctx: Arc<Pkcs11>,
    config: Pkcs11Config,
    pin: Zeroizing<String>,
    open: Mutex<Option<Open>>,
}

debug_fields!(Pkcs11Provider: config);

fn provider_err(what: &str, e: impl std::fmt::Display) -> KeyError {
    KeyError::Provider(format!("PKCS#11 {what}: {e}"))
}

impl Pkcs11Provider {
    /// Loads the module; the token is reached on first use.
    pub fn new(config: Pkcs11Config, pin: Zeroizing<String>) -> Result<Self, KeyError> {
        let ctx = module(&config.module)?;
        Ok(Pkcs11Provider {
            ctx,
            config,
            pin,
            open: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &Pkcs11Config {
        &self.config
    }

    fn find_slot(&self) -> Result<Option<cryptoki::slot::Slot>, KeyError> {
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(|e| provider_err("listing slots", e))?;
        Ok(slots.into_iter().find(|s| {
            self.ctx
                .get_token_info(*s)
                .is_ok_and(|t| t.label().trim_end() == self.config.token_label)
        }))
    }

    fn login(&self) -> Result<Session, KeyError> {
        let mut slot = self.find_slot()?;
        // A token can be missing for a moment (another process rewriting a
        // file-backed token, an HSM failing over); some modules (SoftHSM2 among
        // them) see a token that came back only after initializing again.
        for attempt in 0..3 {
            if slot.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100 << attempt));
            let again = self.ctx.as_ref().clone();
            let _ = again.finalize();
            match self
                .ctx
                .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            {
                Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
                Err(e) => return Err(provider_err("initializing the module again", e)),
            }
            slot = self.find_slot()?;
        }
        let slot = slot.ok_or_else(|| {
            KeyError::Provider(format!(
                "no PKCS#11 token labelled {:?} is present",
                self.config.token_label
            ))
        })?;
        // A file-backed token read while another process rewrites it can say
        // for a moment that its user PIN was never set (SoftHSM2 does, under
        // many processes): that answer is asked again a few times.
        let mut attempt = 0;
        loop {
            let session = self
                .ctx
                .open_rw_session(slot)
                .map_err(|e| provider_err("opening a session", e))?;
            let pin = AuthPin::from(self.pin.as_str().to_owned());
            match session.login(UserType::User, Some(&pin)) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                    return Ok(session);
                }
                Err(CkError::Pkcs11(RvError::UserPinNotInitialized, _)) if attempt < 4 => {
                    drop(session);
                    std::thread::sleep(std::time::Duration::from_millis(25 << attempt));
                    attempt += 1;
                }
                Err(e) => return Err(provider_err("login (check the user PIN)", e)),
            }
        }
    }

    fn key_template(&self) -> Vec<Attribute> {
        vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(self.config.key_label.as_bytes().to_vec()),
        ]
    }

    fn find_key(&self, session: &Session) -> Result<Option<ObjectHandle>, KeyError> {
        let found = session
            .find_objects(&self.key_template())
            .map_err(|e| provider_err("finding the master key", e))?;
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(KeyError::Provider(format!(
                "more than one AES key labelled {:?} in the token",
                self.config.key_label
            ))),
        }
    }

    /// Creates the master key in the token unless one with its label exists:
    /// AES-256, generated inside the token, sensitive and never extractable.
    /// Returns whether it was created.
    pub fn create_key(&self) -> Result<bool, KeyError> {
        let session = self.login()?;
        if self.find_key(&session)?.is_some() {
            return Ok(false);
        }
        let mut template = self.key_template();
        template.extend([
            Attribute::ValueLen(32u64.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Sign(false),
            Attribute::Verify(false),
        ]);
        session
            .generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(|e| provider_err("generating the master key", e))?;
        Ok(true)
    }

    /// Runs `f` on the open session (opening and logging in first if needed).
    /// A failure drops the session, so the next call starts afresh.
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session, ObjectHandle) -> Result<T, CkError>,
    ) -> Result<T, KeyError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.is_none() {
            let session = self.login()?;
            let key = self.find_key(&session)?.ok_or_else(|| {
                KeyError::Provider(format!(
                    "the token has no AES key labelled {:?} (run `pinvault keys init`)",
                    self.config.key_label
                ))
            })?;
            *open = Some(Open { session, key });
        }
        let Some(o) = open.as_ref() else {
            return Err(KeyError::Provider("no PKCS#11 session".into()));
        };
        match f(&o.session, o.key) {
            Ok(v) => Ok(v),
            // Authentication failure of a wrapped key: the token is fine.
            Err(CkError::Pkcs11(RvError::EncryptedDataInvalid, _))
            | Err(CkError::Pkcs11(RvError::EncryptedDataLenRange, _)) => Err(KeyError::Integrity(
                "the token refused a wrapped key".into(),
            )),
            Err(e) => {
                *open = None;
                Err(provider_err("operation", e))
            }
        }
    }
}

impl KeyProvider for Pkcs11Provider {
    fn name(&self) -> &'static str {
        "pkcs11"
    }

    fn wrap(&self, key: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut iv = [0u8; IV_LEN];
        rand::rng().fill_bytes(&mut iv);
        let sealed = self.with_session(|s, k| {
            let mut iv2 = iv;
            let params = GcmParams::new(&mut iv2, aad, TAG_BITS.into())?;
            s.encrypt(&Mechanism::AesGcm(params), k, key)
        })?;
        let mut out = iv.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if wrapped.len() < IV_LEN + 16 {
            return Err(KeyError::Integrity("wrapped key too short".into()));
        }
        let (iv, sealed) = wrapped.split_at(IV_LEN);
        let mut iv: [u8; IV_LEN] = iv
            .try_into()
            .map_err(|_| KeyError::Integrity("wrapped key too short".into()))?;
        self.with_session(|s, k| {
            let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
            s.decrypt(&Mechanism::AesGcm(params), k, sealed)
                .map(Zeroizing::new)
        })
    }

    fn check(&self) -> Result<(), KeyError> {
        self.with_session(|s, k| {
            s.get_session_info()?;
            // The key is still there and usable.
            s.get_attributes(k, &[cryptoki::object::AttributeType::Label])
                .map(drop)
        })
    }
}
