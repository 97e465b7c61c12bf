#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! Visa PVV and IBM 3624 offsets over random keys, PANs, PINs and parameters:
//! what is generated verifies, what differs in a checked digit does not, and no
//! input panics. (psec agrees digit for digit: tests/interop/legacy_interop.py.)

use pinblock::ibm3624::{Ibm3624Params, offset, verify_offset};
use pinblock::pvv::{pvv, verify_pvv};
use pinblock::{Pan, Pin, SecretKey};
use proptest::prelude::*;

fn digits(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(0u8..10, min..=max)
        .prop_map(|v| v.into_iter().map(|d| char::from(b'0' + d)).collect())
}

fn tdes_key() -> impl Strategy<Value = SecretKey> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 16),
        proptest::collection::vec(any::<u8>(), 24),
    ]
    .prop_map(|k| SecretKey::from_slice(&k).unwrap())
}

fn des_or_tdes_key() -> impl Strategy<Value = SecretKey> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 8),
        proptest::collection::vec(any::<u8>(), 16),
        proptest::collection::vec(any::<u8>(), 24),
    ]
    .prop_map(|k| SecretKey::from_slice(&k).unwrap())
}

/// A PIN and the same PIN with digit `at` (below `check`) changed.
fn pin_and_neighbour(check: usize, pin: &str, at: usize, by: u8) -> (Pin, Pin) {
    let mut other: Vec<u8> = pin.bytes().collect();
    let i = at % check;
    other[i] = b'0' + (other[i] - b'0' + 1 + by % 9) % 10;
    (Pin::new(pin).unwrap(), Pin::from_ascii(&other).unwrap())
}

/// Valid IBM 3624 parameters whose window fits `pan_len` digits, and a PIN check
/// length no longer than `pin_len`.
fn params_for(pan_len: usize, pin_len: usize) -> impl Strategy<Value = Ibm3624Params> {
    let max_len = pan_len.min(16);
    (
        digits(16, 16),
        1..=max_len,
        any::<prop::sample::Index>(),
        prop::sample::select(b"0123456789ABCDEFabcdef".to_vec()),
        4..=pin_len,
    )
        .prop_map(move |(table, vlen, start, pad, check)| {
            let voff = start.index(pan_len - vlen + 1);
            Ibm3624Params::new(&table, voff as u8, vlen as u8, pad, check as u8).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn pvv_verifies_and_binds_the_first_four_digits(
        pvk in tdes_key(), pan in digits(12, 19), pin in digits(4, 12), pvki in 0u8..10,
        at in 0usize..4, by in any::<u8>(),
    ) {
        let pan = Pan::new(&pan).unwrap();
        let (pin, other) = pin_and_neighbour(4, &pin, at, by);
        let value = pvv(&pvk, &pan, pvki, &pin).unwrap();
        prop_assert!(value.iter().all(u8::is_ascii_digit));
        prop_assert!(verify_pvv(&pvk, &pan, pvki, &pin, &value).unwrap());
        // A different PIN verifies only if its PVV happens to collide (1 in 10^4
        // at most): compare with its own PVV rather than expect a mismatch.
        let other_value = pvv(&pvk, &pan, pvki, &other).unwrap();
        prop_assert_eq!(verify_pvv(&pvk, &pan, pvki, &other, &value).unwrap(), other_value == value);
        // The digits past the fourth do not count.
        let mut longer = pin.expose().to_string();
        longer.push_str("0000");
        longer.truncate(12);
        prop_assert_eq!(pvv(&pvk, &pan, pvki, &Pin::new(&longer).unwrap()).unwrap(), value);
    }

    #[test]
    fn ibm_offset_verifies_and_every_checked_digit_counts(
        (pan, pin, params) in (digits(1, 19), digits(4, 12)).prop_flat_map(|(pan, pin)| {
            let p = params_for(pan.len(), pin.len());
            (Just(pan), Just(pin), p)
        }),
        pvk in des_or_tdes_key(), at in any::<usize>(), by in any::<u8>(),
    ) {
        let check = usize::from(params.pin_length());
        let pan = Pan::new(&pan).unwrap();
        let (pin, other) = pin_and_neighbour(check, &pin, at, by);
        let value = offset(&pvk, &pan, &params, &pin).unwrap();
        prop_assert_eq!(value.len(), check);
        prop_assert!(value.iter().all(u8::is_ascii_digit));
        prop_assert!(verify_offset(&pvk, &pan, &params, &pin, &value).unwrap());
        // The offset is a bijection of the checked digits: a changed digit never verifies.
        prop_assert!(!verify_offset(&pvk, &pan, &params, &other, &value).unwrap());
        // Offset 0000… is the natural PIN itself: adding the offset back gives the PIN.
        let natural: Vec<u8> = pin.digits().zip(&value).map(|(p, o)| (10 + p - (o - b'0')) % 10).collect();
        let natural_pin: String = natural.iter().map(|d| char::from(b'0' + d)).collect();
        let zeros = vec![b'0'; check];
        prop_assert!(verify_offset(&pvk, &pan, &params, &Pin::new(&natural_pin).unwrap(), &zeros).unwrap());
    }

    #[test]
    fn no_panic_on_any_parameters(
        table in "[0-9A-Za-z]{0,18}", voff in any::<u8>(), vlen in any::<u8>(), pad in any::<u8>(),
        check in any::<u8>(), pan in digits(1, 19), pin in digits(4, 12), key_len in 1usize..=32,
        pvki in any::<u8>(), value in proptest::collection::vec(any::<u8>(), 0..14),
    ) {
        let pvk = SecretKey::from_slice(&vec![0x5A; key_len]).unwrap();
        let pan = Pan::new(&pan).unwrap();
        let pin = Pin::new(&pin).unwrap();
        if let Ok(params) = Ibm3624Params::new(&table, voff, vlen, pad, check) {
            let _ = offset(&pvk, &pan, &params, &pin);
            let _ = verify_offset(&pvk, &pan, &params, &pin, &value);
        }
        let _ = pvv(&pvk, &pan, pvki, &pin);
        let four: [u8; 4] = std::array::from_fn(|i| value.get(i).copied().unwrap_or(b'0'));
        let _ = verify_pvv(&pvk, &pan, pvki, &pin, &four);
    }
}
