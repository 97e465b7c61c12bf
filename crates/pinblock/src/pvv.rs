//! The Visa PIN Verification Value (PVV): four digits that bind the first four
//! digits of a PIN to a PAN under a PIN verification key (PVK).
//!
//! The transformed security parameter (TSP) is 16 digits: the 11 rightmost PAN
//! digits excluding the check digit, the PVK index (PVKI, 0 to 9) and the 4
//! leftmost PIN digits. It is enciphered under the PVK (TDES, ECB), and the PVV
//! is read from the result's 16 hexadecimal digits: first the decimal digits, left
//! to right; if fewer than four, then the digits A to F, left to right, minus 10.
//!
//! The PVK is double-length (16 bytes) as Visa defines it, or triple-length (24
//! bytes), as psec and HSMs also take; a single-length (8-byte) DES key is
//! refused. PINs longer than four digits are taken (only their first four digits
//! count, as with every PVV); PANs need at least 12 digits.
//!
//! ```
//! use pinblock::{pvv, Pan, Pin, SecretKey};
//! let pvk = SecretKey::from_hex("0123456789ABCDEFFEDCBA9876543210")?;
//! let pan = Pan::new("1122334455667788")?;
//! let value = pvv::pvv(&pvk, &pan, 3, &Pin::new("4524")?)?;
//! assert_eq!(&value, b"4021");
//! assert!(pvv::verify_pvv(&pvk, &pan, 3, &Pin::new("4524")?, &value)?);
//! assert!(!pvv::verify_pvv(&pvk, &pan, 3, &Pin::new("4525")?, &value)?);
//! # Ok::<(), pinblock::Error>(())
//! ```

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::pvk::{self, Lengths};
use crate::{Error, Pan, Pin, SecretKey};

/// Digits of the PAN the TSP takes: 11, and the check digit after them.
const PAN_DIGITS: usize = 11;

/// The PVV (four ASCII digits) of the first four digits of `pin` for `pan` under
/// `pvk` with index `pvki` (0 to 9).
pub fn pvv(pvk: &SecretKey, pan: &Pan, pvki: u8, pin: &Pin) -> Result<[u8; 4], Error> {
    if pvki > 9 {
        return Err(Error::Pvki);
    }
    let digits = pan.values();
    let needed = PAN_DIGITS + 1;
    if digits.len() < needed {
        return Err(Error::PanTooShort {
            found: digits.len(),
            needed,
        });
    }
    let start = digits.len() - needed;
    let pan_part = digits
        .get(start..start + PAN_DIGITS)
        .ok_or(Error::PanTooShort {
            found: digits.len(),
            needed,
        })?;
    // The first four PIN digits, as four BCD nibbles (a Pin has at least four).
    let first4 = (pin.bcd() >> (4 * (pin.len() - 4))) & 0xFFFF;
    let tsp = Zeroizing::new(
        (pan_part
            .iter()
            .fold(0u64, |acc, &d| (acc << 4) | u64::from(d))
            << 20)
            | (u64::from(pvki) << 16)
            | first4,
    );
    let mut block = Zeroizing::new(tsp.to_be_bytes());
    pvk::encipher(pvk, Lengths::Tdes, &mut block)?;
    Ok(decimalise(&block))
}

/// Whether `pvv` (four ASCII digits) is the PVV of `pin`; compared in constant time.
/// A `pvv` that is not four digits is an error, not a mismatch.
pub fn verify_pvv(
    pvk: &SecretKey,
    pan: &Pan,
    pvki: u8,
    pin: &Pin,
    pvv: &[u8; 4],
) -> Result<bool, Error> {
    if !pvv.iter().all(u8::is_ascii_digit) {
        return Err(Error::VerificationValue { expected: 4 });
    }
    let computed = Zeroizing::new(self::pvv(pvk, pan, pvki, pin)?);
    Ok(bool::from(computed.as_slice().ct_eq(pvv.as_slice())))
}

/// Visa's two passes over the enciphered TSP: decimal digits first, then A to F
/// as 0 to 5. Every nibble is looked at in both passes whatever it holds.
fn decimalise(block: &[u8; 8]) -> [u8; 4] {
    let nibbles = Zeroizing::new(pvk::nibbles(block));
    let mut out = [0u8; 4];
    let mut taken = 0usize;
    for second_pass in [false, true] {
        for &n in nibbles.iter() {
            if (n >= 10) == second_pass {
                if let Some(slot) = out.get_mut(taken) {
                    // 0-9 stay, A-F become 0-5.
                    *slot = b'0' + n % 10;
                    taken += 1;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap()
    }

    #[test]
    fn psec_vectors() {
        // psec 1.3.0's test suite and documentation (tests/test_pin.py).
        for (pvki, pin, pan, want) in [
            (3, "4524", "1122334455667788", "4021"),
            (1, "4524", "1122334455667788", "8523"),
            (2, "1912", "1122334455667788", "3244"),
            (1, "0570", "1122334455667718", "3144"),
            (1, "8299", "1122334455667708", "4422"),
            // Made with psec 1.3.0 for the second pass: the enciphered TSP has
            // three, two and two decimal digits (ABD3FDFE2CF4DEFB, BCBEEBDEDDC5DA8F,
            // 0EBEFFEE0CCEDCAF).
            (1, "1234", "4000000000027550", "3240"),
            (1, "1234", "4000000000097660", "5812"),
            (1, "1234", "4000000000143310", "0041"),
        ] {
            let (pan, pin) = (Pan::new(pan).unwrap(), Pin::new(pin).unwrap());
            assert_eq!(&pvv(&key(), &pan, pvki, &pin).unwrap(), want.as_bytes());
        }
    }

    #[test]
    fn decimalisation_passes() {
        // Enough digits in the first pass.
        assert_eq!(&decimalise(&[0x1A, 0x2B, 0x3C, 0x4D, 0, 0, 0, 0]), b"1234");
        // Two digits, then A-F left to right.
        assert_eq!(
            &decimalise(&[0xAB, 0xCD, 0xEF, 0xFF, 0xFF, 0xFF, 0x7F, 0x9F]),
            b"7901"
        );
        // No digit at all.
        assert_eq!(
            &decimalise(&[0xFE, 0xDC, 0xBA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA]),
            b"5432"
        );
    }

    #[test]
    fn only_the_first_four_pin_digits_count() {
        let pan = Pan::new("4111111111111111").unwrap();
        let short = pvv(&key(), &pan, 1, &Pin::new("1234").unwrap()).unwrap();
        let long = pvv(&key(), &pan, 1, &Pin::new("123456789012").unwrap()).unwrap();
        assert_eq!(short, long);
    }

    #[test]
    fn refusals() {
        let pan = Pan::new("4111111111111111").unwrap();
        let pin = Pin::new("1234").unwrap();
        assert_eq!(pvv(&key(), &pan, 10, &pin).unwrap_err(), Error::Pvki);
        assert_eq!(
            pvv(&key(), &Pan::new("41111111111").unwrap(), 1, &pin).unwrap_err(),
            Error::PanTooShort {
                found: 11,
                needed: 12
            }
        );
        assert!(pvv(&key(), &Pan::new("411111111111").unwrap(), 1, &pin).is_ok());
        let single = SecretKey::from_slice(&[7; 8]).unwrap();
        assert_eq!(
            pvv(&single, &pan, 1, &pin).unwrap_err(),
            Error::PvkLength {
                found: 8,
                allowed: "16 or 24"
            }
        );
        let triple = SecretKey::from_slice(&[7; 24]).unwrap();
        assert!(pvv(&triple, &pan, 1, &pin).is_ok());
        assert_eq!(
            verify_pvv(&key(), &pan, 1, &pin, b"12a4").unwrap_err(),
            Error::VerificationValue { expected: 4 }
        );
    }
}
