//! Abuse limits: per card, per key, per client address, and their flags.

use crate::harness::{self, Server};
use serde_json::json;

use super::support::*;

/// Per card and per API key, each operation its own bucket; a limited request
/// changes nothing; the metrics count it.
#[test]
fn rate_limits_per_card_and_per_key() {
    let s = Server::start_env(
        "limits",
        &[
            ("PINVAULT_RATE_LIMIT_CARD_VERIFY", "3/h"),
            ("PINVAULT_RATE_LIMIT_KEY_TOKENS", "4/h"),
            ("PINVAULT_RATE_LIMIT_CARD_REVEAL", "1/h"),
            ("PINVAULT_RATE_LIMIT_CARD_TOKENS", "off"),
        ],
    );
    let key = s.program("test", &["allow_plaintext_reveal=true"]);
    let card = s.card(&key, PAN);
    let other = s.card(&key, PAN);
    // Test-mode cards have PIN 0000: three matches, then the fourth is refused
    // before it is checked: a wrong PIN counts no try.
    let verify = |c: &str, pin: &str| {
        s.post(
            &format!("/v1/test/cards/{c}/pin/verify"),
            &key,
            &json!({ "pin": pin }).to_string(),
        )
    };
    for _ in 0..3 {
        assert_eq!(verify(&card, "0000").body["result"], "match");
    }
    assert_limited(&verify(&card, "1357"), "for this card");
    let status = s.get(&format!("/v1/cards/{card}/pin/status"), &key);
    assert_eq!(status.body["fail_count"], 0, "{}", status.body);
    // Another card has its own bucket.
    assert_eq!(verify(&other, "0000").body["result"], "match");
    assert_eq!(
        metric(&s, "pinvault_rate_limited_total{limit=\"card_verify\"}"),
        1
    );

    // Reveal: one per card per hour here; the second token works but its
    // reveal is refused, and the token stays unused.
    let first = s.reveal(&key, &card);
    assert_eq!(first, "0000");
    let token = s.token(&key, &card, "reveal_pin");
    let r = s.post(
        &format!("/v1/cards/{card}/pin/reveal"),
        &key,
        &json!({ "control_token": token }).to_string(),
    );
    assert_limited(&r, "for this card");
    // Tokens per API key: 4 an hour; two were made above, two more, then none.
    s.token(&key, &other, "set_pin");
    s.token(&key, &other, "set_pin");
    let r = s.post(
        &format!("/v1/cards/{other}/control-tokens"),
        &key,
        r#"{"type":"set_pin"}"#,
    );
    assert_limited(&r, "for this API key");
    // Another API key (another program) is not held back by the first's.
    let key2 = s.program("test", &[]);
    let card2 = s.card(&key2, PAN);
    s.token(&key2, &card2, "set_pin");
    assert_eq!(
        metric(&s, "pinvault_rate_limited_total{limit=\"key_tokens\"}"),
        1
    );
    // The document says so, for each limited operation.
    let doc = s.call("GET", "/openapi.json", None, None).body;
    for (path, method) in [
        ("/v1/cards/{id}/pin/verify", "post"),
        ("/v1/test/cards/{id}/pin/verify", "post"),
        ("/v1/cards/{id}/control-tokens", "post"),
        ("/v1/cards/{id}/pin/reveal", "post"),
    ] {
        let r = &doc["paths"][path][method]["responses"]["429"];
        assert!(r["headers"]["Retry-After"].is_object(), "{path}: {r}");
    }
    assert_eq!(
        metric(&s, "pinvault_rate_limited_total{limit=\"card_reveal\"}"),
        1
    );
}

/// The PIN block verification path is limited per card too (the same bucket
/// as the sandbox's), and a bad limit is refused at start.
#[test]
fn rate_limit_flags_are_checked() {
    let dir = harness::fresh_dir("limit-flags");
    let out = dir
        .command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit-card-verify",
            "5/day",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rate-limit-card-verify"), "{err}");
    let out = dir
        .command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--trusted-proxies",
            "10.0.0.0/33",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--trusted-proxies"));
}

#[test]
fn verification_is_limited_per_card() {
    let s = Server::start_env(
        "limits-verify",
        &[("PINVAULT_RATE_LIMIT_CARD_VERIFY", "2/h")],
    );
    let key = s.program("live", &[]);
    let card = s.card(&key, PAN);
    let body = json!({ "pin_block": "00", "format": "iso_4", "zone_key_id": "zpk_nonexistentnonexistent" })
        .to_string();
    for _ in 0..2 {
        let r = s.post(&format!("/v1/cards/{card}/pin/verify"), &key, &body);
        assert_eq!(r.status, 404, "{}", r.body);
    }
    let r = s.post(&format!("/v1/cards/{card}/pin/verify"), &key, &body);
    assert_limited(&r, "for this card");
}

/// The widget pages and their API are limited per client address (their
/// static assets are not); behind a trusted proxy, per forwarded address.
#[test]
fn widgets_are_limited_per_client_address() {
    let s = Server::start_env(
        "limits-widgets",
        &[
            ("PINVAULT_RATE_LIMIT_WIDGET_ADDRESS", "3/h"),
            ("PINVAULT_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    );
    let key = s.program("test", &[]);
    let card = s.card(&key, PAN);
    let token = s.token(&key, &card, "set_pin");
    let page = format!("/widgets/pin-set?token={token}");
    let from =
        |ip: &str, path: &str| s.call_with("GET", path, None, None, "", &[("X-Forwarded-For", ip)]);
    for _ in 0..3 {
        let r = from("203.0.113.7", &page);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = from("203.0.113.7", &page);
    assert_limited(&r, "from this address");
    // The widget API shares the bucket; the assets and the SDK do not count.
    let r = s.call_with(
        "POST",
        "/widgets/api/pin-set",
        None,
        Some(&json!({"control_token": token, "encrypted_pin": "x"}).to_string()),
        "application/json",
        &[("X-Forwarded-For", "203.0.113.7")],
    );
    assert_limited(&r, "from this address");
    assert_eq!(from("203.0.113.7", "/widgets/assets/widget.js").status, 200);
    assert_eq!(from("203.0.113.7", "/sdk/pinvault.js").status, 200);
    // Another client behind the same proxy has its own bucket.
    assert_eq!(from("198.51.100.9", &page).status, 200);
    assert_eq!(
        metric(&s, "pinvault_rate_limited_total{limit=\"widget_address\"}"),
        2
    );
}

/// Card lookups by PAN are limited per API key (each key its own bucket).
#[test]
fn card_lookups_are_limited_per_api_key() {
    let s = Server::start_env(
        "limits-lookups",
        &[("PINVAULT_RATE_LIMIT_KEY_LOOKUPS", "2/h")],
    );
    let key = s.program("live", &[]);
    let other = s.program("live", &[]);
    s.card(&key, PAN);
    let body = json!({ "pan": PAN }).to_string();
    for _ in 0..2 {
        let r = s.post("/v1/card-lookups", &key, &body);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = s.post("/v1/card-lookups", &key, &body);
    assert_limited(&r, "for this API key");
    let r = s.post("/v1/card-lookups", &other, &body);
    assert_eq!(r.status, 404, "another key has its own bucket: {}", r.body);
}
