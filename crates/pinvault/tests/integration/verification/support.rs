//! What the verification tests share: constants, helpers and fixtures.

use crate::harness::{self, Reply, Server};
use serde_json::Value;

/// A program that takes preset PINs in clear (to give cards the vectors' PINs)
/// and keeps every vector PIN (some are "weak").
pub(super) const SETTINGS: &[&str] = &["allow_plaintext_pin=true", "reject_weak_pins=false"];

#[derive(Clone, Debug)]
pub(super) struct Vector {
    pub(super) format: String,
    pub(super) pin: String,
    pub(super) pan: String,
    pub(super) key: String,
    pub(super) key_algorithm: String,
    pub(super) enciphered: String,
}

pub(super) fn luhn(pan: &str) -> bool {
    let sum: u32 = pan
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// The psec vectors with a key whose PAN a card can have (12 to 19 digits,
/// Luhn-valid).
pub(super) fn vectors() -> Vec<Vector> {
    let text = include_str!("../../../../pinblock/tests/vectors/psec.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["enciphered"].is_string())
        .map(|v| Vector {
            format: v["format"].as_str().unwrap().to_owned(),
            pin: v["pin"].as_str().unwrap().to_owned(),
            pan: v["pan"].as_str().unwrap().to_owned(),
            key: v["key"].as_str().unwrap().to_owned(),
            key_algorithm: v["key_algorithm"].as_str().unwrap().to_owned(),
            enciphered: v["enciphered"].as_str().unwrap().to_owned(),
        })
        .filter(|v| (12..=19).contains(&v.pan.len()) && luhn(&v.pan))
        .collect()
}

pub(super) fn algorithm(v: &Vector) -> &'static str {
    match (v.key_algorithm.as_str(), v.key.len()) {
        ("tdes", _) => "tdes",
        ("aes", 32) => "aes128",
        ("aes", 48) => "aes192",
        ("aes", 64) => "aes256",
        other => panic!("unexpected key {other:?}"),
    }
}

/// A zone key granted to the program of `api_key`.
pub(super) fn import(s: &Server, api_key: &str, algorithm: &str, components: &[&str]) -> String {
    let program = s.program_of(api_key);
    let mut args = vec![
        "zone-keys",
        "import",
        "--name",
        "test zpk",
        "--algorithm",
        algorithm,
        "--program",
        &program,
    ];
    for c in components {
        args.push("--component");
        args.push(c);
    }
    s.cli_json(&args)["zone_key_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A card with a preset PIN.
pub(super) fn card(s: &Server, key: &str, pan: &str, pin: &str) -> String {
    let r = s.post(
        "/v1/cards",
        key,
        &format!(r#"{{"pan":"{pan}","pin":{{"pin":"{pin}"}}}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// A live program's API key, a format 4 vector, its zone key imported, and a
/// card whose PIN is the vector's (so the vector's block matches).
pub(super) fn iso4_card(s: &Server) -> (String, Vector, String, String) {
    let key = s.program("live", SETTINGS);
    let v = vectors().into_iter().find(|v| v.format == "iso_4").unwrap();
    let zpk = import(s, &key, algorithm(&v), &[&v.key]);
    let c = card(s, &key, &v.pan, &v.pin);
    (key, v, zpk, c)
}

pub(super) fn verify(
    s: &Server,
    key: &str,
    card: &str,
    format: &str,
    block: &str,
    zpk: &str,
) -> Reply {
    s.post(
        &format!("/v1/cards/{card}/pin/verify"),
        key,
        &format!(r#"{{"pin_block":"{block}","format":"{format}","zone_key_id":"{zpk}"}}"#),
    )
}

pub(super) fn outcome(r: &Reply) -> (String, u64) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body.as_object().unwrap().len(),
        2,
        "exactly result and remaining_tries: {}",
        r.body
    );
    (
        r.body["result"].as_str().unwrap().to_owned(),
        r.body["remaining_tries"].as_u64().unwrap(),
    )
}

pub(super) fn fail_count(s: &Server, key: &str, card: &str) -> u64 {
    let r = s.get(&format!("/v1/cards/{card}/pin/status"), key);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["fail_count"].as_u64().unwrap()
}

/// Another PIN of the same length (the last digit changed).
pub(super) fn other_pin(pin: &str) -> String {
    let mut digits: Vec<u8> = pin.bytes().collect();
    let last = digits.last_mut().unwrap();
    *last = if *last == b'9' { b'0' } else { *last + 1 };
    String::from_utf8(digits).unwrap()
}

/// The block for `pin` under the vector's key and PAN, from `pinvault pinblock
/// encode` (used where the independent vectors have no block for a PIN).
pub(super) fn cli_block(s: &Server, v: &Vector, pin: &str) -> String {
    let mut args = vec![
        "pinblock", "encode", "--format", &v.format, "--pin", pin, "--pan", &v.pan, "--key", &v.key,
    ];
    if v.key_algorithm == "aes" {
        args.extend(["--key-algorithm", "aes"]);
    }
    let out = std::process::Command::new(harness::BIN)
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success());
    let _ = s;
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Changes the server's database directly, as a writer that is not this server
/// would (an operator's SQL client, another process on the same file).
pub(super) fn write_directly(s: &Server, sql: &str) {
    match &s.data.database_url {
        Some(url) => {
            harness::postgres_query(url, sql);
        }
        None => {
            let db = rusqlite::Connection::open(s.data_dir.join("pinvault.db")).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            db.execute_batch(sql).unwrap();
        }
    }
}
