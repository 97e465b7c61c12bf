//! A storage-key rotation killed in the middle (SIGKILL) and run again: the
//! second run finishes the first one's rotation with the versions it made
//! (`"resumed": true`), re-encrypts exactly the cards the first did not, and
//! every PIN is still there.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::canaries::luhn;
use crate::harness::Server;
use serde_json::Value;

/// Cards under each `pin` key version, as `keys list` counts them.
fn pin_versions(s: &Server) -> Vec<(u64, u64)> {
    let listed = s.cli_json(&["keys", "list"]);
    listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "pin")
        .map(|e| {
            (
                e["version"].as_u64().unwrap(),
                e["protects"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_rotation_killed_in_the_middle_is_finished_by_the_next_and_nothing_is_re_encrypted_twice() {
    // Enough cards, and a pause after each batch of 1,000, that the kill
    // lands in the middle on any machine (60,000 cards were all done before
    // the poll below saw the first batch once rotation wrote a batch in a
    // few statements).
    const CARDS: u64 = 20_000;
    let s = Server::start("rotate-kill");
    let key = s.program(
        "live",
        &[
            "allow_plaintext_pin=true",
            "allow_plaintext_reveal=true",
            "reject_weak_pins=false",
        ],
    );
    let program = s.program_of(&key);
    // Outside the data directory (the leak canaries look there for PANs).
    let file = crate::harness::fresh_path("rotate-kill-cards");
    let mut out = std::fs::File::create(&file).unwrap();
    for i in 0..CARDS {
        // Distinct PANs, each with its check digit.
        let pan = luhn(&format!("4{:014}", 500_000_000 + i));
        let pin = format!("{:06}", (i * 7919) % 1_000_000);
        writeln!(
            out,
            r#"{{"pan":"{pan}","external_id":"k-{i}","pin":{{"pin":"{pin}"}}}}"#
        )
        .unwrap();
    }
    drop(out);
    let imported = s.cli_json(&[
        "cards",
        "import",
        "--program",
        &program,
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(imported["imported"], CARDS, "{imported}");
    std::fs::remove_file(&file).unwrap();

    // The first rotation, killed once it has re-encrypted some cards.
    let mut first = Killed(
        s.data
            .command(&["keys", "rotate", "--kind", "storage", "--pause-ms", "300"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let done_before = loop {
        let versions = pin_versions(&s);
        let moved = versions
            .iter()
            .find(|(v, _)| *v == 2)
            .map_or(0, |(_, n)| *n);
        if moved > 0 {
            first.stop();
            break pin_versions(&s)
                .iter()
                .find(|(v, _)| *v == 2)
                .map_or(0, |(_, n)| *n);
        }
        if started.elapsed() > Duration::from_secs(120) {
            panic!("the rotation never started: {versions:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        done_before > 0 && done_before < CARDS,
        "killed in the middle: {done_before} of {CARDS} re-encrypted"
    );

    // The next run finishes it: no new version, exactly the rest re-encrypted.
    let out = s.cli(&["keys", "rotate", "--kind", "storage"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["resumed"], true, "{report}");
    assert_eq!(report["rotated"], serde_json::json!([]), "{report}");
    assert_eq!(report["cards_reencrypted"], CARDS - done_before, "{report}");
    assert_eq!(pin_versions(&s), vec![(1, 0), (2, CARDS)]);

    // Nothing lost: the PINs of cards re-encrypted by either run.
    for i in [0, CARDS / 3, CARDS / 2, CARDS - 1] {
        let pan = luhn(&format!("4{:014}", 500_000_000 + i));
        let r = s.post("/v1/card-lookups", &key, &format!(r#"{{"pan":"{pan}"}}"#));
        assert_eq!(r.status, 200, "{}", r.body);
        let card = r.body["card_id"].as_str().unwrap().to_owned();
        let pin = format!("{:06}", (i * 7919) % 1_000_000);
        assert_eq!(s.reveal(&key, &card), pin, "card {i}");
    }
    // A run with nothing left is a new rotation again.
    let again: Value = s.cli_json(&["keys", "rotate", "--kind", "storage"]);
    assert_eq!(again["resumed"], false, "{again}");
    assert_eq!(again["cards_reencrypted"], CARDS, "{again}");
}

/// A child process killed with SIGKILL and reaped, at the latest when dropped.
struct Killed(std::process::Child);

impl Killed {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        self.stop();
    }
}
