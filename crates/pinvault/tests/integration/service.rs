#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! The service, driven from outside as a card program would: over HTTP and the
//! operator command line, against the real binary on a fresh data directory.

use std::sync::Arc;

use crate::harness::{self, Server};
use serde_json::Value;

const PAN: &str = "4111111111111111";
const PLAIN: &[&str] = &["allow_plaintext_pin=true", "allow_plaintext_reveal=true"];

fn problem(r: &harness::Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.code(), code, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(
            !r.body[field].is_null(),
            "problem without {field}: {}",
            r.body
        );
    }
}

#[test]
fn card_lifecycle_over_http() {
    let s = Server::start("lifecycle");
    let key = s.program("live", PLAIN);

    let r = s.post(
        "/v1/cards",
        &key,
        r#"{"pan":"4111111111111111","expiry":"2029-12","external_id":"cust-1"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let card = r.body["id"].as_str().unwrap().to_owned();
    assert!(card.starts_with("card_"));
    assert_eq!(r.body["last4"], "1111");
    assert_eq!(r.body["expiry"], "2029-12");
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["pin"]["set_by"], "random");
    assert_eq!(r.body["pin"]["remaining_tries"], 3);
    let text = r.body.to_string();
    assert!(!text.contains(PAN) && !text.contains("pin_block"), "{text}");

    // The random PIN of a live program: 4 digits, not weak.
    let random = s.reveal(&key, &card);
    assert_eq!(random.len(), 4);
    assert!(random != "0000" && random != "1234");

    assert_eq!(s.set_pin(&key, &card, "8264").status, 204);
    assert_eq!(s.reveal(&key, &card), "8264");
    let status = s.get(&format!("/v1/cards/{card}/pin/status"), &key);
    assert_eq!(status.status, 200);
    assert_eq!(status.body["status"], "unblocked");
    assert_eq!(status.body["set_by"], "cardholder");
    assert_eq!(status.body["fail_count"], 0);
    assert_eq!(status.body["staged"], false);

    assert_eq!(
        s.get(&format!("/v1/cards/{card}"), &key).body["id"],
        card.as_str()
    );
    let list = s.get("/v1/cards?external_id=cust-1", &key);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["has_more"], false);

    let r = s.call(
        "PATCH",
        &format!("/v1/cards/{card}"),
        Some(&key),
        Some(r#"{"status":"suspended"}"#),
    );
    assert_eq!(r.body["status"], "suspended", "{}", r.body);

    // Unblock needs JSON: text/plain is 415, JSON (even empty) is 204.
    let path = format!("/v1/cards/{card}/pin/unblock");
    let r = s.call_with("POST", &path, Some(&key), Some("reset"), "text/plain", &[]);
    problem(&r, 415, "unsupported_media_type");
    let r = s.post(
        &path,
        &key,
        r#"{"description":"cardholder called","updated_by":"agent 7"}"#,
    );
    assert_eq!(r.status, 204);
    assert_eq!(s.call("POST", &path, Some(&key), Some("")).status, 204);

    // The program sees its settings and changes the ones it may.
    let p = s.get("/v1/program", &key);
    assert_eq!(p.body["mode"], "live");
    assert_eq!(p.body["settings"]["max_tries"], 3);
    let r = s.call(
        "PATCH",
        "/v1/program",
        Some(&key),
        Some(r#"{"max_tries":5}"#),
    );
    assert_eq!(r.body["settings"]["max_tries"], 5, "{}", r.body);
    let r = s.call(
        "PATCH",
        "/v1/program",
        Some(&key),
        Some(r#"{"allow_plaintext_reveal":false}"#),
    );
    problem(&r, 403, "forbidden");
    let r = s.call(
        "PATCH",
        "/v1/program",
        Some(&key),
        Some(r#"{"set_token_ttl_s":0}"#),
    );
    problem(&r, 422, "invalid_request");
}

#[test]
fn test_mode_cards_get_0000_and_pagination_works() {
    let s = Server::start("testmode");
    let key = s.program("test", PLAIN);
    let cards: Vec<String> = (0..5).map(|_| s.card(&key, PAN)).collect();
    assert_eq!(s.reveal(&key, &cards[0]), "0000");
    let page1 = s.get("/v1/cards?limit=2", &key);
    let ids = |r: &harness::Reply| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&page1), vec![cards[4].clone(), cards[3].clone()]);
    assert_eq!(page1.body["has_more"], true);
    let page3 = s.get(
        &format!("/v1/cards?limit=2&starting_after={}", cards[1]),
        &key,
    );
    assert_eq!(ids(&page3), vec![cards[0].clone()]);
    assert_eq!(page3.body["has_more"], false);
    problem(&s.get("/v1/cards?limit=0", &key), 400, "invalid_request");
    problem(&s.get("/v1/cards?limit=101", &key), 400, "invalid_request");
    problem(&s.get("/v1/cards?limit=x", &key), 400, "invalid_request");
    problem(
        &s.get(
            "/v1/cards?starting_after=card_aaaaaaaaaaaaaaaaaaaaaaaa",
            &key,
        ),
        400,
        "invalid_request",
    );
}

#[test]
fn pin_policy_and_token_attempts() {
    let s = Server::start("policy");
    let key = s.program(
        "live",
        &[
            "allow_plaintext_pin=true",
            "pin_length_min=4",
            "pin_length_max=6",
        ],
    );
    let card = s.card(&key, "5555555571234567");
    let token = s.token(&key, &card, "set_pin");
    let put = |pin: &str| {
        s.call(
            "PUT",
            &format!("/v1/cards/{card}/pin"),
            Some(&key),
            Some(&format!(r#"{{"control_token":"{token}","pin":"{pin}"}}"#)),
        )
    };
    problem(&put("12a4"), 422, "invalid_pin");
    problem(&put("1234567"), 422, "invalid_pin");
    problem(&put("4444"), 422, "weak_pin");
    problem(&put("4567"), 422, "weak_pin"); // the PAN's last digits, and a run
    problem(&put("9876"), 422, "weak_pin");
    // Five attempts (the default) are now used up.
    problem(&put("8264"), 403, "token_exhausted");
    assert_eq!(s.set_pin(&key, &card, "826491").status, 204);
    assert_eq!(
        s.post(
            "/v1/cards",
            &key,
            r#"{"pan":"4111111111111111","pin":{"pin":"1111"}}"#
        )
        .code(),
        "weak_pin"
    );
    let r = s.post(
        "/v1/cards",
        &key,
        r#"{"pan":"4111111111111111","pin":{"pin":"2580"}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["pin"]["set_by"], "issuer");
}

#[test]
fn token_rules() {
    let s = Server::start("tokens");
    // Tokens live the default time until the expiry check below: with whole
    // seconds, a 1 s token can expire a moment after it is made.
    let key = s.program(
        "live",
        &["allow_plaintext_pin=true", "allow_plaintext_reveal=true"],
    );
    let program = s.get("/v1/program", &key).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let card = s.card(&key, PAN);
    let other = s.card(&key, PAN);
    let put = |card: &str, token: &str| {
        s.call(
            "PUT",
            &format!("/v1/cards/{card}/pin"),
            Some(&key),
            Some(&format!(r#"{{"control_token":"{token}","pin":"8264"}}"#)),
        )
    };

    let first = s.token(&key, &card, "set_pin");
    let second = s.token(&key, &card, "set_pin");
    problem(&put(&card, &first), 403, "token_superseded");
    problem(&put(&other, &second), 403, "token_invalid");
    problem(&put(&card, "pct_unknown"), 403, "token_invalid");
    let reveal = s.token(&key, &card, "reveal_pin");
    problem(&put(&card, &reveal), 403, "token_invalid");
    assert_eq!(put(&card, &second).status, 204);
    problem(&put(&card, &second), 403, "token_used");

    s.cli_json(&["programs", "update", &program, "--set", "set_token_ttl_s=1"]);
    let stale = s.token(&key, &card, "set_pin");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    problem(&put(&card, &stale), 403, "token_expired");

    // A reveal token needs a verification method, and reveal can be turned off.
    let r = s.post(
        &format!("/v1/cards/{card}/control-tokens"),
        &key,
        r#"{"type":"reveal_pin"}"#,
    );
    problem(&r, 422, "invalid_request");
    let r = s.post(
        &format!("/v1/cards/{card}/control-tokens"),
        &key,
        r#"{"type":"reveal_pin","cardholder_verification_method":"PASSWORD"}"#,
    );
    problem(&r, 422, "invalid_request");
    let r = s.post(
        &format!("/v1/cards/{card}/control-tokens"),
        &key,
        r#"{"type":"print_pin"}"#,
    );
    problem(&r, 422, "invalid_request");
    s.cli_json(&[
        "programs",
        "update",
        &program,
        "--set",
        "reveal_enabled=false",
    ]);
    let r = s.post(
        &format!("/v1/cards/{card}/control-tokens"),
        &key,
        r#"{"type":"reveal_pin","cardholder_verification_method":"OTP"}"#,
    );
    problem(&r, 403, "reveal_disabled");
    let r = s.post(
        &format!("/v1/cards/{card}/pin/reveal"),
        &key,
        &format!(r#"{{"control_token":"{reveal}"}}"#),
    );
    problem(&r, 403, "reveal_disabled");
}

#[test]
fn plaintext_needs_the_operator() {
    let s = Server::start("plaintext");
    let key = s.program("live", &[]);
    let card = s.card(&key, PAN);
    let r = s.post(
        "/v1/cards",
        &key,
        r#"{"pan":"4111111111111111","pin":{"pin":"8264"}}"#,
    );
    problem(&r, 403, "plaintext_not_allowed");
    let token = s.token(&key, &card, "set_pin");
    let r = s.call(
        "PUT",
        &format!("/v1/cards/{card}/pin"),
        Some(&key),
        Some(&format!(r#"{{"control_token":"{token}","pin":"8264"}}"#)),
    );
    problem(&r, 403, "plaintext_not_allowed");
    let token = s.token(&key, &card, "reveal_pin");
    let r = s.post(
        &format!("/v1/cards/{card}/pin/reveal"),
        &key,
        &format!(r#"{{"control_token":"{token}"}}"#),
    );
    problem(&r, 403, "plaintext_not_allowed");
    // Refused requests changed nothing: the token still works where allowed.
    let program = s.get("/v1/program", &key).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.cli_json(&[
        "programs",
        "update",
        &program,
        "--set",
        "allow_plaintext_reveal=true",
    ]);
    let r = s.post(
        &format!("/v1/cards/{card}/pin/reveal"),
        &key,
        &format!(r#"{{"control_token":"{token}"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn tenants_are_isolated_and_keys_can_be_revoked() {
    let s = Server::start("tenants");
    let a = s.program("live", PLAIN);
    let b = s.program("live", PLAIN);
    let card = s.card(&a, PAN);
    problem(&s.get(&format!("/v1/cards/{card}"), &b), 404, "not_found");
    problem(
        &s.get(&format!("/v1/cards/{card}/pin/status"), &b),
        404,
        "not_found",
    );
    let token = s.token(&a, &card, "reveal_pin");
    let r = s.post(
        &format!("/v1/cards/{card}/pin/reveal"),
        &b,
        &format!(r#"{{"control_token":"{token}"}}"#),
    );
    problem(&r, 404, "not_found");
    assert!(
        s.get("/v1/cards", &b).body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    problem(&s.call("GET", "/v1/cards", None, None), 401, "unauthorized");
    problem(&s.get("/v1/cards", "pv_test_nope"), 401, "unauthorized");
    let program = s.get("/v1/program", &a).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let extra = s.cli_json(&["api-keys", "create", "--program", &program]);
    let extra_key = extra["api_key"].as_str().unwrap();
    assert_eq!(s.get("/v1/cards", extra_key).status, 200);
    s.cli_json(&["api-keys", "revoke", extra["api_key_id"].as_str().unwrap()]);
    problem(&s.get("/v1/cards", extra_key), 401, "unauthorized");
    let listed = s.cli_json(&["api-keys", "list", "--program", &program]);
    assert!(!listed.to_string().contains(extra_key));
}

#[test]
fn idempotent_creates() {
    let s = Server::start("idem");
    let key = s.program("test", &[]);
    let headers = [("Idempotency-Key", "order-42")];
    let create = |body: &str| {
        s.call_with(
            "POST",
            "/v1/cards",
            Some(&key),
            Some(body),
            "application/json",
            &headers,
        )
    };
    let first = create(r#"{"pan":"4111111111111111","external_id":"x"}"#);
    assert_eq!(first.status, 201);
    let again = create(r#"{ "external_id": "x", "pan": "4111111111111111" }"#);
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    problem(
        &create(r#"{"pan":"5555555551234567"}"#),
        409,
        "idempotency_conflict",
    );
    assert_eq!(
        s.get("/v1/cards", &key).body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A token's replay returns the same token (stored sealed, not in clear).
    let card = first.body["id"].as_str().unwrap();
    let path = format!("/v1/cards/{card}/control-tokens");
    let t1 = s.call_with(
        "POST",
        &path,
        Some(&key),
        Some(r#"{"type":"set_pin"}"#),
        "application/json",
        &[("Idempotency-Key", "t-1")],
    );
    let t2 = s.call_with(
        "POST",
        &path,
        Some(&key),
        Some(r#"{"type":"set_pin"}"#),
        "application/json",
        &[("Idempotency-Key", "t-1")],
    );
    assert_eq!(t1.body["token"], t2.body["token"]);
}

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
        (
            "POST",
            "/v1/cards".into(),
            Some(format!(r#"{{"pan":"{}"}}"#, "1".repeat(100_000))),
            413,
            "invalid_request",
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

#[test]
fn key_rotation_while_serving_loses_nothing() {
    let s = Server::start("rotate");
    let key = s.program("live", PLAIN);
    let pins = ["739164", "582047", "164820"];
    let cards: Vec<String> = pins
        .iter()
        .map(|pin| {
            let card = s.card(&key, PAN);
            assert_eq!(s.set_pin(&key, &card, pin).status, 204);
            card
        })
        .collect();
    let report = s.cli_json(&["keys", "rotate"]);
    assert_eq!(report["cards_reencrypted"], 3, "{report}");
    let listed = s.cli_json(&["keys", "list"]);
    for entry in listed.as_array().unwrap() {
        let current = entry["current"].as_bool().unwrap();
        assert_eq!(entry["version"], if current { 2 } else { 1 }, "{listed}");
        if !current {
            assert_eq!(
                entry["protects"], 0,
                "old versions protect nothing: {listed}"
            );
        }
    }
    // The running server reads the re-encrypted rows and writes with the new keys.
    for (card, pin) in cards.iter().zip(pins) {
        assert_eq!(s.reveal(&key, card), pin);
    }
    let fresh = s.card(&key, PAN);
    assert_eq!(s.set_pin(&key, &fresh, "905182").status, 204);
    assert_eq!(s.reveal(&key, &fresh), "905182");
}

#[test]
fn operator_commands_print_json_and_fail_cleanly() {
    let s = Server::start("cli");
    let created = s.cli_json(&[
        "programs",
        "create",
        "--name",
        "Acme card program",
        "--mode",
        "live",
    ]);
    let id = created["program_id"].as_str().unwrap();
    assert!(created["api_key"].as_str().unwrap().starts_with("pv_live_"));
    let shown = s.cli_json(&["programs", "show", id]);
    assert_eq!(shown["mode"], "live");
    let updated = s.cli_json(&[
        "programs",
        "update",
        id,
        "--set",
        "max_tries=5",
        "--set",
        "widget_allowed_origins=[\"https://app.example\"]",
    ]);
    assert_eq!(updated["settings"]["max_tries"], 5);
    for bad in [
        vec!["programs", "update", id, "--set", "max_tries=11"],
        vec!["programs", "update", id, "--set", "set_token_ttl_s=0"],
        vec!["programs", "update", id, "--set", "no_such=1"],
        vec!["programs", "update", "prg_nope", "--set", "max_tries=2"],
        vec!["api-keys", "revoke", "key_nope"],
        vec!["keys", "rotate", "--kind", "nope"],
        vec!["serve", "--transport-key-bits", "1024"],
    ] {
        let out = s.cli(&bad);
        assert!(!out.status.success(), "{bad:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error: ") && !stderr.contains("panicked"),
            "{bad:?}: {stderr}"
        );
    }
    assert_eq!(
        s.cli_json(&["programs", "show", id])["settings"]["max_tries"],
        5
    );
}

#[test]
fn health_readiness_metrics() {
    let s = Server::start("ops");
    assert_eq!(s.call("GET", "/healthz", None, None).body["status"], "ok");
    let ready = s.call("GET", "/readyz", None, None);
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["status"], "ready");
    let key = s.program("test", &[]);
    s.card(&key, PAN);
    let metrics = s.call("GET", "/metrics", None, None);
    let text = metrics.body.as_str().unwrap().to_owned();
    assert!(
        text.contains(
            r#"pinvault_http_requests_total{route="/v1/cards",method="POST",status="201"} 1"#
        ),
        "{text}"
    );
    assert!(!text.contains(PAN));
    let r = s.get("/v1/cards", &key);
    assert!(r.header("x-request-id").unwrap().starts_with("req_"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[test]
fn master_key_file_is_private_and_checked() {
    use std::os::unix::fs::PermissionsExt;
    let dir = harness::fresh_dir("keyfile");
    let mut s = Server::start_in(dir.clone());
    let path = dir.path.join("master.key");
    if harness::pkcs11_provider() {
        // The master key is in the token: there must be no key file at all.
        assert!(!path.exists(), "a key file next to a PKCS#11 master key");
        s.stop();
        return;
    }
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    s.stop();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = dir.command(&["programs", "list"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
}

/// After a full scenario, the clear PINs, PANs, tokens and API keys it used are
/// nowhere: not in the database files, not in the server's log.
#[test]
fn no_clear_secret_in_the_data_directory_or_the_log() {
    let s = Server::start("leak");
    let key = s.program("live", PLAIN);
    let pans = [
        "4000056655665556",
        "5200828282828210",
        "3782822463100050000",
    ];
    let pins = ["739164582047", "582047391640", "164820573946"];
    let mut tokens = Vec::new();
    for (pan, pin) in pans.iter().zip(pins) {
        let r = s.post(
            "/v1/cards",
            &key,
            &format!(r#"{{"pan":"{pan}","pin":{{"pin":"{pin}"}}}}"#),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let card = r.body["id"].as_str().unwrap().to_owned();
        assert_eq!(s.reveal(&key, &card), pin);
        let t = s.token(&key, &card, "set_pin");
        let bad = s.call(
            "PUT",
            &format!("/v1/cards/{card}/pin"),
            Some(&key),
            Some(&format!(r#"{{"control_token":"{t}","pin":"{pin}x"}}"#)),
        );
        assert_eq!(bad.status, 422);
        tokens.push(t);
        let idem = s.call_with(
            "POST",
            &format!("/v1/cards/{card}/control-tokens"),
            Some(&key),
            Some(r#"{"type":"set_pin"}"#),
            "application/json",
            &[("Idempotency-Key", pin)],
        );
        tokens.push(idem.body["token"].as_str().unwrap().to_owned());
    }
    s.cli_json(&["keys", "rotate"]);
    let mut canaries: Vec<String> = pans
        .iter()
        .chain(pins.iter())
        .map(|s| s.to_string())
        .collect();
    canaries.extend(tokens);
    canaries.push(key.clone());

    assert!(s.logs().contains("PIN revealed"), "the log was captured");
    let canaries: Vec<&str> = canaries.iter().map(String::as_str).collect();
    s.assert_nowhere(&canaries);
    let _ = Value::Null;
}

/// The document is OpenAPI 3.1 and documents every operation the server routes;
/// each documented operation is answered by its handler, not by the fallback.
#[test]
fn openapi_document_matches_the_routes() {
    let s = Server::start("openapi");
    let doc = s.call("GET", "/openapi.json", None, None).body;
    assert_eq!(doc["openapi"], "3.1.0");
    let expected = [
        ("/v1/cards", "post"),
        ("/v1/cards", "get"),
        ("/v1/cards/{id}", "get"),
        ("/v1/cards/{id}", "patch"),
        ("/v1/cards/{id}/pin/status", "get"),
        ("/v1/cards/{id}/control-tokens", "post"),
        ("/v1/cards/{id}/pin", "put"),
        ("/v1/cards/{id}/pin/commit", "post"),
        ("/v1/cards/{id}/pin/reveal", "post"),
        ("/v1/cards/{id}/pin/unblock", "post"),
        ("/v1/cards/{id}/pin/verify", "post"),
        ("/v1/test/cards/{id}/pin/verify", "post"),
        ("/v1/zone-keys", "get"),
        ("/v1/events", "get"),
        ("/v1/webhook-endpoints", "post"),
        ("/v1/webhook-endpoints", "get"),
        ("/v1/webhook-endpoints/{id}", "delete"),
        ("/v1/webhook-endpoints/{id}/deliveries", "get"),
        ("/v1/program", "get"),
        ("/v1/program", "patch"),
        ("/v1/pin-encryption-keys", "get"),
        ("/v1/pin-encryption-keys/{kid}.pem", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/widgets/pin-set", "get"),
        ("/widgets/pin-set", "post"),
        ("/widgets/pin-reveal", "get"),
        ("/widgets/pin-reveal", "post"),
        ("/widgets/api/pin-set", "post"),
        ("/widgets/api/pin-reveal", "post"),
        ("/sdk/pinvault.js", "get"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|v| v.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        expected.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for (path, method) in expected {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} undocumented");
        assert!(op["operationId"].is_string());
        let concrete = path
            .replace("{id}", "card_aaaaaaaaaaaaaaaaaaaaaaaa")
            .replace("{kid}", "aaaa");
        // A body only where the method takes one. The server refuses these
        // (no API key: 401) without reading the body, and hyper then closes the
        // connection if the body has not fully arrived; a kept-alive connection
        // could be closed under the client's feet, so each request has its own.
        let body = ["post", "put", "patch"].contains(&method).then_some("{}");
        let r = s.call_with(
            &method.to_uppercase(),
            &concrete,
            None,
            body,
            "application/json",
            &[("connection", "close")],
        );
        let fallback = r.body["detail"] == "no such resource" || r.status == 405;
        assert!(
            !fallback,
            "{method} {path} is documented but not routed: {}",
            r.body
        );
    }
}

/// `serve --dev` on a fresh data directory prints an API key and shell lines that
/// work as pasted: run them with bash and check what they print.
#[test]
fn dev_mode_prints_lines_that_work() {
    use std::io::{BufRead, BufReader};
    let dir = harness::fresh_dir("dev");
    let mut child = dir
        .command(&["serve", "--dev", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut script = String::new();
    let mut in_script = false;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("export PV=") {
            in_script = true;
        }
        if line.starts_with("The API:") {
            break;
        }
        if in_script {
            script.push_str(&line);
            script.push('\n');
        }
    }
    assert!(script.contains("pv_test_"), "no API key printed");
    // Keep draining stdout, as a terminal would.
    std::thread::spawn(move || lines.for_each(drop));
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    drop(dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("set PIN: HTTP 204"), "{stdout}");
    assert!(stdout.contains(r#""set_by":"cardholder""#), "{stdout}");
    assert!(stdout.contains(r#"{"pin":"8264"}"#), "{stdout}");
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

/// SIGTERM stops the server cleanly (exit 0) and promptly.
#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = harness::fresh_dir("sigterm");
    let mut child = dir
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0,
            "server exited early"
        );
    }
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let started = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "still running after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    drop(dir);
    assert!(status.success(), "{status}");
}
