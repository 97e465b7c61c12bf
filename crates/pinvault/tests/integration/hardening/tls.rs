//! HTTPS with a self-signed certificate, and TLS files checked at start.

use crate::harness::{self, Server};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::support::*;

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
