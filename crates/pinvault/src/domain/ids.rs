//! Identifiers and bearer secrets.
//!
//! Ids (`card_…`, `prg_…`) are public: the time they were made, then random letters. Secrets (`pct_…` control
//! tokens, `pv_test_…` / `pv_live_…` API keys) carry 256 bits from the OS's
//! CSPRNG, are shown once, and only their SHA-256 is stored: they are random
//! enough that a fast hash is as good as a slow one.

use core::fmt;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use zeroize::Zeroizing;

/// Length of an id after its prefix.
const ID_LEN: usize = 24;
/// Of which the leading letters tell the time of creation.
const TIME_LEN: usize = 10;

/// A new id: the prefix, then 24 lower-case letters: 10 for the millisecond
/// it was made (base 26, most significant first, so ids sort by creation
/// time until the year 6400), then 14 random ones (65 bits). Letters only, so
/// that no id ever contains a run of digits that could be mistaken for, or
/// match a search for, a PIN or a PAN in a log or a database file.
///
/// Time-ordered rather than wholly random for the database: every table is
/// indexed by id, and a new random key lands on a random page of that index,
/// which the write then has to write out whole (the write-ahead log takes
/// full pages); new ids that sort last share the index's last page. An id
/// tells when its object was made, nothing more; ids were never secrets.
pub fn new_id(prefix: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut time = [b'a'; TIME_LEN];
    let mut rest = ms;
    for letter in time.iter_mut().rev() {
        *letter = b'a' + u8::try_from(rest % 26).unwrap_or(0);
        rest /= 26;
    }
    let mut id = String::with_capacity(prefix.len() + ID_LEN);
    id.push_str(prefix);
    id.extend(time.iter().map(|&b| char::from(b)));
    let mut rng = rand::rng();
    let mut bytes = [0u8; 32];
    let mut used = bytes.len();
    while id.len() < prefix.len() + ID_LEN {
        if used == bytes.len() {
            rng.fill_bytes(&mut bytes);
            used = 0;
        }
        let byte = bytes[used];
        used += 1;
        // 234 = 9 × 26: bytes at or above it are skipped, so every letter is equally likely.
        if byte < 234 {
            id.push(char::from(b'a' + byte % 26));
        }
    }
    id
}

/// Whether `id` looks like an id with this prefix (so a malformed id can be a
/// plain 404 without a database round trip).
pub fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == ID_LEN && rest.bytes().all(|b| b.is_ascii_lowercase()))
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
    fn ids_sort_by_time_and_differ_within_a_millisecond() {
        let ids: Vec<String> = (0..2000).map(|_| new_id("evt_")).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        // Sorted by their time part, ids made one after another keep their order
        // (ties within one millisecond aside, which only the random part orders).
        let times: Vec<&str> = ids.iter().map(|i| &i[4..4 + TIME_LEN]).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        // 2026-11-24T00:00:00Z is 1,795,478,400,000 ms after the epoch.
        let ms = 1_795_478_400_000u64;
        let mut letters = String::new();
        let mut rest = ms;
        for _ in 0..TIME_LEN {
            letters.insert(0, char::from(b'a' + (rest % 26) as u8));
            rest /= 26;
        }
        assert!(times[0] > letters.as_str(), "{} {letters}", times[0]);
    }

    #[test]
    fn ids_and_secrets() {
        let id = new_id("card_");
        assert!(is_id(&id, "card_"), "{id}");
        assert!(!is_id(&id, "prg_"));
        assert!(!is_id("card_../../etc", "card_"));
        assert!(!id.bytes().any(|b| b.is_ascii_digit()), "{id}");
        let a = Secret::generate("pct_");
        let b = Secret::generate("pct_");
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 4 + 43);
        assert_eq!(a.hash(), Secret::from_presented(a.expose()).hash());
        assert!(!format!("{a:?}").contains(&a.expose()[4..]));
    }
}
