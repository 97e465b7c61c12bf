#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! Every malformed input is a typed error.

use pinblock::{
    Error, Format, KeyAlgorithm, Pan, Pin, SecretKey, ZoneKey, decipher, decode_clear, encipher,
    encode_clear,
};

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn pan() -> Pan {
    Pan::new("5555555551234567").unwrap()
}

#[test]
fn wrong_lengths() {
    for f in Format::ALL {
        assert_eq!(
            decode_clear(f, &[0u8; 7], &pan()).unwrap_err(),
            Error::BlockLength {
                expected: f.clear_len(),
                found: 7
            }
        );
    }
    let tdes = ZoneKey::from_hex(KeyAlgorithm::Tdes, &"11".repeat(16)).unwrap();
    let aes = ZoneKey::from_hex(KeyAlgorithm::Aes, &"11".repeat(16)).unwrap();
    assert_eq!(
        decipher(Format::Iso0, &[0u8; 16], &pan(), &tdes).unwrap_err(),
        Error::BlockLength {
            expected: 8,
            found: 16
        }
    );
    assert_eq!(
        decipher(Format::Iso0, &[0u8; 8], &pan(), &aes).unwrap_err(),
        Error::BlockLength {
            expected: 16,
            found: 8
        }
    );
    assert_eq!(
        decipher(Format::Iso4, &[0u8; 16], &pan(), &tdes).unwrap_err(),
        Error::KeyAlgorithmNotAllowed {
            format: Format::Iso4,
            algorithm: KeyAlgorithm::Tdes
        }
    );
}

#[test]
fn bad_control_length_digits_fill() {
    // 041261AAAAEDCBA9 is PIN 1234 under PAN 5555555551234567 (psec's published vector).
    let p = pan();
    let cases = [
        (
            "241261AAAAEDCBA9",
            Error::ControlField {
                expected: 0,
                found: 2,
            },
        ),
        ("0F1261AAAAEDCBA9", Error::PinLength { found: 15 }),
        ("021261AAAAEDCBA9", Error::PinLength { found: 2 }),
        ("041261AAAAEDCBAA", Error::Fill),
        ("051261AAAAEDCBA9", Error::PinDigit),
    ];
    for (block, err) in cases {
        assert_eq!(
            decode_clear(Format::Iso0, &hex(block), &p).unwrap_err(),
            err,
            "{block}"
        );
    }
    // Format 3: fill must be A to F.
    let f3 = encode_clear(
        Format::Iso3,
        &Pin::new("1234").unwrap(),
        &p,
        &mut rand::rng(),
    );
    let mut bad = f3.as_bytes().to_vec();
    bad[7] ^= 0x80; // turns the last fill nibble (A..F after unmasking) into 2..7
    assert_eq!(
        decode_clear(Format::Iso3, &bad, &p).unwrap_err(),
        Error::Fill
    );
    // Format 3 block read as format 0: control field differs.
    assert_eq!(
        decode_clear(Format::Iso0, f3.as_bytes(), &p).unwrap_err(),
        Error::ControlField {
            expected: 0,
            found: 3
        }
    );
    // Format 4 PIN field: fill must be A up to nibble 16; the rest is free.
    let field = hex("441234AAAAAAAAAA0123456789ABCDEF");
    assert_eq!(
        &*decode_clear(Format::Iso4, &field, &p).unwrap().expose(),
        "1234"
    );
    let field = hex("441234AAAAAAAAAB0123456789ABCDEF");
    assert_eq!(
        decode_clear(Format::Iso4, &field, &p).unwrap_err(),
        Error::Fill
    );
    let field = hex("4D1234AAAAAAAAAA0123456789ABCDEF");
    assert_eq!(
        decode_clear(Format::Iso4, &field, &p).unwrap_err(),
        Error::PinLength { found: 13 }
    );
}

#[test]
fn aes_padding_of_short_formats_is_checked() {
    let aes = ZoneKey::from_hex(KeyAlgorithm::Aes, "000102030405060708090A0B0C0D0E0F").unwrap();
    let p = pan();
    let block = encipher(
        Format::Iso0,
        &Pin::new("1234").unwrap(),
        &p,
        &aes,
        &mut rand::rng(),
    )
    .unwrap();
    let mut clear = block.as_bytes().to_vec();
    aes.decrypt_block(&mut clear).unwrap();
    assert_eq!(&clear[..8], &hex("041261AAAAEDCBA9")[..]);
    assert_eq!(&clear[8..], &[0u8; 8]);
    clear[15] = 1;
    aes.encrypt_block(&mut clear).unwrap();
    assert_eq!(
        decipher(Format::Iso0, &clear, &p, &aes).unwrap_err(),
        Error::Padding
    );
}

#[test]
fn bad_text_input() {
    assert_eq!(
        SecretKey::from_hex("0123456789ABCDEZ").unwrap_err(),
        Error::NotHex
    );
    assert_eq!(SecretKey::from_hex("012").unwrap_err(), Error::NotHex);
    assert!(matches!(
        ZoneKey::from_hex(KeyAlgorithm::Tdes, &"01".repeat(8)),
        Err(Error::KeyLength {
            algorithm: KeyAlgorithm::Tdes,
            found: 8
        })
    ));
    assert!(matches!(
        ZoneKey::from_hex(KeyAlgorithm::Aes, &"01".repeat(33)),
        Err(Error::KeyLength { .. })
    ));
    assert_eq!(Pan::new("").unwrap_err(), Error::PanLength { found: 0 });
    assert_eq!(
        Pan::new(&"1".repeat(20)).unwrap_err(),
        Error::PanLength { found: 20 }
    );
    assert_eq!(Pan::new("41111111x1111111").unwrap_err(), Error::PanDigit);
    assert_eq!("iso_2".parse::<Format>().unwrap_err(), Error::UnknownFormat);
    assert_eq!(
        "des".parse::<KeyAlgorithm>().unwrap_err(),
        Error::UnknownKeyAlgorithm
    );
}

#[test]
fn random_fill_is_fresh_and_in_range() {
    let p = pan();
    let pin = Pin::new("1234").unwrap();
    let a = encode_clear(Format::Iso3, &pin, &p, &mut rand::rng());
    let b = encode_clear(Format::Iso3, &pin, &p, &mut rand::rng());
    let c = encode_clear(Format::Iso4, &pin, &p, &mut rand::rng());
    let d = encode_clear(Format::Iso4, &pin, &p, &mut rand::rng());
    // 10 random nibbles (format 3) / 64 random bits (format 4): a repeat means a broken RNG.
    assert_ne!(a.as_bytes(), b.as_bytes());
    assert_ne!(c.as_bytes(), d.as_bytes());
    // Every fill nibble of many format 3 blocks is A..F and each value occurs.
    let mut seen = [0u32; 16];
    for _ in 0..200 {
        let block = encode_clear(
            Format::Iso3,
            &pin,
            &Pan::new("0").unwrap(),
            &mut rand::rng(),
        );
        for &byte in &block.as_bytes()[3..] {
            seen[usize::from(byte >> 4)] += 1;
            seen[usize::from(byte & 0xF)] += 1;
        }
    }
    assert!(seen[..10].iter().all(|&n| n == 0));
    assert!(seen[10..].iter().all(|&n| n > 100), "{seen:?}");
}

#[test]
fn random_pins_are_uniform_enough() {
    let mut counts = [0u32; 10];
    for _ in 0..2000 {
        let pin = Pin::random(4, &mut rand::rng()).unwrap();
        for d in pin.digits() {
            counts[usize::from(d)] += 1;
        }
    }
    // 8000 digits: each expected 800; a broken generator (constant, modulo-biased
    // toward low digits by a lot) falls far outside this band.
    assert!(
        counts.iter().all(|&c| (650..=950).contains(&c)),
        "{counts:?}"
    );
    assert!(Pin::random(3, &mut rand::rng()).is_err());
}
