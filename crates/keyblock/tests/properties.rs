#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! Wrap then unwrap gives the key and header back, for every version, KBPK
//! length, key length, masking and optional blocks; any one character changed,
//! any cut or extension is refused; no input panics.

use keyblock::{Header, Tr31Error, Version, unwrap, wrap, wrap_masked};
use proptest::prelude::*;

fn version_and_kbpk() -> impl Strategy<Value = (Version, Vec<u8>)> {
    prop_oneof![
        (Just(Version::B), prop::sample::select(vec![16usize, 24])),
        (Just(Version::C), prop::sample::select(vec![16usize, 24])),
        (
            Just(Version::D),
            prop::sample::select(vec![16usize, 24, 32])
        ),
    ]
    .prop_flat_map(|(v, len)| (Just(v), proptest::collection::vec(any::<u8>(), len)))
}

fn alnum() -> impl Strategy<Value = char> {
    prop::sample::select(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
            .chars()
            .collect::<Vec<_>>(),
    )
}

/// Optional blocks with distinct IDs (never PB), printable data, now and then
/// longer than 255 characters (the extended length).
fn optional_blocks() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        (
            (alnum(), alnum()).prop_map(|(a, b)| format!("{a}{b}")),
            prop_oneof![
                4 => "[ -~]{0,40}",
                1 => "[ -~]{250,300}",
            ],
        ),
        0..4,
    )
    .prop_map(|blocks| {
        let mut seen = std::collections::HashSet::new();
        blocks
            .into_iter()
            .filter(|(id, _)| id != "PB" && seen.insert(id.clone()))
            .collect()
    })
}

#[derive(Debug, Clone)]
struct Case {
    version: Version,
    kbpk: Vec<u8>,
    header: Header,
    key: Vec<u8>,
    masked: Option<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        version_and_kbpk(),
        (
            alnum(),
            alnum(),
            alnum(),
            alnum(),
            alnum(),
            alnum(),
            alnum(),
        ),
        optional_blocks(),
        any::<prop::sample::Index>(),
        proptest::option::of(0usize..64),
        any::<u64>(),
    )
        .prop_map(|((version, kbpk), f, blocks, key_len, masked, seed)| {
            let usage = format!("{}{}", f.0, f.1);
            let kv = format!("{}{}", f.4, f.5);
            let mut header = Header::new(version, &usage, f.2, f.3, &kv, f.6).unwrap();
            for (id, data) in &blocks {
                header = header.with_optional_block(id, data).unwrap();
            }
            let len = key_len.index(kbpk.len()) + 1;
            let key = (0..len as u64)
                .map(|i| (seed.rotate_left(i as u32 * 7) ^ i) as u8)
                .collect();
            Case {
                version,
                kbpk,
                header,
                key,
                masked,
            }
        })
}

fn make(c: &Case) -> String {
    match c.masked {
        Some(m) => wrap_masked(&c.kbpk, &c.header, &c.key, m, &mut rand::rng()).unwrap(),
        None => wrap(&c.kbpk, &c.header, &c.key, &mut rand::rng()).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn wrap_then_unwrap(c in case()) {
        let block = make(&c);
        prop_assert_eq!(&block[1..5], format!("{:04}", block.len()));
        prop_assert_eq!(block.chars().next(), Some(c.version.as_char()));
        let out = unwrap(&c.kbpk, &block).unwrap();
        prop_assert_eq!(out.key.expose(), c.key.as_slice());
        prop_assert_eq!(&out.header, &c.header);
        // Masked: the payload is as long as for a key of the masked length.
        let bs = if c.version == Version::D { 16 } else { 8 };
        let masked = c.masked.unwrap_or(match c.header.algorithm() { 'T' | 'D' => 24, 'A' => 32, _ => 0 });
        let hidden = 2 + c.key.len().max(masked);
        let payload = (hidden / bs + 1) * bs;
        let mac_hex = match c.version { Version::B => 16, Version::C => 8, Version::D => 32 };
        if c.header.optional_blocks().count() == 0 {
            prop_assert_eq!(block.len(), 16 + 2 * payload + mac_hex);
        } else {
            prop_assert!(block.len() > 16 + 2 * payload + mac_hex);
        }
    }

    #[test]
    fn any_changed_character_is_refused(c in case(), at in any::<prop::sample::Index>(), to in 0x20u8..=0x7E) {
        let block = make(&c);
        let i = at.index(block.len());
        prop_assume!(block.as_bytes()[i] != to);
        let mut bytes = block.into_bytes();
        bytes[i] = to;
        let tampered = String::from_utf8(bytes).unwrap();
        prop_assert!(unwrap(&c.kbpk, &tampered).is_err(), "accepted {}", tampered);
    }

    #[test]
    fn cut_or_extended_is_refused(c in case(), cut in any::<prop::sample::Index>(), tail in "[ -~]{1,40}") {
        let block = make(&c);
        let n = cut.index(block.len());
        prop_assert!(unwrap(&c.kbpk, &block[..n]).is_err());
        let extended = block.clone() + &tail;
        prop_assert!(unwrap(&c.kbpk, &extended).is_err());
    }

    #[test]
    fn another_kbpk_is_a_bad_mac(c in case(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let block = make(&c);
        let mut kbpk = c.kbpk.clone();
        let i = flip.index(kbpk.len());
        kbpk[i] ^= 1 << bit;
        // A flipped DES parity bit (the low bit of each byte) is the same TDES
        // key, so the same derived or variant keys: the block still unwraps.
        let result = unwrap(&kbpk, &block);
        if c.version != Version::D && bit == 0 {
            prop_assert!(result.is_ok());
        } else {
            prop_assert_eq!(result.unwrap_err(), Tr31Error::BadMac);
        }
    }

    #[test]
    fn no_panic_on_any_text(s in "\\PC{0,200}", len in prop::sample::select(vec![8usize, 16, 24, 32])) {
        let _ = unwrap(&vec![0x42; len], &s);
        // Also behind a plausible header, so the parser goes further.
        let t = format!("B{:04}P0TE00N{}", s.len() + 12, s);
        let _ = unwrap(&vec![0x42; len], &t);
    }

    #[test]
    fn no_panic_on_printable_blocks(body in "[0-9A-F]{0,120}", head in "[BCD][0-9]{4}[0-9A-Z]{7}[0-9]{2}00", blocks in "[ -~]{0,40}") {
        for len in [16usize, 24, 32] {
            let s = format!("{head}{blocks}{body}");
            let _ = unwrap(&vec![0x42; len], &s);
            let fixed = format!("{}{:04}{}", &s[..1], s.len(), &s[5..]);
            let _ = unwrap(&vec![0x42; len], &fixed);
        }
    }
}

#[test]
fn wrap_refusals() {
    let h = |v| Header::new(v, "P0", 'T', 'E', "00", 'N').unwrap();
    let rng = &mut rand::rng();
    assert_eq!(
        wrap(&[1; 16], &h(Version::B), &[], rng).unwrap_err(),
        Tr31Error::WrapKeyLength { found: 0, kbpk: 16 }
    );
    assert_eq!(
        wrap(&[1; 16], &h(Version::C), &[2; 24], rng).unwrap_err(),
        Tr31Error::WrapKeyLength {
            found: 24,
            kbpk: 16
        }
    );
    assert_eq!(
        wrap(&[1; 32], &h(Version::B), &[2; 16], rng).unwrap_err(),
        Tr31Error::KbpkLength {
            version: 'B',
            found: 32
        }
    );
    assert_eq!(
        wrap(&[1; 8], &h(Version::C), &[2; 8], rng).unwrap_err(),
        Tr31Error::KbpkLength {
            version: 'C',
            found: 8
        }
    );
    assert_eq!(
        wrap(&[1; 20], &h(Version::D), &[2; 16], rng).unwrap_err(),
        Tr31Error::KbpkLength {
            version: 'D',
            found: 20
        }
    );
    assert!(wrap_masked(&[1; 16], &h(Version::B), &[2; 16], usize::MAX, rng).is_err());
    // Too long for 9999 characters.
    let big = h(Version::D)
        .with_optional_block("T1", &"x".repeat(9990))
        .unwrap();
    assert!(matches!(
        wrap(&[1; 16], &big, &[2; 16], rng),
        Err(Tr31Error::Malformed(_))
    ));
    // psec's default masking: a TDES key as 24 bytes, an AES key as 32.
    assert_eq!(
        wrap(&[1; 16], &h(Version::B), &[2; 16], rng).unwrap().len(),
        96
    );
    let aes = Header::new(Version::D, "P0", 'A', 'E', "00", 'N').unwrap();
    assert_eq!(
        wrap(&[1; 32], &aes, &[2; 16], rng).unwrap().len(),
        16 + 96 + 32
    );
}

#[test]
fn errors_say_what_without_secrets() {
    for e in [
        Tr31Error::NotAscii,
        Tr31Error::UnsupportedVersion('A'),
        Tr31Error::Length {
            declared: 80,
            actual: 79,
        },
        Tr31Error::KbpkLength {
            version: 'D',
            found: 8,
        },
        Tr31Error::Malformed("reserved field is not 00"),
        Tr31Error::BadMac,
        Tr31Error::KeyLength,
        Tr31Error::WrapKeyLength {
            found: 32,
            kbpk: 16,
        },
    ] {
        let shown = e.to_string();
        assert!(!shown.is_empty());
        assert!(shown.len() < 120, "{shown}");
    }
}
