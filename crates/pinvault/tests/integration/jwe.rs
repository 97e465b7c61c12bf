//! PIN encryption against the real binary: the published keys, every way an
//! inbound JWE can fail, reveal to a device key, rotation with its grace period.
//! The JWEs here are made with aws-lc-rs directly from RFC 7516/7518; the
//! independent JOSE implementation is tests/interop/jwe_interop.py (jwcrypto).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

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

const PAN: &str = "4111111111111111";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A published key, read from its PEM.
struct Published {
    kid: String,
    key: OaepPublicEncryptingKey,
}

fn published(s: &Server, kid: &str) -> Published {
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

fn jwks(s: &Server) -> Vec<Value> {
    let r = s.call("GET", "/v1/pin-encryption-keys", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["keys"].as_array().unwrap().clone()
}

fn kids(s: &Server) -> Vec<String> {
    jwks(s)
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn current(s: &Server) -> Published {
    let kid = kids(s)[0].clone();
    published(s, &kid)
}

/// A compact JWE per RFC 7516 with the given header (which names alg and enc).
fn encrypt_with_header(to: &Published, header: &Value, plain: &[u8]) -> String {
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

fn encrypt(to: &Published, alg: &str, enc: &str, plain: &str) -> String {
    encrypt_with_header(
        to,
        &json!({"alg": alg, "enc": enc, "kid": to.kid}),
        plain.as_bytes(),
    )
}

fn set_encrypted(s: &Server, key: &str, card: &str, token: &str, jwe: &str) -> Reply {
    s.call(
        "PUT",
        &format!("/v1/cards/{card}/pin"),
        Some(key),
        Some(&json!({"control_token": token, "encrypted_pin": jwe}).to_string()),
    )
}

/// A device key pair; its public half as a JWK.
fn device() -> (PrivateKey, Value) {
    let private = PrivateKey::generate(&ECDH_P256).unwrap();
    let public = private.compute_public_key().unwrap();
    let p = public.as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..65])});
    (private, jwk)
}

/// Decrypts a reveal's JWE with the device's private key (RFC 7518 §4.6).
fn open_reveal(private: &PrivateKey, jwe: &str) -> (Value, Value) {
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

fn reveal_to(s: &Server, key: &str, card: &str, jwk: &Value) -> Reply {
    let token = s.token(key, card, "reveal_pin");
    s.post(
        &format!("/v1/cards/{card}/pin/reveal"),
        key,
        &json!({"control_token": token, "device_key": jwk}).to_string(),
    )
}

fn revealed_pin(s: &Server, key: &str, card: &str) -> String {
    let (private, jwk) = device();
    let r = reveal_to(s, key, card, &jwk);
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, plain) = open_reveal(&private, r.body["encrypted_pin"].as_str().unwrap());
    assert_eq!(plain["card_id"], card);
    plain["pin"].as_str().unwrap().to_owned()
}

/// Polls until `f` holds (state a background refresh reaches), for at most 20 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn published_keys_default_2048_and_3072_by_configuration() {
    let s = Server::start("jwks");
    let keys = jwks(&s);
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    for (member, value) in [
        ("kty", "RSA"),
        ("use", "enc"),
        ("alg", "RSA-OAEP-256"),
        ("e", "AQAB"),
    ] {
        assert_eq!(k[member], value, "{k}");
    }
    assert_eq!(B64.decode(k["n"].as_str().unwrap()).unwrap().len(), 256);
    assert_eq!(
        k.as_object().unwrap().len(),
        6,
        "nothing but kty kid use alg n e: {k}"
    );
    let pem = published(&s, k["kid"].as_str().unwrap());
    assert_eq!(pem.key.key_size_bits(), 2048);
    let r = s.call("GET", "/v1/pin-encryption-keys/nope.pem", None, None);
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = s.call(
        "GET",
        &format!("/v1/pin-encryption-keys/{}", k["kid"].as_str().unwrap()),
        None,
        None,
    );
    assert_eq!(r.status, 404, "the PEM is under {{kid}}.pem");

    // The key is made once: a restart publishes the same one.
    let kid = k["kid"].clone();
    let dir = s.data.clone();
    let mut s = s;
    s.stop();
    let again = Server::start_with(dir.clone(), Vec::new());
    assert_eq!(jwks(&again)[0]["kid"], kid);
    drop(again);

    let large = Server::start_env("jwks3072", &[("PINVAULT_TRANSPORT_KEY_BITS", "3072")]);
    let k = &jwks(&large)[0];
    assert_eq!(B64.decode(k["n"].as_str().unwrap()).unwrap().len(), 384);
}

#[test]
fn every_inbound_failure_is_one_answer_and_uses_an_attempt() {
    let s = Server::start("jwefail");
    let key = s.program("live", &["set_token_attempts=10"]);
    let card = s.card(&key, PAN);
    let other = s.card(&key, PAN);
    let to = current(&s);
    let good = encrypt(&to, "RSA-OAEP-256", "A256GCM", "4821");
    let parts: Vec<&str> = good.split('.').collect();
    let flip = |i: usize| {
        let mut p: Vec<String> = parts.iter().map(|x| x.to_string()).collect();
        let mut bytes = B64.decode(&p[i]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x80;
        p[i] = B64.encode(bytes);
        p.join(".")
    };
    let header = |h: Value| encrypt_with_header(&to, &h, b"4821");
    let kid = to.kid.clone();
    let failures: Vec<(&str, String)> = vec![
        ("not five parts", parts[..4].join(".")),
        ("not base64url", good.replacen('.', ".*", 1)),
        ("padded base64", format!("{good}==")),
        (
            "header not JSON",
            format!("bm90IGpzb24.{}", parts[1..].join(".")),
        ),
        ("tampered encrypted key", flip(1)),
        ("tampered iv", flip(2)),
        ("tampered ciphertext", flip(3)),
        ("tampered tag", flip(4)),
        ("truncated encrypted key", {
            let mut p: Vec<String> = parts.iter().map(|x| x.to_string()).collect();
            p[1] = B64.encode(&B64.decode(&p[1]).unwrap()[1..]);
            p.join(".")
        }),
        (
            "unsupported alg",
            header(json!({"alg": "RSA1_5", "enc": "A256GCM", "kid": kid})),
        ),
        (
            "unsupported enc",
            header(json!({"alg": "RSA-OAEP-256", "enc": "A128GCM", "kid": kid})),
        ),
        (
            "no kid",
            header(json!({"alg": "RSA-OAEP-256", "enc": "A256GCM"})),
        ),
        (
            "unknown kid",
            header(json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "other"})),
        ),
        (
            "zip",
            header(json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": kid, "zip": "DEF"})),
        ),
        (
            "another card",
            encrypt(
                &to,
                "RSA-OAEP",
                "A128CBC-HS256",
                &json!({"pin": "4821", "card_id": other}).to_string(),
            ),
        ),
        (
            "stale",
            encrypt(
                &to,
                "RSA-OAEP-256",
                "A256GCM",
                &json!({"pin": "4821", "iat": now() - 301}).to_string(),
            ),
        ),
        (
            "from the future",
            encrypt(
                &to,
                "RSA-OAEP-256",
                "A256GCM",
                &json!({"pin": "4821", "iat": now() + 600}).to_string(),
            ),
        ),
        (
            "plaintext of another shape",
            encrypt(&to, "RSA-OAEP-256", "A256GCM", r#"{"pin":4821}"#),
        ),
    ];
    // Ten attempts per token: each failure uses one, then the token is used up.
    let mut first: Option<Value> = None;
    for chunk in failures.chunks(10) {
        let token = s.token(&key, &card, "set_pin");
        for (name, jwe) in chunk {
            let r = set_encrypted(&s, &key, &card, &token, jwe);
            assert_eq!(
                (r.status, r.code()),
                (422, "decryption_failed"),
                "{name}: {}",
                r.body
            );
            let first = first.get_or_insert_with(|| r.body.clone());
            assert_eq!(&r.body, first, "{name}: one answer for every failure");
        }
        let r = set_encrypted(&s, &key, &card, &token, &good);
        if chunk.len() == 10 {
            assert_eq!((r.status, r.code()), (403, "token_exhausted"), "{}", r.body);
        } else {
            assert_eq!(r.status, 204, "{}", r.body);
        }
    }
    assert_eq!(revealed_pin(&s, &key, &card), "4821");
    let status = s.get(&format!("/v1/cards/{card}/pin/status"), &key).body;
    assert_eq!(status["set_by"], "cardholder");

    // Decrypted PINs meet the program's policy like any other.
    let token = s.token(&key, &card, "set_pin");
    for (pin, code) in [
        ("1234", "weak_pin"),
        ("12a4", "invalid_pin"),
        ("123", "invalid_pin"),
    ] {
        let r = set_encrypted(
            &s,
            &key,
            &card,
            &token,
            &encrypt(&to, "RSA-OAEP", "A256GCM", pin),
        );
        assert_eq!((r.status, r.code()), (422, code), "{pin}");
    }
    let bound = json!({"pin": "0369", "card_id": card, "iat": now()}).to_string();
    let r = set_encrypted(
        &s,
        &key,
        &card,
        &token,
        &encrypt(&to, "RSA-OAEP-256", "A128CBC-HS256", &bound),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(revealed_pin(&s, &key, &card), "0369");

    // At card creation: the same answer, and no card is made.
    let before = s.get("/v1/cards?limit=100", &key).body["data"]
        .as_array()
        .unwrap()
        .len();
    for (name, jwe) in &failures {
        let r = s.post(
            "/v1/cards",
            &key,
            &json!({"pan": PAN, "pin": {"encrypted": jwe}}).to_string(),
        );
        assert_eq!(
            (r.status, r.code()),
            (422, "decryption_failed"),
            "{name}: {}",
            r.body
        );
    }
    // A card id in the plaintext cannot name a card not made yet.
    let r = s.post(
        "/v1/cards",
        &key,
        &json!({"pan": PAN, "pin": {"encrypted": encrypt(&to, "RSA-OAEP-256", "A256GCM", &json!({"pin": "4821", "card_id": card}).to_string())}}).to_string(),
    );
    assert_eq!(r.code(), "decryption_failed");
    let after = s.get("/v1/cards?limit=100", &key).body["data"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
    let r = s.post(
        "/v1/cards",
        &key,
        &json!({"pan": PAN, "pin": {"encrypted": encrypt(&to, "RSA-OAEP", "A128CBC-HS256", &json!({"pin": "7392", "iat": now()}).to_string())}}).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["pin"]["set_by"], "issuer");
    let preset = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(revealed_pin(&s, &key, &preset), "7392");

    // No PIN and no plaintext in the log.
    // (Without the listening address, whose port could hold the digits.)
    let logs = s.logs().replace(&s.base, "");
    for pin in ["4821", "0369", "7392"] {
        assert!(!logs.contains(pin), "log holds a PIN");
    }
}

#[test]
fn reveal_to_a_device_key_and_refuse_other_keys() {
    let s = Server::start("jwereveal");
    // No plaintext reveal for this program: the device key is the way.
    let key = s.program("live", &[]);
    let card = s.card(&key, PAN);
    let to = current(&s);
    let token = s.token(&key, &card, "set_pin");
    let r = set_encrypted(
        &s,
        &key,
        &card,
        &token,
        &encrypt(&to, "RSA-OAEP-256", "A256GCM", "58203"),
    );
    assert_eq!(r.status, 204, "{}", r.body);

    let (private, mut jwk) = device();
    jwk["kid"] = json!("phone-7");
    let r = reveal_to(&s, &key, &card, &jwk);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.as_object().unwrap().len(), 1, "{}", r.body);
    let (header, plain) = open_reveal(&private, r.body["encrypted_pin"].as_str().unwrap());
    assert_eq!(header["alg"], "ECDH-ES");
    assert_eq!(header["enc"], "A256GCM");
    assert_eq!(header["kid"], "phone-7");
    assert_eq!(header["epk"]["kty"], "EC");
    assert_eq!(header["epk"]["crv"], "P-256");
    assert_eq!(plain, json!({"pin": "58203", "card_id": card}));

    // Without a device key, and no plaintext reveal allowed: 403.
    let token = s.token(&key, &card, "reveal_pin");
    let r = s.post(
        &format!("/v1/cards/{card}/pin/reveal"),
        &key,
        &json!({"control_token": token}).to_string(),
    );
    assert_eq!((r.status, r.code()), (403, "plaintext_not_allowed"));

    let p = jwk.clone();
    let mut off_curve = p.clone();
    let mut y = B64.decode(p["y"].as_str().unwrap()).unwrap();
    y[31] ^= 1;
    off_curve["y"] = json!(B64.encode(y));
    let mut with_d = p.clone();
    with_d["d"] = json!(B64.encode([7u8; 32]));
    let mut p384 = p.clone();
    p384["crv"] = json!("P-384");
    let mut short = p.clone();
    short["x"] = json!(B64.encode([1u8; 31]));
    let mut sig = p.clone();
    sig["use"] = json!("sig");
    let bad = [
        ("not on the curve", off_curve),
        ("private part", with_d),
        ("other curve", p384),
        ("short coordinate", short),
        ("for signatures", sig),
        ("RSA", json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})),
        ("oct", json!({"kty": "oct", "k": "AAAA"})),
        (
            "X25519",
            json!({"kty": "OKP", "crv": "X25519", "x": B64.encode([9u8; 32])}),
        ),
        ("not an object", json!("key")),
        (
            "zero point",
            json!({"kty": "EC", "crv": "P-256", "x": B64.encode([0u8; 32]), "y": B64.encode([0u8; 32])}),
        ),
    ];
    let token = s.token(&key, &card, "reveal_pin");
    for (name, jwk) in &bad {
        let r = s.post(
            &format!("/v1/cards/{card}/pin/reveal"),
            &key,
            &json!({"control_token": token, "device_key": jwk}).to_string(),
        );
        assert_eq!(
            (r.status, r.code()),
            (422, "invalid_request"),
            "{name}: {}",
            r.body
        );
        assert!(
            r.body["detail"].as_str().unwrap().contains("device_key"),
            "{name}: {}",
            r.body
        );
    }
    // The refusals changed nothing: the token still works, once.
    let body = json!({"control_token": token, "device_key": jwk}).to_string();
    let r = s.post(&format!("/v1/cards/{card}/pin/reveal"), &key, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.post(&format!("/v1/cards/{card}/pin/reveal"), &key, &body);
    assert_eq!((r.status, r.code()), (403, "token_used"));
}

#[test]
fn rotation_keeps_the_old_key_for_the_grace_period_then_retires_it() {
    // The grace period from the environment, which the operator commands share.
    let s = Server::start_env("jwerotate", &[("PINVAULT_TRANSPORT_KEY_GRACE", "3")]);
    let key = s.program("live", &[]);
    let card = s.card(&key, PAN);
    let old = current(&s);

    // Storage rotation alone leaves the transport key as it is.
    let report = s.cli_json(&["keys", "rotate", "--kind", "storage"]);
    let kinds: Vec<&str> = report["rotated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["pin", "pan", "lookup"]);
    assert_eq!(kids(&s), std::slice::from_ref(&old.kid));

    let report = s.cli_json(&["keys", "rotate", "--kind", "transport"]);
    let rotated = report["rotated"].as_array().unwrap();
    assert_eq!(rotated.len(), 1, "{report}");
    assert_eq!(rotated[0]["kind"], "transport");
    assert_eq!(rotated[0]["version"], 2);
    let new_kid = rotated[0]["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old.kid);
    assert!(rotated[0]["previous_retires_at"].is_string(), "{report}");

    // The running server publishes the new key first; the old one still
    // decrypts. (It may already be retired if this machine is very slow: then
    // the JWKS shows the new key alone, which the next step checks anyway.)
    eventually("the new key is published", || kids(&s)[0] == new_kid);
    let ids = kids(&s);
    if ids.len() == 2 {
        assert_eq!(ids[1], old.kid);
        let token = s.token(&key, &card, "set_pin");
        let r = set_encrypted(
            &s,
            &key,
            &card,
            &token,
            &encrypt(&old, "RSA-OAEP", "A128CBC-HS256", "2468"),
        );
        // 204 while in grace; the retirement may win a race on a slow machine.
        assert!(
            r.status == 204 || r.code() == "decryption_failed",
            "{}",
            r.body
        );
    }
    let new = published(&s, &new_kid);
    let token = s.token(&key, &card, "set_pin");
    let r = set_encrypted(
        &s,
        &key,
        &card,
        &token,
        &encrypt(&new, "RSA-OAEP-256", "A256GCM", "1357"),
    );
    assert_eq!(r.status, 204, "{}", r.body);

    // After the grace period the old key is retired: gone from the JWKS and the
    // PEM, and a JWE to it is refused like any other failure.
    eventually("the old key is retired", || kids(&s) == [new_kid.clone()]);
    let r = s.call(
        "GET",
        &format!("/v1/pin-encryption-keys/{}.pem", old.kid),
        None,
        None,
    );
    assert_eq!(r.status, 404);
    let token = s.token(&key, &card, "set_pin");
    let r = set_encrypted(
        &s,
        &key,
        &card,
        &token,
        &encrypt(&old, "RSA-OAEP-256", "A256GCM", "9753"),
    );
    assert_eq!((r.status, r.code()), (422, "decryption_failed"));
    assert_eq!(revealed_pin(&s, &key, &card), "1357");

    let list = s.cli_json(&["keys", "list"]);
    let transport: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kind"] == "transport")
        .collect();
    assert_eq!(transport.len(), 2);
    assert_eq!(transport[0]["retired"], true);
    assert_eq!(transport[1]["retired"], false);
    assert_eq!(transport[1]["kid"], new_kid.as_str());
    assert_eq!(transport[1]["current"], true);
}

#[test]
fn a_key_made_by_a_rotation_elsewhere_is_used_by_every_server() {
    // A client may fetch the new key from one server and send the JWE to
    // another on the same database.
    let s = Server::start("jwefresh");
    let key = s.program("live", &[]);
    let card = s.card(&key, PAN);
    let dir = s.data.clone();
    let report = s.cli_json(&["keys", "rotate", "--kind", "transport"]);
    let new_kid = report["rotated"][0]["kid"].as_str().unwrap().to_owned();
    // Read the new public key from the database's side: a second server on the
    // same data directory loads it at start.
    let second = Server::start_with(dir, Vec::new());
    let new = published(&second, &new_kid);
    let token = s.token(&key, &card, "set_pin");
    let r = set_encrypted(
        &s,
        &key,
        &card,
        &token,
        &encrypt(&new, "RSA-OAEP-256", "A256GCM", "8042"),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(revealed_pin(&s, &key, &card), "8042");
}
