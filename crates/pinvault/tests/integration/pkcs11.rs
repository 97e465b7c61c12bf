#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! The PKCS#11 key provider against a real token: SoftHSM2, one token of its
//! own per test (its own configuration and token directory), driven through
//! the real binary. Needs `softhsm2-util` and the SoftHSM2 module (Debian:
//! `softhsm2`); scripts/test installs them. Without them the tests fail under
//! CI=true and say loudly that they did not run elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{self, Server};

const MODULES: [&str; 2] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];
const USER_PIN: &str = "71926384";
const PLAIN: &[&str] = &[
    "allow_plaintext_pin=true",
    "allow_plaintext_reveal=true",
    "reject_weak_pins=false",
];

/// A SoftHSM2 token of one test's own.
struct Token {
    dir: PathBuf,
    module: String,
    label: String,
}

impl Token {
    /// `None` (after saying so loudly) where SoftHSM2 is missing, outside CI.
    fn new(tag: &str) -> Option<Token> {
        let module = std::env::var("PINVAULT_TEST_PKCS11_MODULE")
            .ok()
            .or_else(|| {
                MODULES
                    .iter()
                    .find(|m| Path::new(m).exists())
                    .map(|m| m.to_string())
            });
        let util = Command::new("softhsm2-util").arg("--version").output();
        let (Some(module), Ok(_)) = (module, util) else {
            harness::missing_dependency(
                &format!("pkcs11 ({tag})"),
                "SoftHSM2 (softhsm2-util and libsofthsm2.so) is not installed (apt-get install softhsm2)",
            );
            return None;
        };
        let dir = harness::fresh_path(&format!("hsm-{tag}"));
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        std::fs::write(
            dir.join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        let token = Token {
            dir,
            module,
            label: format!("pv-{tag}"),
        };
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", &token.label])
            .args(["--so-pin", "12345678", "--pin", USER_PIN])
            .envs(token.env())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(token)
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "SOFTHSM2_CONF".into(),
                self.dir.join("softhsm2.conf").display().to_string(),
            ),
            ("PINVAULT_PKCS11_PIN".into(), USER_PIN.into()),
        ]
    }

    fn args(&self) -> Vec<String> {
        [
            "--module",
            &self.module,
            "--token-label",
            &self.label,
            "--key-label",
            "pinvault master",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// `pinvault ARGS --data-dir DIR` with this token's environment.
    fn pinvault(&self, args: &[&str], data_dir: &Path) -> std::process::Output {
        Command::new(harness::BIN)
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .envs(self.env())
            .output()
            .unwrap()
    }

    /// Moves the token's files away (the token is gone) or back.
    fn set_present(&self, present: bool) {
        let (from, to) = if present {
            (self.dir.join("away"), self.dir.join("tokens"))
        } else {
            (self.dir.join("tokens"), self.dir.join("away"))
        };
        std::fs::rename(from, to).unwrap();
        if !present {
            std::fs::create_dir_all(self.dir.join("tokens")).unwrap();
        } else {
            let _ = std::fs::remove_dir_all(self.dir.join("away"));
        }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn card_with_pin(s: &Server, key: &str, pan: &str, pin: &str) -> String {
    let r = s.post(
        "/v1/cards",
        key,
        &format!(r#"{{"pan":"{pan}","pin":{{"pin":"{pin}"}}}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

fn sandbox(s: &Server, key: &str, card: &str, pin: &str) -> String {
    s.sandbox_verify(key, card, pin)["result"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Until `f` holds, for at most `secs` seconds.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    f()
}

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

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

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
        "--name",
        "z",
        "--algorithm",
        "tdes",
        "--component",
        "0123456789ABCDEFFEDCBA9876543210",
    ]);
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
    let out = json(&s.cli(&args));
    assert_eq!(out["to"]["provider"], "pkcs11", "{out}");
    // pin, pan, lookup and the transport (PIN encryption) key the server made.
    assert_eq!(out["data_keys"], 4, "{out}");
    assert_eq!(out["zone_keys"], 1, "{out}");
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
    assert_eq!(out["data_keys"], 8, "{out}");
    assert!(dir.path.join("master.key").exists());
    assert!(eventually(10, || {
        s.call("GET", "/readyz", None, None).body["key_provider"] == "file"
    }));
    check_all(&s);
    s.stop();
    // Without the token at all now.
    let s = Server::start_with(dir.clone(), Vec::new());
    check_all(&s);
    let again = s.cli(&["keys", "migrate", "--to", "file"]);
    assert!(!again.status.success());
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
