//! Leak canaries: every path a PIN or a PAN takes (card creation with a PIN,
//! set in clear and encrypted, refused PINs and PANs, reveal in clear and to a
//! device, PIN blocks verified and mismatched, the sandbox, unblock, the hosted
//! widgets' pages and calls, webhooks)
//! with distinctive values: 12-digit PINs and Luhn-valid PANs that occur
//! nowhere by chance. Afterwards none of them is in the data directory's files
//! (SQLite database, WAL, key file), the PostgreSQL database, the server's
//! debug log, the events API or the webhook bodies. A value the service does
//! store (an `external_id`) is planted the same way and found: the scan can fail.
//!
//! (Every other integration test is a canary run too: the harness registers
//! each PAN and each PIN of 8 digits or more it sends, and checks at the end.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{self, Server};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{ECDH_P256, PrivateKey};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use serde_json::json;

/// A Luhn-valid PAN: `prefix` and its check digit.
pub(crate) fn luhn(prefix: &str) -> String {
    let sum: u32 = prefix
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).unwrap();
            if i % 2 == 0 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    format!("{prefix}{}", (10 - sum % 10) % 10)
}

/// A receiver that answers 200 and keeps every body.
fn receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let b = bodies.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, len) = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    break (i + 4, len);
                }
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break (0, usize::MAX),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            if len == usize::MAX {
                continue;
            }
            while buf.len() < head_end + len {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            b.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[head_end..]).into_owned());
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, bodies)
}

/// A compact JWE (RSA-OAEP-256, A256GCM) of `plain` to the current published key.
fn encrypt_pin(s: &Server, plain: &str) -> String {
    let jwks = s.call("GET", "/v1/pin-encryption-keys", None, None).body;
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let pem = s
        .call(
            "GET",
            &format!("/v1/pin-encryption-keys/{kid}.pem"),
            None,
            None,
        )
        .body;
    let b64: String = pem
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let public = PublicEncryptingKey::from_der(&STANDARD.decode(b64).unwrap()).unwrap();
    let oaep = OaepPublicEncryptingKey::new(public).unwrap();
    let header =
        B64.encode(json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": kid}).to_string());
    let mut cek = [0u8; 32];
    aws_lc_rs::rand::fill(&mut cek).unwrap();
    let mut iv = [0u8; 12];
    aws_lc_rs::rand::fill(&mut iv).unwrap();
    let mut ek = vec![0u8; oaep.ciphertext_size()];
    let ek = oaep
        .encrypt(&OAEP_SHA256_MGF1SHA256, &cek, &mut ek, None)
        .unwrap()
        .to_vec();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &cek).unwrap());
    let mut body = plain.as_bytes().to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(header.as_bytes()),
            &mut body,
        )
        .unwrap();
    [
        header,
        B64.encode(ek),
        B64.encode(iv),
        B64.encode(body),
        B64.encode(tag.as_ref()),
    ]
    .join(".")
}

fn cli_block(format: &str, pin: &str, pan: &str, key_hex: &str) -> String {
    let out = std::process::Command::new(harness::BIN)
        .args([
            "pinblock", "encode", "--format", format, "--pin", pin, "--pan", pan,
        ])
        .args(["--key", key_hex, "--key-algorithm", "aes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn no_pin_or_pan_is_left_anywhere() {
    let (port, hooks) = receiver();
    let s = Server::start_env(
        "canaries",
        &[("PINVAULT_ALLOW_PRIVATE_WEBHOOK_TARGETS", "1")],
    );
    let live = s.program(
        "live",
        &["allow_plaintext_pin=true", "allow_plaintext_reveal=true"],
    );
    let test = s.program("test", &[]);
    for key in [&live, &test] {
        let r = s.post(
            "/v1/webhook-endpoints",
            key,
            &json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": [
                "card.created", "pin.token_created", "pin.changed", "pin.staged",
                "pin.stage_failed", "pin.revealed", "pin.verification_failed",
                "pin.blocked", "pin.unblocked", "pin.chip_updated",
                "pin.chip_update_failed", "pin.offline_blocked", "pin.change_reversed",
                "pin.fail_count_reset"]})
            .to_string(),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let pans = [
        luhn("492903726518394"),
        luhn("535718204963712"),
        luhn("601173829461057"),
        luhn("371846205938174"),
    ];
    let pins = [
        "482910573619",
        "730418529164",
        "915372846021",
        "604829173550",
    ];
    let (pan_a, pan_b, pan_c, pan_d) = (&pans[0], &pans[1], &pans[2], &pans[3]);

    // Card A: created with its PIN in clear, under an idempotency key (twice).
    let body = json!({"pan": pan_a, "expiry": "2031-04", "pin": {"pin": pins[0]}}).to_string();
    for _ in 0..2 {
        let r = s.call_with(
            "POST",
            "/v1/cards",
            Some(&live),
            Some(&body),
            "application/json",
            &[("Idempotency-Key", "canary-1")],
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // Card B: a random PIN, then one set in clear, then one set encrypted.
    let card_b = s.card(&live, pan_b);
    assert_eq!(s.set_pin(&live, &card_b, pins[1]).status, 204);
    let token = s.token(&live, &card_b, "set_pin");
    s.mark(pins[2]);
    let jwe = encrypt_pin(&s, &json!({"pin": pins[2], "card_id": card_b}).to_string());
    let r = s.call(
        "PUT",
        &format!("/v1/cards/{card_b}/pin"),
        Some(&live),
        Some(&json!({"control_token": token, "encrypted_pin": jwe}).to_string()),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    // Refused input is not kept either: a 13-digit PIN, a PAN failing Luhn.
    let token = s.token(&live, &card_b, "set_pin");
    let too_long = "4829105736194";
    let r = s.call(
        "PUT",
        &format!("/v1/cards/{card_b}/pin"),
        Some(&live),
        Some(&json!({"control_token": token, "pin": too_long}).to_string()),
    );
    assert_eq!(r.code(), "invalid_pin", "{}", r.body);
    let bad_pan = format!("{}{}", &pan_d[..15], (pan_d.as_bytes()[15] - b'0' + 1) % 10);
    s.mark(&bad_pan);
    let r = s.post("/v1/cards", &live, &json!({"pan": bad_pan}).to_string());
    assert_eq!(r.code(), "invalid_pan", "{}", r.body);
    // Reveal in clear and to a device key.
    assert_eq!(s.reveal(&live, &card_b), pins[2]);
    let device = PrivateKey::generate(&ECDH_P256).unwrap();
    let p = device.compute_public_key().unwrap();
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&p.as_ref()[1..33]),
        "y": B64.encode(&p.as_ref()[33..65])});
    let token = s.token(&live, &card_b, "reveal_pin");
    let r = s.post(
        &format!("/v1/cards/{card_b}/pin/reveal"),
        &live,
        &json!({"control_token": token, "device_key": jwk}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // PIN blocks: a match, a mismatch (another canary PIN), unblock.
    let zone_hex = "7c1f4e2a9b3d5f60718293a4b5c6d7e8";
    let zpk = s.cli_json(&[
        "zone-keys",
        "import",
        "--program",
        &s.program_of(&live),
        "--name",
        "canary",
        "--algorithm",
        "aes128",
        "--component",
        zone_hex,
    ])["zone_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.mark(pins[3]);
    for (pin, want) in [(pins[2], "match"), (pins[3], "mismatch")] {
        for format in ["iso_4", "iso_0"] {
            let block = cli_block(format, pin, pan_b, zone_hex);
            let r = s.post(
                &format!("/v1/cards/{card_b}/pin/verify"),
                &live,
                &json!({"pin_block": block, "format": format, "zone_key_id": zpk}).to_string(),
            );
            assert_eq!(r.body["result"], want, "{}", r.body);
        }
    }
    let r = s.post(&format!("/v1/cards/{card_b}/pin/unblock"), &live, "{}");
    assert_eq!(r.status, 204, "{}", r.body);
    // The sandbox, with a canary PIN typed at a "terminal", until blocked.
    let card_c = s.card(&test, pan_c);
    for _ in 0..4 {
        let r = s.post(
            &format!("/v1/test/cards/{card_c}/pin/verify"),
            &test,
            &json!({"pin": pins[3]}).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // The hosted widgets: the pages (token in the query), a PIN set through
    // the set widget's call (encrypted on the "device"), a reveal through the
    // reveal widget's call.
    let widget_pin = "284619375028";
    s.mark(widget_pin);
    let token = s.token(&live, &card_b, "set_pin");
    let r = s.call(
        "GET",
        &format!("/widgets/pin-set?token={token}"),
        None,
        None,
    );
    assert_eq!(r.status, 200);
    let jwe = encrypt_pin(
        &s,
        &json!({"pin": widget_pin, "card_id": card_b}).to_string(),
    );
    let r = s.call(
        "POST",
        "/widgets/api/pin-set",
        None,
        Some(&json!({"control_token": token, "encrypted_pin": jwe}).to_string()),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let token = s.token(&live, &card_b, "reveal_pin");
    let r = s.call(
        "GET",
        &format!("/widgets/pin-reveal?token={token}"),
        None,
        None,
    );
    assert_eq!(r.status, 200);
    let r = s.call(
        "POST",
        "/widgets/api/pin-reveal",
        None,
        Some(&json!({"control_token": token, "device_key": jwk}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["encrypted_pin"].is_string(), "{}", r.body);

    // Chip cards and the ATM (issue 20): the issuer master keys given to the
    // CLI, the PIN blocks of an ATM change and the issuer scripts answered
    // (which carry the PIN enciphered) are in no log, row or event.
    let imks = [
        "5e1f0a9c3b7d2e4f6a8c0b1d3e5f7a9c",
        "a1c3e5f70b2d4f6e8a9c1b3d5e7f9a0c",
        "0f2e4d6c8b9a1c3e5f7a9b0d2c4e6f8a",
    ];
    for k in imks {
        s.mark(k);
        s.mark(&k.to_uppercase());
    }
    let iks = s.cli_json(&[
        "issuer-keys",
        "import",
        "--program",
        &s.program_of(&live),
        "--name",
        "canary",
        "--cvn",
        "mastercard_16",
        "--imk-ac",
        imks[0],
        "--imk-smi",
        imks[1],
        "--imk-smc",
        imks[2],
    ])["issuer_key_set_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pan_e = luhn("547392018465203");
    let r = s.post(
        "/v1/cards",
        &live,
        &json!({"pan": pan_e, "pin": {"pin": "5927048163"},
            "chip": {"issuer_key_set_id": iks, "pan_sequence_number": "01"}})
        .to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let card_e = r.body["id"].as_str().unwrap().to_owned();
    let atm_pin = "6182739405";
    s.mark(atm_pin);
    let (current, new) = (
        cli_block("iso_4", "5927048163", &pan_e, zone_hex),
        cli_block("iso_4", atm_pin, &pan_e, zone_hex),
    );
    for block in [&current, &new] {
        s.mark(block);
        s.mark(&block.to_lowercase());
    }
    let de55 = "9F2608A1B2C3D4E5F607189F360200429F27018095050000000000";
    let r = s.post(
        &format!("/v1/cards/{card_e}/pin/change"),
        &live,
        &json!({"pin_block": current, "new_pin_block": new, "format": "iso_4",
            "zone_key_id": zpk, "icc_data": de55})
        .to_string(),
    );
    assert_eq!(r.body["result"], "changed", "{}", r.body);
    let script = r.body["icc_response_data"].as_str().unwrap().to_owned();
    s.mark(&script);
    // The enciphered PIN and MAC inside the script on their own.
    s.mark(&script[script.len() - 32..]);
    let change_id = r.body["change_id"].as_str().unwrap().to_owned();
    let r = s.post(&format!("/v1/pin-changes/{change_id}/reverse"), &live, "{}");
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s.post(
        &format!("/v1/cards/{card_e}/chip/scripts"),
        &live,
        &json!({"icc_data": de55, "offline_pin_blocked": true}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let script = r.body["icc_response_data"].as_str().unwrap().to_owned();
    s.mark(&script);
    s.mark(&script[script.len() - 32..]);
    // The chip reports the script failed, then that it succeeded.
    let id = &script[10..18];
    for result in ["10", "20"] {
        let icc = format!("{de55}9F5B05{result}{id}");
        let r = s.post(
            &format!("/v1/cards/{card_e}/chip/scripts"),
            &live,
            &json!({"icc_data": icc, "offline_pin_blocked": false}).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }

    // The planted value: stored by design, so the scan must find it.
    let planted = "7391046285519264";
    let r = s.post(
        "/v1/cards",
        &live,
        &json!({"pan": pan_d, "external_id": planted}).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.body);

    let canaries = s.canaries();
    for v in pans
        .iter()
        .map(String::as_str)
        .chain(pins)
        .chain([too_long, bad_pan.as_str(), pan_e.as_str(), atm_pin])
        .chain(imks)
    {
        assert!(canaries.contains(v), "{v} was not registered: {canaries:?}");
    }

    // Every event of both programs, from the API and from the webhooks.
    let mut events = String::new();
    let mut count = 0;
    for key in [&live, &test] {
        let mut after = String::new();
        loop {
            let r = s.get(&format!("/v1/events?limit=100{after}"), key);
            assert_eq!(r.status, 200, "{}", r.body);
            let data = r.body["data"].as_array().unwrap();
            count += data.len();
            events.push_str(&r.body.to_string());
            if !r.body["has_more"].as_bool().unwrap() {
                break;
            }
            after = format!(
                "&starting_after={}",
                data.last().unwrap()["id"].as_str().unwrap()
            );
        }
    }
    assert!(count >= 15, "{count} events");
    let since = Instant::now();
    while hooks.lock().unwrap().len() < count {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "{} of {count} webhooks delivered",
            hooks.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let webhooks = hooks.lock().unwrap().join("\n");

    let mut leaks = s.leaks();
    leaks.extend(harness::find_canaries(
        events.as_bytes(),
        &canaries,
        "GET /v1/events",
    ));
    leaks.extend(harness::find_canaries(
        webhooks.as_bytes(),
        &canaries,
        "the webhook bodies",
    ));
    assert!(leaks.is_empty(), "leak canaries found: {leaks:#?}");

    // The scan works: the planted value is found where it is kept.
    let planted = BTreeSet::from([planted.to_owned()]);
    let found = s.leaks_of(&planted);
    assert!(
        found
            .iter()
            .any(|f| f.contains("pinvault.db") || f.contains("PostgreSQL")),
        "the planted value was not found: {found:?}"
    );
    // And in hex form (as PostgreSQL shows bytes), and in events when carried.
    let hex: String = "482910573619".bytes().map(|b| format!("{b:02x}")).collect();
    let pin_set = BTreeSet::from([pins[0].to_owned()]);
    assert_eq!(
        harness::find_canaries(hex.as_bytes(), &pin_set, "x").len(),
        1
    );
}

/// Idempotent creates keep a keyed fingerprint of the request (API.md "Security
/// behaviour"): no SHA-256, raw or hex, of any body sent, of its canonical form
/// with the route, of a PAN or of a PIN is in the data directory or the database.
#[test]
fn idempotent_requests_leave_no_plain_hash_of_what_they_sent() {
    let mut s = Server::start("idem-hashes");
    let live = s.program("live", &["allow_plaintext_pin=true"]);
    let (pan, pin) = (luhn("400000123456789"), "81726354");
    let bodies = [
        json!({"pan": pan, "pin": {"pin": pin}}).to_string(),
        format!(r#"{{ "pin": {{"pin": "{pin}"}}, "pan": "{pan}" }}"#),
    ];
    let mut card = String::new();
    for (i, body) in bodies.iter().enumerate() {
        let r = s.call_with(
            "POST",
            "/v1/cards",
            Some(&live),
            Some(body),
            "application/json",
            &[("Idempotency-Key", "hash-1")],
        );
        assert_eq!(r.status, 201, "{}", r.body);
        // The same request in another key order is recognised: replayed.
        assert_eq!(r.header("idempotent-replayed").is_some(), i == 1, "{i}");
        card = r.body["id"].as_str().unwrap().to_owned();
    }
    let token_body = json!({"type": "set_pin"}).to_string();
    let r = s.call_with(
        "POST",
        &format!("/v1/cards/{card}/control-tokens"),
        Some(&live),
        Some(&token_body),
        "application/json",
        &[("Idempotency-Key", "hash-2")],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // What a plain hash would have covered.
    let canonical = |route: &str, body: &str| {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        format!("{route}\n{v}")
    };
    let token_route = format!("POST /v1/cards/{card}/control-tokens");
    let covered = [
        bodies[0].clone(),
        bodies[1].clone(),
        canonical("POST /v1/cards", &bodies[0]),
        token_body.clone(),
        canonical(&token_route, &token_body),
        pan.clone(),
        pin.to_owned(),
    ];
    s.stop();
    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    let mut stack = vec![s.data_dir.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                places.push((p.display().to_string(), bytes));
            }
        }
    }
    if let Some(dump) = s.data.database_dump() {
        places.push(("the PostgreSQL database".into(), dump.into_bytes()));
    }
    assert!(
        places.iter().any(|(_, b)| b.len() > 4096),
        "nothing scanned"
    );
    for (i, text) in covered.iter().enumerate() {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
        let raw = digest.as_ref().to_vec();
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        for (place, bytes) in &places {
            for (form, pat) in [("raw", raw.as_slice()), ("hex", hex.as_bytes())] {
                assert!(
                    !bytes.windows(pat.len()).any(|w| w == pat),
                    "a SHA-256 ({form}) of covered value #{i} is in {place}"
                );
            }
        }
    }
}
