//! Migration between the key file and a token, and what keys init refuses.

use crate::harness::{self, Server};
use std::path::Path;
use std::process::Command;

use super::support::*;

/// From a key file to the token and back, with a server running throughout:
/// every PIN, PAN and zone key is still readable, by the running server and
/// after a restart.
#[test]
fn migration_both_ways_loses_nothing() {
    let Some(token) = Token::new("migrate") else {
        return;
    };
    let dir = harness::fresh_dir("pkcs11-migrate");
    let mut s = Server::start_with(dir.clone(), token.env());
    assert!(dir.path.join("master.key").exists());
    let key = s.program("test", PLAIN);
    let pans = ["4111111111111111", "5555555555554444", "4000056655665556"];
    let pins = ["2580", "739164", "58204739"];
    let cards: Vec<String> = pans
        .iter()
        .zip(pins)
        .map(|(pan, pin)| card_with_pin(&s, &key, pan, pin))
        .collect();
    s.cli_json(&[
        "zone-keys",
        "import",
        "--program",
        &s.program_of(&key),
        "--name",
        "z",
        "--algorithm",
        "tdes",
        "--component",
        "0123456789ABCDEFFEDCBA9876543210",
    ]);
    // Issuer keys for chip cards move with the master key too.
    let program = s.program_of(&key);
    let comp = "89ABCDEF0123456776543210FEDCBA98";
    s.cli_json(&[
        "issuer-keys",
        "import",
        "--program",
        &program,
        "--name",
        "i",
        "--cvn",
        "visa_10",
        "--imk-ac",
        comp,
        "--imk-smi",
        comp,
        "--imk-smc",
        comp,
    ]);
    // And key block protection keys: a key block under one opens after each move.
    let kbpk_key = [0x5Au8; 16];
    let kbpk = s.cli_json(&[
        "key-block-protection-keys",
        "import",
        "--name",
        "k",
        "--algorithm",
        "aes128",
        "--component",
        &"5A".repeat(16),
    ])["kbpk_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let from_block = |s: &Server, name: &str| {
        let header =
            keyblock::Header::new(keyblock::Version::D, "P0", 'A', 'B', "00", 'N').unwrap();
        let block = keyblock::wrap(&kbpk_key, &header, &[0x24; 16], &mut rand::rng()).unwrap();
        s.cli_json(&[
            "zone-keys",
            "import",
            "--program",
            &program,
            "--name",
            name,
            "--tr31",
            &block,
            "--kbpk",
            &kbpk,
        ]);
    };
    let zpk = s.get("/v1/zone-keys", &key).body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let block = |pin: &str| -> String {
        let out = Command::new(harness::BIN)
            .args([
                "pinblock", "encode", "--format", "iso_0", "--pin", pin, "--pan", pans[0],
            ])
            .args(["--key", "0123456789ABCDEFFEDCBA9876543210"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let check_all = |s: &Server| {
        for (c, pin) in cards.iter().zip(pins) {
            assert_eq!(s.reveal(&key, c), pin);
        }
        let r = s.post(
            &format!("/v1/cards/{}/pin/verify", cards[0]),
            &key,
            &format!(
                r#"{{"pin_block":"{}","format":"iso_0","zone_key_id":"{zpk}"}}"#,
                block(pins[0])
            ),
        );
        assert_eq!(r.body["result"], "match", "{}", r.body);
        let got = s.get(&format!("/v1/cards/{}", cards[1]), &key).body;
        assert_eq!(got["last4"], "4444");
    };
    check_all(&s);

    // To the token, while the server runs.
    let mut args = vec!["keys", "migrate", "--to", "pkcs11"];
    let targs = token.args();
    args.extend(targs.iter().map(String::as_str));
    let migrated = s.cli(&args);
    let out = json(&migrated);
    assert_eq!(out["to"]["provider"], "pkcs11", "{out}");
    // The progress display's last line: every key checked.
    let total: u64 = [
        "data_keys",
        "zone_keys",
        "issuer_keys",
        "pin_verification_keys",
        "key_block_protection_keys",
    ]
    .iter()
    .map(|k| out[k].as_u64().unwrap())
    .sum();
    let progress = String::from_utf8_lossy(&migrated.stderr);
    assert!(
        progress.contains(&format!(
            "keys migrate (100%): keys checked and re-wrapped: {total} of {total}"
        )),
        "{progress}"
    );
    // pin, pan, lookup, webhook, idempotency and the transport (PIN
    // encryption) key the server made.
    assert_eq!(out["data_keys"], 6, "{out}");
    assert_eq!(out["zone_keys"], 1, "{out}");
    assert_eq!(out["issuer_keys"], 3, "{out}");
    assert_eq!(out["key_block_protection_keys"], 1, "{out}");
    from_block(&s, "under the token");
    assert!(
        !dir.path.join("master.key").exists(),
        "the key file is set aside"
    );
    let retired = out["retired_key_file"].as_str().unwrap();
    assert!(Path::new(retired).exists());
    std::fs::remove_file(retired).unwrap(); // as the operator would: nothing needs it
    assert!(eventually(10, || {
        s.call("GET", "/readyz", None, None).body["key_provider"] == "pkcs11"
    }));
    check_all(&s);
    // A rotation on the token, seen by the running server.
    s.cli_json(&["keys", "rotate"]);
    check_all(&s);
    s.stop();
    let mut s = Server::start_with(dir.clone(), token.env());
    check_all(&s);

    // And back to a key file.
    let out = json(&s.cli(&["keys", "migrate", "--to", "file"]));
    assert_eq!(out["from"]["provider"], "pkcs11", "{out}");
    assert_eq!(out["data_keys"], 12, "{out}"); // and a new version of each after the rotation
    assert_eq!(out["issuer_keys"], 3, "{out}");
    assert_eq!(out["key_block_protection_keys"], 1, "{out}");
    assert!(dir.path.join("master.key").exists());
    assert!(eventually(10, || {
        s.call("GET", "/readyz", None, None).body["key_provider"] == "file"
    }));
    check_all(&s);
    s.stop();
    // Without the token at all now.
    let s = Server::start_with(dir.clone(), Vec::new());
    check_all(&s);
    from_block(&s, "back in the key file");
    let again = s.cli(&["keys", "migrate", "--to", "file"]);
    assert!(!again.status.success());
}

/// `keys init` refuses a directory whose keys another master key wraps, and a
/// wrong user PIN is a clear error.
#[test]
fn init_refuses_to_orphan_keys_and_names_a_wrong_pin() {
    let Some(token) = Token::new("refuse") else {
        return;
    };
    let dir = harness::fresh_dir("pkcs11-refuse");
    let out = token.pinvault(&["programs", "list"], &dir.path);
    assert!(out.status.success(), "a key-file directory with data keys");
    let mut args = vec!["keys", "init", "--provider", "pkcs11"];
    let targs = token.args();
    args.extend(targs.iter().map(String::as_str));
    let out = token.pinvault(&args, &dir.path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keys migrate"), "{err}");

    let fresh = harness::fresh_dir("pkcs11-wrongpin");
    let out = Command::new(harness::BIN)
        .args(&args)
        .arg("--data-dir")
        .arg(&fresh.path)
        .envs(token.env())
        .env("PINVAULT_PKCS11_PIN", "00000000")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PIN"), "{err}");
    assert!(!err.contains("00000000"));
    let out = Command::new(harness::BIN)
        .args(&args)
        .arg("--data-dir")
        .arg(&fresh.path)
        .env("SOFTHSM2_CONF", token.dir.join("softhsm2.conf"))
        .env_remove("PINVAULT_PKCS11_PIN")
        .env_remove("PINVAULT_PKCS11_PIN_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PINVAULT_PKCS11_PIN"));
    // The PIN from a file works.
    let pin_file = token.dir.join("pin");
    std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
    let out = Command::new(harness::BIN)
        .args(&args)
        .arg("--data-dir")
        .arg(&fresh.path)
        .env("SOFTHSM2_CONF", token.dir.join("softhsm2.conf"))
        .env_remove("PINVAULT_PKCS11_PIN")
        .env("PINVAULT_PKCS11_PIN_FILE", &pin_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop((dir, fresh));
}
