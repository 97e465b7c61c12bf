//! PIN blocks from independent implementations match in every format and key
//! size; other PANs, garbage and other writers are handled.

use crate::harness::Server;

use super::support::*;

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
        let zpk = import(&s, &key, algorithm(&v), &[&v.key]);
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
        let zpk = import(&s, &key, algorithm(v), &[&v.key]);
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

/// Undecryptable and malformed blocks are 422 `decryption_failed` and count
/// nothing; requests that name no zone key or mix format 4 with TDES are 422
/// `invalid_request`.
#[test]
fn garbage_blocks_count_nothing() {
    let s = Server::start("verify-garbage");
    let key = s.program("live", SETTINGS);
    let v = vectors().into_iter().find(|v| v.format == "iso_0").unwrap();
    let zpk = import(&s, &key, "tdes", &[&v.key]);
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
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
    let r = verify(&s, &key, &c, "iso_0", &v.enciphered, "../../etc");
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
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
    // The writes before (the card, its audit records) settle first: the
    // server seals the audit trail every 250 ms and SQLite's WAL is
    // checkpointed every 200 ms, each in the background.
    let mut before = state();
    for _ in 0..30 {
        std::thread::sleep(std::time::Duration::from_millis(700));
        let now = state();
        if now == before {
            break;
        }
        before = now;
    }
    for _ in 0..20 {
        assert_eq!(
            outcome(&verify(&s, &key, &c, &v.format, &v.enciphered, &zpk)).0,
            "match"
        );
    }
    assert_eq!(before, state(), "a clean match wrote to the database");
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
