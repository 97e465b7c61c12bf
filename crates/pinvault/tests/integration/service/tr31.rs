//! Key exchange (API.md "Key exchange (TR-31 key blocks)"): key block
//! protection keys loaded from components, zone keys and issuer master keys
//! taken from TR-31 key blocks (versions B, C, D) made here with
//! crates/keyblock, the keys working, and the blocks that must be refused
//! storing nothing.

use std::process::{Command, Output};

use keyblock::{Header, Version};
use pinblock::{KeyAlgorithm, SecretKey, ZoneKey};
use rand::RngCore;
use serde_json::Value;

use crate::harness::{self, Server};

fn hex(bytes: &[u8]) -> String {
    pinblock::hex::encode_upper(bytes)
}

fn random(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rand::rng().fill_bytes(&mut out);
    out
}

fn kcv(algorithm: KeyAlgorithm, key: &[u8]) -> String {
    let key = SecretKey::from_slice(key).unwrap();
    ZoneKey::new(algorithm, &key).unwrap().kcv().to_string()
}

/// A key block of `key` under `kbpk`: (usage, algorithm, mode of use, exportability).
fn block(kbpk: &[u8], version: Version, fields: (&str, char, char, char), key: &[u8]) -> String {
    let (usage, algorithm, mode, exportability) = fields;
    let header = Header::new(version, usage, algorithm, mode, "00", exportability).unwrap();
    keyblock::wrap(kbpk, &header, key, &mut rand::rng()).unwrap()
}

/// Imports a KBPK from two components; returns its id.
fn import_kbpk(s: &Server, algorithm: &str, key: &[u8]) -> String {
    let c1 = random(key.len());
    let c2: Vec<u8> = key.iter().zip(&c1).map(|(a, b)| a ^ b).collect();
    let want = kcv(
        if algorithm == "tdes" {
            KeyAlgorithm::Tdes
        } else {
            KeyAlgorithm::Aes
        },
        key,
    );
    let out = s.cli_json(&[
        "key-block-protection-keys",
        "import",
        "--name",
        &format!("{algorithm} kbpk"),
        "--algorithm",
        algorithm,
        "--component",
        &hex(&c1),
        "--component",
        &hex(&c2),
        "--kcv",
        &want,
    ]);
    assert_eq!(out["kcv"], want.as_str(), "{out}");
    assert_eq!(out.as_object().unwrap().len(), 2, "{out}");
    let id = out["kbpk_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("kbpk_"), "{id}");
    id
}

/// A refused command: a failure, the reason on stderr, nothing on stdout.
fn refused(out: &Output, why: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "not refused ({why})");
    assert!(err.contains(why), "{err} (wanted {why:?})");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// An ISO 9564 PIN block of `pin` under a zone key (format 0 under TDES, 4 under AES).
fn pin_block(key: &[u8], aes: bool, pin: &str, pan: &str) -> (String, &'static str) {
    let format = if aes { "iso_4" } else { "iso_0" };
    let mut cmd = Command::new(harness::BIN);
    cmd.args([
        "pinblock", "encode", "--format", format, "--pin", pin, "--pan", pan,
    ])
    .args(["--key", &hex(key)]);
    if aes {
        cmd.args(["--key-algorithm", "aes"]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
        format,
    )
}

fn zone_import(s: &Server, program: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "zone-keys",
        "import",
        "--name",
        "from a key block",
        "--program",
        program,
    ];
    args.extend_from_slice(extra);
    s.cli(&args)
}

fn count(s: &Server, args: &[&str]) -> usize {
    s.cli_json(args).as_array().unwrap().len()
}

/// A zone key block: its KBPK (id, key), version, algorithm, key length, mode
/// of use, exportability, and the zone key algorithm it must import as.
type Case<'a> = (&'a str, &'a [u8], Version, char, usize, char, char, &'a str);

#[test]
fn zone_keys_arrive_in_tr31_blocks_and_work() {
    let s = Server::start("tr31-zpk");
    let key = s.program("live", &["allow_plaintext_pin=true"]);
    let program = s.program_of(&key);
    let (tdes2, tdes3, aes256) = (random(16), random(24), random(32));
    let k2 = import_kbpk(&s, "tdes", &tdes2);
    let k3 = import_kbpk(&s, "tdes", &tdes3);
    let ka = import_kbpk(&s, "aes256", &aes256);
    let listed = s.cli_json(&["key-block-protection-keys", "list"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["id"], ka.as_str());
    assert_eq!(listed[0]["algorithm"], "aes256");
    let mut fields: Vec<&String> = listed[0].as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["algorithm", "created_at", "id", "kcv", "name"]);
    // A KBPK whose check value is not the one given is refused.
    refused(
        &s.cli(&[
            "key-block-protection-keys",
            "import",
            "--name",
            "x",
            "--algorithm",
            "aes128",
            "--component",
            &hex(&random(16)),
            "--kcv",
            "000000",
        ]),
        "check value",
    );

    // Each version, algorithm and length; the algorithm taken from the block.
    let cases: [Case<'_>; 6] = [
        (&k2, &tdes2, Version::B, 'T', 16, 'E', 'N', "tdes"),
        (&k3, &tdes3, Version::C, 'T', 24, 'B', 'S', "tdes"),
        (&k2, &tdes2, Version::C, 'T', 16, 'D', 'E', "tdes"),
        (&ka, &aes256, Version::D, 'A', 16, 'D', 'E', "aes128"),
        (&ka, &aes256, Version::D, 'A', 32, 'N', 'N', "aes256"),
        (&ka, &aes256, Version::D, 'T', 24, 'B', 'N', "tdes"),
    ];
    let pan = "4111111111111111";
    for (i, (kbpk_id, kbpk, version, alg, len, mode, exp, algorithm)) in
        cases.into_iter().enumerate()
    {
        let zone = random(len);
        let aes = alg == 'A';
        let want = kcv(
            if aes {
                KeyAlgorithm::Aes
            } else {
                KeyAlgorithm::Tdes
            },
            &zone,
        );
        let b = block(kbpk, version, ("P0", alg, mode, exp), &zone);
        let out = zone_import(
            &s,
            &program,
            &["--tr31", &b, "--kbpk", kbpk_id, "--kcv", &want],
        );
        assert!(
            out.status.success(),
            "case {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let made: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(made["kcv"], want.as_str(), "case {i}");
        let zpk = made["zone_key_id"].as_str().unwrap().to_owned();

        let listed = s.cli_json(&["zone-keys", "list"]);
        let row = &listed[0];
        assert_eq!(row["id"], zpk.as_str());
        assert_eq!(row["algorithm"], algorithm, "case {i}");
        let tr31 = &row["tr31"];
        assert_eq!(tr31["kbpk_id"], kbpk_id, "{row}");
        assert_eq!(tr31["version"], version.as_char().to_string(), "{row}");
        assert_eq!(tr31["key_usage"], "P0", "{row}");
        assert_eq!(tr31["mode_of_use"], mode.to_string(), "{row}");
        assert_eq!(tr31["exportability"], exp.to_string(), "{row}");
        assert_eq!(tr31["key_version"], "00", "{row}");
        let api = s.get("/v1/zone-keys?limit=1", &key).body;
        assert_eq!(
            api["data"][0]["tr31"]["mode_of_use"],
            mode.to_string(),
            "{api}"
        );
        assert!(api["data"][0]["tr31"].get("kbpk_id").is_none(), "{api}");

        // The key works: a PIN block under it verifies on a card.
        let pin = ["3947", "7391", "5820", "4725", "8163", "3906"][i].to_owned();
        let card = s.post(
            "/v1/cards",
            &key,
            &format!(r#"{{"pan":"{pan}","pin":{{"pin":"{pin}"}}}}"#),
        );
        assert_eq!(card.status, 201, "{}", card.body);
        let card = card.body["id"].as_str().unwrap().to_owned();
        for (tried, result) in [("9876", "mismatch"), (pin.as_str(), "match")] {
            let (pb, format) = pin_block(&zone, aes, tried, pan);
            let r = s.post(
                &format!("/v1/cards/{card}/pin/verify"),
                &key,
                &format!(r#"{{"pin_block":"{pb}","format":"{format}","zone_key_id":"{zpk}"}}"#),
            );
            assert_eq!(r.body["result"], result, "case {i}: {}", r.body);
        }
    }
    // A key from components has no key block.
    let plain = zone_import(
        &s,
        &program,
        &["--algorithm", "aes128", "--component", &hex(&random(16))],
    );
    assert!(plain.status.success());
    assert!(s.cli_json(&["zone-keys", "list"])[0]["tr31"].is_null());

    // --algorithm, where given, must be the block's; `-` reads the block from stdin.
    let zone = random(16);
    let b = block(&aes256, Version::D, ("P0", 'A', 'B', 'N'), &zone);
    refused(
        &zone_import(
            &s,
            &program,
            &["--tr31", &b, "--kbpk", &ka, "--algorithm", "aes256"],
        ),
        "the key block's key is aes128 (algorithm A, 16 bytes), not aes256",
    );
    let args = [
        "zone-keys",
        "import",
        "--name",
        "stdin",
        "--program",
        &program,
        "--algorithm",
        "aes128",
        "--tr31",
        "-",
        "--kbpk",
        &ka,
    ];
    let out = s.cli_stdin(&args, &format!("{b}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(made["kcv"], kcv(KeyAlgorithm::Aes, &zone).as_str());

    // No key material in any listing or the log.
    let everything = format!(
        "{}{}{}",
        s.cli_json(&["zone-keys", "list"]),
        s.cli_json(&["key-block-protection-keys", "list"]),
        s.logs()
    );
    for k in [&tdes2, &tdes3, &aes256, &zone] {
        assert!(!everything.contains(&hex(k)));
    }
    let audit = s.cli_json(&["audit", "list"]).to_string();
    assert_eq!(audit.matches("\"kbpk.imported\"").count(), 3, "{audit}");
    assert!(audit.contains("\"mode_of_use\":\"D\""), "{audit}");
    assert!(s.cli(&["audit", "verify"]).status.success());
}

#[test]
fn bad_blocks_are_refused_and_store_nothing() {
    let s = Server::start("tr31-refused");
    let key = s.program("live", &[]);
    let program = s.program_of(&key);
    let (tdes, aes) = (random(16), random(32));
    let kt = import_kbpk(&s, "tdes", &tdes);
    let ka = import_kbpk(&s, "aes256", &aes);
    let zone = random(16);
    let good = block(&tdes, Version::B, ("P0", 'T', 'E', 'N'), &zone);
    let good_d = block(&aes, Version::D, ("P0", 'A', 'B', 'N'), &zone);

    // One character changed in the header (its mode of use), the payload or the MAC.
    let change = |b: &str, at: usize| -> String {
        let mut bytes = b.as_bytes().to_vec();
        bytes[at] = match bytes[at] {
            b'E' => b'B',
            b'0' => b'1',
            _ => b'0',
        };
        String::from_utf8(bytes).unwrap()
    };
    let tampered = [
        change(&good, 8),
        change(&good, 20),
        change(&good, good.len() - 1),
        change(&good_d, 40),
    ];
    for (i, b) in tampered.iter().enumerate() {
        let kbpk = if i == 3 { &ka } else { &kt };
        refused(
            &zone_import(&s, &program, &["--tr31", b, "--kbpk", kbpk]),
            "MAC does not match",
        );
    }
    let cases: [(String, &str, &str); 9] = [
        (
            block(&tdes, Version::B, ("K0", 'T', 'B', 'N'), &zone),
            kt.as_str(),
            "key usage is K0",
        ),
        (
            block(&tdes, Version::C, ("D0", 'T', 'B', 'N'), &zone),
            kt.as_str(),
            "key usage is D0",
        ),
        (
            block(&tdes, Version::B, ("P0", 'T', 'G', 'N'), &zone),
            kt.as_str(),
            "mode of use G (generate only)",
        ),
        (
            block(&tdes, Version::B, ("P0", 'T', 'E', 'X'), &zone),
            kt.as_str(),
            "exportability X",
        ),
        (
            good.clone(),
            "kbpk_nosuchkeyatallnosuchkey",
            "no key block protection key",
        ),
        (good.clone(), ka.as_str(), "TDES key block protection key"),
        (good_d.clone(), kt.as_str(), "AES key block protection key"),
        (
            block(&aes, Version::D, ("P0", 'A', 'B', 'N'), &random(20)),
            ka.as_str(),
            "20-byte AES key",
        ),
        (
            block(&tdes, Version::B, ("P0", 'T', 'B', 'N'), &[0; 16]),
            kt.as_str(),
            "all zeros",
        ),
    ];
    for (b, kbpk, why) in &cases {
        refused(
            &zone_import(&s, &program, &["--tr31", b, "--kbpk", kbpk]),
            why,
        );
    }
    refused(
        &zone_import(
            &s,
            &program,
            &["--tr31", &good, "--kbpk", &kt, "--kcv", "000000"],
        ),
        "the key in the key block has check value",
    );
    // Components and a block at once, a block without its KBPK: usage errors.
    let both = zone_import(
        &s,
        &program,
        &["--tr31", &good, "--kbpk", &kt, "--component", &hex(&zone)],
    );
    assert_eq!(both.status.code(), Some(2));
    assert_eq!(
        zone_import(&s, &program, &["--tr31", &good]).status.code(),
        Some(2)
    );
    assert_eq!(count(&s, &["zone-keys", "list"]), 0);

    // Issuer master keys: E0 (AC), E2 (SMI), E1 (SMC), each double-length TDES.
    let (ac, smi, smc) = (random(16), random(16), random(16));
    let ac_block = block(&aes, Version::D, ("E0", 'T', 'X', 'N'), &ac);
    let smi_block = block(&aes, Version::D, ("E2", 'T', 'B', 'S'), &smi);
    let issuer = |blocks: [&str; 2], more: &[&str]| -> Output {
        let mut args = vec![
            "issuer-keys",
            "import",
            "--program",
            &program,
            "--name",
            "issuer",
            "--cvn",
            "visa_10",
            "--imk-ac-tr31",
            blocks[0],
            "--imk-smi-tr31",
            blocks[1],
            "--kbpk",
            &ka,
        ];
        args.extend_from_slice(more);
        s.cli(&args)
    };
    let smc_hex = hex(&smc);
    let smc_args = ["--imk-smc", smc_hex.as_str()];
    let want_ac = kcv(KeyAlgorithm::Tdes, &ac);
    let p0 = block(&aes, Version::D, ("P0", 'T', 'B', 'N'), &ac);
    let aes_ac = block(&aes, Version::D, ("E0", 'A', 'X', 'N'), &random(16));
    let v_mode = block(&aes, Version::D, ("E0", 'T', 'V', 'N'), &ac);
    for (blocks, why) in [
        (
            [smi_block.as_str(), ac_block.as_str()],
            "--imk-ac-tr31: the key block's key usage is E2",
        ),
        (
            [p0.as_str(), smi_block.as_str()],
            "key usage is P0, and this key must be E0",
        ),
        ([aes_ac.as_str(), smi_block.as_str()], "double-length TDES"),
        (
            [v_mode.as_str(), smi_block.as_str()],
            "mode of use V (verify only)",
        ),
        (
            [ac_block.as_str(), &change(&smi_block, 30)],
            "--imk-smi-tr31: key block MAC",
        ),
    ] {
        refused(&issuer(blocks, &smc_args), why);
    }
    refused(
        &issuer(
            [&ac_block, &smi_block],
            &[smc_args[0], smc_args[1], "--kcv-ac", "000000"],
        ),
        "--imk-ac-tr31: key check value mismatch",
    );
    assert_eq!(count(&s, &["issuer-keys", "list"]), 0);
    let made = issuer(
        [&ac_block, &smi_block],
        &[smc_args[0], smc_args[1], "--kcv-ac", &want_ac],
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let made: Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(made["kcv"]["ac"], want_ac.as_str(), "{made}");
    assert_eq!(made["kcv"]["smi"], kcv(KeyAlgorithm::Tdes, &smi).as_str());
    assert_eq!(made["kcv"]["smc"], kcv(KeyAlgorithm::Tdes, &smc).as_str());
    let listed = &s.cli_json(&["issuer-keys", "list"])[0];
    assert_eq!(listed["tr31"]["ac"]["key_usage"], "E0", "{listed}");
    assert_eq!(listed["tr31"]["ac"]["mode_of_use"], "X", "{listed}");
    assert_eq!(listed["tr31"]["smi"]["exportability"], "S", "{listed}");
    assert_eq!(listed["tr31"]["smi"]["kbpk_id"], ka.as_str(), "{listed}");
    assert!(listed["tr31"]["smc"].is_null(), "{listed}");
    let api = s.get("/v1/issuer-key-sets", &key).body;
    assert_eq!(api["data"][0]["tr31"]["ac"]["mode_of_use"], "X", "{api}");
    // --kbpk without a block is refused.
    let hex_ac = hex(&ac);
    let out = s.cli(&[
        "issuer-keys",
        "import",
        "--program",
        &program,
        "--name",
        "x",
        "--cvn",
        "visa_10",
        "--imk-ac",
        &hex_ac,
        "--imk-smi",
        &hex_ac,
        "--imk-smc",
        &hex_ac,
        "--kbpk",
        &ka,
    ]);
    refused(&out, "--kbpk is for");
    assert_eq!(count(&s, &["issuer-keys", "list"]), 1);
}
