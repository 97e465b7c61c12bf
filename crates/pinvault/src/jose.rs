//! JWE (RFC 7516) with the algorithms of RFC 7518, composed from aws-lc-rs
//! primitives, for PINs in transit:
//!
//! - inbound, compact JWE with `alg` `RSA-OAEP-256` or `RSA-OAEP` and `enc`
//!   `A256GCM` or `A128CBC-HS256`, to a published transport key;
//! - outbound, compact JWE with `alg` `ECDH-ES` (direct key agreement, Concat
//!   KDF of RFC 7518 §4.6) and `enc` `A256GCM`, to a device's P-256 key.
//!
//! Every inbound failure is the one [`DecryptFailed`]: which step failed is not
//! told to the sender (no padding or format oracle). As RFC 7516 §11.5 asks, an
//! RSA decryption that fails goes on with a random content key, so that it fails
//! only at the content's authentication tag, like any other tampering.
//!
//! The functions here are CPU-bound (RSA, ECDH): call them off the async threads.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::cipher::{AES_128, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm};
use aws_lc_rs::{constant_time, digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use std::sync::Arc;
use zeroize::Zeroizing;

use crate::keys::transport::TransportKey;

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
enum Enc {
    A256Gcm,
    A128CbcHs256,
}

/// The parts of a compact JWE, with its protected header read.
#[derive(Debug)]
pub struct ParsedJwe {
    pub kid: String,
    oaep: &'static OaepAlgorithm,
    enc: Enc,
    /// ASCII(BASE64URL(UTF8(protected header))): the additional authenticated data.
    aad: Vec<u8>,
    encrypted_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
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

/// Decrypts a parsed JWE with the transport key its `kid` named.
pub fn decrypt(jwe: &ParsedJwe, key: &TransportKey) -> Result<Zeroizing<Vec<u8>>, DecryptFailed> {
    if jwe.encrypted_key.len() != key.size_bytes() {
        return Err(DecryptFailed("encrypted key length"));
    }
    // Both content encryptions take a 256-bit key.
    let mut cek = Zeroizing::new([0u8; 32]);
    let mut out = Zeroizing::new(vec![0u8; key.size_bytes()]);
    let rsa_ok = match key
        .oaep()
        .decrypt(jwe.oaep, &jwe.encrypted_key, &mut out, None)
    {
        Ok(plain) if plain.len() == cek.len() => {
            cek.copy_from_slice(plain);
            true
        }
        _ => false,
    };
    if !rsa_ok {
        // RFC 7516 §11.5: carry on with a random key; the tag check fails.
        aws_lc_rs::rand::fill(cek.as_mut_slice()).map_err(|_| DecryptFailed("rng"))?;
    }
    let plain = match jwe.enc {
        Enc::A256Gcm => open_a256gcm(&cek[..], &jwe.iv, &jwe.aad, &jwe.ciphertext, &jwe.tag),
        Enc::A128CbcHs256 => {
            open_a128cbc_hs256(&cek[..], &jwe.iv, &jwe.aad, &jwe.ciphertext, &jwe.tag)
        }
    }?;
    if !rsa_ok {
        return Err(DecryptFailed("content key"));
    }
    Ok(plain)
}

fn open_a256gcm(
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>, DecryptFailed> {
    let fail = DecryptFailed("content authentication");
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek).map_err(|_| fail)?);
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| fail)?;
    let mut in_out = Zeroizing::new(Vec::with_capacity(ciphertext.len() + tag.len()));
    in_out.extend_from_slice(ciphertext);
    in_out.extend_from_slice(tag);
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut in_out)
        .map_err(|_| fail)?
        .len();
    in_out.truncate(len);
    Ok(in_out)
}

/// RFC 7518 §5.2.2: the first half of the key authenticates (HMAC-SHA-256 over
/// AAD, IV, ciphertext and the AAD's length in bits, truncated to 128 bits),
/// the second half decrypts (AES-128-CBC, PKCS#7). The tag is checked in
/// constant time, and before any decryption.
fn open_a128cbc_hs256(
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>, DecryptFailed> {
    let fail = DecryptFailed("content authentication");
    let (mac_key, enc_key) = cek.split_at(16);
    let expected = cbc_hs256_tag(mac_key, iv, aad, ciphertext);
    constant_time::verify_slices_are_equal(&expected, tag).map_err(|_| fail)?;
    let key = PaddedBlockDecryptingKey::cbc_pkcs7(
        UnboundCipherKey::new(&AES_128, enc_key).map_err(|_| fail)?,
    )
    .map_err(|_| fail)?;
    let iv: [u8; 16] = iv.try_into().map_err(|_| fail)?;
    let mut in_out = Zeroizing::new(ciphertext.to_vec());
    let len = key
        .decrypt(&mut in_out, DecryptionContext::Iv128(iv.into()))
        .map_err(|_| fail)?
        .len();
    in_out.truncate(len);
    Ok(in_out)
}

fn cbc_hs256_tag(mac_key: &[u8], iv: &[u8], aad: &[u8], ciphertext: &[u8]) -> [u8; 16] {
    let al = (aad.len() as u64).saturating_mul(8).to_be_bytes();
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, mac_key));
    ctx.update(aad);
    ctx.update(iv);
    ctx.update(ciphertext);
    ctx.update(&al);
    let full = ctx.sign();
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&full.as_ref()[..16]);
    tag
}

/// Finds the key a JWE names among those in service and decrypts it.
pub fn decrypt_with(
    jwe: &str,
    keys: &[Arc<TransportKey>],
) -> Result<Zeroizing<Vec<u8>>, DecryptFailed> {
    let parsed = parse(jwe)?;
    let key = keys
        .iter()
        .find(|k| k.kid == parsed.kid)
        .ok_or(DecryptFailed("unknown kid"))?;
    decrypt(&parsed, key)
}

/// What an inbound JWE's plaintext must be (API.md "PIN encryption (inbound)"):
/// the PIN's digits, or `{"pin","card_id"?,"iat"?}` where `card_id` must be the
/// card's and `iat` at most `max_age_s` old (and not more than a minute ahead).
/// Returns the PIN text, for the PIN policy to check.
pub fn pin_from_plaintext(
    plain: &[u8],
    card_id: Option<&str>,
    now: i64,
    max_age_s: i64,
) -> Result<Zeroizing<String>, DecryptFailed> {
    let text = std::str::from_utf8(plain).map_err(|_| DecryptFailed("plaintext not UTF-8"))?;
    if !text.starts_with('{') {
        return Ok(Zeroizing::new(text.to_owned()));
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Payload {
        pin: Zeroizing<String>,
        card_id: Option<String>,
        iat: Option<f64>,
    }
    let payload: Payload =
        serde_json::from_str(text).map_err(|_| DecryptFailed("plaintext JSON shape"))?;
    if let Some(bound) = &payload.card_id {
        if Some(bound.as_str()) != card_id {
            return Err(DecryptFailed("card_id does not match"));
        }
    }
    if let Some(iat) = payload.iat {
        let age = now as f64 - iat;
        if !age.is_finite() || age > max_age_s as f64 || age < -60.0 {
            return Err(DecryptFailed("iat out of range"));
        }
    }
    Ok(payload.pin)
}

/// A device's public P-256 key, checked: a JWK with `kty` `EC`, `crv` `P-256`,
/// `x` and `y` of 32 bytes naming a point on the curve, and no private part.
#[derive(Debug, Clone)]
pub struct DeviceKey {
    /// The uncompressed point: 0x04 || x || y.
    point: Vec<u8>,
    kid: Option<String>,
}

impl DeviceKey {
    /// Checks a JWK; the error is a sentence for the API's `detail`.
    pub fn from_jwk(jwk: &Value) -> Result<DeviceKey, String> {
        let Some(obj) = jwk.as_object() else {
            return Err("`device_key` must be a JWK: a JSON object".into());
        };
        let text = |name: &str| obj.get(name).and_then(Value::as_str);
        if text("kty") != Some("EC") {
            return Err("`device_key` must be an elliptic-curve key: `kty` \"EC\"".into());
        }
        if text("crv") != Some("P-256") {
            return Err("`device_key` must be on the P-256 curve: `crv` \"P-256\"".into());
        }
        if obj.contains_key("d") {
            return Err(
                "`device_key` must be the public key only: it has a private part (`d`); keep that on the device"
                    .into(),
            );
        }
        if let Some(u) = obj.get("use") {
            if u.as_str() != Some("enc") {
                return Err("`device_key` `use`, where given, must be \"enc\"".into());
            }
        }
        if let Some(a) = obj.get("alg") {
            if a.as_str() != Some("ECDH-ES") {
                return Err("`device_key` `alg`, where given, must be \"ECDH-ES\"".into());
            }
        }
        let coord = |name: &str| -> Result<Vec<u8>, String> {
            text(name)
                .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    format!("`device_key` `{name}` must be 32 bytes, base64url without padding")
                })
        };
        let (x, y) = (coord("x")?, coord("y")?);
        let kid = match obj.get("kid") {
            None => None,
            Some(Value::String(k)) if !k.is_empty() && k.len() <= 200 => Some(k.clone()),
            Some(_) => {
                return Err("`device_key` `kid`, where given, must be 1 to 200 characters".into());
            }
        };
        let mut point = Vec::with_capacity(65);
        point.push(4);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        agreement::ParsedPublicKey::try_from(&UnparsedPublicKey::new(&ECDH_P256, &point))
            .map_err(|_| "`device_key` is not a point on the P-256 curve".to_owned())?;
        Ok(DeviceKey { point, kid })
    }
}

/// Concat KDF (NIST SP 800-56A, RFC 7518 §4.6.2), one SHA-256 round: enough
/// for any key of up to 256 bits. `alg` is the AlgorithmID (for direct
/// agreement, the `enc` value).
fn concat_kdf(z: &[u8], alg: &[u8], apu: &[u8], apv: &[u8], bits: u32) -> Zeroizing<Vec<u8>> {
    let len = |b: &[u8]| (b.len() as u32).to_be_bytes();
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&1u32.to_be_bytes());
    ctx.update(z);
    ctx.update(&len(alg));
    ctx.update(alg);
    ctx.update(&len(apu));
    ctx.update(apu);
    ctx.update(&len(apv));
    ctx.update(apv);
    ctx.update(&bits.to_be_bytes()); // SuppPubInfo: the key length in bits
    let full = ctx.finish();
    Zeroizing::new(full.as_ref()[..(bits as usize / 8).min(32)].to_vec())
}

/// The content key of an `ECDH-ES` + `A256GCM` JWE without `apu` / `apv`.
fn concat_kdf_a256gcm(z: &[u8]) -> Zeroizing<Vec<u8>> {
    concat_kdf(z, b"A256GCM", b"", b"", 256)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptFailed;

/// Encrypts `plaintext` to a device key: compact JWE, `ECDH-ES` + `A256GCM`,
/// the ephemeral public key in the header's `epk`.
pub fn encrypt_to_device(device: &DeviceKey, plaintext: &[u8]) -> Result<String, EncryptFailed> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let ephemeral = EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| EncryptFailed)?;
    let epk = ephemeral.compute_public_key().map_err(|_| EncryptFailed)?;
    let epk = epk.as_ref();
    if epk.len() != 65 {
        return Err(EncryptFailed);
    }
    let cek = agreement::agree_ephemeral(
        ephemeral,
        UnparsedPublicKey::new(&ECDH_P256, &device.point),
        EncryptFailed,
        |z| Ok(concat_kdf_a256gcm(z)),
    )?;
    let mut header = serde_json::json!({
        "alg": "ECDH-ES",
        "enc": "A256GCM",
        "epk": {
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&epk[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&epk[33..65]),
        },
    });
    if let Some(kid) = &device.kid {
        header["kid"] = Value::String(kid.clone());
    }
    let header_b64 =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(|_| EncryptFailed)?);
    let mut iv = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| EncryptFailed)?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &cek[..]).map_err(|_| EncryptFailed)?);
    let mut in_out = Zeroizing::new(plaintext.to_vec());
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(header_b64.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| EncryptFailed)?;
    Ok(format!(
        "{header_b64}..{}.{}.{}",
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(&*in_out),
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey};
    use serde_json::json;

    use crate::keys::transport::{TransportBits, generate_pkcs8};

    fn key() -> Arc<TransportKey> {
        let pkcs8 = generate_pkcs8(TransportBits::Rsa2048).unwrap();
        Arc::new(TransportKey::from_pkcs8(1, 0, &pkcs8).unwrap())
    }

    /// An encrypter written from the RFC, for round trips (the independent
    /// implementation is the Python interop test).
    fn encrypt(key: &TransportKey, alg: &str, enc: &str, plain: &[u8]) -> String {
        let header = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&json!({"alg": alg, "enc": enc, "kid": key.kid})).unwrap());
        let mut cek = [0u8; 32];
        aws_lc_rs::rand::fill(&mut cek).unwrap();
        let public =
            OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(&key.spki).unwrap())
                .unwrap();
        let mut ek = vec![0u8; public.ciphertext_size()];
        let oaep = if alg == "RSA-OAEP" {
            &OAEP_SHA1_MGF1SHA1
        } else {
            &OAEP_SHA256_MGF1SHA256
        };
        let ek = public.encrypt(oaep, &cek, &mut ek, None).unwrap().to_vec();
        let (iv, ct, tag) = if enc == "A256GCM" {
            let mut iv = [0u8; 12];
            aws_lc_rs::rand::fill(&mut iv).unwrap();
            let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &cek).unwrap());
            let mut buf = plain.to_vec();
            let tag = k
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(iv),
                    Aad::from(header.as_bytes()),
                    &mut buf,
                )
                .unwrap();
            (iv.to_vec(), buf, tag.as_ref().to_vec())
        } else {
            use aws_lc_rs::cipher::{EncryptionContext, PaddedBlockEncryptingKey};
            let mut iv = [0u8; 16];
            aws_lc_rs::rand::fill(&mut iv).unwrap();
            let k = PaddedBlockEncryptingKey::cbc_pkcs7(
                UnboundCipherKey::new(&AES_128, &cek[16..]).unwrap(),
            )
            .unwrap();
            let mut buf = plain.to_vec();
            k.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv.into()))
                .unwrap();
            let tag = cbc_hs256_tag(&cek[..16], &iv, header.as_bytes(), &buf);
            (iv.to_vec(), buf, tag.to_vec())
        };
        [
            header,
            URL_SAFE_NO_PAD.encode(ek),
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(ct),
            URL_SAFE_NO_PAD.encode(tag),
        ]
        .join(".")
    }

    #[test]
    fn round_trips_every_combination_and_refuses_tampering() {
        let k = key();
        let keys = vec![k.clone()];
        for alg in ["RSA-OAEP-256", "RSA-OAEP"] {
            for enc in ["A256GCM", "A128CBC-HS256"] {
                for plain in [&b"0123"[..], b"{\"pin\":\"4821\"}", b"0123456789abcdef0123"] {
                    let jwe = encrypt(&k, alg, enc, plain);
                    assert_eq!(
                        &decrypt_with(&jwe, &keys).unwrap()[..],
                        plain,
                        "{alg} {enc}"
                    );
                    // Flip one bit of each part in turn.
                    let parts: Vec<&str> = jwe.split('.').collect();
                    for i in [1, 2, 3, 4] {
                        let mut bytes = URL_SAFE_NO_PAD.decode(parts[i]).unwrap();
                        bytes[0] ^= 1;
                        let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
                        p[i] = URL_SAFE_NO_PAD.encode(bytes);
                        assert!(
                            decrypt_with(&p.join("."), &keys).is_err(),
                            "{alg} {enc} part {i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn refuses_other_headers_and_shapes() {
        let k = key();
        let keys = vec![k.clone()];
        let good = encrypt(&k, "RSA-OAEP-256", "A256GCM", b"1357");
        let rest: Vec<&str> = good.splitn(2, '.').collect();
        for header in [
            json!({"alg": "RSA1_5", "enc": "A256GCM", "kid": k.kid}),
            json!({"alg": "RSA-OAEP-256", "enc": "A128GCM", "kid": k.kid}),
            json!({"alg": "RSA-OAEP-256", "enc": "A256GCM"}),
            json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "other"}),
            json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": k.kid, "zip": "DEF"}),
        ] {
            let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
            assert!(
                decrypt_with(&format!("{h}.{}", rest[1]), &keys).is_err(),
                "{header}"
            );
        }
        for bad in [
            "",
            "a.b.c.d",
            "a.b.c.d.e.f",
            &format!("{good}="),
            &good.replace('.', ".."),
        ] {
            assert!(decrypt_with(bad, &keys).is_err(), "{bad}");
        }
    }

    #[test]
    fn plaintext_rules() {
        let now = 1_000_000;
        assert_eq!(
            &*pin_from_plaintext(b"0123", Some("card_a"), now, 300).unwrap(),
            "0123"
        );
        let ok = format!(r#"{{"pin":"0123","card_id":"card_a","iat":{}}}"#, now - 299);
        assert_eq!(
            &*pin_from_plaintext(ok.as_bytes(), Some("card_a"), now, 300).unwrap(),
            "0123"
        );
        for bad in [
            r#"{"pin":"0123","card_id":"card_b"}"#.to_owned(),
            format!(r#"{{"pin":"0123","iat":{}}}"#, now - 301),
            format!(r#"{{"pin":"0123","iat":{}}}"#, now + 120),
            r#"{"pin":1234}"#.to_owned(),
            r#"{"card_id":"card_a"}"#.to_owned(),
            r#"{"pin":"0123","nonce":"x"}"#.to_owned(),
            "{".to_owned(),
        ] {
            assert!(
                pin_from_plaintext(bad.as_bytes(), Some("card_a"), now, 300).is_err(),
                "{bad}"
            );
        }
        assert!(
            pin_from_plaintext(br#"{"pin":"0123","card_id":"card_a"}"#, None, now, 300).is_err()
        );
    }

    #[test]
    fn device_keys_are_checked() {
        // A valid public key, from a fresh pair.
        let private = agreement::PrivateKey::generate(&ECDH_P256).unwrap();
        let public = private.compute_public_key().unwrap();
        let p = public.as_ref();
        let x = URL_SAFE_NO_PAD.encode(&p[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&p[33..65]);
        let good = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "dev-1"});
        let device = DeviceKey::from_jwk(&good).unwrap();

        let mut off = URL_SAFE_NO_PAD.decode(&y).unwrap();
        off[31] ^= 1;
        for bad in [
            json!("key"),
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "EC", "crv": "P-384", "x": x, "y": y}),
            json!({"kty": "EC", "crv": "P-256", "x": x, "y": URL_SAFE_NO_PAD.encode(off)}),
            json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "d": x}),
            json!({"kty": "EC", "crv": "P-256", "x": x}),
            json!({"kty": "EC", "crv": "P-256", "x": format!("{x}="), "y": y}),
            json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig"}),
        ] {
            assert!(DeviceKey::from_jwk(&bad).is_err(), "{bad}");
        }

        // Decrypt what we encrypt, with the device's private key and the RFC's KDF.
        let jwe = encrypt_to_device(&device, br#"{"pin":"1234"}"#).unwrap();
        let parts: Vec<&str> = jwe.split('.').collect();
        assert_eq!(parts.len(), 5);
        assert!(parts[1].is_empty());
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ECDH-ES");
        assert_eq!(header["enc"], "A256GCM");
        assert_eq!(header["kid"], "dev-1");
        let mut epk = vec![4u8];
        epk.extend(
            URL_SAFE_NO_PAD
                .decode(header["epk"]["x"].as_str().unwrap())
                .unwrap(),
        );
        epk.extend(
            URL_SAFE_NO_PAD
                .decode(header["epk"]["y"].as_str().unwrap())
                .unwrap(),
        );
        let cek = agreement::agree(
            &private,
            UnparsedPublicKey::new(&ECDH_P256, &epk),
            (),
            |z| Ok(concat_kdf_a256gcm(z)),
        )
        .unwrap();
        let plain = open_a256gcm(
            &cek[..],
            &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            parts[0].as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[3]).unwrap(),
            &URL_SAFE_NO_PAD.decode(parts[4]).unwrap(),
        )
        .unwrap();
        assert_eq!(&plain[..], br#"{"pin":"1234"}"#);
    }

    #[test]
    fn concat_kdf_matches_rfc7518_appendix_c() {
        let z = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let key = concat_kdf(&z, b"A128GCM", b"Alice", b"Bob", 128);
        assert_eq!(URL_SAFE_NO_PAD.encode(&key[..]), "VqqN6vgjbSBcIijNcacQGg");
    }
}
