#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! PIN verification, driven from outside as an authorization host would: zone
//! keys loaded through the command line, ISO 9564 PIN blocks made by an
//! independent implementation (psec 1.3.0 and OpenSSL, the committed vectors in
//! `crates/pinblock/tests/vectors/psec.json`), sent over HTTP to the real binary.

use std::sync::Arc;

use crate::harness::{self, Reply, Server};
use serde_json::Value;

/// A program that takes preset PINs in clear (to give cards the vectors' PINs)
/// and keeps every vector PIN (some are "weak").
const SETTINGS: &[&str] = &["allow_plaintext_pin=true", "reject_weak_pins=false"];

#[derive(Clone, Debug)]
struct Vector {
    format: String,
    pin: String,
    pan: String,
    key: String,
    key_algorithm: String,
    enciphered: String,
}

fn luhn(pan: &str) -> bool {
    let sum: u32 = pan
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// The psec vectors with a key whose PAN a card can have (12 to 19 digits,
/// Luhn-valid).
fn vectors() -> Vec<Vector> {
    let text = include_str!("../../../pinblock/tests/vectors/psec.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["enciphered"].is_string())
        .map(|v| Vector {
            format: v["format"].as_str().unwrap().to_owned(),
            pin: v["pin"].as_str().unwrap().to_owned(),
            pan: v["pan"].as_str().unwrap().to_owned(),
            key: v["key"].as_str().unwrap().to_owned(),
            key_algorithm: v["key_algorithm"].as_str().unwrap().to_owned(),
            enciphered: v["enciphered"].as_str().unwrap().to_owned(),
        })
        .filter(|v| (12..=19).contains(&v.pan.len()) && luhn(&v.pan))
        .collect()
}

fn algorithm(v: &Vector) -> &'static str {
    match (v.key_algorithm.as_str(), v.key.len()) {
        ("tdes", _) => "tdes",
        ("aes", 32) => "aes128",
        ("aes", 48) => "aes192",
        ("aes", 64) => "aes256",
        other => panic!("unexpected key {other:?}"),
    }
}

fn import(s: &Server, algorithm: &str, components: &[&str]) -> String {
    let mut args = vec![
        "zone-keys",
        "import",
        "--name",
        "test zpk",
        "--algorithm",
        algorithm,
    ];
    for c in components {
        args.push("--component");
        args.push(c);
    }
    s.cli_json(&args)["zone_key_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A card with a preset PIN.
fn card(s: &Server, key: &str, pan: &str, pin: &str) -> String {
    let r = s.post(
        "/v1/cards",
        key,
        &format!(r#"{{"pan":"{pan}","pin":{{"pin":"{pin}"}}}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// A live program's API key, a format 4 vector, its zone key imported, and a
/// card whose PIN is the vector's (so the vector's block matches).
fn iso4_card(s: &Server) -> (String, Vector, String, String) {
    let key = s.program("live", SETTINGS);
    let v = vectors().into_iter().find(|v| v.format == "iso_4").unwrap();
    let zpk = import(s, algorithm(&v), &[&v.key]);
    let c = card(s, &key, &v.pan, &v.pin);
    (key, v, zpk, c)
}

fn verify(s: &Server, key: &str, card: &str, format: &str, block: &str, zpk: &str) -> Reply {
    s.post(
        &format!("/v1/cards/{card}/pin/verify"),
        key,
        &format!(r#"{{"pin_block":"{block}","format":"{format}","zone_key_id":"{zpk}"}}"#),
    )
}

fn outcome(r: &Reply) -> (String, u64) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body.as_object().unwrap().len(),
        2,
        "exactly result and remaining_tries: {}",
        r.body
    );
    (
        r.body["result"].as_str().unwrap().to_owned(),
        r.body["remaining_tries"].as_u64().unwrap(),
    )
}

fn fail_count(s: &Server, key: &str, card: &str) -> u64 {
    let r = s.get(&format!("/v1/cards/{card}/pin/status"), key);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["fail_count"].as_u64().unwrap()
}

/// Another PIN of the same length (the last digit changed).
fn other_pin(pin: &str) -> String {
    let mut digits: Vec<u8> = pin.bytes().collect();
    let last = digits.last_mut().unwrap();
    *last = if *last == b'9' { b'0' } else { *last + 1 };
    String::from_utf8(digits).unwrap()
}

/// Every format and key size the vectors have: the block matches the card with
/// its PIN, and is a counted mismatch for a card with another PIN.
#[test]
fn independent_blocks_match_in_every_format_and_key_size() {
    let s = Server::start("verify-formats");
    let key = s.program("live", SETTINGS);
    let mut seen = std::collections::BTreeSet::new();
    for v in vectors() {
        let class = (v.format.clone(), algorithm(&v), v.key.len());
        if !seen.insert(class.clone()) {
            continue;
        }
        let zpk = import(&s, algorithm(&v), &[&v.key]);
        let good = card(&s, &key, &v.pan, &v.pin);
        assert_eq!(
            outcome(&verify(&s, &key, &good, &v.format, &v.enciphered, &zpk)),
            ("match".into(), 3),
            "{class:?}"
        );
        // Lower-case hex is the same block.
        let lower = v.enciphered.to_lowercase();
        assert_eq!(
            outcome(&verify(&s, &key, &good, &v.format, &lower, &zpk)).0,
            "match"
        );
        let bad = card(&s, &key, &v.pan, &other_pin(&v.pin));
        assert_eq!(
            outcome(&verify(&s, &key, &bad, &v.format, &v.enciphered, &zpk)),
            ("mismatch".into(), 2),
            "{class:?}"
        );
        assert_eq!(fail_count(&s, &key, &bad), 1);
    }
    let classes: std::collections::BTreeSet<_> = seen.iter().map(|c| c.0.clone()).collect();
    assert_eq!(
        classes.into_iter().collect::<Vec<_>>(),
        ["iso_0", "iso_3", "iso_4"],
        "psec has no format 1: tests/interop/verify_api.py covers it"
    );
    assert!(seen.len() >= 6, "{seen:?}");
}

/// A block bound to another PAN never matches, whatever the PIN.
#[test]
fn a_block_bound_to_another_pan_never_matches() {
    let s = Server::start("verify-pan");
    let key = s.program("live", SETTINGS);
    let pans = ["4000056655665556", "5200828282828210", "378282246310005"];
    for v in vectors().iter().filter(|v| v.format != "iso_1").take(12) {
        let zpk = import(&s, algorithm(v), &[&v.key]);
        let pan = pans.iter().find(|p| **p != v.pan).unwrap();
        let c = card(&s, &key, pan, &v.pin);
        let r = verify(&s, &key, &c, &v.format, &v.enciphered, &zpk);
        if r.status == 200 {
            assert_ne!(r.body["result"], "match", "{v:?}");
        } else {
            assert_eq!(r.status, 422, "{}", r.body);
            assert_eq!(r.code(), "decryption_failed");
            assert_eq!(fail_count(&s, &key, &c), 0);
        }
    }
}

/// Mismatches count, a match resets, `max_tries` blocks the PIN and makes the
/// card inactive; a blocked PIN answers `blocked` unchecked; unblocking and
/// reactivating the card both restore it.
#[test]
fn tries_block_unblock_and_reactivation() {
    let s = Server::start("verify-tries");
    let key = s.program("live", SETTINGS);
    let v = vectors().into_iter().find(|v| v.format == "iso_0").unwrap();
    let zpk = import(&s, algorithm(&v), &[&v.key]);
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

    // A suspended card's PIN still counts and blocks, and the card stays suspended.
    let r = s.call(
        "PATCH",
        &format!("/v1/cards/{c}"),
        Some(&key),
        Some(r#"{"status":"suspended"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for _ in 0..3 {
        outcome(&wrong());
    }
    let got = s.get(&format!("/v1/cards/{c}"), &key).body;
    assert_eq!(got["status"], "suspended", "{got}");
    assert_eq!(got["pin"]["status"], "blocked", "{got}");
}

/// The block for `pin` under the vector's key and PAN, from `pinvault pinblock
/// encode` (used where the independent vectors have no block for a PIN).
fn cli_block(s: &Server, v: &Vector, pin: &str) -> String {
    let mut args = vec![
        "pinblock", "encode", "--format", &v.format, "--pin", pin, "--pan", &v.pan, "--key", &v.key,
    ];
    if v.key_algorithm == "aes" {
        args.extend(["--key-algorithm", "aes"]);
    }
    let out = std::process::Command::new(harness::BIN)
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success());
    let _ = s;
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Undecryptable and malformed blocks are 422 `decryption_failed` and count
/// nothing; requests that name no zone key or mix format 4 with TDES are 422
/// `invalid_request`.
#[test]
fn garbage_blocks_count_nothing() {
    let s = Server::start("verify-garbage");
    let key = s.program("live", SETTINGS);
    let v = vectors().into_iter().find(|v| v.format == "iso_0").unwrap();
    let zpk = import(&s, "tdes", &[&v.key]);
    let c = card(&s, &key, &v.pan, &v.pin);
    let garbage = [
        "",
        "00",
        "XYZ0XYZ0XYZ0XYZ0",
        "0123456789abcde",
        "0123456789ABCDEF00",
        "00000000000000000000000000000000000000000000000000000000000000000000",
        "FFFFFFFFFFFFFFFF",
        "0000000000000000",
        "1234567890ABCDEF",
        "1234567890ABCDEF1234567890ABCDEF",
    ];
    for block in garbage {
        let r = verify(&s, &key, &c, "iso_0", block, &zpk);
        assert_eq!(r.status, 422, "{block}: {}", r.body);
        assert_eq!(r.code(), "decryption_failed", "{block}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
    // A valid block sent as the wrong format does not parse as that format.
    for format in ["iso_1", "iso_3"] {
        let r = verify(&s, &key, &c, format, &v.enciphered, &zpk);
        assert_eq!(r.code(), "decryption_failed", "{format}: {}", r.body);
    }
    let r = verify(&s, &key, &c, "iso_4", &v.enciphered, &zpk);
    assert_eq!((r.status, r.code()), (422, "invalid_request"), "{}", r.body);
    let r = verify(&s, &key, &c, "iso_2", &v.enciphered, &zpk);
    assert_eq!((r.status, r.code()), (422, "invalid_request"), "{}", r.body);
    let r = verify(
        &s,
        &key,
        &c,
        "iso_0",
        &v.enciphered,
        "zpk_aaaaaaaaaaaaaaaaaaaaaaaa",
    );
    assert_eq!((r.status, r.code()), (422, "invalid_request"), "{}", r.body);
    let r = verify(&s, &key, &c, "iso_0", &v.enciphered, "../../etc");
    assert_eq!((r.status, r.code()), (422, "invalid_request"), "{}", r.body);
    let r = s.post(
        &format!("/v1/cards/{c}/pin/verify"),
        &key,
        r#"{"pin_block":1234,"format":"iso_0"}"#,
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(!r.body["detail"].as_str().unwrap().contains("1234"));
    let r = verify(
        &s,
        &key,
        "card_aaaaaaaaaaaaaaaaaaaaaaaa",
        "iso_0",
        &v.enciphered,
        &zpk,
    );
    assert_eq!((r.status, r.code()), (404, "not_found"));
    assert_eq!(fail_count(&s, &key, &c), 0, "nothing was counted");
    assert_eq!(
        outcome(&verify(&s, &key, &c, "iso_0", &v.enciphered, &zpk)),
        ("match".into(), 3)
    );
    assert!(!s.logs().contains("panicked"));
}

/// 24 simultaneous wrong PINs for one card: exactly `max_tries` (3) are counted
/// as mismatches, the rest answer `blocked`.
#[test]
fn concurrent_wrong_pins_stop_at_exactly_max_tries() {
    let s = Arc::new(Server::start("verify-race"));
    let key = Arc::new(s.program("live", SETTINGS));
    let v = Arc::new(vectors().into_iter().find(|v| v.format == "iso_4").unwrap());
    let zpk = Arc::new(import(&s, algorithm(&v), &[&v.key]));
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

/// A match with no failures recorded writes nothing: the database and its
/// write-ahead log are unchanged by a run of matches.
#[test]
fn a_clean_match_writes_nothing() {
    let s = Server::start("verify-nowrite");
    let (key, v, zpk, c) = iso4_card(&s);
    assert_eq!(
        outcome(&verify(&s, &key, &c, &v.format, &v.enciphered, &zpk)).0,
        "match"
    );
    // SQLite: the files' sizes and times; PostgreSQL: every row and its version.
    let state = || {
        let files = ["pinvault.db", "pinvault.db-wal"].map(|f| {
            let m = std::fs::metadata(s.data_dir.join(f)).ok()?;
            Some((m.len(), m.modified().unwrap()))
        });
        assert!(s.data.database_url.is_some() || files.iter().all(Option::is_some));
        (files, s.data.database_versions())
    };
    let before = state();
    for _ in 0..20 {
        assert_eq!(
            outcome(&verify(&s, &key, &c, &v.format, &v.enciphered, &zpk)).0,
            "match"
        );
    }
    assert_eq!(before, state(), "a clean match wrote to the database");
}

/// Zone keys: components XORed, the KCV printed and checked, the key never
/// shown, listed or stored in clear.
#[test]
fn zone_key_import_checks_and_hides_the_key() {
    let s = Server::start("verify-zpk");
    let key = s.program("live", SETTINGS);
    // 0123456789ABCDEF FEDCBA9876543210 (published KCV 08D7B4) in two components.
    let c1 = "11111111111111111111111111111111";
    let c2 = "1032547698BADCFEEFCDAB8967452301";
    let out = s.cli_json(&[
        "zone-keys",
        "import",
        "--name",
        "acquirer A",
        "--algorithm",
        "tdes",
        "--component",
        c1,
        "--component",
        c2,
        "--kcv",
        "08D7B4",
    ]);
    assert_eq!(out["kcv"], "08D7B4", "{out}");
    let id = out["zone_key_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("zpk_"));
    assert_eq!(out.as_object().unwrap().len(), 2, "{out}");

    // A wrong KCV is refused and stores nothing.
    let bad = s.cli(&[
        "zone-keys",
        "import",
        "--name",
        "wrong",
        "--algorithm",
        "tdes",
        "--component",
        c2,
        "--kcv",
        "08D7B4",
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("check value"), "{err}");
    for (alg, comp) in [("aes256", c1), ("tdes", "0011"), ("aes128", "nothex")] {
        let r = s.cli(&[
            "zone-keys",
            "import",
            "--name",
            "x",
            "--algorithm",
            alg,
            "--component",
            comp,
        ]);
        assert!(!r.status.success(), "{alg} {comp}");
        assert!(!String::from_utf8_lossy(&r.stderr).contains(comp) || comp == "0011");
    }
    // AES components and the AES KCV (CMAC of zeros): 000102…0F is BE7ED6.
    let aes = s.cli_json(&[
        "zone-keys",
        "import",
        "--name",
        "acquirer B",
        "--algorithm",
        "aes128",
        "--component",
        "000102030405060708090A0B0C0D0E0F",
        "--kcv",
        "be7ed6",
    ]);
    assert_eq!(aes["kcv"], "BE7ED6");

    let list = s.get("/v1/zone-keys", &key);
    assert_eq!(list.status, 200, "{}", list.body);
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{}", list.body);
    assert_eq!(data[1]["id"], id.as_str());
    assert_eq!(data[1]["name"], "acquirer A");
    assert_eq!(data[1]["algorithm"], "tdes");
    assert_eq!(data[1]["kcv"], "08D7B4");
    assert_eq!(data[0]["algorithm"], "aes128");
    let page = s.get("/v1/zone-keys?limit=1", &key).body;
    assert_eq!(page["has_more"], true);
    let next = s
        .get(
            &format!(
                "/v1/zone-keys?limit=1&starting_after={}",
                page["data"][0]["id"].as_str().unwrap()
            ),
            &key,
        )
        .body;
    assert_eq!(next["data"][0]["id"], id.as_str());
    assert_eq!(next["has_more"], false);
    let listed = s.cli_json(&["zone-keys", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // No key material anywhere: listings, the log, the data directory.
    let clear = [
        "0123456789ABCDEFFEDCBA9876543210",
        "000102030405060708090A0B0C0D0E0F",
        c1,
        c2,
    ];
    let everything = format!("{}{}{}", list.body, listed, s.logs());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&s.data_dir).unwrap() {
        let path = entry.unwrap().path();
        files.push(std::fs::read(&path).unwrap());
    }
    // PostgreSQL: every row as text, byte columns in hex.
    let dump = s.data.database_dump().unwrap_or_default().to_uppercase();
    for (i, k) in clear.iter().enumerate() {
        assert!(!everything.to_uppercase().contains(k), "key #{i} shown");
        assert!(!dump.contains(k), "key #{i} stored in clear");
        let bytes: Vec<u8> = (0..k.len() / 2)
            .map(|j| u8::from_str_radix(&k[2 * j..2 * j + 2], 16).unwrap())
            .collect();
        for f in &files {
            assert!(
                !f.windows(bytes.len()).any(|w| w == bytes.as_slice()),
                "key #{i} stored in clear"
            );
        }
    }
}

/// Changes the server's database directly, as a writer that is not this server
/// would (an operator's SQL client, another process on the same file).
fn write_directly(s: &Server, sql: &str) {
    match &s.data.database_url {
        Some(url) => {
            harness::postgres_query(url, sql);
        }
        None => {
            let db = rusqlite::Connection::open(s.data_dir.join("pinvault.db")).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            db.execute_batch(sql).unwrap();
        }
    }
}

/// The rows every request reads (the API key, its program, the card) may be
/// held between requests, but a change committed by any writer counts from the
/// next request: the operator command line in another process, or SQL from
/// outside pinvault altogether.
#[test]
fn changes_by_any_writer_count_at_once() {
    let s = Server::start("verify-writers");
    let (key, v, zpk, c) = iso4_card(&s);
    let right = |key: &str| verify(&s, key, &c, &v.format, &v.enciphered, &zpk);
    for _ in 0..3 {
        assert_eq!(outcome(&right(&key)), ("match".into(), 3));
    }

    let program = s.get("/v1/program", &key).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.cli_json(&["programs", "update", &program, "--set", "max_tries=5"]);
    assert_eq!(outcome(&right(&key)), ("match".into(), 5));

    write_directly(
        &s,
        &format!("UPDATE cards SET pin_blocked = TRUE WHERE id = '{c}'"),
    );
    assert_eq!(outcome(&right(&key)), ("blocked".into(), 0));
    assert_eq!(outcome(&right(&key)), ("blocked".into(), 0));
    write_directly(
        &s,
        &format!("UPDATE cards SET pin_blocked = FALSE WHERE id = '{c}'"),
    );
    assert_eq!(outcome(&right(&key)), ("match".into(), 5));

    let extra = s.cli_json(&["api-keys", "create", "--program", &program]);
    let extra_key = extra["api_key"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(outcome(&right(extra_key)), ("match".into(), 5));
    }
    s.cli_json(&["api-keys", "revoke", extra["api_key_id"].as_str().unwrap()]);
    let r = right(extra_key);
    assert_eq!((r.status, r.code()), (401, "unauthorized"), "{}", r.body);
    assert_eq!(outcome(&right(&key)), ("match".into(), 5));
}
