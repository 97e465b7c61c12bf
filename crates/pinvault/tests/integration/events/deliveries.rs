//! Webhook deliveries (signed, retried across a restart, once across two nodes,
//! private targets refused, paginated) and the events API.

use crate::harness::Server;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::support::*;

#[test]
fn a_failing_receiver_gets_every_event_signed_across_a_restart() {
    let rx = Receiver::start(3);
    rx.failing.store(true, Ordering::SeqCst);
    let mut a = start_env("webhooks", env(true));
    let key = a.program(
        "test",
        &["allow_plaintext_pin=true", "allow_plaintext_reveal=true"],
    );
    let created = a.post(
        "/v1/webhook-endpoints",
        &key,
        &json!({ "url": rx.url(), "events": ALL_TYPES }).to_string(),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40);
    let endpoint = created.body["id"].as_str().unwrap().to_owned();
    assert!(endpoint.starts_with("we_"));
    let listed = a.get("/v1/webhook-endpoints", &key);
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["data"][0]["id"], endpoint.as_str());
    assert!(listed.body["data"][0].get("secret").is_none());
    assert!(!listed.body.to_string().contains(&secret));

    let card = lifecycle(&a, &key);
    // The receiver refuses; attempts go on failing until the server stops.
    wait_for("failed attempts", || rx.hits().len() >= 4);
    a.stop();
    let pending = rx.hits();
    assert!(pending.iter().all(|h| h.answered == 500));

    // Restarted on the same data: the same deliveries are retried, and new
    // events join them.
    rx.failing.store(false, Ordering::SeqCst);
    let b = Server::start_with(a.data.clone(), env(true));
    let card2 = b.card(&key, PAN2);
    let events = all_events(&b, &key);
    let mut expected = vec![
        "card.created",
        "card.created",
        "pin.token_created",
        "pin.token_created",
        "pin.changed",
        "pin.revealed",
        "pin.verification_failed",
        "pin.verification_failed",
        "pin.verification_failed",
        "pin.blocked",
        "pin.unblocked",
        "pin.fail_count_reset",
    ];
    expected.sort_unstable();
    assert_eq!(types_of(&events), expected);
    let delivered = |id: &str| {
        rx.hits().iter().any(|h| {
            h.answered == 200 && serde_json::from_str::<Value>(&h.body).is_ok_and(|b| b["id"] == id)
        })
    };
    wait_for("every event delivered", || {
        events.iter().all(|e| delivered(e["id"].as_str().unwrap()))
    });

    // Every request, failed or not, is signed with the endpoint's secret, and
    // carries exactly the event the API lists.
    let hits = rx.hits();
    for h in &hits {
        assert_eq!(h.path, "/hooks/pinvault");
        assert_eq!(h.content_type.as_deref(), Some("application/json"));
        let sig = h.signature.as_deref().expect("Pinvault-Signature");
        assert!(
            signature_valid(&secret, sig, &h.body),
            "bad signature {sig}"
        );
        assert!(!signature_valid("whsec_other", sig, &h.body));
        let body: Value = serde_json::from_str(&h.body).unwrap();
        let listed = events.iter().find(|e| e["id"] == body["id"]).unwrap();
        assert_eq!(&body, listed);
        no_secrets(&h.body);
    }
    // A tampered body does not verify.
    let h = &hits[0];
    let forged = h.body.replacen("card_", "card_x", 1);
    assert!(!signature_valid(
        &secret,
        h.signature.as_deref().unwrap(),
        &forged
    ));

    // The shape of each event.
    for e in &events {
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
        assert!(e["created_at"].as_str().unwrap().ends_with('Z'));
        let c = e["data"]["card_id"].as_str().unwrap();
        assert!(c == card || c == card2, "{e}");
    }
    let find = |t: &str| events.iter().find(|e| e["type"] == t).unwrap().clone();
    assert_eq!(find("card.created")["data"]["last4"], "5559");
    assert_eq!(
        find("pin.revealed")["data"]["cardholder_verification_method"],
        "BIOMETRIC_FACE"
    );
    assert_eq!(find("pin.blocked")["data"]["fail_count"], 3);
    assert_eq!(find("pin.unblocked")["data"]["reason"], "unblock");

    // The attempts are visible: some took several, all are delivered now.
    wait_for("deliveries recorded", || {
        let r = b.get(
            &format!("/v1/webhook-endpoints/{endpoint}/deliveries?limit=100"),
            &key,
        );
        r.body["data"].as_array().is_some_and(|d| {
            d.len() == events.len() && d.iter().all(|d| d["status"] == "delivered")
        })
    });
    let r = b.get(
        &format!("/v1/webhook-endpoints/{endpoint}/deliveries?limit=100"),
        &key,
    );
    let deliveries = r.body["data"].as_array().unwrap();
    assert!(
        deliveries
            .iter()
            .any(|d| d["attempts"].as_u64().unwrap() >= 2)
    );
    for d in deliveries {
        assert_eq!(d["last_response_code"], 200);
        assert!(d["delivered_at"].is_string());
        assert!(d["next_attempt_at"].is_null());
    }
    let retried = deliveries
        .iter()
        .find(|d| d["attempts"].as_u64().unwrap() >= 2)
        .unwrap();
    assert!(events.iter().any(|e| e["id"] == retried["event_id"]));

    // The restarted server counts its attempts.
    let metrics = b.call("GET", "/metrics", None, None).body;
    let metrics = metrics.as_str().unwrap();
    let delivered: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pinvault_webhook_attempts_total{outcome=\"delivered\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(delivered >= 1, "{metrics}");

    // Deleted: gone from the list, 404 after.
    let url = format!("/v1/webhook-endpoints/{endpoint}");
    assert_eq!(b.call("DELETE", &url, Some(&key), None).status, 204);
    assert_eq!(b.call("DELETE", &url, Some(&key), None).status, 404);
    assert_eq!(b.get(&format!("{url}/deliveries"), &key).status, 404);
    assert_eq!(b.get("/v1/webhook-endpoints", &key).body["data"], json!([]));
    // Both are in the audit trail, which still verifies.
    let actions: Vec<Value> = audit_list(&b, &[])
        .iter()
        .map(|r| r["action"].clone())
        .collect();
    assert!(actions.contains(&json!("webhook_endpoint.created")));
    assert_eq!(actions.last(), Some(&json!("webhook_endpoint.deleted")));
    let (ok, report, _) = audit_verify(&b);
    assert!(ok, "{report}");
    drop(b);
}

#[test]
fn private_targets_are_refused_unless_the_operator_allows_them() {
    let rx = Receiver::start(0);
    // Created where private targets are allowed...
    let mut a = start_env("ssrf", env(true));
    let key = a.program("test", &[]);
    let r = a.post(
        "/v1/webhook-endpoints",
        &key,
        &json!({ "url": rx.url(), "events": ["card.created"] }).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let endpoint = r.body["id"].as_str().unwrap().to_owned();
    a.stop();

    // ...then served without the flag: nothing reaches the receiver; the
    // attempt says why (checked after resolution, when delivering).
    let b = Server::start_with(a.data.clone(), env(false));
    b.card(&key, PAN);
    let deliveries = format!("/v1/webhook-endpoints/{endpoint}/deliveries");
    wait_for("a refused attempt", || {
        let r = b.get(&deliveries, &key);
        r.body["data"][0]["attempts"].as_u64().unwrap_or(0) >= 1
    });
    let d = &b.get(&deliveries, &key).body["data"][0];
    assert_eq!(d["status"], "pending", "{d}");
    assert!(d["last_error"].as_str().unwrap().contains("refused"), "{d}");
    assert!(d["last_response_code"].is_null());
    assert!(d["next_attempt_at"].is_string());
    assert!(rx.hits().is_empty());

    // And at creation, address literals and bad URLs are refused outright.
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.0.0.8/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "ftp://example.com/hook",
        "https://user:secret@example.com/hook",
        "example.com/hook",
        "https://example.com/a b",
    ] {
        let r = b.post(
            "/v1/webhook-endpoints",
            &key,
            &json!({ "url": url, "events": ["card.created"] }).to_string(),
        );
        assert_eq!(
            (r.status, r.code()),
            (422, "invalid_request"),
            "{url}: {}",
            r.body
        );
    }
    let long = format!("https://example.com/{}", "a".repeat(2100));
    for body in [
        json!({ "url": long, "events": ["card.created"] }),
        json!({ "url": "https://example.com/hook", "events": [] }),
        json!({ "url": "https://example.com/hook", "events": ["pin.nope"] }),
        json!({ "url": "https://example.com/hook" }),
    ] {
        let r = b.post("/v1/webhook-endpoints", &key, &body.to_string());
        assert_eq!(r.status, 422, "{body}: {}", r.body);
    }
    // A public name is accepted (delivery is checked when it happens).
    let r = b.post(
        "/v1/webhook-endpoints",
        &key,
        r#"{"url":"https://hooks.example.com/pinvault","events":["pin.changed","pin.changed"]}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["events"], json!(["pin.changed"]));
}

#[test]
fn events_are_filtered_paged_and_kept_to_their_program() {
    let s = Server::start("events-api");
    let key = s.program(
        "test",
        &["allow_plaintext_pin=true", "allow_plaintext_reveal=true"],
    );
    let other = s.program("test", &[]);
    let card = lifecycle(&s, &key);
    let card2 = s.card(&key, PAN2);
    let events = all_events(&s, &key);
    assert_eq!(events.len(), 12);
    // Newest first.
    assert_eq!(events[0]["type"], "card.created");
    assert_eq!(events[0]["data"]["card_id"], card2.as_str());
    assert_eq!(events[11]["type"], "card.created");
    assert_eq!(events[11]["data"]["card_id"], card.as_str());
    no_secrets(&serde_json::to_string(&events).unwrap());

    let r = s.get(
        &format!("/v1/events?card_id={card}&type=pin.verification_failed"),
        &key,
    );
    assert_eq!(r.status, 200);
    let failed = r.body["data"].as_array().unwrap();
    assert_eq!(failed.len(), 3);
    let counts: Vec<u64> = failed
        .iter()
        .map(|e| e["data"]["fail_count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [3, 2, 1]);
    assert_eq!(failed[0]["data"]["remaining_tries"], 0);
    let r = s.get(&format!("/v1/events?card_id={card2}"), &key);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);

    // Another program sees none of them.
    assert_eq!(s.get("/v1/events", &other).body["data"], json!([]));
    assert_eq!(
        s.get(&format!("/v1/events?card_id={card}"), &other).body["data"],
        json!([])
    );
    let first = events[0]["id"].as_str().unwrap();
    let r = s.get(&format!("/v1/events?starting_after={first}"), &other);
    assert_eq!((r.status, r.code()), (400, "invalid_request"));

    for bad in [
        "/v1/events?type=pin.nope",
        "/v1/events?limit=0",
        "/v1/events?limit=101",
        "/v1/events?card_id=nope",
        "/v1/events?starting_after=evt_aaaaaaaaaaaaaaaaaaaaaaaa",
        "/v1/events?colour=blue",
    ] {
        let r = s.get(bad, &key);
        assert_eq!((r.status, r.code()), (400, "invalid_request"), "{bad}");
    }
    assert_eq!(s.call("GET", "/v1/events", None, None).status, 401);
}

/// Two nodes on one database both run delivery workers: every event reaches
/// the receiver exactly once (their claims never overlap), in one attempt.
#[test]
fn two_nodes_deliver_each_event_once() {
    let rx = Receiver::start(0);
    let a = start_env("two-nodes", env(true));
    let b = Server::start_with(a.data.clone(), env(true));
    let key = a.program("test", &[]);
    let r = a.post(
        "/v1/webhook-endpoints",
        &key,
        &json!({ "url": rx.url(), "events": ["card.created", "pin.token_created"] }).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let endpoint = r.body["id"].as_str().unwrap().to_owned();
    for i in 0..20 {
        let node = if i % 2 == 0 { &a } else { &b };
        let card = node.card(&key, PAN);
        node.token(&key, &card, "set_pin");
    }
    let events = all_events(&b, &key);
    assert_eq!(events.len(), 40);
    wait_for("every event delivered", || rx.hits().len() >= 40);
    // Anything more would arrive within a poll or two; give it the time of a
    // few claims before counting.
    std::thread::sleep(Duration::from_secs(3));
    let hits = rx.hits();
    assert_eq!(hits.len(), 40, "an event was delivered twice");
    for e in &events {
        let n = hits
            .iter()
            .filter(|h| serde_json::from_str::<Value>(&h.body).is_ok_and(|b| b["id"] == e["id"]))
            .count();
        assert_eq!(n, 1, "{e}");
    }
    let r = a.get(
        &format!("/v1/webhook-endpoints/{endpoint}/deliveries?limit=100"),
        &key,
    );
    let deliveries = r.body["data"].as_array().unwrap();
    assert_eq!(deliveries.len(), 40);
    assert!(
        deliveries
            .iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1)
    );
}

/// Webhook endpoints and their deliveries page like every list: newest first,
/// each row once, and a cursor from another list is refused.
#[test]
fn endpoints_and_deliveries_are_paginated() {
    let rx = Receiver::start(0);
    let s = start_env("paging", env(true));
    let key = s.program("test", &[]);
    let other = s.program("test", &[]);
    let mut endpoints = Vec::new();
    for _ in 0..3 {
        let r = s.post(
            "/v1/webhook-endpoints",
            &key,
            &json!({ "url": rx.url(), "events": ["card.created"] }).to_string(),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        endpoints.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let r = s.post(
        "/v1/webhook-endpoints",
        &other,
        &json!({ "url": rx.url(), "events": ["card.created"] }).to_string(),
    );
    let foreign = r.body["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        s.card(&key, PAN);
    }
    let listed = walk(&s, &key, "/v1/webhook-endpoints");
    let newest_first: Vec<String> = endpoints.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);
    let r = s.get(
        &format!("/v1/webhook-endpoints?starting_after={foreign}"),
        &key,
    );
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.body);

    let first = format!("/v1/webhook-endpoints/{}/deliveries", endpoints[0]);
    let second = format!("/v1/webhook-endpoints/{}/deliveries", endpoints[1]);
    let mine = walk(&s, &key, &first);
    assert_eq!(mine.len(), 3, "{mine:?}");
    let theirs = walk(&s, &key, &second);
    assert_eq!(theirs.len(), 3, "{theirs:?}");
    assert!(mine.iter().all(|d| !theirs.contains(d)));
    let all = s.get(&format!("{first}?limit=100"), &key).body["data"].clone();
    let all = crate::harness::each(&all, "id");
    assert_eq!(all, mine, "one page and many agree");
    let r = s.get(&format!("{first}?starting_after={}", theirs[0]), &key);
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.body);
}
