//! The audit trail: who did what, and a changed record is named.

use crate::harness::Server;

use super::support::*;

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
        "--program",
        &s.program_of(&key),
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

/// A running server chains what changes queue by itself, within about a
/// second, with no command run: the queue empties and the chain grows, read
/// straight from the database.
#[test]
fn a_running_server_seals_the_records_changes_queue() {
    let s = Server::start("audit-sealer");
    let key = s.program("test", &["allow_plaintext_pin=true"]);
    let db = Db::open(&s);
    // The program's records (written by the command line) are sealed by the
    // server too; then an API change queues one more.
    wait_for("the queue to empty", || {
        db.count("SELECT COUNT(*) FROM audit_queue") == 0
    });
    let before = db.count("SELECT COUNT(*) FROM audit_log");
    let r = s.post("/v1/cards", &key, &format!(r#"{{"pan":"{PAN}"}}"#));
    assert_eq!(r.status, 201, "{}", r.body);
    wait_for("the server to seal the card's record", || {
        db.count("SELECT COUNT(*) FROM audit_queue") == 0
            && db.count("SELECT COUNT(*) FROM audit_log") > before
    });
    let (ok, report, _) = audit_verify(&s);
    assert!(ok, "{report}");
    assert_eq!(report["sealing"]["sealed_now"], 0, "{report}");
}
