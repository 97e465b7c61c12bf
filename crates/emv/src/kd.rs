//! Key derivation, EMV 4.3 Book 2 Annex A1.3 and A1.4, and Visa's secure
//! messaging session keys.
//!
//! Every derived key is returned with odd parity, as HSMs hold DES keys and as
//! pyemv returns them. It matters beyond form: the VIS PIN block uses four
//! bytes of the ICC AC master key as they are, parity bits included.

use aws_lc_rs::digest;
use zeroize::Zeroizing;

use crate::{Error, Pan, TdesKey};

/// A PAN sequence number (EMV tag 5F34): two decimal digits, `00` when the
/// card has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Psn(u8);

impl Psn {
    /// Parses two ASCII digits, `"00"` to `"99"`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text.as_bytes() {
            [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                Ok(Psn((a - b'0') * 10 + (b - b'0')))
            }
            _ => Err(Error::PanSequenceNumber),
        }
    }

    /// The number, 0 to 99.
    pub fn value(self) -> u8 {
        self.0
    }

    /// The two digits, as numbers 0 to 9.
    fn digits(self) -> [u8; 2] {
        [self.0 / 10, self.0 % 10]
    }
}

/// PAN digits then PSN digits, as numbers 0–9 (at most 21), zeroed on drop.
fn pan_psn_digits(pan: &Pan, psn: Psn) -> Zeroizing<Vec<u8>> {
    let mut digits = Zeroizing::new(Vec::with_capacity(21));
    digits.extend(pan.expose().bytes().map(|c| c.wrapping_sub(b'0')));
    digits.extend(psn.digits());
    digits
}

/// Packs 16 decimal digits into 8 bytes of BCD.
fn bcd16(digits: &[u8; 16]) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *o = (pair[0] << 4) | (pair[1] & 0x0F);
    }
    out
}

/// `MK := TDES(IMK)[Y] || TDES(IMK)[Y XOR FF…FF]`, with odd parity.
fn master_key_from_y(imk: &TdesKey, y: &[u8; 8]) -> TdesKey {
    let mut mk = TdesKey::new([0; 16]);
    let z = mk.bytes_mut();
    z[..8].copy_from_slice(y);
    for (dst, src) in z[8..].iter_mut().zip(y.iter()) {
        *dst = src ^ 0xFF;
    }
    imk.encrypt_ecb(&mut z[..]);
    mk.with_odd_parity()
}

/// ICC master key, EMV Book 2 A1.4.1 (option A): Y is the rightmost 16 digits
/// of PAN || PSN, padded on the left with zeros.
pub fn icc_master_key_a(imk: &TdesKey, pan: &Pan, psn: Psn) -> TdesKey {
    let digits = pan_psn_digits(pan, psn);
    let mut y16 = Zeroizing::new([0u8; 16]);
    let take = digits.len().min(16);
    y16[16 - take..].copy_from_slice(&digits[digits.len() - take..]);
    master_key_from_y(imk, &bcd16(&y16))
}

/// ICC master key, EMV Book 2 A1.4.2 (option B): for a PAN of 16 digits or
/// fewer it is option A. Otherwise X = SHA-1(PAN || PSN as BCD, a leading zero
/// nibble if the digit count is odd); Y is the first 16 decimal nibbles of X,
/// completed, if there are fewer, by its hex letters A–F (in order) read as 0–5.
pub fn icc_master_key_b(imk: &TdesKey, pan: &Pan, psn: Psn) -> TdesKey {
    if pan.len() <= 16 {
        return icc_master_key_a(imk, pan, psn);
    }
    let mut digits = pan_psn_digits(pan, psn);
    if digits.len() % 2 == 1 {
        digits.insert(0, 0);
    }
    let packed: Zeroizing<Vec<u8>> =
        Zeroizing::new(digits.chunks_exact(2).map(|p| (p[0] << 4) | p[1]).collect());
    let hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &packed);
    let nibbles: Zeroizing<Vec<u8>> = Zeroizing::new(
        hash.as_ref()
            .iter()
            .flat_map(|b| [b >> 4, b & 0x0F])
            .collect(),
    );
    let decimals = nibbles.iter().filter(|&&d| d < 10);
    let letters = nibbles.iter().filter(|&&d| d >= 10).map(|&d| d - 10);
    let mut y16 = Zeroizing::new([0u8; 16]);
    for (y, d) in y16.iter_mut().zip(decimals.copied().chain(letters)) {
        *y = d;
    }
    master_key_from_y(imk, &bcd16(&y16))
}

/// EMV common session key derivation, Book 2 A1.3.1:
/// `SK := TDES(MK)[R0 R1 F0 R3…R7] || TDES(MK)[R0 R1 0F R3…R7]`, odd parity.
/// For secure messaging R is the ARQC; for cryptograms it is the ATC followed
/// by zeros (or by the unpredictable number).
pub fn common_session_key(icc_mk: &TdesKey, r: &[u8; 8]) -> TdesKey {
    let mut sk = TdesKey::new([0; 16]);
    let blocks = sk.bytes_mut();
    blocks[..8].copy_from_slice(r);
    blocks[8..].copy_from_slice(r);
    blocks[2] = 0xF0;
    blocks[10] = 0x0F;
    icc_mk.encrypt_ecb(&mut blocks[..]);
    sk.with_odd_parity()
}

/// Visa's secure-messaging session key (VIS): the ATC XORed into the last two
/// bytes of the master key's left half and its complement into the last two of
/// the right half, odd parity.
pub fn visa_session_key(icc_mk: &TdesKey, atc: &[u8; 2]) -> TdesKey {
    let mut sk = icc_mk.clone();
    let b = sk.bytes_mut();
    b[6] ^= atc[0];
    b[7] ^= atc[1];
    b[14] ^= !atc[0];
    b[15] ^= !atc[1];
    sk.with_odd_parity()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psn_digits() {
        assert_eq!(Psn::parse("07").map(Psn::value), Ok(7));
        assert_eq!(Psn::parse("99").map(Psn::value), Ok(99));
        for bad in ["", "7", "100", "a1", "1 ", "٣٣"] {
            assert_eq!(Psn::parse(bad), Err(Error::PanSequenceNumber), "{bad:?}");
        }
    }
}
