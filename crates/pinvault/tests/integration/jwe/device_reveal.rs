//! Reveal to a device key, and refusing other keys.

use crate::harness::Server;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;

use super::support::*;

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
