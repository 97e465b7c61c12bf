//! A server on a token with no key file, and a token that goes away and comes
//! back.

use crate::harness::{self, Server};
use std::process::Command;

use super::support::*;

/// A server whose master key is in the token: the whole lifecycle works, no
/// key file ever appears, and the key in the token cannot be extracted.
#[test]
fn lifecycle_on_a_token_with_no_key_file() {
    let Some(token) = Token::new("life") else {
        return;
    };
    let dir = harness::fresh_dir("pkcs11-life");
    let mut args = vec!["keys", "init", "--provider", "pkcs11"];
    let targs = token.args();
    args.extend(targs.iter().map(String::as_str));
    let init = json(&token.pinvault(&args, &dir.path));
    assert_eq!(init["provider"], "pkcs11");
    assert_eq!(init["master_key_created"], true);
    // Again: idempotent, the key is found, not created.
    let again = json(&token.pinvault(&args, &dir.path));
    assert_eq!(again["master_key_created"], false);
    let config = std::fs::read_to_string(dir.path.join("keys.json")).unwrap();
    assert!(!config.contains(USER_PIN), "the user PIN is never recorded");

    let s = Server::start_with(dir.clone(), token.env());
    let ready = s.call("GET", "/readyz", None, None);
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body["key_provider"], "pkcs11");
    let key = s.program("test", PLAIN);
    let c = card_with_pin(&s, &key, "4111111111111111", "2580");
    assert_eq!(s.reveal(&key, &c), "2580");
    assert_eq!(s.set_pin(&key, &c, "7391").status, 204);
    assert_eq!(s.reveal(&key, &c), "7391");
    assert_eq!(sandbox(&s, &key, &c, "7391"), "match");
    assert_eq!(sandbox(&s, &key, &c, "0000"), "mismatch");
    let zpk = s.cli_json(&[
        "zone-keys",
        "import",
        "--program",
        &s.program_of(&key),
        "--name",
        "z",
        "--algorithm",
        "aes128",
        "--component",
        "000102030405060708090A0B0C0D0E0F",
    ]);
    assert_eq!(zpk["kcv"], "BE7ED6");
    let rotated = s.cli_json(&["keys", "rotate"]);
    assert_eq!(rotated["cards_reencrypted"], 1, "{rotated}");
    assert_eq!(s.reveal(&key, &c), "7391");
    for k in s.cli_json(&["keys", "list"]).as_array().unwrap() {
        assert_eq!(k["provider"], "pkcs11");
    }
    let files: Vec<String> = std::fs::read_dir(&dir.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !files.iter().any(|f| f.starts_with("master.key")),
        "{files:?}"
    );
    assert!(!s.logs().contains("panicked"));

    // The key in the token: a secret key, sensitive, never extractable.
    let mut keys = 0;
    for entry in walk(&token.dir.join("tokens")) {
        if !entry.to_string_lossy().ends_with(".object")
            || entry.file_name().is_some_and(|n| n == "token.object")
        {
            continue;
        }
        let dump = Command::new("softhsm2-dump-file")
            .arg(&entry)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&dump.stdout);
        if !text.contains("CKO_SECRET_KEY") {
            continue;
        }
        keys += 1;
        for (attr, want) in [
            ("CKA_EXTRACTABLE", "FALSE"),
            ("CKA_NEVER_EXTRACTABLE", "TRUE"),
            ("CKA_SENSITIVE", "TRUE"),
            ("CKA_TOKEN", "TRUE"),
        ] {
            let lines: Vec<&str> = text.lines().collect();
            let i = lines
                .iter()
                .position(|l| l.trim_end().ends_with(attr))
                .unwrap_or_else(|| panic!("{attr} missing"));
            assert!(
                lines[i + 2].trim_end().ends_with(want),
                "{attr}: {}",
                lines[i + 2]
            );
        }
    }
    assert_eq!(keys, 1, "one AES master key in the token");
}

/// A token that goes away makes /readyz fail with a clear reason; unwrapped
/// keys are held only as long as configured (1 s here), so PIN operations fail
/// too; both recover when the token returns.
#[test]
fn a_token_that_goes_away_fails_readiness_and_recovers() {
    let Some(token) = Token::new("away") else {
        return;
    };
    let dir = harness::fresh_dir("pkcs11-away");
    let mut args = vec!["keys", "init", "--provider", "pkcs11"];
    let targs = token.args();
    args.extend(targs.iter().map(String::as_str));
    json(&token.pinvault(&args, &dir.path));
    let mut env = token.env();
    env.push(("PINVAULT_KEY_CACHE_TTL_S".into(), "1".into()));
    let s = Server::start_with(dir, env);
    let key = s.program("test", PLAIN);
    let c = card_with_pin(&s, &key, "4111111111111111", "2580");
    assert_eq!(s.reveal(&key, &c), "2580");

    token.set_present(false);
    assert!(eventually(10, || s
        .call("GET", "/readyz", None, None)
        .status
        == 503));
    let r = s.call("GET", "/readyz", None, None);
    assert!(
        r.body["reason"].as_str().unwrap().contains("pkcs11"),
        "{}",
        r.body
    );
    // Past the cache TTL the keys are gone from memory: a reveal fails cleanly.
    assert!(eventually(10, || {
        let t = s.post(
            &format!("/v1/cards/{c}/control-tokens"),
            &key,
            r#"{"type":"reveal_pin","cardholder_verification_method":"OTP"}"#,
        );
        t.status >= 500
            || s.post(
                &format!("/v1/cards/{c}/pin/reveal"),
                &key,
                &format!(
                    r#"{{"control_token":"{}"}}"#,
                    t.body["token"].as_str().unwrap_or("")
                ),
            )
            .status
                >= 500
    }));

    token.set_present(true);
    assert!(eventually(15, || s
        .call("GET", "/readyz", None, None)
        .status
        == 200));
    assert!(eventually(15, || {
        let t = s.post(
            &format!("/v1/cards/{c}/control-tokens"),
            &key,
            r#"{"type":"reveal_pin","cardholder_verification_method":"OTP"}"#,
        );
        t.status == 201
            && s.post(
                &format!("/v1/cards/{c}/pin/reveal"),
                &key,
                &format!(
                    r#"{{"control_token":"{}"}}"#,
                    t.body["token"].as_str().unwrap()
                ),
            )
            .body["pin"]
                == "2580"
    }));
    assert!(!s.logs().contains("panicked"));
    assert!(
        !s.logs().contains(USER_PIN),
        "the user PIN never reaches the log"
    );
}
