//! Try counting: blocking, unblocking, concurrency, and the sandbox.

use crate::harness::Server;
use std::sync::Arc;

use super::support::*;

/// Mismatches count, a match resets, `max_tries` blocks the PIN and makes the
/// card inactive; a blocked PIN answers `blocked` unchecked; unblocking and
/// reactivating the card both restore it.
#[test]
fn tries_block_unblock_and_reactivation() {
    let s = Server::start("verify-tries");
    let key = s.program("live", SETTINGS);
    let v = vectors().into_iter().find(|v| v.format == "iso_0").unwrap();
    let zpk = import(&s, &key, algorithm(&v), &[&v.key]);
    // The card's PIN is another one, so the vector's block is a wrong PIN; the
    // right PIN's block is the vector once the card's PIN is set to it.
    let c = card(&s, &key, &v.pan, &other_pin(&v.pin));
    let wrong = || verify(&s, &key, &c, &v.format, &v.enciphered, &zpk);
    assert_eq!(outcome(&wrong()), ("mismatch".into(), 2));
    assert_eq!(outcome(&wrong()), ("mismatch".into(), 1));
    assert_eq!(fail_count(&s, &key, &c), 2);
    assert_eq!(s.set_pin(&key, &c, &v.pin).status, 204);
    assert_eq!(fail_count(&s, &key, &c), 0, "a new PIN resets the count");
    let right = || verify(&s, &key, &c, &v.format, &v.enciphered, &zpk);
    assert_eq!(s.set_pin(&key, &c, &other_pin(&v.pin)).status, 204);
    assert_eq!(outcome(&wrong()), ("mismatch".into(), 2));
    assert_eq!(s.set_pin(&key, &c, &v.pin).status, 204);
    assert_eq!(outcome(&right()), ("match".into(), 3));

    // A match resets the count.
    assert_eq!(s.set_pin(&key, &c, &other_pin(&v.pin)).status, 204);
    assert_eq!(outcome(&wrong()), ("mismatch".into(), 2));
    assert_eq!(outcome(&wrong()), ("mismatch".into(), 1));
    // (The card's PIN is other_pin: its block comes from the CLI only here, to
    // reach a match without resetting the count through a PIN change.)
    let other_block = cli_block(&s, &v, &other_pin(&v.pin));
    let matching = || verify(&s, &key, &c, &v.format, &other_block, &zpk);
    assert_eq!(outcome(&matching()), ("match".into(), 3));
    assert_eq!(fail_count(&s, &key, &c), 0);

    // Three mismatches block; the third answers mismatch with 0 left.
    assert_eq!(outcome(&wrong()), ("mismatch".into(), 2));
    assert_eq!(outcome(&wrong()), ("mismatch".into(), 1));
    assert_eq!(outcome(&wrong()), ("mismatch".into(), 0));
    let got = s.get(&format!("/v1/cards/{c}"), &key).body;
    assert_eq!(got["status"], "inactive", "{got}");
    assert_eq!(got["pin"]["status"], "blocked", "{got}");
    assert_eq!(got["pin"]["fail_count"], 3, "{got}");
    // Blocked: the right PIN and garbage both answer blocked, nothing counted.
    assert_eq!(outcome(&matching()), ("blocked".into(), 0));
    assert_eq!(
        outcome(&verify(&s, &key, &c, &v.format, "00", &zpk)),
        ("blocked".into(), 0)
    );
    assert_eq!(fail_count(&s, &key, &c), 3);

    // Unblock: count reset, card active again, the right PIN matches.
    let r = s.post(
        &format!("/v1/cards/{c}/pin/unblock"),
        &key,
        r#"{"description":"cardholder called","updated_by":"agent 7"}"#,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let got = s.get(&format!("/v1/cards/{c}"), &key).body;
    assert_eq!(got["status"], "active", "{got}");
    assert_eq!(got["pin"]["status"], "unblocked", "{got}");
    assert_eq!(outcome(&matching()), ("match".into(), 3));

    // Block again; reactivating the card unblocks the PIN.
    for _ in 0..3 {
        outcome(&wrong());
    }
    assert_eq!(
        s.get(&format!("/v1/cards/{c}"), &key).body["status"],
        "inactive"
    );
    let r = s.call(
        "PATCH",
        &format!("/v1/cards/{c}"),
        Some(&key),
        Some(r#"{"status":"active"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["pin"]["status"], "unblocked", "{}", r.body);
    assert_eq!(outcome(&matching()), ("match".into(), 3));

    // A card suspended, or made inactive by the program, is not checked and
    // counts nothing (API.md: `card_inactive`), whatever the block holds.
    assert_eq!(outcome(&wrong()), ("mismatch".into(), 2));
    for status in ["suspended", "inactive"] {
        let body = format!(r#"{{"status":"{status}"}}"#);
        let r = s.call("PATCH", &format!("/v1/cards/{c}"), Some(&key), Some(&body));
        assert_eq!(r.status, 200, "{}", r.body);
        for block in [v.enciphered.as_str(), other_block.as_str(), "00"] {
            assert_eq!(
                outcome(&verify(&s, &key, &c, &v.format, block, &zpk)),
                ("card_inactive".into(), 2),
                "{status}"
            );
        }
        assert_eq!(fail_count(&s, &key, &c), 1, "{status}: nothing counted");
    }
    let r = s.call(
        "PATCH",
        &format!("/v1/cards/{c}"),
        Some(&key),
        Some(r#"{"status":"active"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(outcome(&matching()), ("match".into(), 3));
}

/// 24 simultaneous wrong PINs for one card: exactly `max_tries` (3) are counted
/// as mismatches, the rest answer `blocked`.
#[test]
fn concurrent_wrong_pins_stop_at_exactly_max_tries() {
    let s = Arc::new(Server::start("verify-race"));
    let key = Arc::new(s.program("live", SETTINGS));
    let v = Arc::new(vectors().into_iter().find(|v| v.format == "iso_4").unwrap());
    let zpk = Arc::new(import(&s, &key, algorithm(&v), &[&v.key]));
    let c = Arc::new(card(&s, &key, &v.pan, &other_pin(&v.pin)));
    let barrier = Arc::new(std::sync::Barrier::new(24));
    let handles: Vec<_> = (0..24)
        .map(|_| {
            let (s, key, v, zpk, c, barrier) = (
                s.clone(),
                key.clone(),
                v.clone(),
                zpk.clone(),
                c.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                outcome(&verify(&s, &key, &c, &v.format, &v.enciphered, &zpk))
            })
        })
        .collect();
    let results: Vec<(String, u64)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mismatches: Vec<u64> = results
        .iter()
        .filter(|r| r.0 == "mismatch")
        .map(|r| r.1)
        .collect();
    assert_eq!(mismatches.len(), 3, "{results:?}");
    let mut remaining = mismatches.clone();
    remaining.sort_unstable();
    assert_eq!(remaining, [0, 1, 2], "{results:?}");
    assert_eq!(
        results.iter().filter(|r| r.0 == "blocked").count(),
        21,
        "{results:?}"
    );
    assert_eq!(fail_count(&s, &key, &c), 3);
    let got = s.get(&format!("/v1/cards/{c}"), &key).body;
    assert_eq!(got["status"], "inactive");
}

/// The sandbox counts like a terminal in a test program and is absent for a
/// live one.
#[test]
fn sandbox_counts_like_a_terminal_and_is_absent_for_live_programs() {
    let s = Server::start("verify-sandbox");
    let test = s.program("test", SETTINGS);
    let c = card(&s, &test, "4111111111111111", "2580");
    let try_pin = |pin: &str| {
        s.post(
            &format!("/v1/test/cards/{c}/pin/verify"),
            &test,
            &format!(r#"{{"pin":"{pin}"}}"#),
        )
    };
    assert_eq!(outcome(&try_pin("2580")), ("match".into(), 3));
    assert_eq!(outcome(&try_pin("2581")), ("mismatch".into(), 2));
    assert_eq!(outcome(&try_pin("2580")), ("match".into(), 3));
    for bad in ["12a4", "123", "1234567890123", ""] {
        let r = try_pin(bad);
        assert_eq!((r.status, r.code()), (422, "invalid_pin"), "{}", r.body);
        assert!(!r.body["detail"].as_str().unwrap().contains(bad) || bad.is_empty());
    }
    assert_eq!(outcome(&try_pin("0000")), ("mismatch".into(), 2));
    assert_eq!(outcome(&try_pin("1111")), ("mismatch".into(), 1));
    assert_eq!(outcome(&try_pin("2222")), ("mismatch".into(), 0));
    assert_eq!(outcome(&try_pin("2580")), ("blocked".into(), 0));
    let got = s.get(&format!("/v1/cards/{c}"), &test).body;
    assert_eq!(got["status"], "inactive");
    assert_eq!(got["pin"]["status"], "blocked");

    let live = s.program("live", SETTINGS);
    let lc = card(&s, &live, "4111111111111111", "2580");
    let r = s.post(
        &format!("/v1/test/cards/{lc}/pin/verify"),
        &live,
        r#"{"pin":"2580"}"#,
    );
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
    assert_eq!(fail_count(&s, &live, &lc), 0);
    // Another program's card is 404 in the sandbox too.
    let other = s.program("test", SETTINGS);
    let r = s.post(
        &format!("/v1/test/cards/{c}/pin/verify"),
        &other,
        r#"{"pin":"2580"}"#,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let r = s.post(
        &format!("/v1/test/cards/{c}/pin/verify"),
        &test,
        r#"{"pin":1234}"#,
    );
    assert_eq!(r.status, 422, "{}", r.body);
}

/// Blocks that do not decipher have their own per-card limit: counted only on
/// such a failure, and once spent every block for the card is refused (429)
/// before it is deciphered, a good one too; other cards are not affected, no
/// try is counted, and the failures show in the metric of their zone key.
#[test]
fn undecryptable_blocks_are_limited_per_card() {
    let s = Server::start_env(
        "verify-decrypt-limit",
        &[("PINVAULT_RATE_LIMIT_CARD_DECRYPT_FAILURES", "3/h")],
    );
    let key = s.program("live", SETTINGS);
    let v = vectors().into_iter().find(|v| v.format == "iso_4").unwrap();
    let zpk = import(&s, &key, algorithm(&v), &[&v.key]);
    let c = card(&s, &key, &v.pan, &v.pin);
    let other = card(&s, &key, &v.pan, &v.pin);
    let garbage = "0".repeat(v.enciphered.len());
    // Good blocks take nothing from the limit.
    for _ in 0..5 {
        assert_eq!(
            outcome(&verify(&s, &key, &c, &v.format, &v.enciphered, &zpk)).0,
            "match"
        );
    }
    for _ in 0..3 {
        let r = verify(&s, &key, &c, &v.format, &garbage, &zpk);
        assert_eq!(
            (r.status, r.code()),
            (422, "decryption_failed"),
            "{}",
            r.body
        );
    }
    for block in [&garbage, &v.enciphered] {
        let r = verify(&s, &key, &c, &v.format, block, &zpk);
        assert_eq!((r.status, r.code()), (429, "rate_limited"), "{}", r.body);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("did not decipher"),
            "{}",
            r.body
        );
    }
    assert_eq!(fail_count(&s, &key, &c), 0);
    assert_eq!(
        outcome(&verify(&s, &key, &other, &v.format, &v.enciphered, &zpk)).0,
        "match"
    );
    let metrics = s
        .call("GET", "/metrics", None, None)
        .body
        .as_str()
        .unwrap_or("")
        .to_owned();
    let line = format!("pinvault_pin_block_decryption_failures_total{{zone_key_id=\"{zpk}\"}} 3");
    assert!(metrics.contains(&line), "{line} in\n{metrics}");
}
