//! Test harness: the real `pinvault` binary, serving on port 0 over a fresh data
//! directory, driven over HTTP and through its command line.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_pinvault");

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Server {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    stderr: Arc<Mutex<String>>,
    agent: ureq::Agent,
    /// Environment given to the server and to operator commands.
    env: Vec<(String, String)>,
}

/// With `PINVAULT_TEST_KEY_PROVIDER=pkcs11` (scripts/test sets it, with a
/// SoftHSM2 token, `PINVAULT_TEST_PKCS11_MODULE`, `PINVAULT_TEST_PKCS11_TOKEN`
/// and `PINVAULT_PKCS11_PIN`), every server's data directory is first put on
/// the token with `pinvault keys init --provider pkcs11`: no key file.
pub fn pkcs11_provider() -> bool {
    std::env::var("PINVAULT_TEST_KEY_PROVIDER").as_deref() == Ok("pkcs11")
}

fn init_key_provider(data_dir: &Path, env: &[(String, String)]) {
    if !pkcs11_provider() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let key_label = data_dir.file_name().unwrap().to_string_lossy().into_owned();
    let out = Command::new(BIN)
        .args(["keys", "init", "--provider", "pkcs11", "--module"])
        .arg(var("PINVAULT_TEST_PKCS11_MODULE"))
        .args([
            "--token-label",
            &var("PINVAULT_TEST_PKCS11_TOKEN"),
            "--key-label",
            &key_label,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run pinvault keys init");
    assert!(
        out.status.success(),
        "keys init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn fresh_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("pinvault-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl Server {
    pub fn start(tag: &str) -> Server {
        Self::start_in(fresh_dir(tag))
    }

    pub fn start_in(data_dir: PathBuf) -> Server {
        if !data_dir.exists() {
            init_key_provider(&data_dir, &[]);
        }
        Self::start_with(data_dir, Vec::new())
    }

    /// A server on a fresh data directory with extra environment (also given
    /// to its operator commands).
    pub fn start_env(tag: &str, env: &[(&str, &str)]) -> Server {
        let data_dir = fresh_dir(tag);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        init_key_provider(&data_dir, &env);
        Self::start_with(data_dir, env)
    }

    /// A server with extra environment (also given to its operator commands).
    pub fn start_with(data_dir: PathBuf, env: Vec<(String, String)>) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .env("PINVAULT_LOG", "debug")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pinvault serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("pinvault listening on ") {
                    let _ = tx.send(base.to_owned());
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start: {}", stderr.lock().unwrap());
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Server {
            child,
            base,
            data_dir,
            stderr,
            agent,
            env,
        }
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Runs an operator command against this server's data directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run pinvault")
    }

    pub fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "pinvault {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    }

    /// A new program with these settings (`key=value`); returns its API key.
    pub fn program(&self, mode: &str, settings: &[&str]) -> String {
        let created = self.cli_json(&["programs", "create", "--name", "test", "--mode", mode]);
        let id = created["program_id"].as_str().unwrap().to_owned();
        if !settings.is_empty() {
            let mut args = vec!["programs", "update", &id];
            for s in settings {
                args.push("--set");
                args.push(s);
            }
            self.cli_json(&args);
        }
        created["api_key"].as_str().unwrap().to_owned()
    }

    /// A request with a JSON body (or none) and an API key (or none).
    pub fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Reply {
        self.call_with(method, path, key, body, "application/json", &[])
    }

    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(key) = key {
            req = req.header("Authorization", format!("Bearer {key}"));
        }
        if body.is_some() {
            req = req.header("Content-Type", content_type);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.unwrap_or("").to_owned()).unwrap();
        let mut res = self.agent.run(req).expect("HTTP request");
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            body,
            headers,
        }
    }

    pub fn get(&self, path: &str, key: &str) -> Reply {
        self.call("GET", path, Some(key), None)
    }

    pub fn post(&self, path: &str, key: &str, body: &str) -> Reply {
        self.call("POST", path, Some(key), Some(body))
    }

    /// Creates a card; returns its id.
    pub fn card(&self, key: &str, pan: &str) -> String {
        let r = self.post("/v1/cards", key, &format!(r#"{{"pan":"{pan}"}}"#));
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// A control token of `kind` for a card.
    pub fn token(&self, key: &str, card: &str, kind: &str) -> String {
        let body = if kind == "reveal_pin" {
            r#"{"type":"reveal_pin","cardholder_verification_method":"BIOMETRIC_FACE"}"#.to_owned()
        } else {
            format!(r#"{{"type":"{kind}"}}"#)
        };
        let r = self.post(&format!("/v1/cards/{card}/control-tokens"), key, &body);
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["token"].as_str().unwrap().to_owned()
    }

    /// Sets a PIN in clear through a fresh token.
    pub fn set_pin(&self, key: &str, card: &str, pin: &str) -> Reply {
        let token = self.token(key, card, "set_pin");
        self.call(
            "PUT",
            &format!("/v1/cards/{card}/pin"),
            Some(key),
            Some(&format!(r#"{{"control_token":"{token}","pin":"{pin}"}}"#)),
        )
    }

    /// Reveals the PIN in clear through a fresh token.
    pub fn reveal(&self, key: &str, card: &str) -> String {
        let token = self.token(key, card, "reveal_pin");
        let r = self.post(
            &format!("/v1/cards/{card}/pin/reveal"),
            key,
            &format!(r#"{{"control_token":"{token}"}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["pin"].as_str().unwrap().to_owned()
    }

    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
