//! Reading a compact JWE (RFC 7516 §7.1): its five parts, and its protected
//! header, which must name an algorithm and content encryption understood here.

use aws_lc_rs::aead::NONCE_LEN;
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The largest compact JWE accepted (a PIN under a 4096-bit key is under 1.5 KiB).
pub const MAX_JWE_LEN: usize = 8 * 1024;

/// An inbound JWE could not be decrypted. Deliberately without detail; `reason`
/// is for the server's debug log only and never names a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecryptFailed(pub &'static str);

fn b64(part: &str, why: &'static str) -> Result<Vec<u8>, DecryptFailed> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| DecryptFailed(why))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Enc {
    A256Gcm,
    A128CbcHs256,
}

/// The parts of a compact JWE, with its protected header read.
#[derive(Debug)]
pub struct ParsedJwe {
    pub kid: String,
    pub(super) oaep: &'static OaepAlgorithm,
    pub(super) enc: Enc,
    /// ASCII(BASE64URL(UTF8(protected header))): the additional authenticated data.
    pub(super) aad: Vec<u8>,
    pub(super) encrypted_key: Vec<u8>,
    pub(super) iv: Vec<u8>,
    pub(super) ciphertext: Vec<u8>,
    pub(super) tag: Vec<u8>,
}

/// Reads a compact JWE and checks its header: `alg`, `enc`, a `kid`, and no
/// `zip` or `crit` (no extension is understood).
pub fn parse(jwe: &str) -> Result<ParsedJwe, DecryptFailed> {
    if jwe.len() > MAX_JWE_LEN {
        return Err(DecryptFailed("too long"));
    }
    let parts: Vec<&str> = jwe.split('.').collect();
    let [header, encrypted_key, iv, ciphertext, tag] = parts[..] else {
        return Err(DecryptFailed("not five parts"));
    };
    let header_json = b64(header, "header encoding")?;
    let header_obj: Map<String, Value> = serde_json::from_slice(&header_json)
        .map_err(|_| DecryptFailed("header not a JSON object"))?;
    let text = |name: &str| header_obj.get(name).and_then(Value::as_str);
    let oaep = match text("alg") {
        Some("RSA-OAEP-256") => &OAEP_SHA256_MGF1SHA256,
        Some("RSA-OAEP") => &OAEP_SHA1_MGF1SHA1,
        _ => return Err(DecryptFailed("unsupported alg")),
    };
    let enc = match text("enc") {
        Some("A256GCM") => Enc::A256Gcm,
        Some("A128CBC-HS256") => Enc::A128CbcHs256,
        _ => return Err(DecryptFailed("unsupported enc")),
    };
    let kid = text("kid").ok_or(DecryptFailed("no kid"))?.to_owned();
    if header_obj.contains_key("zip") || header_obj.contains_key("crit") {
        return Err(DecryptFailed("zip or crit"));
    }
    let parsed = ParsedJwe {
        kid,
        oaep,
        enc,
        aad: header.as_bytes().to_vec(),
        encrypted_key: b64(encrypted_key, "encrypted key encoding")?,
        iv: b64(iv, "iv encoding")?,
        ciphertext: b64(ciphertext, "ciphertext encoding")?,
        tag: b64(tag, "tag encoding")?,
    };
    let (iv_len, block) = match enc {
        Enc::A256Gcm => (NONCE_LEN, 1),
        Enc::A128CbcHs256 => (16, 16),
    };
    if parsed.iv.len() != iv_len
        || parsed.tag.len() != 16
        || parsed.ciphertext.is_empty()
        || parsed.ciphertext.len() % block != 0
    {
        return Err(DecryptFailed("part lengths"));
    }
    Ok(parsed)
}
