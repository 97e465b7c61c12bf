//! What the jwe tests share: constants, helpers and fixtures.

use crate::harness::{Reply, Server};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, ECDH_P256, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::cipher::{AES_128, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey};
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::{digest, hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub(super) const PAN: &str = "4111111111111111";

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A published key, read from its PEM.
pub(super) struct Published {
    pub(super) kid: String,
    pub(super) key: OaepPublicEncryptingKey,
}

pub(super) fn published(s: &Server, kid: &str) -> Published {
    let r = s.call(
        "GET",
        &format!("/v1/pin-encryption-keys/{kid}.pem"),
        None,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let pem = r.body.as_str().unwrap().to_owned();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(b64).unwrap();
    Published {
        kid: kid.to_owned(),
        key: OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(&der).unwrap()).unwrap(),
    }
}

pub(super) fn jwks(s: &Server) -> Vec<Value> {
    let r = s.call("GET", "/v1/pin-encryption-keys", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["keys"].as_array().unwrap().clone()
}

pub(super) fn kids(s: &Server) -> Vec<String> {
    jwks(s)
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

pub(super) fn current(s: &Server) -> Published {
    let kid = kids(s)[0].clone();
    published(s, &kid)
}

/// A compact JWE per RFC 7516 with the given header (which names alg and enc).
pub(super) fn encrypt_with_header(to: &Published, header: &Value, plain: &[u8]) -> String {
    let alg = header["alg"].as_str().unwrap_or("RSA-OAEP-256");
    let enc = header["enc"].as_str().unwrap_or("A256GCM");
    let h = B64.encode(serde_json::to_vec(header).unwrap());
    let mut cek = [0u8; 32];
    rand::fill(&mut cek).unwrap();
    let oaep = if alg == "RSA-OAEP" {
        &OAEP_SHA1_MGF1SHA1
    } else {
        &OAEP_SHA256_MGF1SHA256
    };
    let mut ek = vec![0u8; to.key.ciphertext_size()];
    let ek = to.key.encrypt(oaep, &cek, &mut ek, None).unwrap().to_vec();
    let (iv, ct, tag) = if enc == "A128CBC-HS256" {
        let mut iv = [0u8; 16];
        rand::fill(&mut iv).unwrap();
        let k = PaddedBlockEncryptingKey::cbc_pkcs7(
            UnboundCipherKey::new(&AES_128, &cek[16..]).unwrap(),
        )
        .unwrap();
        let mut buf = plain.to_vec();
        k.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv.into()))
            .unwrap();
        let mut m = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, &cek[..16]));
        m.update(h.as_bytes());
        m.update(&iv);
        m.update(&buf);
        m.update(&((h.len() as u64) * 8).to_be_bytes());
        let tag = m.sign().as_ref()[..16].to_vec();
        (iv.to_vec(), buf, tag)
    } else {
        let mut iv = [0u8; 12];
        rand::fill(&mut iv).unwrap();
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &cek).unwrap());
        let mut buf = plain.to_vec();
        let tag = k
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(h.as_bytes()),
                &mut buf,
            )
            .unwrap();
        (iv.to_vec(), buf, tag.as_ref().to_vec())
    };
    [
        h,
        B64.encode(ek),
        B64.encode(iv),
        B64.encode(ct),
        B64.encode(tag),
    ]
    .join(".")
}

pub(super) fn encrypt(to: &Published, alg: &str, enc: &str, plain: &str) -> String {
    encrypt_with_header(
        to,
        &json!({"alg": alg, "enc": enc, "kid": to.kid}),
        plain.as_bytes(),
    )
}

pub(super) fn set_encrypted(s: &Server, key: &str, card: &str, token: &str, jwe: &str) -> Reply {
    s.call(
        "PUT",
        &format!("/v1/cards/{card}/pin"),
        Some(key),
        Some(&json!({"control_token": token, "encrypted_pin": jwe}).to_string()),
    )
}

/// A device key pair; its public half as a JWK.
pub(super) fn device() -> (PrivateKey, Value) {
    let private = PrivateKey::generate(&ECDH_P256).unwrap();
    let public = private.compute_public_key().unwrap();
    let p = public.as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..65])});
    (private, jwk)
}

/// Decrypts a reveal's JWE with the device's private key (RFC 7518 §4.6).
pub(super) fn open_reveal(private: &PrivateKey, jwe: &str) -> (Value, Value) {
    let parts: Vec<&str> = jwe.split('.').collect();
    assert_eq!(parts.len(), 5, "{jwe}");
    assert!(parts[1].is_empty(), "ECDH-ES has no encrypted key");
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    let mut epk = vec![4u8];
    epk.extend(B64.decode(header["epk"]["x"].as_str().unwrap()).unwrap());
    epk.extend(B64.decode(header["epk"]["y"].as_str().unwrap()).unwrap());
    let cek = agreement::agree(private, UnparsedPublicKey::new(&ECDH_P256, &epk), (), |z| {
        let mut c = digest::Context::new(&digest::SHA256);
        c.update(&1u32.to_be_bytes());
        c.update(z);
        c.update(&7u32.to_be_bytes());
        c.update(b"A256GCM");
        c.update(&0u32.to_be_bytes());
        c.update(&0u32.to_be_bytes());
        c.update(&256u32.to_be_bytes());
        Ok(c.finish().as_ref().to_vec())
    })
    .unwrap();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &cek).unwrap());
    let mut buf = B64.decode(parts[3]).unwrap();
    buf.extend(B64.decode(parts[4]).unwrap());
    let iv: [u8; 12] = B64.decode(parts[2]).unwrap().try_into().unwrap();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(iv),
            Aad::from(parts[0].as_bytes()),
            &mut buf,
        )
        .unwrap();
    (header, serde_json::from_slice(plain).unwrap())
}

pub(super) fn reveal_to(s: &Server, key: &str, card: &str, jwk: &Value) -> Reply {
    let token = s.token(key, card, "reveal_pin");
    s.post(
        &format!("/v1/cards/{card}/pin/reveal"),
        key,
        &json!({"control_token": token, "device_key": jwk}).to_string(),
    )
}

pub(super) fn revealed_pin(s: &Server, key: &str, card: &str) -> String {
    let (private, jwk) = device();
    let r = reveal_to(s, key, card, &jwk);
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, plain) = open_reveal(&private, r.body["encrypted_pin"].as_str().unwrap());
    assert_eq!(plain["card_id"], card);
    plain["pin"].as_str().unwrap().to_owned()
}

/// Polls until `f` holds (state a background refresh reaches), for at most 20 s.
pub(super) fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
