//! Transport key rotation: the grace period, and rotations made elsewhere.

use crate::harness::Server;
use serde_json::Value;

use super::support::*;

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
    assert_eq!(kinds, ["pin", "pan", "lookup", "webhook", "idempotency"]);
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
