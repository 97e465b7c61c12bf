#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! `pinvault pinblock` and `pinvault kcv`, driven as a user would: the real binary.

use std::process::{Command, Output};

fn pinvault(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pinvault"))
        .args(args)
        .output()
        .expect("run pinvault")
}

fn ok(args: &[&str]) -> String {
    let out = pinvault(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A command that must fail cleanly: non-zero exit, a message on stderr, no panic,
/// nothing on stdout.
fn fails(args: &[&str]) -> String {
    let out = pinvault(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(!stderr.trim().is_empty(), "{args:?} said nothing");
    stderr
}

#[test]
fn encode_and_decode_published_format_0() {
    let block = ok(&[
        "pinblock",
        "encode",
        "--format",
        "iso_0",
        "--pin",
        "1234",
        "--pan",
        "43219876543210987",
    ]);
    assert_eq!(block, "0412AC89ABCDEF67");
    let pin = ok(&[
        "pinblock",
        "decode",
        "--format",
        "iso_0",
        "--block",
        "0412ac89abcdef67",
        "--pan",
        "43219876543210987",
    ]);
    assert_eq!(pin, "1234");
}

#[test]
fn enciphered_round_trips_for_every_format_and_key() {
    let pan = "4111111111111111";
    let tdes = "0123456789ABCDEFFEDCBA9876543210";
    let aes = "000102030405060708090A0B0C0D0E0F1011121314151617";
    for (format, key, alg) in [
        ("iso_0", tdes, "tdes"),
        ("iso_1", tdes, "tdes"),
        ("iso_3", tdes, "tdes"),
        ("iso_0", aes, "aes"),
        ("iso_3", aes, "aes"),
        ("iso_4", aes, "aes"),
    ] {
        let block = ok(&[
            "pinblock",
            "encode",
            "--format",
            format,
            "--pin",
            "987654",
            "--pan",
            pan,
            "--key",
            key,
            "--key-algorithm",
            alg,
        ]);
        let expected_len = if alg == "tdes" { 16 } else { 32 };
        assert_eq!(block.len(), expected_len, "{format} {alg}");
        let pin = ok(&[
            "pinblock",
            "decode",
            "--format",
            format,
            "--block",
            &block,
            "--pan",
            pan,
            "--key",
            key,
            "--key-algorithm",
            alg,
        ]);
        assert_eq!(pin, "987654", "{format} {alg}");
    }
    // iso_4 takes an AES key without being told.
    let block = ok(&[
        "pinblock", "encode", "--format", "iso_4", "--pin", "1234", "--pan", pan, "--key", aes,
    ]);
    assert_eq!(
        ok(&[
            "pinblock", "decode", "--format", "iso_4", "--block", &block, "--pan", pan, "--key",
            aes
        ]),
        "1234"
    );
}

#[test]
fn tdes_kcv_published_and_aes_kcv_shape() {
    assert_eq!(
        ok(&["kcv", "--key", "0123456789ABCDEFFEDCBA9876543210"]),
        "08D7B4"
    );
    let aes = ok(&[
        "kcv",
        "--key",
        "000102030405060708090A0B0C0D0E0F",
        "--key-algorithm",
        "aes",
    ]);
    assert_eq!(aes.len(), 6);
    assert!(aes.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn bad_input_fails_cleanly() {
    let pan = "4111111111111111";
    let stderr = fails(&[
        "pinblock", "encode", "--format", "iso_0", "--pin", "123", "--pan", pan,
    ]);
    assert!(stderr.contains("--pin"), "{stderr}");
    fails(&[
        "pinblock", "encode", "--format", "iso_0", "--pin", "12a4", "--pan", pan,
    ]);
    fails(&[
        "pinblock", "encode", "--format", "iso_2", "--pin", "1234", "--pan", pan,
    ]);
    fails(&["pinblock", "encode", "--format", "iso_0", "--pin", "1234"]);
    fails(&[
        "pinblock",
        "encode",
        "--format",
        "iso_0",
        "--pin",
        "1234",
        "--pan",
        "41111111111111111111",
    ]);
    fails(&[
        "pinblock",
        "encode",
        "--format",
        "iso_4",
        "--pin",
        "1234",
        "--pan",
        pan,
        "--key",
        "00",
        "--key-algorithm",
        "aes",
    ]);
    let stderr = fails(&[
        "pinblock",
        "encode",
        "--format",
        "iso_4",
        "--pin",
        "1234",
        "--pan",
        pan,
        "--key",
        &"11".repeat(16),
        "--key-algorithm",
        "tdes",
    ]);
    assert!(stderr.contains("iso_4"), "{stderr}");
    fails(&[
        "pinblock",
        "decode",
        "--format",
        "iso_0",
        "--block",
        "0412AC89ABCDEF6",
        "--pan",
        pan,
    ]);
    fails(&[
        "pinblock",
        "decode",
        "--format",
        "iso_0",
        "--block",
        "0412AC89ABCDEFZZ",
        "--pan",
        pan,
    ]);
    fails(&[
        "pinblock",
        "decode",
        "--format",
        "iso_0",
        "--block",
        "0412AC89ABCDEF6700",
        "--pan",
        pan,
    ]);
    fails(&[
        "pinblock",
        "decode",
        "--format",
        "iso_0",
        "--block",
        &"AB".repeat(5000),
        "--pan",
        pan,
    ]);
    fails(&[
        "pinblock",
        "decode",
        "--format",
        "iso_3",
        "--block",
        "0412AC89ABCDEF67",
        "--pan",
        "43219876543210987",
    ]);
    fails(&[
        "pinblock",
        "decode",
        "--format",
        "iso_4",
        "--block",
        &"00".repeat(16),
        "--pan",
        pan,
        "--key",
        &"00".repeat(16),
    ]);
    fails(&["kcv", "--key", "0123"]);
    fails(&["kcv", "--key", &"0".repeat(31)]);
    fails(&["kcv"]);
}

#[test]
fn errors_never_echo_the_pin() {
    // A wrong PAN makes the decode fail; the message must not contain PIN digits.
    let block = ok(&[
        "pinblock",
        "encode",
        "--format",
        "iso_4",
        "--pin",
        "8264",
        "--pan",
        "4111111111111111",
        "--key",
        &"42".repeat(16),
    ]);
    let stderr = fails(&[
        "pinblock",
        "decode",
        "--format",
        "iso_4",
        "--block",
        &block,
        "--pan",
        "4111111111111129",
        "--key",
        &"42".repeat(16),
    ]);
    assert!(!stderr.contains("8264"), "{stderr}");
}
