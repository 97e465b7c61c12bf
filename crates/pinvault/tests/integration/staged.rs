#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! Staged mode (`pin_set_mode` `staged`): a set stages the PIN (202), the
//! program commits it (`POST /v1/cards/{id}/pin/commit`), against the real
//! binary on a fresh data directory, checked through the sandbox verification.

use std::sync::Arc;

use crate::harness::{Reply, Server};
use serde_json::Value;

const PAN: &str = "4111111111111111";
/// A test-mode program (so the sandbox verifies; its cards start with `0000`)
/// in staged mode, taking PINs in clear so the tests need no JWE.
const STAGED: &[&str] = &[
    "pin_set_mode=staged",
    "allow_plaintext_pin=true",
    "max_tries=10",
];

fn problem(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.code(), code, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
}

/// Sets a PIN in clear through a fresh token (staged in a staged program).
fn set(s: &Server, key: &str, card: &str, pin: &str) -> Reply {
    s.set_pin(key, card, pin)
}

fn staged_ok(r: &Reply) {
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body, serde_json::json!({"status": "staged"}));
}

fn commit(s: &Server, key: &str, card: &str) -> Reply {
    s.call(
        "POST",
        &format!("/v1/cards/{card}/pin/commit"),
        Some(key),
        None,
    )
}

/// The sandbox's answer for `pin`: `match` or `mismatch`.
fn verify(s: &Server, key: &str, card: &str, pin: &str) -> String {
    s.sandbox_verify(key, card, pin)["result"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn status(s: &Server, key: &str, card: &str) -> Value {
    let r = s.get(&format!("/v1/cards/{card}/pin/status"), key);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn events(s: &Server, key: &str, card: &str) -> Vec<Value> {
    let r = s.get(&format!("/v1/events?card_id={card}&limit=100"), key);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

#[test]
fn the_setting_is_accepted_by_the_cli_and_the_api() {
    let s = Server::start("staged-setting");
    let key = s.program("test", &["pin_set_mode=staged"]);
    assert_eq!(
        s.get("/v1/program", &key).body["settings"]["pin_set_mode"],
        "staged"
    );
    let r = s.call(
        "PATCH",
        "/v1/program",
        Some(&key),
        Some(r#"{"pin_set_mode":"direct"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["settings"]["pin_set_mode"], "direct");
    let r = s.call(
        "PATCH",
        "/v1/program",
        Some(&key),
        Some(r#"{"pin_set_mode":"staged"}"#),
    );
    assert_eq!(r.body["settings"]["pin_set_mode"], "staged", "{}", r.body);
    let r = s.call(
        "PATCH",
        "/v1/program",
        Some(&key),
        Some(r#"{"pin_set_mode":"later"}"#),
    );
    problem(&r, 422, "invalid_request");
}

#[test]
fn stage_then_commit_then_verify() {
    let s = Server::start("staged-commit");
    let key = s.program("test", STAGED);
    let card = s.card(&key, PAN);
    assert_eq!(status(&s, &key, &card)["staged"], false);

    staged_ok(&set(&s, &key, &card, "739164"));
    let st = status(&s, &key, &card);
    assert_eq!(st["staged"], true, "{st}");
    assert_eq!(
        st["set_by"], "random",
        "the PIN itself has not changed: {st}"
    );
    // Before the commit, the old PIN is the card's PIN.
    assert_eq!(verify(&s, &key, &card, "0000"), "match");
    assert_eq!(verify(&s, &key, &card, "739164"), "mismatch");
    // The card view carries the same status.
    assert_eq!(
        s.get(&format!("/v1/cards/{card}"), &key).body["pin"]["staged"],
        true
    );

    let r = commit(&s, &key, &card);
    assert_eq!(r.status, 204, "{}", r.body);
    let st = status(&s, &key, &card);
    assert_eq!(st["staged"], false, "{st}");
    assert_eq!(st["set_by"], "cardholder", "{st}");
    assert_eq!(st["fail_count"], 0, "the commit resets the count: {st}");
    assert_eq!(verify(&s, &key, &card, "739164"), "match");
    assert_eq!(verify(&s, &key, &card, "0000"), "mismatch");

    // Committed once: nothing is left to commit.
    problem(&commit(&s, &key, &card), 409, "nothing_staged");
}

#[test]
fn commit_unblocks_a_blocked_pin_like_a_set() {
    let s = Server::start("staged-unblock");
    let key = s.program(
        "test",
        &[
            "pin_set_mode=staged",
            "allow_plaintext_pin=true",
            "max_tries=2",
        ],
    );
    let card = s.card(&key, PAN);
    staged_ok(&set(&s, &key, &card, "582047"));
    for _ in 0..2 {
        verify(&s, &key, &card, "1357");
    }
    assert_eq!(status(&s, &key, &card)["status"], "blocked");
    assert_eq!(
        s.get(&format!("/v1/cards/{card}"), &key).body["status"],
        "inactive"
    );
    assert_eq!(commit(&s, &key, &card).status, 204);
    let st = status(&s, &key, &card);
    assert_eq!(st["status"], "unblocked", "{st}");
    assert_eq!(st["fail_count"], 0, "{st}");
    assert_eq!(
        s.get(&format!("/v1/cards/{card}"), &key).body["status"],
        "active"
    );
    assert_eq!(verify(&s, &key, &card, "582047"), "match");
}

#[test]
fn nothing_staged_and_bodies() {
    let s = Server::start("staged-nothing");
    let key = s.program("test", STAGED);
    let card = s.card(&key, PAN);
    problem(&commit(&s, &key, &card), 409, "nothing_staged");
    // Another program's card, or no card: 404; no key: 401.
    let other = s.program("test", STAGED);
    let r = s.call(
        "POST",
        &format!("/v1/cards/{card}/pin/commit"),
        Some(&other),
        None,
    );
    problem(&r, 404, "not_found");
    let r = s.call("POST", "/v1/cards/card_nope/pin/commit", Some(&key), None);
    problem(&r, 404, "not_found");
    let r = s.call("POST", &format!("/v1/cards/{card}/pin/commit"), None, None);
    problem(&r, 401, "unauthorized");

    staged_ok(&set(&s, &key, &card, "164820"));
    // A body, if any, is an empty JSON object; anything else changes nothing.
    let path = format!("/v1/cards/{card}/pin/commit");
    let r = s.call_with("POST", &path, Some(&key), Some("commit"), "text/plain", &[]);
    problem(&r, 415, "unsupported_media_type");
    let r = s.call("POST", &path, Some(&key), Some(r#"{"pin":"164820"}"#));
    problem(&r, 422, "invalid_request");
    assert!(!r.body.to_string().contains("164820"), "{}", r.body);
    let r = s.call("POST", &path, Some(&key), Some("{"));
    problem(&r, 400, "invalid_request");
    let r = s.call("POST", &path, Some(&key), Some("[]"));
    problem(&r, 422, "invalid_request");
    assert_eq!(status(&s, &key, &card)["staged"], true);
    assert_eq!(verify(&s, &key, &card, "0000"), "match");
    let r = s.call("POST", &path, Some(&key), Some("{}"));
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(verify(&s, &key, &card, "164820"), "match");
}

#[test]
fn a_staged_pin_expires_with_its_token() {
    let s = Server::start("staged-expiry");
    let key = s.program("test", &[STAGED, &["set_token_ttl_s=1"]].concat());
    let card = s.card(&key, PAN);
    // The token lives one second: if it expired before it could be used (the
    // second turned meanwhile), take another.
    let mut staged = false;
    for _ in 0..10 {
        let r = set(&s, &key, &card, "905182");
        if r.status == 202 {
            staged = true;
            break;
        }
        problem(&r, 403, "token_expired");
    }
    assert!(staged, "could not stage within a token's lifetime");
    let staged_event = events(&s, &key, &card)
        .into_iter()
        .find(|e| e["type"] == "pin.staged")
        .unwrap();
    let expires_at = staged_event["data"]["expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    // Wait until the status no longer reports it (no timing assertion: the
    // loop only waits for the clock to pass the expiry).
    let mut gone = false;
    for _ in 0..50 {
        if status(&s, &key, &card)["staged"] == false {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        gone,
        "the staged PIN (expiring {expires_at}) is still reported"
    );
    problem(&commit(&s, &key, &card), 409, "nothing_staged");
    // Still nothing after the lazy removal, and the old PIN is unchanged.
    problem(&commit(&s, &key, &card), 409, "nothing_staged");
    assert_eq!(verify(&s, &key, &card, "0000"), "match");
    assert_eq!(verify(&s, &key, &card, "905182"), "mismatch");
}

#[test]
fn a_newer_staged_pin_replaces_the_older() {
    let s = Server::start("staged-replace");
    let key = s.program("test", STAGED);
    let card = s.card(&key, PAN);
    staged_ok(&set(&s, &key, &card, "739164"));
    staged_ok(&set(&s, &key, &card, "582047"));
    assert_eq!(commit(&s, &key, &card).status, 204);
    assert_eq!(verify(&s, &key, &card, "582047"), "match");
    assert_eq!(verify(&s, &key, &card, "739164"), "mismatch");
    problem(&commit(&s, &key, &card), 409, "nothing_staged");
}

#[test]
fn a_direct_set_discards_what_is_staged() {
    let s = Server::start("staged-direct");
    let key = s.program("test", STAGED);
    let card = s.card(&key, PAN);
    staged_ok(&set(&s, &key, &card, "739164"));
    let r = s.call(
        "PATCH",
        "/v1/program",
        Some(&key),
        Some(r#"{"pin_set_mode":"direct"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(set(&s, &key, &card, "164820").status, 204);
    assert_eq!(status(&s, &key, &card)["staged"], false);
    problem(&commit(&s, &key, &card), 409, "nothing_staged");
    assert_eq!(verify(&s, &key, &card, "164820"), "match");
    assert_eq!(verify(&s, &key, &card, "739164"), "mismatch");
}

#[test]
fn refused_pins_in_staged_mode_emit_stage_failed() {
    let s = Server::start("staged-refused");
    let key = s.program("test", STAGED);
    let card = s.card(&key, PAN);
    let token = s.token(&key, &card, "set_pin");
    let path = format!("/v1/cards/{card}/pin");
    let put = |body: String| s.call("PUT", &path, Some(&key), Some(&body));
    let r = put(format!(r#"{{"control_token":"{token}","pin":"1234"}}"#));
    problem(&r, 422, "weak_pin");
    let r = put(format!(r#"{{"control_token":"{token}","pin":"12a4"}}"#));
    problem(&r, 422, "invalid_pin");
    let r = put(format!(
        r#"{{"control_token":"{token}","encrypted_pin":"eyJhbGciOiJub25lIn0.x.y.z.w"}}"#
    ));
    problem(&r, 422, "decryption_failed");
    assert_eq!(status(&s, &key, &card)["staged"], false);
    problem(&commit(&s, &key, &card), 409, "nothing_staged");
    // The same token, with attempts left, still stages a good PIN.
    let r = put(format!(r#"{{"control_token":"{token}","pin":"739164"}}"#));
    staged_ok(&r);

    let list = events(&s, &key, &card);
    let reasons: Vec<&str> = list
        .iter()
        .filter(|e| e["type"] == "pin.stage_failed")
        .map(|e| e["data"]["reason"].as_str().unwrap())
        .collect();
    // Newest first.
    assert_eq!(
        reasons,
        ["decryption_failed", "invalid_pin", "weak_pin"],
        "{list:?}"
    );
    for e in list.iter().filter(|e| e["type"] == "pin.stage_failed") {
        assert_eq!(e["data"]["card_id"], card.as_str());
    }
    assert!(list.iter().all(|e| e["type"] != "pin.changed"), "{list:?}");
}

#[test]
fn direct_mode_refusals_emit_no_stage_failed() {
    let s = Server::start("staged-direct-refusal");
    let key = s.program("test", &["allow_plaintext_pin=true"]);
    let card = s.card(&key, PAN);
    problem(&set(&s, &key, &card, "1111"), 422, "weak_pin");
    assert!(
        events(&s, &key, &card)
            .iter()
            .all(|e| e["type"] != "pin.stage_failed")
    );
}

#[test]
fn racing_commits_succeed_exactly_once() {
    let s = Arc::new(Server::start("staged-race"));
    let key = Arc::new(s.program("test", STAGED));
    let card = Arc::new(s.card(&key, PAN));
    for round in 0..3 {
        let pin = format!("{}", 739_100 + round * 17);
        staged_ok(&set(&s, &key, &card, &pin));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (s, key, card) = (s.clone(), key.clone(), card.clone());
                std::thread::spawn(move || {
                    let r = commit(&s, &key, &card);
                    (r.status, r.code().to_owned())
                })
            })
            .collect();
        let answers: Vec<(u16, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            answers.iter().filter(|(c, _)| *c == 204).count(),
            1,
            "{answers:?}"
        );
        assert!(
            answers
                .iter()
                .all(|(c, code)| *c == 204 || (*c == 409 && code == "nothing_staged")),
            "{answers:?}"
        );
        assert_eq!(verify(&s, &key, &card, &pin), "match");
        let changed = events(&s, &key, &card)
            .iter()
            .filter(|e| e["type"] == "pin.changed")
            .count();
        assert_eq!(changed, round as usize + 1, "one pin.changed per commit");
    }
}

/// The events of a staged set and its commit, and no PIN in any of them, in
/// the database files or in the log.
#[test]
fn events_and_no_clear_staged_pin_anywhere() {
    let s = Server::start("staged-leak");
    let key = s.program("test", STAGED);
    let pins = ["739164582047", "582047391640", "164820573946"];
    let mut cards = Vec::new();
    for pin in pins {
        let card = s.card(&key, PAN);
        staged_ok(&set(&s, &key, &card, pin));
        cards.push(card);
    }
    // The first is committed; the others stay staged (one replaced first).
    assert_eq!(commit(&s, &key, &cards[0]).status, 204);
    staged_ok(&set(&s, &key, &cards[1], "391640582047"));
    problem(&set(&s, &key, &cards[2], "111111111111"), 422, "weak_pin");

    let first = events(&s, &key, &cards[0]);
    let types: Vec<&str> = first.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "pin.changed",
            "pin.staged",
            "pin.token_created",
            "card.created"
        ],
        "newest first"
    );
    let staged = &first[1]["data"];
    assert_eq!(staged["card_id"], cards[0].as_str());
    assert!(
        staged["expires_at"].as_str().unwrap().ends_with('Z'),
        "{staged}"
    );
    assert_eq!(first[0]["data"]["set_by"], "cardholder");
    let third = events(&s, &key, &cards[2]);
    assert!(
        third
            .iter()
            .any(|e| e["type"] == "pin.stage_failed" && e["data"]["reason"] == "weak_pin")
    );

    let mut canaries: Vec<&str> = pins.to_vec();
    canaries.push("391640582047");
    let all = s.get("/v1/events?limit=100", &key).body.to_string();
    for (i, canary) in canaries.iter().enumerate() {
        assert!(!all.contains(canary), "an event holds PIN #{i}");
    }
    let audit = s.cli(&["audit", "verify"]);
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stderr)
    );

    assert!(s.logs().contains("PIN staged"), "the log was captured");
    s.assert_nowhere(&canaries);
}

/// Rotation re-enciphers a staged PIN too; it still commits and verifies.
#[test]
fn key_rotation_carries_staged_pins() {
    let s = Server::start("staged-rotate");
    let key = s.program("test", STAGED);
    let card = s.card(&key, PAN);
    staged_ok(&set(&s, &key, &card, "739164"));
    let report = s.cli_json(&["keys", "rotate"]);
    assert_eq!(report["cards_reencrypted"], 1, "{report}");
    let listed = s.cli_json(&["keys", "list"]);
    for entry in listed.as_array().unwrap() {
        if entry["current"] == false {
            assert_eq!(
                entry["protects"], 0,
                "old versions protect nothing: {listed}"
            );
        }
    }
    assert_eq!(commit(&s, &key, &card).status, 204);
    assert_eq!(verify(&s, &key, &card, "739164"), "match");
}
