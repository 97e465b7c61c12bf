//! Finding a card at authorization time (API.md): by PAN through the keyed
//! hash, among the calling program's cards only, narrowed by expiry, 404 and
//! 409 `card_ambiguous` as the contract says, after a key rotation too.

use crate::harness::{Reply, Server};
use serde_json::{Value, json};

const PAN: &str = "4111111111111111";
const OTHER: &str = "5555555555554444";

fn card(s: &Server, key: &str, body: Value) -> String {
    let r = s.post("/v1/cards", key, &body.to_string());
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

fn lookup(s: &Server, key: &str, body: Value) -> Reply {
    s.post("/v1/card-lookups", key, &body.to_string())
}

fn found(r: &Reply) -> (String, String) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.as_object().unwrap().len(), 2, "{}", r.body);
    (
        r.body["card_id"].as_str().unwrap().to_owned(),
        r.body["status"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn a_card_is_found_by_its_pan_among_the_programs_own() {
    let s = Server::start("lookups");
    let a = s.program("live", &[]);
    let b = s.program("live", &[]);
    let old = card(&s, &a, json!({"pan": PAN, "expiry": "2027-01"}));
    let new = card(&s, &a, json!({"pan": PAN, "expiry": "2029-12"}));
    let other = card(&s, &a, json!({"pan": OTHER}));
    let theirs = card(&s, &b, json!({"pan": PAN}));

    let r = lookup(&s, &a, json!({"pan": PAN}));
    assert_eq!((r.status, r.code()), (409, "card_ambiguous"), "{}", r.body);
    assert!(!r.body.to_string().contains(PAN), "the PAN is never echoed");
    assert_eq!(
        found(&lookup(&s, &a, json!({"pan": PAN, "expiry": "2029-12"}))).0,
        new
    );
    assert_eq!(
        found(&lookup(&s, &a, json!({"pan": PAN, "expiry": "2027-01"}))).0,
        old
    );
    let r = lookup(&s, &a, json!({"pan": PAN, "expiry": "2031-05"}));
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
    // A card that does not know its expiry is not ruled out by one.
    assert_eq!(
        found(&lookup(&s, &a, json!({"pan": OTHER, "expiry": "2030-01"}))).0,
        other
    );
    let with_psn = json!({"pan": OTHER, "pan_sequence_number": "01"});
    assert_eq!(found(&lookup(&s, &a, with_psn)).0, other);
    // Another program's card with the same PAN: each sees its own only.
    assert_eq!(
        found(&lookup(&s, &b, json!({"pan": PAN}))),
        (theirs, "active".into())
    );
    let c = s.program("test", &[]);
    let r = lookup(&s, &c, json!({"pan": PAN}));
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
    // The status is the card's.
    let path = format!("/v1/cards/{new}");
    let r = s.call("PATCH", &path, Some(&a), Some(r#"{"status":"suspended"}"#));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = lookup(&s, &a, json!({"pan": PAN, "expiry": "2029-12"}));
    assert_eq!(found(&r), (new.clone(), "suspended".into()));

    // Bad input: a clear 4xx, never the PAN in it.
    for (body, status, code) in [
        (json!({"pan": "4111111111111112"}), 422, "invalid_pan"),
        (json!({"pan": "411111"}), 422, "invalid_pan"),
        (
            json!({"pan": PAN, "pan_sequence_number": "1"}),
            422,
            "invalid_request",
        ),
        (
            json!({"pan": PAN, "expiry": "12/29"}),
            422,
            "invalid_request",
        ),
        (json!({"pan": PAN, "cvv": "123"}), 422, "invalid_request"),
        (json!({"pan": 4111111111111111u64}), 422, "invalid_request"),
        (json!({}), 422, "invalid_request"),
    ] {
        let r = lookup(&s, &a, body.clone());
        assert_eq!((r.status, r.code()), (status, code), "{body}: {}", r.body);
        assert!(
            !r.body.to_string().contains("411111111111111"),
            "{}",
            r.body
        );
    }
    let r = s.call(
        "POST",
        "/v1/card-lookups",
        None,
        Some(&json!({"pan": PAN}).to_string()),
    );
    assert_eq!(r.status, 401, "{}", r.body);

    // After a rotation of the lookup key, the cards are found by the new hash.
    let rotated = s.cli_json(&["keys", "rotate", "--kind", "storage"]);
    assert_eq!(rotated["cards_reencrypted"], 4, "{rotated}");
    assert_eq!(
        found(&lookup(&s, &a, json!({"pan": PAN, "expiry": "2027-01"}))).0,
        old
    );
    assert!(!s.logs().contains(PAN), "the PAN is never logged");
}
