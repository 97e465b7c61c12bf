//! The README's shell blocks run as written: each ```sh block, in order, in
//! one bash session as a reader pasting them would (`set -e -o pipefail`),
//! with `pinvault` on PATH, the data directory of a `serve --dev` server as
//! the default, and `PV` and `PV_KEY` as that server printed them; an HTTP
//! error answer to one of its `curl` lines fails a block too. A block
//! that cannot run here (it needs an HSM, a database server elsewhere, a
//! certificate, or minutes of load) is marked
//! on the line before it with `<!-- not run by the README test: REASON -->`,
//! and the reason names where it is tested instead.

use std::path::PathBuf;

use super::dev::Dev;
use crate::harness::{self, BIN};

const MARK: &str = "<!-- not run by the README test: ";

struct Block {
    line: usize,
    script: String,
    skipped: Option<String>,
}

fn readme() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    std::fs::read_to_string(path).expect("README.md")
}

/// The ```sh blocks; a block in the `$ command` style keeps its commands
/// (with their continuation lines) and leaves the output lines out.
fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != "```sh" {
            i += 1;
            continue;
        }
        let start = i + 1;
        let end = (start..lines.len())
            .find(|&j| lines[j].starts_with("```"))
            .expect("an unterminated block");
        let body = &lines[start..end];
        let skipped = i
            .checked_sub(1)
            .and_then(|p| lines[p].strip_prefix(MARK))
            .map(|r| r.trim_end_matches("-->").trim().to_owned());
        let prompted = body.iter().any(|l| l.starts_with("$ "));
        let mut script = String::new();
        let mut continued = false;
        for l in body {
            let command = if let Some(c) = l.strip_prefix("$ ") {
                Some(c)
            } else if !prompted || continued {
                Some(*l)
            } else {
                None // output shown after a command
            };
            if let Some(c) = command {
                script.push_str(c);
                script.push('\n');
                continued = c.trim_end().ends_with('\\');
            }
        }
        out.push(Block {
            line: start,
            script,
            skipped,
        });
        i = end + 1;
    }
    out
}

#[test]
fn readme_shell_blocks_run_as_written() {
    let text = readme();
    let all = blocks(&text);
    assert!(all.len() >= 20, "only {} shell blocks found", all.len());
    // Install before the first operator command; the examples use what
    // `serve --dev` exports (`$KEY` was a 401 when pasted).
    let install = text
        .find("cargo install --path crates/pinvault --locked")
        .expect("no install line");
    let first_command = text.find("\npinvault ").expect("no operator command");
    assert!(
        install < first_command,
        "the install line comes after an operator command"
    );
    let bare_key = text
        .match_indices("$KEY")
        .any(|(i, _)| !text[i + 4..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'));
    assert!(
        !bare_key,
        "the README uses $KEY; serve --dev exports PV_KEY"
    );
    let mut run = Vec::new();
    for b in &all {
        match &b.skipped {
            Some(reason) => assert!(
                reason.len() >= 20,
                "README line {}: a skipped block needs its reason",
                b.line
            ),
            None => run.push(b),
        }
    }
    // What is left out needs a server of its own kind (HTTPS, a
    // PostgreSQL or PgBouncer elsewhere, an HSM) or runs for minutes.
    assert!(run.len() >= 17, "only {} blocks run", run.len());

    let data = harness::fresh_dir("readme");
    let dev = Dev::start(&data);
    let bin_dir = harness::fresh_path("readme-bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(BIN, bin_dir.join("pinvault")).unwrap();
    let work = harness::fresh_path("readme-work");
    std::fs::create_dir_all(&work).unwrap();
    // The examples show successes only: an HTTP error answer fails its
    // block too (curl itself would exit 0 on a 404).
    let mut session =
        String::from("set -e -o pipefail\ncurl() { command curl --fail-with-body \"$@\"; }\n");
    for b in &run {
        session.push_str(&format!("echo '::README line {}' >&2\n", b.line));
        session.push_str(&b.script);
    }
    session.push_str("echo '::README done' >&2\n");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(&session)
        .current_dir(&work)
        .env("PATH", path)
        .env("PV", &dev.base)
        .env("PV_KEY", &dev.key)
        .env("PINVAULT_DATA_DIR", &data.path)
        .stdin(std::process::Stdio::null());
    match &data.database_url {
        Some(url) => cmd.env("PINVAULT_DATABASE_URL", url),
        None => cmd.env_remove("PINVAULT_DATABASE_URL"),
    };
    let out = cmd.output().expect("run bash");
    let _ = std::fs::remove_dir_all(&bin_dir);
    let _ = std::fs::remove_dir_all(&work);
    drop(dev);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failed_in = stderr
        .lines()
        .rfind(|l| l.starts_with("::README line"))
        .unwrap_or("?");
    assert!(
        out.status.success() && stderr.contains("::README done"),
        "{failed_in} failed:\n{stdout}\n{stderr}"
    );
    // What the blocks printed is what the README says they print.
    for shown in [
        r#"{"result":"match","remaining_tries":3}"#,
        r#""status":"active"}"#,
        "0412AC89ABCDEF67",
        "BE7ED6",
        r#""ok": true"#,
        r#"{"status":"staged"}"#,
        // An ATM change, the chip's PIN CHANGE script for 8205 (pyemv's
        // bytes), its result, a migrated card's capture, an export.
        r#""result":"changed""#,
        "86158424000210C4F4ED66097D50BE6D1AEC493DD533CF",
        r#"{"offline_pin":"in_sync","pending_commands":[],"last_script_result":"success"}"#,
        "\"visa_pvv\"\n",
        "\"stored\"\n",
    ] {
        assert!(stdout.contains(shown), "`{shown}` not printed:\n{stdout}");
    }
    // The bureau's side deciphers the exported block to the card's PIN
    // (0000 again after the ATM change's reversal).
    let exported = stdout.find(r#""kcv":"15FC84"}"#).expect("no export answer");
    assert!(
        stdout[exported..].starts_with("\"kcv\":\"15FC84\"}0000\n"),
        "the exported block is not PIN 0000:\n{}",
        &stdout[exported..]
    );
}
