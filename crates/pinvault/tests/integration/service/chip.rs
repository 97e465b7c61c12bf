//! Chip cards' data (API.md "Chip cards"): issuer key sets loaded by the
//! operator per program, chip data on cards, and the commands every PIN change
//! and an offline-PIN unblock leave pending for the chip.

use crate::harness::{Reply, Server};
use serde_json::{Value, json};

const PAN: &str = "4111111111111111";
// A double-length TDES key with a published check value (08D7B4), in two
// components; and two more keys for SMI and SMC.
const KEY: &str = "0123456789ABCDEFFEDCBA9876543210";
const C1: &str = "11111111111111111111111111111111";
const C2: &str = "1032547698BADCFEEFCDAB8967452301";

fn import(s: &Server, program: &str, cvn: &str) -> Value {
    s.cli_json(&[
        "issuer-keys",
        "import",
        "--program",
        program,
        "--name",
        "issuer A",
        "--cvn",
        cvn,
        "--imk-ac",
        C1,
        "--imk-ac",
        C2,
        "--kcv-ac",
        "08D7B4",
        "--imk-smi",
        "89ABCDEF0123456776543210FEDCBA98",
        "--imk-smc",
        "FEDCBA98765432100123456789ABCDEF",
    ])
}

fn chip(r: &Reply) -> Value {
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    r.body["chip"].clone()
}

#[test]
fn issuer_keys_are_the_programs_and_pin_changes_leave_commands_for_the_chip() {
    let s = Server::start("chip");
    let key = s.program("live", &["allow_plaintext_pin=true"]);
    let other = s.program("live", &[]);
    let (program, their_program) = (s.program_of(&key), s.program_of(&other));

    let made = import(&s, &program, "visa_10");
    assert_eq!(made["cvn"], "visa_10", "{made}");
    assert_eq!(made["kcv"]["ac"], "08D7B4", "{made}");
    let iks = made["issuer_key_set_id"].as_str().unwrap().to_owned();
    assert!(iks.starts_with("iks_"));
    let theirs = import(&s, &their_program, "mastercard_16")["issuer_key_set_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Refused imports: a wrong check value, a single-length key, no such program or CVN.
    for args in [
        vec!["--imk-ac", C1, "--kcv-ac", "08D7B4"],
        vec!["--imk-ac", "0123456789ABCDEF"],
        vec!["--imk-ac", KEY, "--program", "prg_aaaaaaaaaaaaaaaaaaaaaaaa"],
        vec!["--imk-ac", KEY, "--cvn", "visa_17"],
    ] {
        let mut all = vec![
            "issuer-keys",
            "import",
            "--name",
            "x",
            "--imk-smi",
            KEY,
            "--imk-smc",
            KEY,
        ];
        if !args.contains(&"--program") {
            all.extend(["--program", &program]);
        }
        if !args.contains(&"--cvn") {
            all.extend(["--cvn", "visa_18"]);
        }
        all.extend(args.iter().copied());
        let r = s.cli(&all);
        assert!(!r.status.success(), "{args:?}");
        assert!(
            !String::from_utf8_lossy(&r.stderr).contains(C1),
            "no key material in errors"
        );
    }
    // Each program lists its own; the operator sees them all; never a key.
    let listed = s.get("/v1/issuer-key-sets", &key).body;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["data"][0]["id"], iks.as_str());
    let all = s.cli_json(&["issuer-keys", "list"]).to_string();
    assert!(all.contains(&iks) && all.contains(&theirs), "{all}");
    assert!(!all.contains(KEY) && !listed.to_string().contains(KEY));

    // A chip card; a card without chip data; another program's key set refused.
    let c = s.post(
        "/v1/cards",
        &key,
        &json!({"pan": PAN, "pin": {"pin": "2580"},
        "chip": {"issuer_key_set_id": iks, "pan_sequence_number": "01"}})
        .to_string(),
    );
    let ch = chip(&c);
    assert_eq!(ch["issuer_key_set_id"], iks.as_str());
    assert_eq!(ch["pan_sequence_number"], "01");
    assert_eq!(ch["offline_pin"], "in_sync");
    assert_eq!(ch["pending_commands"], json!([]));
    assert!(ch["last_script_at"].is_null() && ch["last_script_result"].is_null());
    let card = c.body["id"].as_str().unwrap().to_owned();
    let plain = s.card(&key, PAN);
    assert!(s.get(&format!("/v1/cards/{plain}"), &key).body["chip"].is_null());
    for bad in [
        json!({"issuer_key_set_id": theirs}),
        json!({}),
        json!({"issuer_key_set_id": iks, "pan_sequence_number": "1"}),
    ] {
        let r = s.post(
            "/v1/cards",
            &key,
            &json!({"pan": PAN, "chip": bad}).to_string(),
        );
        assert_eq!(
            (r.status, r.code()),
            (422, "invalid_request"),
            "{bad}: {}",
            r.body
        );
    }
    // The program's default key set (its own only).
    let r = s.call(
        "PATCH",
        "/v1/program",
        Some(&key),
        Some(&json!({"chip_issuer_key_set_id": theirs}).to_string()),
    );
    assert_eq!((r.status, r.code()), (422, "invalid_request"), "{}", r.body);
    let r = s.call(
        "PATCH",
        "/v1/program",
        Some(&key),
        Some(&json!({"chip_issuer_key_set_id": iks}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let d = s.post(
        "/v1/cards",
        &key,
        &json!({"pan": PAN, "chip": {}}).to_string(),
    );
    assert_eq!(chip(&d)["issuer_key_set_id"], iks.as_str());
    assert_eq!(chip(&d)["pan_sequence_number"], "00");

    // Unblocking the offline PIN; a PIN change supersedes it.
    let unblock = |card: &str| {
        s.post(
            &format!("/v1/cards/{card}/chip/unblock-offline-pin"),
            &key,
            "",
        )
    };
    assert_eq!(unblock(&card).status, 204);
    let now = |card: &str| s.get(&format!("/v1/cards/{card}"), &key).body["chip"].clone();
    assert_eq!(now(&card)["pending_commands"], json!(["unblock_pin"]));
    assert_eq!(s.set_pin(&key, &card, "7391").status, 204);
    assert_eq!(now(&card)["pending_commands"], json!(["change_pin"]));
    assert_eq!(now(&card)["offline_pin"], "update_pending");
    assert_eq!(unblock(&card).status, 204);
    assert_eq!(
        now(&card)["pending_commands"],
        json!(["change_pin"]),
        "a change unblocks already"
    );
    let r = unblock(&plain);
    assert_eq!((r.status, r.code()), (422, "invalid_request"), "{}", r.body);
    let r = unblock("card_aaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
    let r = s.post(
        &format!("/v1/cards/{card}/chip/unblock-offline-pin"),
        &other,
        "",
    );
    assert_eq!(r.status, 404, "another program's card: {}", r.body);

    // PATCH adds chip data to a card, or changes it keeping the state.
    let r = s.call(
        "PATCH",
        &format!("/v1/cards/{plain}"),
        Some(&key),
        Some(&json!({"chip": {"pan_sequence_number": "02"}}).to_string()),
    );
    assert_eq!(chip(&r)["pan_sequence_number"], "02");
    assert_eq!(chip(&r)["offline_pin"], "in_sync");
    let r = s.call("PATCH", &format!("/v1/cards/{card}"), Some(&key), Some(&json!({"chip": {"issuer_key_set_id": iks, "pan_sequence_number": "03"}, "status": "suspended"}).to_string()));
    assert_eq!(
        (
            chip(&r)["pan_sequence_number"].as_str(),
            r.body["status"].as_str()
        ),
        (Some("03"), Some("suspended"))
    );
    assert_eq!(chip(&r)["pending_commands"], json!(["change_pin"]));
    let r = s.call(
        "PATCH",
        &format!("/v1/cards/{card}"),
        Some(&key),
        Some("{}"),
    );
    assert_eq!((r.status, r.code()), (422, "invalid_request"), "{}", r.body);

    // The sequence number tells chip cards sharing a PAN apart at lookup.
    let found = s.post(
        "/v1/card-lookups",
        &key,
        &json!({"pan": PAN, "pan_sequence_number": "02"}).to_string(),
    );
    assert_eq!(
        (found.status, found.body["card_id"].as_str()),
        (200, Some(plain.as_str())),
        "{}",
        found.body
    );
}
