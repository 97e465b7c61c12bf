//! IBM 3624 PIN offsets: the digits that turn the card's natural PIN into the
//! cardholder's PIN.
//!
//! The validation data is `validation_length` digits of the PAN starting at
//! `validation_offset`, counted from 0 at the PAN's first (leftmost) digit: the
//! defaults, offset 4 and length 11, are the 11 digits before the check digit of
//! a 16-digit PAN. This is psec's `pan_verify_offset` / `pan_verify_length`
//! (`pan[offset:offset + length]`). The window is padded on the right with the
//! pad character to 16 hexadecimal digits, enciphered under the PIN verification
//! key (DES or TDES, ECB), and each of the result's first `pin_length` hex digits
//! is mapped through the decimalization table (its `n`th digit replaces the hex
//! digit `n`): that is the natural PIN. The offset's digit `i` is
//! `(pin[i] - natural[i]) mod 10`.
//!
//! `pin_length` is the PIN check length: the number of leftmost PIN digits the
//! offset covers (4 to 12). A PIN may be longer (IBM 3624 allows it); its digits
//! past the check length are not checked. A PIN shorter than it is refused.
//!
//! ```
//! use pinblock::ibm3624::{offset, verify_offset, Ibm3624Params};
//! use pinblock::{Pan, Pin, SecretKey};
//! let pvk = SecretKey::from_hex("0123456789ABCDEFFEDCBA9876543210")?;
//! let params = Ibm3624Params::new("1234567890123456", 0, 16, b'F', 4)?;
//! let pan = Pan::new("1122334455667788")?;
//! assert_eq!(offset(&pvk, &pan, &params, &Pin::new("1234")?)?, b"7710");
//! assert!(verify_offset(&pvk, &pan, &params, &Pin::new("1234")?, b"7710")?);
//! # Ok::<(), pinblock::Error>(())
//! ```

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::pvk::{self, Lengths};
use crate::{Error, PAN_MAX_LEN, PIN_MAX_LEN, PIN_MIN_LEN, Pan, Pin, SecretKey};

/// How a PIN verification key makes natural PINs and offsets: the decimalization
/// table, the PAN digits that are the validation data, the pad character and the
/// PIN check length. Valid by construction ([`Ibm3624Params::new`]); whether the
/// validation data fits a given PAN is checked when it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ibm3624Params {
    /// Sixteen ASCII digits.
    decimalization: [u8; 16],
    validation_offset: u8,
    validation_length: u8,
    /// An upper-case ASCII hex digit.
    pad: u8,
    pin_length: u8,
}

impl Ibm3624Params {
    /// Checks and keeps the parameters:
    /// - `decimalization`: 16 decimal digits;
    /// - `validation_offset` (0-based, from the PAN's first digit) and
    ///   `validation_length` (1 to 16): the window must fit a PAN of 19 digits;
    /// - `pad`: one hex digit as ASCII, either case (kept upper-case);
    /// - `pin_length`: the PIN check length, 4 to 12.
    pub fn new(
        decimalization: &str,
        validation_offset: u8,
        validation_length: u8,
        pad: u8,
        pin_length: u8,
    ) -> Result<Self, Error> {
        let mut table = [0u8; 16];
        let text = decimalization.as_bytes();
        if text.len() != table.len() || !text.iter().all(u8::is_ascii_digit) {
            return Err(Error::Ibm3624Params(
                "the decimalization table must be 16 decimal digits",
            ));
        }
        table.copy_from_slice(text);
        if !(1..=16).contains(&validation_length) {
            return Err(Error::Ibm3624Params(
                "the validation data length must be 1 to 16 digits",
            ));
        }
        if usize::from(validation_offset) + usize::from(validation_length) > PAN_MAX_LEN {
            return Err(Error::Ibm3624Params(
                "the validation data must lie within a PAN of at most 19 digits",
            ));
        }
        if !pad.is_ascii_hexdigit() {
            return Err(Error::Ibm3624Params(
                "the pad character must be a hexadecimal digit",
            ));
        }
        if !(PIN_MIN_LEN..=PIN_MAX_LEN).contains(&usize::from(pin_length)) {
            return Err(Error::Ibm3624Params("the PIN check length must be 4 to 12"));
        }
        Ok(Ibm3624Params {
            decimalization: table,
            validation_offset,
            validation_length,
            pad: pad.to_ascii_uppercase(),
            pin_length,
        })
    }

    /// The decimalization table as 16 ASCII digits.
    pub fn decimalization(&self) -> &[u8; 16] {
        &self.decimalization
    }

    /// Where the validation data starts in the PAN, counted from 0 at its first digit.
    pub fn validation_offset(&self) -> u8 {
        self.validation_offset
    }

    /// How many PAN digits the validation data takes.
    pub fn validation_length(&self) -> u8 {
        self.validation_length
    }

    /// The pad character (an upper-case ASCII hex digit).
    pub fn pad(&self) -> u8 {
        self.pad
    }

    /// The PIN check length: how many leftmost PIN digits the offset covers.
    pub fn pin_length(&self) -> u8 {
        self.pin_length
    }

    fn check_length(&self) -> usize {
        usize::from(self.pin_length)
    }
}

impl Default for Ibm3624Params {
    /// Table `0123456789012345`, validation data offset 4 and length 11, pad `F`,
    /// PIN check length 4.
    fn default() -> Self {
        Ibm3624Params {
            decimalization: *b"0123456789012345",
            validation_offset: 4,
            validation_length: 11,
            pad: b'F',
            pin_length: 4,
        }
    }
}

/// The offset (`pin_length` ASCII digits) of `pin` for `pan` under `pvk` (8, 16 or
/// 24 bytes).
pub fn offset(
    pvk: &SecretKey,
    pan: &Pan,
    params: &Ibm3624Params,
    pin: &Pin,
) -> Result<Vec<u8>, Error> {
    let natural = natural_pin(pvk, pan, params)?;
    let check = params.check_length();
    if pin.len() < check {
        return Err(Error::PinShorterThanCheck {
            found: pin.len(),
            check,
        });
    }
    Ok(pin
        .digits()
        .zip(natural.iter())
        .take(check)
        .map(|(p, &n)| b'0' + (10 + p - n) % 10)
        .collect())
}

/// Whether `offset` (`pin_length` ASCII digits) is the offset of `pin`; compared in
/// constant time. An offset of another length or with a non-digit is an error.
pub fn verify_offset(
    pvk: &SecretKey,
    pan: &Pan,
    params: &Ibm3624Params,
    pin: &Pin,
    offset: &[u8],
) -> Result<bool, Error> {
    let expected = params.check_length();
    if offset.len() != expected || !offset.iter().all(u8::is_ascii_digit) {
        return Err(Error::VerificationValue { expected });
    }
    let computed = Zeroizing::new(self::offset(pvk, pan, params, pin)?);
    Ok(bool::from(computed.as_slice().ct_eq(offset)))
}

/// The natural PIN's first `pin_length` digits (values 0 to 9; the rest zero).
fn natural_pin(
    pvk: &SecretKey,
    pan: &Pan,
    params: &Ibm3624Params,
) -> Result<Zeroizing<[u8; 16]>, Error> {
    let digits = pan.values();
    let start = usize::from(params.validation_offset);
    let end = start + usize::from(params.validation_length);
    let window = digits.get(start..end).ok_or(Error::PanTooShort {
        found: digits.len(),
        needed: end,
    })?;
    let pad = match params.pad {
        c @ b'0'..=b'9' => c - b'0',
        // A to F (kept upper-case by `new`).
        c => c.wrapping_sub(b'A').wrapping_add(10) & 0x0F,
    };
    let mut nibbles = [pad; 16];
    for (slot, &d) in nibbles.iter_mut().zip(window) {
        *slot = d;
    }
    let mut block = Zeroizing::new([0u8; 8]);
    for (b, pair) in block.iter_mut().zip(nibbles.chunks_exact(2)) {
        if let [hi, lo] = pair {
            *b = (hi << 4) | lo;
        }
    }
    pvk::encipher(pvk, Lengths::DesOrTdes, &mut block)?;
    let mut natural = Zeroizing::new(pvk::nibbles(&block));
    for n in natural.iter_mut().skip(params.check_length()) {
        *n = 0;
    }
    for n in natural.iter_mut().take(params.check_length()) {
        let mapped = params.decimalization.get(usize::from(*n)).copied();
        *n = mapped.unwrap_or(b'0').wrapping_sub(b'0');
    }
    Ok(natural)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap()
    }

    #[test]
    fn psec_vectors() {
        // psec 1.3.0's test suite (tests/test_pin.py): offsets of PINs for the
        // PAN 1122334455667788, table 1234567890123456, 4-digit PINs.
        for (pin, voff, vlen, pad, want) in [
            ("4524", 0, 16, b'F', "0000"),
            ("4524", 0, 16, b'f', "0000"),
            ("5635", 0, 16, b'F', "1111"),
            ("0000", 0, 16, b'F', "6586"),
            ("1111", 0, 16, b'F', "7697"),
            ("1234", 0, 16, b'F', "7710"),
            ("5518", 0, 14, b'F', "0000"),
            ("5518", 0, 14, b'f', "0000"),
            ("3675", 1, 14, b'1', "0000"),
            ("5550", 2, 14, b'1', "0000"),
        ] {
            let params = Ibm3624Params::new("1234567890123456", voff, vlen, pad, 4).unwrap();
            let pan = Pan::new("1122334455667788").unwrap();
            let pin = Pin::new(pin).unwrap();
            assert_eq!(
                offset(&key(), &pan, &params, &pin).unwrap(),
                want.as_bytes()
            );
            assert!(verify_offset(&key(), &pan, &params, &pin, want.as_bytes()).unwrap());
        }
    }

    #[test]
    fn defaults() {
        let d = Ibm3624Params::default();
        assert_eq!(
            d,
            Ibm3624Params::new("0123456789012345", 4, 11, b'F', 4).unwrap()
        );
        assert_eq!(
            (
                d.validation_offset(),
                d.validation_length(),
                d.pad(),
                d.pin_length()
            ),
            (4, 11, b'F', 4)
        );
        assert_eq!(d.decimalization(), b"0123456789012345");
    }

    #[test]
    fn parameter_checks() {
        let bad = |t: &str, o, l, p, n| Ibm3624Params::new(t, o, l, p, n).unwrap_err();
        assert!(matches!(
            bad("012345678901234", 4, 11, b'F', 4),
            Error::Ibm3624Params(_)
        ));
        assert!(matches!(
            bad("012345678901234A", 4, 11, b'F', 4),
            Error::Ibm3624Params(_)
        ));
        assert!(matches!(
            bad("0123456789012345", 4, 0, b'F', 4),
            Error::Ibm3624Params(_)
        ));
        assert!(matches!(
            bad("0123456789012345", 0, 17, b'F', 4),
            Error::Ibm3624Params(_)
        ));
        assert!(matches!(
            bad("0123456789012345", 4, 16, b'F', 4),
            Error::Ibm3624Params(_)
        ));
        assert!(matches!(
            bad("0123456789012345", 4, 11, b'G', 4),
            Error::Ibm3624Params(_)
        ));
        assert!(matches!(
            bad("0123456789012345", 4, 11, b'F', 3),
            Error::Ibm3624Params(_)
        ));
        assert!(matches!(
            bad("0123456789012345", 4, 11, b'F', 13),
            Error::Ibm3624Params(_)
        ));
        assert_eq!(
            Ibm3624Params::new("0123456789012345", 3, 16, b'a', 12)
                .unwrap()
                .pad(),
            b'A'
        );
    }

    #[test]
    fn use_time_checks() {
        let params = Ibm3624Params::default();
        let pin = Pin::new("1234").unwrap();
        // Offset 4 + length 11 needs 15 digits.
        assert_eq!(
            offset(&key(), &Pan::new("41111111111111").unwrap(), &params, &pin).unwrap_err(),
            Error::PanTooShort {
                found: 14,
                needed: 15
            }
        );
        assert!(offset(&key(), &Pan::new("411111111111111").unwrap(), &params, &pin).is_ok());
        let six = Ibm3624Params::new("0123456789012345", 4, 11, b'F', 6).unwrap();
        let pan = Pan::new("4111111111111111").unwrap();
        assert_eq!(
            offset(&key(), &pan, &six, &pin).unwrap_err(),
            Error::PinShorterThanCheck { found: 4, check: 6 }
        );
        assert_eq!(
            verify_offset(&key(), &pan, &six, &Pin::new("123456").unwrap(), b"1234").unwrap_err(),
            Error::VerificationValue { expected: 6 }
        );
        assert!(
            offset(
                &SecretKey::from_slice(&[1; 8]).unwrap(),
                &pan,
                &params,
                &pin
            )
            .is_ok()
        );
        assert_eq!(
            offset(
                &SecretKey::from_slice(&[1; 32]).unwrap(),
                &pan,
                &params,
                &pin
            )
            .unwrap_err(),
            Error::PvkLength {
                found: 32,
                allowed: "8, 16 or 24"
            }
        );
    }

    #[test]
    fn digits_past_the_check_length_do_not_count() {
        let params = Ibm3624Params::default();
        let pan = Pan::new("4111111111111111").unwrap();
        let a = offset(&key(), &pan, &params, &Pin::new("1234").unwrap()).unwrap();
        let b = offset(&key(), &pan, &params, &Pin::new("12349876").unwrap()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 4);
    }
}
