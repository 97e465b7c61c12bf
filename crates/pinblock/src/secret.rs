//! Types for secrets: they hold only valid values, cannot be printed, and are
//! zeroed when dropped.

use core::fmt;

use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

/// Zeroize, zero-on-drop and the marker trait for a type whose fields all zeroize.
macro_rules! zeroize_fields {
    ($ty:ty { $($field:tt),+ }) => {
        impl zeroize::Zeroize for $ty {
            fn zeroize(&mut self) {
                $(zeroize::Zeroize::zeroize(&mut self.$field);)+
            }
        }
        impl Drop for $ty {
            fn drop(&mut self) {
                zeroize::Zeroize::zeroize(self);
            }
        }
        impl zeroize::ZeroizeOnDrop for $ty {}
    };
}
pub(crate) use zeroize_fields;

use crate::Error;
use crate::hex;

/// Shortest PIN ISO 9564 allows.
pub const PIN_MIN_LEN: usize = 4;
/// Longest PIN ISO 9564 allows.
pub const PIN_MAX_LEN: usize = 12;
/// Longest PAN ISO 9564 (and ISO/IEC 7812) allows.
pub const PAN_MAX_LEN: usize = 19;

/// A PIN: 4 to 12 decimal digits.
///
/// No `Display`; `Debug` is redacted; zeroed on drop. The digits can be read
/// only through [`Pin::expose`], whose name is meant to stand out in review.
#[derive(Clone)]
pub struct Pin {
    /// The digits as binary-coded decimal, right-aligned: "0123" is 0x0123. This
    /// is how every PIN block format lays the digits out, so building and
    /// reading blocks is shifting, and zeroing is one word.
    bcd: u64,
    len: u8,
}

zeroize_fields!(Pin { bcd, len });

impl Pin {
    /// Parses a PIN from its ASCII digits.
    pub fn new(text: &str) -> Result<Self, Error> {
        Self::from_ascii(text.as_bytes())
    }

    /// Parses a PIN from ASCII digits.
    pub fn from_ascii(ascii: &[u8]) -> Result<Self, Error> {
        if !(PIN_MIN_LEN..=PIN_MAX_LEN).contains(&ascii.len()) {
            return Err(Error::PinLength { found: ascii.len() });
        }
        // `pin` is zeroed on drop, so on an early return the digits read so far
        // do not linger.
        let mut pin = Pin { bcd: 0, len: 0 };
        for &c in ascii {
            if !c.is_ascii_digit() {
                return Err(Error::PinDigit);
            }
            pin.bcd = (pin.bcd << 4) | u64::from(c - b'0');
        }
        pin.len = ascii.len() as u8;
        Ok(pin)
    }

    /// A PIN from right-aligned BCD whose nibbles the caller has checked are
    /// digits, and whose length is in range.
    pub(crate) fn from_bcd(bcd: u64, len: usize) -> Self {
        debug_assert!((PIN_MIN_LEN..=PIN_MAX_LEN).contains(&len));
        Pin {
            bcd,
            len: len as u8,
        }
    }

    /// A PIN of `len` digits, each uniform over 0 to 9, from a CSPRNG.
    ///
    /// This knows nothing of weak-PIN policy: callers that must never hand out a
    /// weak PIN draw again until their policy accepts it.
    pub fn random(len: usize, rng: &mut impl CryptoRng) -> Result<Self, Error> {
        if !(PIN_MIN_LEN..=PIN_MAX_LEN).contains(&len) {
            return Err(Error::PinLength { found: len });
        }
        let mut pin = Pin {
            bcd: 0,
            len: len as u8,
        };
        for _ in 0..len {
            pin.bcd = (pin.bcd << 4) | u64::from(uniform_below(10, rng));
        }
        Ok(pin)
    }

    /// Number of digits (4 to 12).
    #[allow(clippy::len_without_is_empty)] // a PIN is never empty
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The digits as right-aligned BCD ("0123" is 0x0123).
    pub(crate) fn bcd(&self) -> u64 {
        self.bcd
    }

    /// The digit values (0 to 9, not ASCII), first to last.
    pub fn digits(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.len())
            .rev()
            .map(|i| ((self.bcd >> (4 * i)) & 0xF) as u8)
    }

    /// The PIN's ASCII digits, in a string that is zeroed when dropped.
    ///
    /// Every call site is a place where a clear PIN leaves this type: keep them few.
    pub fn expose(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(PIN_MAX_LEN));
        for d in self.digits() {
            s.push(char::from(b'0' + d));
        }
        s
    }

    /// Compares two PINs in constant time.
    pub fn ct_eq(&self, other: &Pin) -> Choice {
        self.len.ct_eq(&other.len) & self.bcd.ct_eq(&other.bcd)
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// A primary account number: 1 to 19 decimal digits.
///
/// ISO 9564 binds PIN blocks to any PAN of that length; whether the PAN is a
/// valid card number (Luhn, issuer ranges) is the caller's concern, and
/// [`Pan::luhn_valid`] helps with it. `Debug` shows only the last four digits
/// (the truncation PCI DSS allows); zeroed on drop.
#[derive(Clone)]
pub struct Pan {
    /// Digit values 0 to 9; positions past `len` are zero.
    digits: [u8; PAN_MAX_LEN],
    len: u8,
    /// The PAN fields of formats 0/3 and 4, computed once: a PAN is parsed once
    /// per card and used for every block.
    field_03: u64,
    field_4: u128,
}

zeroize_fields!(Pan {
    digits,
    len,
    field_03,
    field_4
});

impl Pan {
    /// Parses a PAN from its ASCII digits.
    pub fn new(text: &str) -> Result<Self, Error> {
        let ascii = text.as_bytes();
        if !(1..=PAN_MAX_LEN).contains(&ascii.len()) {
            return Err(Error::PanLength { found: ascii.len() });
        }
        let mut pan = Pan {
            digits: [0; PAN_MAX_LEN],
            len: ascii.len() as u8,
            field_03: 0,
            field_4: 0,
        };
        for (slot, &c) in pan.digits.iter_mut().zip(ascii) {
            if !c.is_ascii_digit() {
                return Err(Error::PanDigit);
            }
            *slot = c - b'0';
        }
        pan.field_03 = pan.compute_field_03();
        pan.field_4 = pan.compute_field_4();
        Ok(pan)
    }

    /// Number of digits.
    #[allow(clippy::len_without_is_empty)] // a PAN is never empty
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The digit values (0 to 9, not ASCII), first to last.
    pub(crate) fn values(&self) -> &[u8] {
        self.digits.get(..self.len()).unwrap_or(&[])
    }

    /// Whether the last digit is the Luhn (mod 10) check digit of the others.
    pub fn luhn_valid(&self) -> bool {
        let mut sum = 0u32;
        for (i, &d) in self.values().iter().rev().enumerate() {
            let mut v = u32::from(d);
            if i % 2 == 1 {
                v *= 2;
                if v > 9 {
                    v -= 9;
                }
            }
            sum += v;
        }
        sum % 10 == 0
    }

    /// The last four digits (fewer when the PAN is shorter), for display.
    pub fn last4(&self) -> String {
        let values = self.values();
        let start = values.len().saturating_sub(4);
        values
            .iter()
            .skip(start)
            .map(|&d| char::from(b'0' + d))
            .collect()
    }

    /// The PAN's ASCII digits, in a string that is zeroed when dropped.
    pub fn expose(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(PAN_MAX_LEN));
        for &d in self.values() {
            s.push(char::from(b'0' + d));
        }
        s
    }

    /// The PAN field of formats 0 and 3 (as a big-endian word).
    pub(crate) fn field_03(&self) -> u64 {
        self.field_03
    }

    /// The PAN field of format 4 (as a big-endian word).
    pub(crate) fn field_4(&self) -> u128 {
        self.field_4
    }

    /// Four zero nibbles, then the rightmost twelve digits of the PAN excluding
    /// its check digit, padded on the left with zeros when there are fewer.
    fn compute_field_03(&self) -> u64 {
        let values = self.values();
        // Every digit but the last (the check digit).
        let body = values.get(..values.len().saturating_sub(1)).unwrap_or(&[]);
        let start = body.len().saturating_sub(12);
        body.iter()
            .skip(start)
            .fold(0u64, |acc, &d| (acc << 4) | u64::from(d))
    }

    /// The nibble M (number of PAN digits minus 12, zero for shorter PANs), the
    /// PAN (at least 12 digits, padded on the left with zeros), then zero
    /// nibbles to 32.
    fn compute_field_4(&self) -> u128 {
        let values = self.values();
        let m = values.len().saturating_sub(12) as u128;
        let pan = values
            .iter()
            .fold(0u128, |acc, &d| (acc << 4) | u128::from(d));
        // M takes nibble 0; the PAN (padded to 12 digits) ends at nibble 12 + M.
        let digits_end = 12 + values.len().saturating_sub(12);
        (m << 124) | (pan << (4 * (31 - digits_end)))
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan(…{})", self.last4())
    }
}

/// Secret key material of up to 32 bytes (a TDES or AES key, or a component of one).
///
/// No `Display`; `Debug` shows only the length; zeroed on drop.
#[derive(Clone)]
pub struct SecretKey {
    bytes: [u8; 32],
    len: u8,
}

zeroize_fields!(SecretKey { bytes, len });

impl SecretKey {
    /// Copies key bytes (1 to 32 of them; whether the length suits an algorithm is
    /// checked where the key is used).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() || bytes.len() > 32 {
            return Err(Error::KeyLength {
                algorithm: if bytes.len() > 24 {
                    crate::KeyAlgorithm::Aes
                } else {
                    crate::KeyAlgorithm::Tdes
                },
                found: bytes.len(),
            });
        }
        let mut key = SecretKey {
            bytes: [0; 32],
            len: bytes.len() as u8,
        };
        for (slot, &b) in key.bytes.iter_mut().zip(bytes) {
            *slot = b;
        }
        Ok(key)
    }

    /// Parses key bytes from hexadecimal (either case).
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let mut buf = Zeroizing::new([0u8; 32]);
        if text.len() > 64 {
            return Err(Error::KeyLength {
                algorithm: crate::KeyAlgorithm::Aes,
                found: text.len() / 2,
            });
        }
        let n = hex::decode_into(text, buf.as_mut_slice())?;
        Self::from_slice(buf.get(..n).unwrap_or(&[]))
    }

    /// XORs another component into this one (key components are combined so).
    pub fn xor_assign(&mut self, other: &SecretKey) -> Result<(), Error> {
        if self.len != other.len {
            return Err(Error::ComponentLength);
        }
        for (a, b) in self.bytes.iter_mut().zip(other.bytes.iter()) {
            *a ^= b;
        }
        Ok(())
    }

    /// Length in bytes.
    #[allow(clippy::len_without_is_empty)] // never empty
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The key bytes. Every call site is a place where key material leaves this type.
    pub fn expose(&self) -> &[u8] {
        self.bytes.get(..self.len()).unwrap_or(&[])
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<redacted>, {} bytes)", self.len)
    }
}

/// A value uniform over `0..n` (n ≤ 16) by rejection sampling, so no value is
/// favoured by the modulo.
pub(crate) fn uniform_below(n: u8, rng: &mut impl CryptoRng) -> u8 {
    debug_assert!((1..=16).contains(&n));
    // The largest multiple of n that fits in a byte; bytes at or above it are redrawn.
    let limit = 256 - (256 % u16::from(n));
    loop {
        let mut b = [0u8; 1];
        rng.fill_bytes(&mut b);
        if u16::from(b[0]) < limit {
            return b[0] % n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_rejects_bad_input() {
        assert_eq!(Pin::new("123").unwrap_err(), Error::PinLength { found: 3 });
        assert_eq!(
            Pin::new("1234567890123").unwrap_err(),
            Error::PinLength { found: 13 }
        );
        assert_eq!(Pin::new("12a4").unwrap_err(), Error::PinDigit);
        assert_eq!(Pin::new("12 4").unwrap_err(), Error::PinDigit);
        assert_eq!(Pin::new("١٢٣٤").unwrap_err(), Error::PinDigit);
        assert_eq!(&*Pin::new("0123").unwrap().expose(), "0123");
    }

    #[test]
    fn secrets_do_not_print() {
        let pin = Pin::new("8264").unwrap();
        let pan = Pan::new("4111111111111111").unwrap();
        let key = SecretKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let shown = format!("{pin:?} {pan:?} {key:?} {pin:#?} {key:#?}");
        assert!(!shown.contains("8264"), "{shown}");
        assert!(!shown.contains("411111"), "{shown}");
        assert!(!shown.to_uppercase().contains("0123456789"), "{shown}");
        assert!(!shown.to_uppercase().contains("EFFEDC"), "{shown}");
        assert!(shown.contains("…1111"));
    }

    #[test]
    fn pin_equality_is_by_value() {
        let a = Pin::new("1234").unwrap();
        assert!(bool::from(a.ct_eq(&Pin::new("1234").unwrap())));
        assert!(!bool::from(a.ct_eq(&Pin::new("1235").unwrap())));
        assert!(!bool::from(a.ct_eq(&Pin::new("12340").unwrap())));
        // A trailing zero digit must not make PINs of different lengths equal.
        assert!(!bool::from(
            Pin::new("12340")
                .unwrap()
                .ct_eq(&Pin::new("123400").unwrap())
        ));
    }

    #[test]
    fn luhn() {
        assert!(Pan::new("4111111111111111").unwrap().luhn_valid());
        assert!(Pan::new("79927398713").unwrap().luhn_valid());
        assert!(!Pan::new("4111111111111112").unwrap().luhn_valid());
        assert!(!Pan::new("79927398710").unwrap().luhn_valid());
    }

    #[test]
    fn pan_fields() {
        // ISO 9564-1 format 0 example: rightmost 12 digits excluding the check digit.
        let pan = Pan::new("43219876543210987").unwrap();
        assert_eq!(pan.field_03(), 0x0000_9876_5432_1098);
        assert_eq!(Pan::new("12345").unwrap().field_03(), 0x1234);
        assert_eq!(Pan::new("7").unwrap().field_03(), 0);
        // Format 4: M = length - 12, then the PAN, then zeros.
        let long = Pan::new("4321987654321098765").unwrap();
        assert_eq!(long.field_4(), 0x7432_1987_6543_2109_8765_0000_0000_0000);
        let exact = Pan::new("432198765432").unwrap();
        assert_eq!(exact.field_4(), 0x0432_1987_6543_2000_0000_0000_0000_0000);
        // Shorter than 12: padded on the left to 12 digits, M = 0.
        let short = Pan::new("12345").unwrap();
        assert_eq!(short.field_4(), 0x0000_0000_1234_5000_0000_0000_0000_0000);
    }

    #[test]
    fn key_components_xor() {
        let mut a = SecretKey::from_hex("0F0F").unwrap();
        a.xor_assign(&SecretKey::from_hex("FF00").unwrap()).unwrap();
        assert_eq!(a.expose(), &[0xF0, 0x0F]);
        assert_eq!(
            a.xor_assign(&SecretKey::from_hex("FF").unwrap()),
            Err(Error::ComponentLength)
        );
    }
}
