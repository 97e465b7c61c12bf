#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! Round trips over random PINs, PANs and keys; no panic on arbitrary input.

use pinblock::{
    Error, Format, KeyAlgorithm, Pan, Pin, SecretKey, ZoneKey, decipher, decode_clear, encipher,
    encode_clear, translate,
};
use proptest::prelude::*;

fn digits(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(0u8..10, min..=max)
        .prop_map(|v| v.into_iter().map(|d| char::from(b'0' + d)).collect())
}

fn format() -> impl Strategy<Value = Format> {
    prop::sample::select(Format::ALL.to_vec())
}

/// A key of any allowed kind: TDES double/triple, AES 128/192/256.
fn key() -> impl Strategy<Value = (KeyAlgorithm, Vec<u8>)> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 16).prop_map(|k| (KeyAlgorithm::Tdes, k)),
        proptest::collection::vec(any::<u8>(), 24).prop_map(|k| (KeyAlgorithm::Tdes, k)),
        proptest::collection::vec(any::<u8>(), 16).prop_map(|k| (KeyAlgorithm::Aes, k)),
        proptest::collection::vec(any::<u8>(), 24).prop_map(|k| (KeyAlgorithm::Aes, k)),
        proptest::collection::vec(any::<u8>(), 32).prop_map(|k| (KeyAlgorithm::Aes, k)),
    ]
}

fn zone_key((alg, bytes): &(KeyAlgorithm, Vec<u8>)) -> ZoneKey {
    ZoneKey::new(*alg, &SecretKey::from_slice(bytes).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn clear_round_trip(f in format(), pin in digits(4, 12), pan in digits(1, 19)) {
        let pan = Pan::new(&pan).unwrap();
        let block = encode_clear(f, &Pin::new(&pin).unwrap(), &pan, &mut rand::rng());
        prop_assert_eq!(block.as_bytes().len(), f.clear_len());
        let back = decode_clear(f, block.as_bytes(), &pan).unwrap();
        prop_assert_eq!(&*back.expose(), pin.as_str());
    }

    #[test]
    fn enciphered_round_trip(f in format(), pin in digits(4, 12), pan in digits(1, 19), k in key()) {
        let key = zone_key(&k);
        let pan = Pan::new(&pan).unwrap();
        let pin_value = Pin::new(&pin).unwrap();
        match encipher(f, &pin_value, &pan, &key, &mut rand::rng()) {
            Ok(block) => {
                prop_assert_eq!(block.as_bytes().len(), f.enciphered_len(k.0).unwrap());
                let back = decipher(f, block.as_bytes(), &pan, &key).unwrap();
                prop_assert_eq!(&*back.expose(), pin.as_str());
            }
            Err(e) => {
                // Only format 4 under TDES is refused.
                prop_assert_eq!(f, Format::Iso4);
                prop_assert_eq!(k.0, KeyAlgorithm::Tdes);
                prop_assert_eq!(e, Error::KeyAlgorithmNotAllowed { format: f, algorithm: k.0 });
            }
        }
    }

    #[test]
    fn another_pan_never_yields_the_pin(
        f in prop::sample::select(vec![Format::Iso0, Format::Iso3, Format::Iso4]),
        pin in digits(4, 12), pan in digits(13, 19), other in digits(13, 19),
    ) {
        // Formats 0 and 3 bind the 12 digits before the check digit; format 4 all of them.
        let bound = |p: &str| if f == Format::Iso4 { p.to_string() } else {
            let body = &p[..p.len() - 1];
            body[body.len().saturating_sub(12)..].to_string()
        };
        prop_assume!(bound(&pan) != bound(&other));
        let key = ZoneKey::from_hex(KeyAlgorithm::Aes, "000102030405060708090A0B0C0D0E0F").unwrap();
        let block = encipher(f, &Pin::new(&pin).unwrap(), &Pan::new(&pan).unwrap(), &key, &mut rand::rng()).unwrap();
        if let Ok(p) = decipher(f, block.as_bytes(), &Pan::new(&other).unwrap(), &key) {
            prop_assert_ne!(&*p.expose(), pin.as_str());
        }
    }

    #[test]
    fn translation_follows_pci_3_3(
        from in format(), to in format(), pin in digits(4, 12), pan in digits(1, 19),
        k1 in key(), k2 in key(),
    ) {
        let (from_key, to_key) = (zone_key(&k1), zone_key(&k2));
        let pan = Pan::new(&pan).unwrap();
        let Ok(block) = encipher(from, &Pin::new(&pin).unwrap(), &pan, &from_key, &mut rand::rng()) else {
            return Ok(());
        };
        let result = translate(block.as_bytes(), from, &from_key, to, &to_key, &pan, &mut rand::rng());
        if to == Format::Iso1 {
            prop_assert_eq!(result.unwrap_err(), Error::TranslationNotAllowed { from, to });
        } else if to == Format::Iso4 && k2.0 == KeyAlgorithm::Tdes {
            let refused = matches!(result, Err(Error::KeyAlgorithmNotAllowed { .. }));
            prop_assert!(refused);
        } else {
            let out = result.unwrap();
            let back = decipher(to, out.as_bytes(), &pan, &to_key).unwrap();
            prop_assert_eq!(&*back.expose(), pin.as_str());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        f in format(), block in proptest::collection::vec(any::<u8>(), 0..40),
        pan in digits(1, 19), k in key(),
    ) {
        let key = zone_key(&k);
        let pan = Pan::new(&pan).unwrap();
        if let Ok(pin) = decode_clear(f, &block, &pan) {
            prop_assert!((4..=12).contains(&pin.len()));
        }
        if let Ok(pin) = decipher(f, &block, &pan, &key) {
            prop_assert!((4..=12).contains(&pin.len()));
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,80}", alg in prop::sample::select(vec![KeyAlgorithm::Tdes, KeyAlgorithm::Aes])) {
        let _ = Pin::new(&s);
        let _ = Pan::new(&s);
        let _ = s.parse::<Format>();
        let _ = SecretKey::from_hex(&s);
        let _ = ZoneKey::from_hex(alg, &s);
    }
}
