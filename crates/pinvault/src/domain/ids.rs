//! Identifiers and bearer secrets.
//!
//! Ids (`card_…`, `prg_…`) are random and public. Secrets (`pct_…` control
//! tokens, `pv_test_…` / `pv_live_…` API keys) carry 256 bits from the OS's
//! CSPRNG, are shown once, and only their SHA-256 is stored: they are random
//! enough that a fast hash is as good as a slow one.

use core::fmt;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use zeroize::Zeroizing;

/// A new id: the prefix, then 96 random bits in lower-case hex.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    let mut id = String::with_capacity(prefix.len() + 24);
    id.push_str(prefix);
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// Whether `id` looks like an id with this prefix (so a malformed id can be a
/// plain 404 without a database round trip).
pub fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == 24 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A bearer secret (control token or API key). No `Display`; `Debug` is redacted;
/// zeroed on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// A new secret: the prefix, then 256 random bits in base64url.
    pub fn generate(prefix: &str) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut_slice());
        let mut s = Zeroizing::new(String::with_capacity(prefix.len() + 43));
        s.push_str(prefix);
        URL_SAFE_NO_PAD.encode_string(bytes.as_slice(), &mut s);
        Secret(s)
    }

    pub fn from_presented(s: &str) -> Self {
        Secret(Zeroizing::new(s.to_owned()))
    }

    /// The value, for the one response that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored and looked up.
    pub fn hash(&self) -> SecretHash {
        secret_hash(self.0.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

pub type SecretHash = [u8; 32];

pub fn secret_hash(bytes: &[u8]) -> SecretHash {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets() {
        let id = new_id("card_");
        assert!(is_id(&id, "card_"), "{id}");
        assert!(!is_id(&id, "prg_"));
        assert!(!is_id("card_../../etc", "card_"));
        let a = Secret::generate("pct_");
        let b = Secret::generate("pct_");
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 4 + 43);
        assert_eq!(a.hash(), Secret::from_presented(a.expose()).hash());
        assert!(!format!("{a:?}").contains(&a.expose()[4..]));
    }
}
