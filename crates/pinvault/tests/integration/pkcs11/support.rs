//! What the pkcs11 tests share: constants, helpers and fixtures.

use crate::harness::{self, Server};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub(super) const MODULES: [&str; 2] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];

pub(super) const USER_PIN: &str = "71926384";

pub(super) const PLAIN: &[&str] = &[
    "allow_plaintext_pin=true",
    "allow_plaintext_reveal=true",
    "reject_weak_pins=false",
];

/// A SoftHSM2 token of one test's own.
pub(super) struct Token {
    pub(super) dir: PathBuf,
    pub(super) module: String,
    pub(super) label: String,
}

impl Token {
    /// `None` (after saying so loudly) where SoftHSM2 is missing, outside CI.
    pub(super) fn new(tag: &str) -> Option<Token> {
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

    pub(super) fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "SOFTHSM2_CONF".into(),
                self.dir.join("softhsm2.conf").display().to_string(),
            ),
            ("PINVAULT_PKCS11_PIN".into(), USER_PIN.into()),
        ]
    }

    pub(super) fn args(&self) -> Vec<String> {
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
    pub(super) fn pinvault(&self, args: &[&str], data_dir: &Path) -> std::process::Output {
        Command::new(harness::BIN)
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .envs(self.env())
            .output()
            .unwrap()
    }

    /// Moves the token's files away (the token is gone) or back.
    pub(super) fn set_present(&self, present: bool) {
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

pub(super) fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(super) fn card_with_pin(s: &Server, key: &str, pan: &str, pin: &str) -> String {
    let r = s.post(
        "/v1/cards",
        key,
        &format!(r#"{{"pan":"{pan}","pin":{{"pin":"{pin}"}}}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

pub(super) fn sandbox(s: &Server, key: &str, card: &str, pin: &str) -> String {
    s.sandbox_verify(key, card, pin)["result"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Until `f` holds, for at most `secs` seconds.
pub(super) fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    f()
}

pub(super) fn walk(dir: &Path) -> Vec<PathBuf> {
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
