//! Events, webhooks and the audit trail, against the real binary: a receiver
//! on loopback that fails its first answers gets every event of a card's life,
//! signed, across a restart; private targets are refused; the events API
//! filters, pages and keeps programs apart; the audit chain names any record
//! changed in the database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{self, Server};
use serde_json::{Value, json};

const PAN: &str = "4111111111111111";
const PAN2: &str = "5500005555555559";
const PIN: &str = "8264";
const WRONG_PIN: &str = "1357";

const ALL_TYPES: [&str; 9] = [
    "card.created",
    "pin.token_created",
    "pin.changed",
    "pin.staged",
    "pin.stage_failed",
    "pin.revealed",
    "pin.verification_failed",
    "pin.blocked",
    "pin.unblocked",
];

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    signature: Option<String>,
    content_type: Option<String>,
    body: String,
    answered: u16,
}

/// A tiny HTTP server on loopback: answers 500 to its first `fail_first`
/// requests, and while `failing` is set; 200 otherwise.
struct Receiver {
    port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
    failing: Arc<AtomicBool>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicBool::new(false));
        let (h, f) = (hits.clone(), failing.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (h, f) = (h.clone(), f.clone());
                std::thread::spawn(move || serve_one(stream, &h, &f, fail_first));
            }
        });
        Receiver {
            port,
            hits,
            failing,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/pinvault", self.port)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

fn serve_one(mut s: TcpStream, hits: &Mutex<Vec<Hit>>, failing: &AtomicBool, fail_first: usize) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let header = |name: &str| {
        head.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    let answered = {
        let mut hits = hits.lock().unwrap();
        let code = if hits.len() < fail_first || failing.load(Ordering::SeqCst) {
            500
        } else {
            200
        };
        hits.push(Hit {
            path,
            signature: header("pinvault-signature"),
            content_type: header("content-type"),
            body,
            answered: code,
        });
        code
    };
    let reason = if answered == 200 {
        "OK"
    } else {
        "Internal Server Error"
    };
    let _ = s.write_all(
        format!("HTTP/1.1 {answered} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
}

/// Checks `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
fn signature_valid(secret: &str, header: &str, body: &str) -> bool {
    use aws_lc_rs::hmac;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_owned()),
            Some(("v1", x)) => v1 = Some(x.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Ok(tag) = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(v1.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, format!("{t}.{body}").as_bytes(), &tag).is_ok()
}

/// Waits for `cond`, up to a generous bound (not a timing assertion: only a
/// hang is a failure).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn env(allow_private: bool) -> Vec<(String, String)> {
    let mut env = vec![
        // Short delays so the test sees several retries: 30 of 1 s.
        (
            "PINVAULT_WEBHOOK_RETRY_SCHEDULE".to_owned(),
            vec!["1s"; 30].join(","),
        ),
        ("PINVAULT_WEBHOOK_TIMEOUT_S".to_owned(), "5".to_owned()),
    ];
    if allow_private {
        env.push((
            "PINVAULT_ALLOW_PRIVATE_WEBHOOK_TARGETS".to_owned(),
            "1".to_owned(),
        ));
    }
    env
}

fn start_env(tag: &str, env: Vec<(String, String)>) -> Server {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_env(tag, &pairs)
}

/// Every event of the program, newest first, through the paginated API.
fn all_events(s: &Server, key: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    loop {
        let path = match out.last() {
            None => "/v1/events?limit=5".to_owned(),
            Some(last) => format!(
                "/v1/events?limit=5&starting_after={}",
                last["id"].as_str().unwrap()
            ),
        };
        let r = s.get(&path, key);
        assert_eq!(r.status, 200, "{}", r.body);
        out.extend(r.body["data"].as_array().unwrap().iter().cloned());
        if r.body["has_more"] != true {
            return out;
        }
    }
}

/// A card's life: created, PIN set by the cardholder, revealed, blocked by
/// three wrong PINs, unblocked. Returns the card id.
fn lifecycle(s: &Server, key: &str) -> String {
    let card = s.card(key, PAN);
    assert_eq!(s.set_pin(key, &card, PIN).status, 204);
    assert_eq!(s.reveal(key, &card), PIN);
    for _ in 0..3 {
        assert_eq!(
            s.sandbox_verify(key, &card, WRONG_PIN)["result"],
            "mismatch"
        );
    }
    assert_eq!(s.sandbox_verify(key, &card, PIN)["result"], "blocked");
    let r = s.post(
        &format!("/v1/cards/{card}/pin/unblock"),
        key,
        r#"{"description":"cardholder called, identity checked","updated_by":"agent 7"}"#,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    card
}

fn types_of(events: &[Value]) -> Vec<String> {
    let mut t: Vec<String> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    t.sort();
    t
}

fn no_secrets(text: &str) {
    for secret in [PAN, PAN2, PIN, WRONG_PIN] {
        assert!(!text.contains(secret), "`{secret}` found in {text}");
    }
}

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
    assert_eq!(events.len(), 11);
    // Newest first.
    assert_eq!(events[0]["type"], "card.created");
    assert_eq!(events[0]["data"]["card_id"], card2.as_str());
    assert_eq!(events[10]["type"], "card.created");
    assert_eq!(events[10]["data"]["card_id"], card.as_str());
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

fn audit_list(s: &Server, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "list", "--limit", "10000"];
    all.extend_from_slice(args);
    s.cli_json(&all).as_array().unwrap().clone()
}

fn audit_verify(s: &Server) -> (bool, Value, String) {
    let out = s.cli(&["audit", "verify"]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_audit_trail_records_who_did_what_and_names_a_changed_record() {
    let mut s = Server::start("audit");
    let key = s.program(
        "test",
        &["allow_plaintext_pin=true", "allow_plaintext_reveal=true"],
    );
    let card = lifecycle(&s, &key);
    let r = s.call(
        "PATCH",
        "/v1/program",
        Some(&key),
        Some(r#"{"reveal_token_ttl_s":120}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let patch_request = r.header("x-request-id").unwrap().to_owned();
    // A card number in the unblock note is refused: the note goes to the trail.
    let r = s.post(
        &format!("/v1/cards/{card}/pin/unblock"),
        &key,
        &format!(r#"{{"description":"card {PAN} called"}}"#),
    );
    assert_eq!((r.status, r.code()), (422, "invalid_request"));
    s.cli_json(&[
        "zone-keys",
        "import",
        "--name",
        "acquirer",
        "--algorithm",
        "aes128",
        "--component",
        "0123456789abcdeffedcba9876543210",
    ]);

    let records = audit_list(&s, &[]);
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "program.created", // by the operator
            "api_key.created", // the program's first key, in the same transaction
            "program.updated", // the harness's settings, by the operator
            "card.created",
            "pin.token_created",
            "pin.changed",
            "pin.token_created",
            "pin.revealed",
            "pin.verification_failed",
            "pin.verification_failed",
            "pin.blocked",
            "pin.unblocked",
            "program.updated",
            "zone_key.imported",
        ]
    );
    // The first two records, the harness's `programs create`, are left out of
    // the indices below.
    let records = &records[2..];
    let actions = &actions[2..];
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 3);
        let api = !["program.updated", "zone_key.imported"].contains(&actions[i]) || i == 10;
        if api {
            assert!(r["actor"].as_str().unwrap().starts_with("key_"), "{r}");
            assert!(r["request_id"].as_str().unwrap().starts_with("req_"), "{r}");
            assert_eq!(r["source"], "127.0.0.1", "{r}");
        } else {
            assert_eq!(r["actor"], "operator", "{r}");
            assert!(r["request_id"].is_null());
        }
    }
    assert_eq!(records[10]["request_id"], patch_request.as_str());
    assert_eq!(records[10]["details"]["changes"]["reveal_token_ttl_s"], 120);
    assert_eq!(
        records[4]["details"]["cardholder_verification_method"],
        "BIOMETRIC_FACE"
    );
    assert_eq!(
        records[5]["details"]["cardholder_verification_method"],
        "BIOMETRIC_FACE"
    );
    assert_eq!(records[8]["details"]["blocked"], true);
    assert_eq!(records[8]["details"]["method"], "sandbox");
    let unblock = &records[9]["details"];
    assert_eq!(
        unblock["description"],
        "cardholder called, identity checked"
    );
    assert_eq!(unblock["updated_by"], "agent 7");
    assert_eq!(unblock["was_blocked"], true);
    // The unblock note is in the trail, not in the log.
    assert!(!s.logs().contains("identity checked"));
    let text = serde_json::to_string(&records).unwrap();
    no_secrets(&text);
    assert!(
        !text.contains("0123456789abcdef"),
        "a zone key component in the trail"
    );
    let by_card = audit_list(&s, &["--card-id", &card]);
    assert_eq!(by_card.len(), 9);

    let (ok, report, _) = audit_verify(&s);
    assert!(ok, "{report}");
    assert_eq!(report["records_checked"], 14);
    assert_eq!(report["head"]["seq"], 14);
    assert_eq!(report["head"]["hash"], records[11]["hash"]);

    // The database refuses changes to the trail...
    s.stop();
    let db = Db::open(&s);
    assert!(
        db.exec("UPDATE audit_log SET action = 'x' WHERE seq = 1")
            .is_err()
    );
    assert!(db.exec("DELETE FROM audit_log WHERE seq = 1").is_err());

    // ...and where someone with the database goes around that, any changed
    // field of a record makes `audit verify` fail and name that record.
    db.drop_triggers();
    let target = 8; // pin.revealed: every field set
    let trim = |c: &str| format!("substr({c}, 1, length({c}) - 1)");
    for (column, change, undo) in [
        ("at", "at + 1".to_owned(), "at - 1".to_owned()),
        ("actor", "actor || 'x'".to_owned(), trim("actor")),
        (
            "request_id",
            "request_id || 'x'".to_owned(),
            trim("request_id"),
        ),
        ("source", "source || '0'".to_owned(), trim("source")),
        ("action", "action || 'x'".to_owned(), trim("action")),
        (
            "program_id",
            "program_id || 'x'".to_owned(),
            trim("program_id"),
        ),
        ("card_id", "card_id || 'x'".to_owned(), trim("card_id")),
        (
            "details",
            "replace(details, 'BIOMETRIC_FACE', 'OTP')".to_owned(),
            "replace(details, 'OTP', 'BIOMETRIC_FACE')".to_owned(),
        ),
        (
            "prev_hash",
            "hash".to_owned(),
            db.blob(&db.hex("prev_hash", target)),
        ),
        (
            "hash",
            "prev_hash".to_owned(),
            db.blob(&db.hex("hash", target)),
        ),
    ] {
        let set = |value: &str| {
            let n = db
                .exec(&format!(
                    "UPDATE audit_log SET {column} = {value} WHERE seq = {target}"
                ))
                .unwrap();
            assert_eq!(n, 1);
        };
        set(&change);
        let (ok, report, stderr) = audit_verify(&s);
        assert!(!ok, "{column} changed, yet the chain verifies");
        assert_eq!(report["ok"], false);
        assert_eq!(report["broken_at"]["seq"], target, "{column}: {report}");
        assert_eq!(report["records_checked"], target - 1);
        assert!(stderr.contains(&format!("record {target}")), "{stderr}");
        set(&undo);
        let (ok, report, _) = audit_verify(&s);
        assert!(
            ok,
            "undoing the change to {column} did not restore the chain: {report}"
        );
    }
    // A removed record is named too.
    db.exec(&format!("DELETE FROM audit_log WHERE seq = {target}"))
        .unwrap();
    let (ok, report, _) = audit_verify(&s);
    assert!(!ok);
    assert_eq!(report["broken_at"]["seq"], target);
}

/// The server's database, reached directly, as someone with access to it would.
enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(String),
}

impl Db {
    fn open(s: &Server) -> Db {
        match &s.data.database_url {
            Some(url) => Db::Postgres(url.clone()),
            None => Db::Sqlite(rusqlite::Connection::open(s.data_dir.join("pinvault.db")).unwrap()),
        }
    }

    /// Runs one statement; the number of rows it changed, or the error.
    fn exec(&self, sql: &str) -> Result<u64, String> {
        match self {
            Db::Sqlite(c) => c
                .execute(sql, [])
                .map(|n| n as u64)
                .map_err(|e| e.to_string()),
            Db::Postgres(url) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::spawn(conn);
                    client.execute(sql, &[]).await.map_err(|e| e.to_string())
                })
            }
        }
    }

    fn drop_triggers(&self) {
        match self {
            Db::Sqlite(c) => c
                .execute_batch(
                    "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
                )
                .unwrap(),
            Db::Postgres(_) => {
                self.exec("DROP TRIGGER audit_log_no_update ON audit_log")
                    .unwrap();
            }
        }
    }

    /// A blob column of record `seq`, in hex.
    fn hex(&self, column: &str, seq: i64) -> String {
        match self {
            Db::Sqlite(c) => c
                .query_row(
                    &format!("SELECT hex({column}) FROM audit_log WHERE seq = {seq}"),
                    [],
                    |r| r.get(0),
                )
                .unwrap(),
            Db::Postgres(url) => {
                let rows = harness::postgres_query(
                    url,
                    &format!("SELECT encode({column}, 'hex') FROM audit_log WHERE seq = {seq}"),
                );
                rows[0].get::<_, String>(0)
            }
        }
    }

    /// A blob literal from hex.
    fn blob(&self, hex: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("X'{hex}'"),
            Db::Postgres(_) => format!("decode('{hex}', 'hex')"),
        }
    }
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

/// The ids of a whole list, walked one row per page with `starting_after`.
fn walk(s: &Server, key: &str, path: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    loop {
        let page = match ids.last() {
            None => format!("{path}?limit=1"),
            Some(last) => format!("{path}?limit=1&starting_after={last}"),
        };
        let r = s.get(&page, key);
        assert_eq!(r.status, 200, "{page}: {}", r.body);
        let data = r.body["data"].as_array().unwrap();
        assert!(data.len() <= 1, "{}", r.body);
        ids.extend(data.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        if r.body["has_more"] != true {
            return ids;
        }
        assert_eq!(data.len(), 1, "has_more with an empty page");
    }
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
    let all: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(all, mine, "one page and many agree");
    let r = s.get(&format!("{first}?starting_after={}", theirs[0]), &key);
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.body);
}
