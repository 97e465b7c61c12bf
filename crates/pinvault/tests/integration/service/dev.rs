//! `serve --dev`: what it prints and in which order, its one API key, its
//! audit records, and the shell lines it prints (they work as pasted).

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::Value;

use crate::harness;

/// A `serve --dev` process whose stdout and stderr go to one pipe, as they
/// reach a terminal, read line by line.
pub(super) struct Dev {
    child: Child,
    lines: Receiver<String>,
    /// Everything printed up to the demo's URL, in order.
    pub printed: Vec<String>,
    pub base: String,
    pub key: String,
}

impl Dev {
    pub fn start(data: &Arc<harness::DataDir>) -> Dev {
        let cmd = data.command(&["serve", "--dev", "--listen", "127.0.0.1:0"]);
        // One pipe for both streams (a shell does the 2>&1).
        let program = cmd.get_program().to_owned();
        let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
        let mut shell = std::process::Command::new("bash");
        shell
            .arg("-c")
            .arg(r#"exec "$@" 2>&1"#)
            .arg("bash")
            .arg(program)
            .args(args);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => shell.env(k, v),
                None => shell.env_remove(k),
            };
        }
        let mut child = shell
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start serve --dev");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut printed = Vec::new();
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no demo URL printed:\n{}", printed.join("\n")));
            let done = line.starts_with("The demo");
            printed.push(line);
            if done {
                break;
            }
        }
        let find = |prefix: &str| {
            printed
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no `{prefix}`:\n{}", printed.join("\n")))
                .to_owned()
        };
        let exports = find("export PV=");
        let (base, key) = exports.split_once(" PV_KEY=").expect("PV and PV_KEY");
        Dev {
            child,
            lines,
            printed: printed.clone(),
            base: base.to_owned(),
            key: key.to_owned(),
        }
    }

    /// The shell lines printed to paste (from `export PV=` to before `The API:`).
    pub fn script(&self) -> String {
        let mut script = String::new();
        let mut inside = false;
        for line in &self.printed {
            inside |= line.starts_with("export PV=");
            if line.starts_with("The API:") {
                break;
            }
            if inside {
                script.push_str(line);
                script.push('\n');
            }
        }
        script
    }

    /// Lines printed after the demo URL within `wait`.
    pub fn printed_since(&self, wait: Duration) -> Vec<String> {
        let until = std::time::Instant::now() + wait;
        let mut out = Vec::new();
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => out.push(line),
                Err(_) => break,
            }
        }
        out
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status(base: &str, key: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .get(format!("{base}/v1/program"))
        .header("authorization", format!("Bearer {key}"))
        .call()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn cli_json(data: &Arc<harness::DataDir>, args: &[&str]) -> Value {
    let out = data.command(args).output().expect("run pinvault");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The demo's URL is the last thing a start prints: after the log lines of
/// the start, and nothing follows it while no request comes.
#[test]
fn dev_mode_prints_the_demo_url_last() {
    let data = harness::fresh_dir("dev-order");
    let dev = Dev::start(&data);
    let listening = dev
        .printed
        .iter()
        .position(|l| l.starts_with("pinvault listening on"))
        .unwrap_or_else(|| panic!("{}", dev.printed.join("\n")));
    let key_line = dev
        .printed
        .iter()
        .position(|l| l.starts_with("API key"))
        .unwrap();
    assert!(listening < key_line, "{}", dev.printed.join("\n"));
    assert!(
        dev.printed.last().unwrap().ends_with("/demo"),
        "{:?}",
        dev.printed.last()
    );
    let after = dev.printed_since(Duration::from_millis(1500));
    assert!(after.is_empty(), "printed after the demo URL: {after:?}");
}

/// Each start keeps one dev key: the earlier ones are revoked (401), and the
/// program, every key made and every key revoked are in the audit trail.
#[test]
fn dev_mode_keeps_one_key_and_audits_it() {
    let data = harness::fresh_dir("dev-keys");
    let first = Dev::start(&data);
    assert_eq!(status(&first.base, &first.key), 200);
    let first_key = first.key.clone();
    drop(first);
    let second = Dev::start(&data);
    assert_ne!(second.key, first_key);
    assert_eq!(status(&second.base, &second.key), 200);
    assert_eq!(
        status(&second.base, &first_key),
        401,
        "the first dev key still works"
    );
    drop(second);
    let programs = cli_json(&data, &["programs", "list"]);
    let program = programs[0]["id"].as_str().unwrap().to_owned();
    let keys = cli_json(&data, &["api-keys", "list", "--program", &program]);
    let live: Vec<&Value> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["revoked_at"].is_null())
        .collect();
    assert_eq!(live.len(), 1, "{keys}");
    let audit = cli_json(&data, &["audit", "list"]);
    let actions = harness::each(&audit, "action");
    assert_eq!(actions[0], "program.created", "{actions:?}");
    let count = |a: &str| actions.iter().filter(|x| **x == a).count();
    assert_eq!(count("api_key.created"), 2, "{actions:?}");
    assert_eq!(count("api_key.revoked"), 1, "{actions:?}");
    let revoked = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "api_key.revoked")
        .unwrap();
    assert_eq!(revoked["program_id"], program.as_str(), "{revoked}");
    let verify = cli_json(&data, &["audit", "verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
}

/// `serve --dev` on a fresh data directory prints an API key and shell lines that
/// work as pasted: run them with bash and check what they print.
#[test]
fn dev_mode_prints_lines_that_work() {
    let data = harness::fresh_dir("dev");
    let dev = Dev::start(&data);
    let script = dev.script();
    assert!(script.contains("pv_test_"), "no API key printed");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("set PIN: HTTP 204"), "{stdout}");
    assert!(stdout.contains(r#""set_by":"cardholder""#), "{stdout}");
    assert!(stdout.contains(r#"{"pin":"8264"}"#), "{stdout}");
}
