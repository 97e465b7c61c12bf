//! Body size limits, slow clients, and shutdown with requests and webhook
//! attempts in flight.

use crate::harness::Server;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::support::*;

/// Every operation of the OpenAPI document that takes a body, with the card's
/// id in its path: the method, the path, and whether it reads a widget's form
/// (else JSON).
fn body_operations(s: &Server, card: &str) -> Vec<(String, String, bool)> {
    let doc = s.call("GET", "/openapi.json", None, None).body;
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("requestBody").is_none() {
                continue;
            }
            let form = op["requestBody"]["content"]
                .get("application/x-www-form-urlencoded")
                .is_some();
            out.push((method.to_uppercase(), path.replace("{id}", card), form));
        }
    }
    assert!(out.len() >= 14, "only {} operations take a body", out.len());
    out
}

/// Every operation of the OpenAPI document that takes a body refuses one over
/// 64 KiB with 413 `payload_too_large`, saying the limit (before reading the
/// card or anything else).
#[test]
fn every_body_is_size_limited() {
    let s = Server::start("body-limit");
    let key = s.program("test", &[]);
    let card = s.card(&key, PAN);
    let big = format!(r#"{{"pan":"{}"}}"#, "1".repeat(70 * 1024));
    let big_form = format!("controlId=pct_{}", "A".repeat(70 * 1024));
    for (method, path, form) in body_operations(&s, &card) {
        // In the content type the operation reads (JSON, or a widget's form).
        let (body, ct) = if form {
            (big_form.as_str(), "application/x-www-form-urlencoded")
        } else {
            (big.as_str(), "application/json")
        };
        let r = s.call_with(&method, &path, Some(&key), Some(body), ct, &[]);
        assert_eq!(r.status, 413, "{method} {path}: {}", r.body);
        assert_eq!(r.code(), "payload_too_large", "{method} {path}");
        assert_eq!(
            r.detail(),
            "the request body is over the limit of 65536 bytes (64 KiB)",
            "{method} {path}"
        );
    }
}

/// A JSON body with a key twice (at the top or deeper) is 400
/// `invalid_request` on every operation that reads one, whatever the rest of
/// the body; a widget's form with a field twice too. Nothing is made.
#[test]
fn a_key_twice_is_refused_everywhere() {
    let s = Server::start("duplicate-keys");
    let key = s.program("test", &[]);
    let card = s.card(&key, PAN);
    let bodies = [
        format!(r#"{{"pan":"{PAN}","pan":"5555555555554444"}}"#),
        r#"{"type":"set_pin","cardholder_verification_method":{"a":1,"a":1}}"#.to_owned(),
    ];
    for (method, path, form) in body_operations(&s, &card) {
        let sent: Vec<(&str, &str)> = if form {
            vec![(
                "controlId=pct_a&controlId=pct_b",
                "application/x-www-form-urlencoded",
            )]
        } else {
            bodies
                .iter()
                .map(|b| (b.as_str(), "application/json"))
                .collect()
        };
        for (body, ct) in sent {
            let r = s.call_with(&method, &path, Some(&key), Some(body), ct, &[]);
            assert_eq!(r.status, 400, "{method} {path} {body}: {}", r.body);
            assert_eq!(r.code(), "invalid_request", "{method} {path}");
            let detail = r.detail();
            assert!(
                detail.contains("twice") || detail.contains("more than once"),
                "{method} {path}: {detail}"
            );
            assert!(!detail.contains(PAN), "{detail}");
        }
    }
    // The card made above is the program's only one.
    let cards = s.call("GET", "/v1/cards", Some(&key), None);
    assert_eq!(
        cards.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        cards.body
    );
    // The same body with the key once is served.
    let r = s.call(
        "POST",
        "/v1/cards",
        Some(&key),
        Some(&format!(r#"{{"pan":"{PAN}"}}"#)),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Slow clients: headers that never end, a kept-alive connection left idle,
/// and a body that never arrives are all cut off.
#[test]
fn slow_clients_are_cut_off() {
    let s = Server::start_env(
        "slowloris",
        &[
            ("PINVAULT_HEADER_TIMEOUT_S", "1"),
            ("PINVAULT_BODY_TIMEOUT_S", "1"),
        ],
    );
    let addr = s.base.strip_prefix("http://").unwrap().to_owned();
    // Half a request head, then nothing.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let answer = read_until_closed(&mut c);
    assert!(!answer.contains("200 OK"), "{answer}");
    // One request answered, then the kept-alive connection sits idle.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let answer = read_until_closed(&mut c);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A body announced but never sent: refused, not waited for forever.
    let key = s.program("test", &[]);
    let mut c = TcpStream::connect(&addr).unwrap();
    write!(
        c,
        "POST /v1/cards HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"pan\":"
    )
    .unwrap();
    let answer = read_until_closed(&mut c);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
    // The server still serves.
    assert_eq!(s.call("GET", "/healthz", None, None).status, 200);
}

/// SIGTERM while a request is in flight: the server stops accepting, still
/// answers that request, then exits 0.
#[test]
fn sigterm_finishes_the_request_in_flight() {
    let mut s = Server::start("sigterm-inflight");
    let key = s.program("test", &[]);
    let addr = s.base.strip_prefix("http://").unwrap().to_owned();
    let body = json!({ "pan": PAN, "external_id": "in-flight" }).to_string();
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        c,
        "POST /v1/cards HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    // `100 Continue` comes when the handler starts reading the body: the
    // request is in flight.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(c.read(&mut byte).unwrap(), 1, "closed before 100 Continue");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s.sigterm();
    // Wait until the server has stopped accepting (the signal has been acted on).
    let since = Instant::now();
    while TcpStream::connect(&addr).is_ok() {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "still accepting after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    c.write_all(body.as_bytes()).unwrap();
    let answer = read_until_closed(&mut c);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("in-flight"), "{answer}");
    let status = s.wait();
    assert!(status.success(), "{status}\n{}", s.logs());
}

/// A webhook attempt still under way at the shutdown deadline is cut short
/// and its claim given back: the next start delivers at once, not when a
/// lease runs out.
#[test]
fn shutdown_gives_back_webhook_claims() {
    // A receiver that accepts and never answers, and counts connections.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            let _ = tx.send(());
            held.push(stream);
        }
    });
    let env = [
        ("PINVAULT_ALLOW_PRIVATE_WEBHOOK_TARGETS", "1"),
        ("PINVAULT_WEBHOOK_TIMEOUT_S", "120"),
        ("PINVAULT_SHUTDOWN_TIMEOUT_S", "1"),
    ];
    let mut a = Server::start_env("claims", &env);
    let key = a.program("test", &[]);
    let created = a.post(
        "/v1/webhook-endpoints",
        &key,
        &json!({ "url": format!("http://127.0.0.1:{port}/hook"), "events": ["card.created"] })
            .to_string(),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    a.card(&key, PAN);
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the worker connects to the receiver");
    a.sigterm();
    assert!(a.wait().success());
    // The log is read by a thread of the harness: let it catch up.
    let since = Instant::now();
    while !a.logs().contains("their claims were given back") {
        assert!(since.elapsed() < Duration::from_secs(20), "{}", a.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The lease would hold for 270 s (2 × 120 s + 30 s); the next start
    // attempts the delivery again within its first polls.
    let b = a.another_node();
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the next start attempts the released delivery");
    drop(b);
}

/// One HTTP/1.1 response from a kept-alive connection: its head (lower case)
/// and body, read by its Content-Length. `None` when the connection closed first.
fn read_response(c: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match c.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).ok()?;
    Some((head, String::from_utf8_lossy(&body).into_owned()))
}

/// A keep-alive client whose request is refused before its body is read (no
/// API key, a body too large) can go on: either the answer says
/// `Connection: close` (so the client opens a new connection) or the
/// connection still serves its next request. A request whose body is read
/// keeps the connection open.
#[test]
fn early_refusals_do_not_break_keep_alive_clients() {
    let s = Server::start("keep-alive");
    let key = s.program("test", &[]);
    let addr = s.base.strip_prefix("http://").unwrap().to_owned();
    let body = format!(r#"{{"pan":"{PAN}","external_id":"{}"}}"#, "x".repeat(3000));
    let big = "1".repeat(70 * 1024);
    let cases: [(&str, &str, bool, u16); 4] = [
        ("Bearer pv_test_nope", &body, false, 401),
        ("Bearer pv_test_nope", &body, true, 401),
        ("Bearer pv_test_nope", &big, true, 401),
        (&format!("Bearer {key}"), &big, true, 413),
    ];
    for (i, (auth, body, split, status)) in cases.into_iter().enumerate() {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST /v1/cards HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        c.write_all(head.as_bytes()).unwrap();
        let half = if split { body.len() / 2 } else { body.len() };
        c.write_all(&body.as_bytes()[..half]).unwrap();
        if split {
            std::thread::sleep(Duration::from_millis(300));
            // The server may have answered and closed: a failed write is fine.
            let _ = c.write_all(&body.as_bytes()[half..]);
        }
        let (answer, _) = read_response(&mut c).unwrap_or_else(|| panic!("case {i}: no answer"));
        assert!(
            answer.starts_with(&format!("http/1.1 {status}")),
            "case {i}: {answer}"
        );
        if answer.contains("connection: close") {
            continue;
        }
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap_or_else(|e| {
                panic!("case {i}: the connection was dropped without Connection: close: {e}")
            });
        let next = read_response(&mut c);
        assert!(
            next.as_ref()
                .is_some_and(|(h, _)| h.starts_with("http/1.1 200")),
            "case {i}: the connection was dropped without Connection: close ({answer})"
        );
    }
    // A request whose body is read keeps the connection for the next one.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for n in 0..2 {
        let body = format!(r#"{{"pan":"{PAN}"}}"#);
        write!(
            c,
            "POST /v1/cards HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let (answer, _) = read_response(&mut c).unwrap_or_else(|| panic!("request {n}: no answer"));
        assert!(answer.starts_with("http/1.1 201"), "{answer}");
        assert!(!answer.contains("connection: close"), "{answer}");
    }
}
