//! The seed-compatible routes (COMPAT.md) on this run's backend: what they
//! write that v1 does not (a token that always stages, a PIN set with no
//! token, a webhook endpoint of Spidr's format and deliveries under other
//! names), checked through the v1 API and a receiver. The vendors' whole
//! documented flows, against independent JOSE code, are in
//! tests/interop/compat_api.py.

use base64::Engine as _;
use serde_json::{Value, json};

use super::support::{PAN, Receiver, env, signature_valid, start_env, wait_for};
use crate::harness::Server;

/// HTTP Basic with the API key as the user name, as Stripe's and Marqeta's clients send it.
fn basic(key: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    format!("Basic {b64}")
}

fn call(
    s: &Server,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&str>,
) -> crate::harness::Reply {
    let auth = basic(key);
    s.call_with(
        method,
        path,
        None,
        body,
        "application/json",
        &[("authorization", auth.as_str())],
    )
}

#[test]
fn spidr_stages_commits_and_names_its_webhooks_thredd_sets_with_no_token() {
    let s = start_env("compat", env(true));
    // A direct-mode program: Spidr's token stages whatever the mode.
    let key = s.program(
        "test",
        &["allow_plaintext_pin=true", "allow_plaintext_reveal=true"],
    );
    let rx = Receiver::start(0);
    let names = [
        "card.pinToken",
        "account.pinChangeStageSuccess",
        "account.pinChangeStageFail",
        "card.pinChanged",
        "account.pinChange",
        "card.resetPin",
    ];
    let r = s.post(
        "/v1/webhook-endpoints",
        &key,
        &json!({"url": rx.url(), "events": names, "format": "spidr"}).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["format"], "spidr");
    let (endpoint, secret) = (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["secret"].as_str().unwrap().to_owned(),
    );
    // A v1 name is not one of Spidr's.
    let r = s.post(
        "/v1/webhook-endpoints",
        &key,
        &json!({"url": rx.url(), "events": ["pin.changed"], "format": "spidr"}).to_string(),
    );
    assert_eq!((r.status, r.code()), (422, "invalid_request"), "{}", r.body);

    let r = s.post(
        "/v1/cards",
        &key,
        &json!({"pan": PAN, "external_id": "spidr-card-1"}).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let card = r.body["id"].as_str().unwrap().to_owned();

    let vendor = |method: &str, path: &str| call(&s, method, path, &key, None);
    // Spidr: token, a set through v1 that stages, a refused set, commit.
    let r = vendor("GET", "/compat/spidr/v1/card/spidr-card-1/pinChangeToken");
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert!(
        r.body["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/widgets/pin-set?token={token}"))
    );
    let set = |pin: &str| {
        s.call(
            "PUT",
            &format!("/v1/cards/{card}/pin"),
            Some(&key),
            Some(&json!({"control_token": token, "pin": pin}).to_string()),
        )
    };
    assert_eq!(set("1111").status, 422, "a weak PIN is refused");
    let r = set("3816");
    assert_eq!(
        (r.status, &r.body["status"]),
        (202, &json!("staged")),
        "{}",
        r.body
    );
    assert_eq!(s.sandbox_verify(&key, &card, "3816")["result"], "mismatch");
    let r = vendor(
        "POST",
        &format!("/compat/spidr/v1/card/{card}/commitPinChange"),
    );
    assert_eq!((r.status, &r.body), (200, &json!({"status": "committed"})));
    let r = vendor(
        "POST",
        &format!("/compat/spidr/v1/card/{card}/commitPinChange"),
    );
    assert_eq!((r.status, r.code()), (409, "nothing_staged"));
    assert_eq!(s.sandbox_verify(&key, &card, "3816")["result"], "match");

    // Thredd: a set with no token (the program's own write), then its status.
    let r = s.call_with(
        "POST",
        "/compat/thredd/cards/spidr-card-1/pin",
        None,
        Some(r#"{"pin": 0472}"#),
        "application/json",
        &[("authorization", basic(&key).as_str())],
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(s.sandbox_verify(&key, &card, "3816")["result"], "mismatch");
    let r = vendor("GET", &format!("/compat/thredd/cards/{card}/pin/status"));
    assert_eq!(
        r.body,
        json!({"status": "Unblocked", "remainingTries": "2"})
    );
    assert_eq!(s.sandbox_verify(&key, &card, "0472")["result"], "match");
    let r = vendor("GET", &format!("/compat/thredd/cards/{card}/pin"));
    assert_eq!(r.body, json!({"pin": "0472"}));
    let status = s.get(&format!("/v1/cards/{card}/pin/status"), &key);
    assert_eq!(status.body["set_by"], "issuer");

    // Spidr's reset, every time.
    let r = vendor(
        "POST",
        &format!("/compat/spidr/v1/card/{card}/resetPinFailCount"),
    );
    assert_eq!((r.status, &r.body), (200, &json!({"pinFailCount": 0})));

    // What the endpoint got: Spidr's names, signed, the v1 event's body otherwise.
    let want = [
        "card.pinToken",
        "account.pinChangeStageFail",
        "account.pinChangeStageSuccess",
        "card.pinChanged",
        "account.pinChange",
        "card.pinChanged",
        "account.pinChange",
        "card.resetPin",
    ];
    wait_for("the Spidr webhooks", || rx.hits().len() >= want.len());
    let hits = rx.hits();
    let mut got: Vec<String> = Vec::new();
    for h in &hits {
        assert!(signature_valid(
            &secret,
            h.signature.as_deref().unwrap(),
            &h.body
        ));
        let body: Value = serde_json::from_str(&h.body).unwrap();
        assert_eq!(body["data"]["card_id"], card.as_str());
        assert!(body["id"].as_str().unwrap().starts_with("evt_"));
        got.push(body["type"].as_str().unwrap().to_owned());
    }
    let mut sorted_got = got.clone();
    sorted_got.sort();
    let mut sorted_want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
    sorted_want.sort();
    assert_eq!(sorted_got, sorted_want);
    let deliveries = s.get(
        &format!("/v1/webhook-endpoints/{endpoint}/deliveries"),
        &key,
    );
    let mut listed: Vec<String> = deliveries.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event_type"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, sorted_want);
    // The v1 events are unchanged: each under its own type.
    let events = s.get(&format!("/v1/events?card_id={card}&type=pin.changed"), &key);
    assert_eq!(events.body["data"].as_array().unwrap().len(), 2);
}
