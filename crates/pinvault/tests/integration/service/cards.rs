//! Cards, PINs and control tokens over HTTP: the lifecycle, test mode, PIN
//! policy, token rules, plaintext settings, tenants and idempotency.

use crate::harness::{self, Server};

use super::support::*;

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
