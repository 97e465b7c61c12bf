//! Hardening, from outside: abuse limits (429 `rate_limited` with
//! `Retry-After`), HTTPS with a self-signed certificate and HSTS, request
//! body size limits on every route that reads one, header and body timeouts
//! against slow clients, and a SIGTERM that still answers the request in
//! flight and gives back the webhook claims of attempts it had to cut short.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::harness::{self, Server};
use serde_json::{Value, json};

const PAN: &str = "4111111111111111";

fn metric(s: &Server, line_start: &str) -> u64 {
    let r = s.call("GET", "/metrics", None, None);
    let text = r.body.as_str().unwrap_or("").to_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no {line_start} in {text}"))
}

fn assert_limited(r: &harness::Reply, what: &str) {
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.code(), "rate_limited");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let secs: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(secs >= 1, "{secs}");
    assert!(
        r.body["detail"].as_str().unwrap().contains(what),
        "{}",
        r.body
    );
}

/// Per card and per API key, each operation its own bucket; a limited request
/// changes nothing; the metrics count it.
#[test]
fn rate_limits_per_card_and_per_key() {
    let s = Server::start_env(
        "limits",
        &[
            ("PINVAULT_RATE_LIMIT_CARD_VERIFY", "3/h"),
            ("PINVAULT_RATE_LIMIT_KEY_TOKENS", "4/h"),
            ("PINVAULT_RATE_LIMIT_CARD_REVEAL", "1/h"),
            ("PINVAULT_RATE_LIMIT_CARD_TOKENS", "off"),
        ],
    );
    let key = s.program("test", &["allow_plaintext_reveal=true"]);
    let card = s.card(&key, PAN);
    let other = s.card(&key, PAN);
    // Test-mode cards have PIN 0000: three matches, then the fourth is refused
    // before it is checked: a wrong PIN counts no try.
    let verify = |c: &str, pin: &str| {
        s.post(
            &format!("/v1/test/cards/{c}/pin/verify"),
            &key,
            &json!({ "pin": pin }).to_string(),
        )
    };
    for _ in 0..3 {
        assert_eq!(verify(&card, "0000").body["result"], "match");
    }
    assert_limited(&verify(&card, "1357"), "for this card");
    let status = s.get(&format!("/v1/cards/{card}/pin/status"), &key);
    assert_eq!(status.body["fail_count"], 0, "{}", status.body);
    // Another card has its own bucket.
    assert_eq!(verify(&other, "0000").body["result"], "match");
    assert_eq!(
        metric(&s, "pinvault_rate_limited_total{limit=\"card_verify\"}"),
        1
    );

    // Reveal: one per card per hour here; the second token works but its
    // reveal is refused, and the token stays unused.
    let first = s.reveal(&key, &card);
    assert_eq!(first, "0000");
    let token = s.token(&key, &card, "reveal_pin");
    let r = s.post(
        &format!("/v1/cards/{card}/pin/reveal"),
        &key,
        &json!({ "control_token": token }).to_string(),
    );
    assert_limited(&r, "for this card");
    // Tokens per API key: 4 an hour; two were made above, two more, then none.
    s.token(&key, &other, "set_pin");
    s.token(&key, &other, "set_pin");
    let r = s.post(
        &format!("/v1/cards/{other}/control-tokens"),
        &key,
        r#"{"type":"set_pin"}"#,
    );
    assert_limited(&r, "for this API key");
    // Another API key (another program) is not held back by the first's.
    let key2 = s.program("test", &[]);
    let card2 = s.card(&key2, PAN);
    s.token(&key2, &card2, "set_pin");
    assert_eq!(
        metric(&s, "pinvault_rate_limited_total{limit=\"key_tokens\"}"),
        1
    );
    // The document says so, for each limited operation.
    let doc = s.call("GET", "/openapi.json", None, None).body;
    for (path, method) in [
        ("/v1/cards/{id}/pin/verify", "post"),
        ("/v1/test/cards/{id}/pin/verify", "post"),
        ("/v1/cards/{id}/control-tokens", "post"),
        ("/v1/cards/{id}/pin/reveal", "post"),
    ] {
        let r = &doc["paths"][path][method]["responses"]["429"];
        assert!(r["headers"]["Retry-After"].is_object(), "{path}: {r}");
    }
    assert_eq!(
        metric(&s, "pinvault_rate_limited_total{limit=\"card_reveal\"}"),
        1
    );
}

/// The PIN block verification path is limited per card too (the same bucket
/// as the sandbox's), and a bad limit is refused at start.
#[test]
fn rate_limit_flags_are_checked() {
    let dir = harness::fresh_dir("limit-flags");
    let out = dir
        .command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit-card-verify",
            "5/day",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rate-limit-card-verify"), "{err}");
    let out = dir
        .command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--trusted-proxies",
            "10.0.0.0/33",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--trusted-proxies"));
}

#[test]
fn verification_is_limited_per_card() {
    let s = Server::start_env(
        "limits-verify",
        &[("PINVAULT_RATE_LIMIT_CARD_VERIFY", "2/h")],
    );
    let key = s.program("live", &[]);
    let card = s.card(&key, PAN);
    let body = json!({ "pin_block": "00", "format": "iso_4", "zone_key_id": "zpk_nonexistentnonexistent" })
        .to_string();
    for _ in 0..2 {
        let r = s.post(&format!("/v1/cards/{card}/pin/verify"), &key, &body);
        assert_eq!(r.status, 422, "{}", r.body);
    }
    let r = s.post(&format!("/v1/cards/{card}/pin/verify"), &key, &body);
    assert_limited(&r, "for this card");
}

fn openssl_cert(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .output()
        .expect("openssl (the tests need the openssl command)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// `curl` with the test's CA; returns (status line and headers, body).
fn curl(args: &[&str]) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "30", "-D", "-"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_ascii_lowercase(), body.to_owned())
}

/// HTTPS with a self-signed certificate made here: the API answers over TLS
/// with HSTS; plain HTTP answers carry no HSTS; a plain request to the TLS
/// port gets no answer.
#[test]
fn https_with_a_self_signed_certificate() {
    let certs = harness::fresh_path("tls-certs");
    let (cert, key_file) = openssl_cert(&certs);
    let s = Server::start_env(
        "tls",
        &[
            ("PINVAULT_TLS_CERT", cert.to_str().unwrap()),
            ("PINVAULT_TLS_KEY", key_file.to_str().unwrap()),
        ],
    );
    assert!(s.base.starts_with("https://127.0.0.1:"), "{}", s.base);
    let ca = cert.to_str().unwrap();
    let (head, body) = curl(&["--cacert", ca, &format!("{}/healthz", s.base)]);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "ok"
    );
    // An API call over TLS: a card is made, and the error answers carry HSTS too.
    let api_key = s.program("test", &[]);
    let auth = format!("Authorization: Bearer {api_key}");
    let (head, body) = curl(&[
        "--cacert",
        ca,
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "--data",
        &json!({ "pan": PAN }).to_string(),
        &format!("{}/v1/cards", s.base),
    ]);
    assert!(head.starts_with("http/1.1 201"), "{head}\n{body}");
    let (head, _) = curl(&["--cacert", ca, &format!("{}/v1/nothing", s.base)]);
    assert!(head.starts_with("http/1.1 404") && head.contains("strict-transport-security"));
    // The certificate is checked: without the CA, curl refuses it.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "30", &format!("{}/healthz", s.base)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Plain HTTP to the TLS port: no HTTP answer.
    let addr = s.base.strip_prefix("https://").unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));

    // Plain HTTP: no HSTS.
    let plain = Server::start("plain-hsts");
    let r = plain.call("GET", "/healthz", None, None);
    assert_eq!(r.status, 200);
    assert!(r.header("strict-transport-security").is_none());
    let _ = std::fs::remove_dir_all(&certs);
}

/// A bad certificate or key stops the server at start with a clear message.
#[test]
fn tls_files_are_checked_at_start() {
    let certs = harness::fresh_path("tls-bad");
    let (cert, _) = openssl_cert(&certs);
    let dir = harness::fresh_dir("tls-bad");
    let cert = cert.to_str().unwrap();
    let out = dir
        .command(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert,
            "--tls-key",
            cert,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read the private key"), "{err}");
    let out = dir
        .command(&["serve", "--listen", "127.0.0.1:0", "--tls-cert", cert])
        .output()
        .unwrap();
    assert!(!out.status.success(), "--tls-cert alone is refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-key"), "{err}");
    let _ = std::fs::remove_dir_all(&certs);
}

/// Every operation of the OpenAPI document that takes a body refuses one over
/// 64 KiB with 413 (before reading the card or anything else).
#[test]
fn every_body_is_size_limited() {
    let s = Server::start("body-limit");
    let key = s.program("test", &[]);
    let card = s.card(&key, PAN);
    let doc = s.call("GET", "/openapi.json", None, None).body;
    let big = format!(r#"{{"pan":"{}"}}"#, "1".repeat(70 * 1024));
    let big_form = format!("controlId=pct_{}", "A".repeat(70 * 1024));
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("requestBody").is_none() {
                continue;
            }
            let concrete = path.replace("{id}", &card);
            // In the content type the operation reads (JSON, or a widget's form).
            let form = op["requestBody"]["content"]
                .get("application/x-www-form-urlencoded")
                .is_some();
            let (body, ct) = if form {
                (big_form.as_str(), "application/x-www-form-urlencoded")
            } else {
                (big.as_str(), "application/json")
            };
            let r = s.call_with(
                &method.to_uppercase(),
                &concrete,
                Some(&key),
                Some(body),
                ct,
                &[],
            );
            assert_eq!(r.status, 413, "{method} {path}: {}", r.body);
            assert_eq!(r.code(), "invalid_request", "{method} {path}");
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} operations take a body");
}

/// Reads from `c` until the server closes it; what it sent. Panics if the
/// server keeps it open for 60 s (a liveness bound, far above the timeouts).
fn read_until_closed(c: &mut TcpStream) -> String {
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

/// The widget pages and their API are limited per client address (their
/// static assets are not); behind a trusted proxy, per forwarded address.
#[test]
fn widgets_are_limited_per_client_address() {
    let s = Server::start_env(
        "limits-widgets",
        &[
            ("PINVAULT_RATE_LIMIT_WIDGET_ADDRESS", "3/h"),
            ("PINVAULT_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    );
    let key = s.program("test", &[]);
    let card = s.card(&key, PAN);
    let token = s.token(&key, &card, "set_pin");
    let page = format!("/widgets/pin-set?token={token}");
    let from =
        |ip: &str, path: &str| s.call_with("GET", path, None, None, "", &[("X-Forwarded-For", ip)]);
    for _ in 0..3 {
        let r = from("203.0.113.7", &page);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = from("203.0.113.7", &page);
    assert_limited(&r, "from this address");
    // The widget API shares the bucket; the assets and the SDK do not count.
    let r = s.call_with(
        "POST",
        "/widgets/api/pin-set",
        None,
        Some(&json!({"control_token": token, "encrypted_pin": "x"}).to_string()),
        "application/json",
        &[("X-Forwarded-For", "203.0.113.7")],
    );
    assert_limited(&r, "from this address");
    assert_eq!(from("203.0.113.7", "/widgets/assets/widget.js").status, 200);
    assert_eq!(from("203.0.113.7", "/sdk/pinvault.js").status, 200);
    // Another client behind the same proxy has its own bucket.
    assert_eq!(from("198.51.100.9", &page).status, 200);
    assert_eq!(
        metric(&s, "pinvault_rate_limited_total{limit=\"widget_address\"}"),
        2
    );
}
