//! One data key per purpose: webhook signing secrets under the `webhook` key,
//! stored idempotent responses under the `idempotency` key, each rotated (and
//! its rows sealed again) by `keys rotate` like the others, still opening
//! afterwards.

use crate::harness::Server;
use serde_json::{Value, json};

use super::support::*;

/// (kind, version) → rows it protects, from `keys list`.
fn protects(s: &Server, kind: &str, version: u64) -> u64 {
    let listed = s.cli_json(&["keys", "list"]);
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == kind && k["version"] == version)
        .unwrap_or_else(|| panic!("no {kind} v{version} in {listed}"))["protects"]
        .as_u64()
        .unwrap()
}

#[test]
fn webhook_secrets_and_idempotent_responses_have_their_own_rotated_keys() {
    let rx = Receiver::start(0);
    let s = start_env("purpose-keys", env(true));
    let key = s.program("test", &[]);
    let created = s.post(
        "/v1/webhook-endpoints",
        &key,
        &json!({ "url": rx.url(), "events": ["card.created"] }).to_string(),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let idem = [("Idempotency-Key", "purpose-keys-1")];
    let body = json!({ "pan": PAN }).to_string();
    let first = s.call_with(
        "POST",
        "/v1/cards",
        Some(&key),
        Some(&body),
        "application/json",
        &idem,
    );
    assert_eq!(first.status, 201, "{}", first.body);
    // Each is under its own kind, none under the PAN key.
    assert_eq!(protects(&s, "webhook", 1), 1);
    assert_eq!(protects(&s, "idempotency", 1), 1);
    assert_eq!(protects(&s, "pan", 1), 1, "the card's PAN only");

    let report = s.cli_json(&["keys", "rotate", "--kind", "storage"]);
    assert_eq!(report["secrets_resealed"], 2, "{report}");
    assert_eq!(protects(&s, "webhook", 1), 0);
    assert_eq!(protects(&s, "webhook", 2), 1);
    assert_eq!(protects(&s, "idempotency", 1), 0);
    assert_eq!(protects(&s, "idempotency", 2), 1);

    // The replay still opens, byte for byte the first answer.
    let again = s.call_with(
        "POST",
        "/v1/cards",
        Some(&key),
        Some(&body),
        "application/json",
        &idem,
    );
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    // And the secret still signs: a new event arrives signed with it.
    let card = s.card(&key, PAN2);
    wait_for("the new card's event", || {
        rx.hits().iter().any(|h| {
            serde_json::from_str::<Value>(&h.body)
                .is_ok_and(|b| b["data"]["card_id"] == card.as_str())
        })
    });
    for h in rx.hits() {
        let sig = h.signature.as_deref().expect("Pinvault-Signature");
        assert!(signature_valid(&secret, sig, &h.body), "{sig}");
    }
    // A second rotation finds nothing left under an old key but what it moves.
    let report = s.cli_json(&["keys", "rotate", "--kind", "storage"]);
    assert_eq!(report["secrets_resealed"], 2, "{report}");
}
