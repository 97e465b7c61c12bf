//! Running the service: operator commands, health and metrics, the master key
//! file, no clear secret at rest, the OpenAPI document, key rotation while
//! serving, SIGTERM (serve --dev: `dev`).

use crate::harness::{self, Server};
use serde_json::Value;

use super::support::*;

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
    let out = s.cli(&["keys", "rotate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["cards_reencrypted"], 3, "{report}");
    // Progress on stderr (not a terminal: a line every 5 s and one at the
    // end): one while it waits for servers to take the new keys, then the end.
    let progress = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = progress
        .lines()
        .filter(|l| l.starts_with("keys rotate"))
        .collect();
    assert!(lines.len() >= 2, "{progress}");
    assert!(
        lines[0].contains("cards re-encrypted") && lines[0].contains("3 of 3"),
        "{progress}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains("new PIN encryption key published: 3"),
        "{progress}"
    );
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
        ("/v1/card-lookups", "post"),
        ("/v1/cards/{id}", "get"),
        ("/v1/cards/{id}", "patch"),
        ("/v1/cards/{id}/pin/status", "get"),
        ("/v1/cards/{id}/control-tokens", "post"),
        ("/v1/cards/{id}/pin", "put"),
        ("/v1/cards/{id}/pin/commit", "post"),
        ("/v1/cards/{id}/pin/reveal", "post"),
        ("/v1/cards/{id}/pin/unblock", "post"),
        ("/v1/cards/{id}/pin/export", "post"),
        ("/v1/cards/{id}/pin/verify", "post"),
        ("/v1/cards/{id}/pin/change", "post"),
        ("/v1/pin-changes/{id}/reverse", "post"),
        ("/v1/issuer-key-sets", "get"),
        ("/v1/cards/{id}/chip/unblock-offline-pin", "post"),
        ("/v1/cards/{id}/chip/scripts", "post"),
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
        ("/compat/marqeta/v3/pins/controltoken", "post"),
        ("/compat/marqeta/v3/pins", "put"),
        ("/compat/marqeta/v3/pins/reveal", "post"),
        ("/compat/thredd/cards/{id}/pin", "post"),
        ("/compat/thredd/cards/{id}/pin", "get"),
        ("/compat/thredd/cards/{id}/pin/status", "get"),
        ("/compat/thredd/cards/{id}/pin/unblock", "post"),
        ("/compat/spidr/v1/card/{id}", "get"),
        ("/compat/spidr/v1/card/{id}/pinChangeToken", "get"),
        ("/compat/spidr/v1/card/{id}/commitPinChange", "post"),
        ("/compat/spidr/v1/card/{id}/resetPinFailCount", "post"),
        ("/compat/stripe/v1/issuing/cards/{id}", "post"),
        ("/compat/stripe/v1/issuing/cards/{id}", "get"),
        ("/compat/enfuce/v1/plastics/{id}/pin-control", "post"),
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
        // The document says which operations take the API key: exactly those
        // that refuse a request without one (the seed-compatible ones also
        // as HTTP Basic's user name).
        let security = if path.starts_with("/compat/") {
            serde_json::json!([{ "api_key": [] }, { "api_key_basic": [] }])
        } else {
            serde_json::json!([{ "api_key": [] }])
        };
        assert_eq!(
            r.status == 401,
            op["security"] == security,
            "{method} {path} answers {} without an API key; documented security: {}",
            r.status,
            op["security"]
        );
    }
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
