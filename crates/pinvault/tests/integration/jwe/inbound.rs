//! The published keys, and every way an inbound JWE can fail.

use crate::harness::Server;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use super::support::*;

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
