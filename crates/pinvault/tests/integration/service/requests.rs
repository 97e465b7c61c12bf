//! Bad input gets a clear 4xx; concurrent requests for one token or card count
//! exactly.

use crate::harness::Server;
use std::sync::Arc;

use super::support::*;

#[test]
fn bad_input_is_a_clear_4xx() {
    let s = Server::start("badinput");
    let key = s.program("live", PLAIN);
    let card = s.card(&key, PAN);
    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        (
            "POST",
            "/v1/cards".into(),
            Some("{".into()),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/cards".into(),
            Some("[]".into()),
            422,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/cards".into(),
            Some(r#"{"pan":4111111111111111}"#.into()),
            422,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/cards".into(),
            Some(r#"{"pan":"4111111111111112"}"#.into()),
            422,
            "invalid_pan",
        ),
        (
            "POST",
            "/v1/cards".into(),
            Some(r#"{"pan":"41111111111"}"#.into()),
            422,
            "invalid_pan",
        ),
        (
            "POST",
            "/v1/cards".into(),
            Some(r#"{"pan":"4111-1111-1111-1111"}"#.into()),
            422,
            "invalid_pan",
        ),
        (
            "POST",
            "/v1/cards".into(),
            Some(r#"{"pan":"4111111111111111","expiry":"2029-13"}"#.into()),
            422,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/cards".into(),
            Some(r#"{"pan":"4111111111111111","surprise":1}"#.into()),
            422,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/cards".into(),
            Some(r#"{"pan":"4111111111111111","pin":{}}"#.into()),
            422,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/cards".into(),
            Some(format!(
                r#"{{"pan":"{PAN}","external_id":"{}"}}"#,
                "x".repeat(300)
            )),
            422,
            "invalid_request",
        ),
        // An external id that looks like a PAN (13 to 19 digits passing Luhn,
        // spaced or not): it would be stored and sent in events in clear.
        (
            "POST",
            "/v1/cards".into(),
            Some(format!(
                r#"{{"pan":"{PAN}","external_id":"5555555555554444"}}"#
            )),
            422,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/cards".into(),
            Some(format!(
                r#"{{"pan":"{PAN}","external_id":"cust 4222 2222 22222"}}"#
            )),
            422,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/cards".into(),
            Some(format!(r#"{{"pan":"{}"}}"#, "1".repeat(100_000))),
            413,
            "payload_too_large",
        ),
        ("GET", "/v1/cards/card_nope".into(), None, 404, "not_found"),
        ("GET", "/v1/cards/%FF%FE".into(), None, 404, "not_found"),
        (
            "PATCH",
            format!("/v1/cards/{card}"),
            Some(r#"{"status":"closed"}"#.into()),
            422,
            "invalid_request",
        ),
        (
            "POST",
            format!("/v1/cards/{card}/control-tokens"),
            Some("{}".into()),
            422,
            "invalid_request",
        ),
        (
            "PUT",
            format!("/v1/cards/{card}/pin"),
            Some(r#"{"control_token":7}"#.into()),
            422,
            "invalid_request",
        ),
        (
            "PUT",
            format!("/v1/cards/{card}/pin"),
            Some(r#"{"control_token":"pct_x"}"#.into()),
            403,
            "token_invalid",
        ),
        (
            "POST",
            format!("/v1/cards/{card}/pin/unblock"),
            Some(r#"{"description":5}"#.into()),
            422,
            "invalid_request",
        ),
        (
            "DELETE",
            format!("/v1/cards/{card}"),
            None,
            405,
            "invalid_request",
        ),
        ("GET", "/v2/anything".into(), None, 404, "not_found"),
    ];
    for (method, path, body, status, code) in cases {
        let r = s.call(method, &path, Some(&key), body.as_deref());
        assert_eq!(
            (r.status, r.code()),
            (status, code),
            "{method} {path}: {}",
            r.body
        );
    }
    // A PIN sent as a number is refused without being echoed back.
    let token = s.token(&key, &card, "set_pin");
    let r = s.call(
        "PUT",
        &format!("/v1/cards/{card}/pin"),
        Some(&key),
        Some(&format!(r#"{{"control_token":"{token}","pin":739164}}"#)),
    );
    problem(&r, 422, "invalid_request");
    assert!(!r.body.to_string().contains("739164"));
    // Nothing above changed the card.
    assert_eq!(
        s.get(&format!("/v1/cards/{card}"), &key).body["status"],
        "active"
    );
    assert!(!s.logs().contains("panicked"));
}

#[test]
fn one_token_redeemed_concurrently_wins_once() {
    let s = Arc::new(Server::start("race"));
    let key = Arc::new(s.program("live", PLAIN));
    let card = Arc::new(s.card(&key, PAN));
    for round in 0..3 {
        let token = Arc::new(s.token(&key, &card, "set_pin"));
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let (s, key, card, token) = (s.clone(), key.clone(), card.clone(), token.clone());
                std::thread::spawn(move || {
                    let pin = format!("{}", 820_000 + round * 100 + i);
                    s.call(
                        "PUT",
                        &format!("/v1/cards/{card}/pin"),
                        Some(&key),
                        Some(&format!(r#"{{"control_token":"{token}","pin":"{pin}"}}"#)),
                    )
                    .status
                })
            })
            .collect();
        let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            statuses.iter().filter(|&&c| c == 204).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().all(|&c| c == 204 || c == 403),
            "{statuses:?}"
        );
    }
}

/// A token's attempts count exactly under concurrency: 20 refused PINs at once on
/// a token with 5 attempts use exactly 5 (422), and the rest are 403 exhausted.
#[test]
fn token_attempts_are_exact_under_concurrency() {
    let s = Arc::new(Server::start("attempts"));
    let key = Arc::new(s.program("live", PLAIN));
    let card = Arc::new(s.card(&key, PAN));
    let token = Arc::new(s.token(&key, &card, "set_pin"));
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let (s, key, card, token) = (s.clone(), key.clone(), card.clone(), token.clone());
            std::thread::spawn(move || {
                let r = s.call(
                    "PUT",
                    &format!("/v1/cards/{card}/pin"),
                    Some(&key),
                    Some(&format!(r#"{{"control_token":"{token}","pin":"0000"}}"#)),
                );
                (r.status, r.code().to_owned())
            })
        })
        .collect();
    let results: Vec<(u16, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let weak = results
        .iter()
        .filter(|(s, c)| *s == 422 && c == "weak_pin")
        .count();
    let exhausted = results
        .iter()
        .filter(|(s, c)| *s == 403 && c == "token_exhausted")
        .count();
    assert_eq!((weak, exhausted), (5, 15), "{results:?}");
}
