//! ISO 9564-1 PIN block formats 0, 1, 3 and 4.

use core::fmt;
use core::str::FromStr;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::secret::{uniform_below, zeroize_fields};
use crate::{Error, KeyAlgorithm, Pan, Pin, ZoneKey};

/// An ISO 9564-1 PIN block format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Format 0 (ANSI X9.8, VISA-1): PIN padded with F, XORed with the PAN.
    Iso0,
    /// Format 1: PIN followed by a random transaction field; binds no PAN.
    Iso1,
    /// Format 3: as format 0, with random fill from A to F.
    Iso3,
    /// Format 4: 16-byte AES block; PIN field and PAN field enciphered in two steps.
    Iso4,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Iso0, Format::Iso1, Format::Iso3, Format::Iso4];

    /// `iso_0`, `iso_1`, `iso_3` or `iso_4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Iso0 => "iso_0",
            Format::Iso1 => "iso_1",
            Format::Iso3 => "iso_3",
            Format::Iso4 => "iso_4",
        }
    }

    /// The control field value, which is also the format's number.
    pub fn control(self) -> u8 {
        match self {
            Format::Iso0 => 0,
            Format::Iso1 => 1,
            Format::Iso3 => 3,
            Format::Iso4 => 4,
        }
    }

    /// Whether the block is bound to a PAN (all but format 1).
    pub fn binds_pan(self) -> bool {
        self != Format::Iso1
    }

    /// Length in bytes of the clear block (for format 4, of the plaintext PIN field).
    pub fn clear_len(self) -> usize {
        match self {
            Format::Iso4 => 16,
            _ => 8,
        }
    }

    /// Length in bytes of the block enciphered under a key of `algorithm`:
    /// format 4 is AES only; formats 0, 1 and 3 are 8 bytes under TDES and one
    /// 16-byte block under AES.
    pub fn enciphered_len(self, algorithm: KeyAlgorithm) -> Result<usize, Error> {
        match (self, algorithm) {
            (Format::Iso4, KeyAlgorithm::Tdes) => Err(Error::KeyAlgorithmNotAllowed {
                format: self,
                algorithm,
            }),
            (_, KeyAlgorithm::Tdes) => Ok(8),
            (_, KeyAlgorithm::Aes) => Ok(16),
        }
    }

    /// Whether PCI PIN requirement 3-3 allows translating a block of this format
    /// into `to`: formats 0, 3 and 4 only into 0, 3 or 4; format 1 into 0, 3 or 4,
    /// never into format 1.
    pub fn may_translate_to(self, to: Format) -> bool {
        to != Format::Iso1
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or(Error::UnknownFormat)
    }
}

/// Up to 16 bytes of block, copied in.
#[derive(Clone, PartialEq, Eq)]
struct Bytes16 {
    bytes: [u8; 16],
    len: u8,
}

impl Bytes16 {
    fn new(source: &[u8]) -> Self {
        let mut block = Bytes16 {
            bytes: [0; 16],
            len: source.len().min(16) as u8,
        };
        for (slot, &b) in block.bytes.iter_mut().zip(source) {
            *slot = b;
        }
        block
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl zeroize::Zeroize for Bytes16 {
    fn zeroize(&mut self) {
        self.bytes.zeroize();
        self.len.zeroize();
    }
}

/// A block that holds a PIN in clear (a clear PIN block, or format 4's plaintext
/// PIN field). As secret as the PIN: redacted `Debug`, zeroed on drop.
#[derive(Clone)]
pub struct ClearBlock(Bytes16);

zeroize_fields!(ClearBlock { 0 });

impl ClearBlock {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Upper-case hex, in a string zeroed on drop.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::hex::encode_upper(self.as_bytes()))
    }
}

impl fmt::Debug for ClearBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClearBlock(<redacted>)")
    }
}

/// An enciphered PIN block: 8 bytes (formats 0, 1, 3 under TDES) or 16.
#[derive(Clone, PartialEq, Eq)]
pub struct EncipheredBlock(Bytes16);

impl EncipheredBlock {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Upper-case hex.
    pub fn to_hex(&self) -> String {
        crate::hex::encode_upper(self.as_bytes())
    }
}

impl fmt::Debug for EncipheredBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncipheredBlock({})", self.to_hex())
    }
}

/// Builds the clear PIN block of a format 0, 1 or 3 (PAN field already XORed in),
/// or format 4's plaintext PIN field (format 4 binds the PAN only when enciphered).
pub fn encode_clear(format: Format, pin: &Pin, pan: &Pan, rng: &mut impl CryptoRng) -> ClearBlock {
    match format {
        Format::Iso4 => ClearBlock(Bytes16::new(
            &Zeroizing::new(pin_field_4(pin, rng).to_be_bytes())[..],
        )),
        _ => ClearBlock(Bytes16::new(
            &Zeroizing::new(block_8(format, pin, pan, rng).to_be_bytes())[..],
        )),
    }
}

/// Reads the PIN out of a clear block (for format 4, out of the plaintext PIN
/// field), checking every field the format defines.
pub fn decode_clear(format: Format, block: &[u8], pan: &Pan) -> Result<Pin, Error> {
    check_len(block, format.clear_len())?;
    let word = first_word(block);
    match format {
        Format::Iso4 => parse_pin_word(word, Format::Iso4),
        _ => parse_block_8(format, word, pan),
    }
}

/// Builds and enciphers a PIN block under `key`.
///
/// Formats 0, 1 and 3 under TDES are one 8-byte TDES-ECB block. Under AES they are
/// one AES-ECB block: the 8-byte block followed by eight zero bytes (ISO 9564
/// defines no AES encipherment for these formats; prefer format 4 with AES).
/// Format 4 follows ISO 9564-1: the PIN field is enciphered, XORed with the PAN
/// field, and enciphered again.
pub fn encipher(
    format: Format,
    pin: &Pin,
    pan: &Pan,
    key: &ZoneKey,
    rng: &mut impl CryptoRng,
) -> Result<EncipheredBlock, Error> {
    let len = format.enciphered_len(key.algorithm())?;
    let mut buf = Zeroizing::new([0u8; 16]);
    match format {
        Format::Iso4 => {
            *buf = pin_field_4(pin, rng).to_be_bytes();
            key.encrypt_xor_encrypt(&mut buf, pan.field_4())?;
        }
        _ => {
            buf[..8].copy_from_slice(&block_8(format, pin, pan, rng).to_be_bytes());
            key.encrypt_block(&mut buf[..len])?;
        }
    }
    Ok(EncipheredBlock(Bytes16::new(&buf[..len])))
}

/// Deciphers a PIN block under `key` and reads the PIN out of it, checking every
/// field (see [`encipher`] for the layouts).
pub fn decipher(format: Format, block: &[u8], pan: &Pan, key: &ZoneKey) -> Result<Pin, Error> {
    let len = format.enciphered_len(key.algorithm())?;
    check_len(block, len)?;
    let mut buf = Zeroizing::new([0u8; 16]);
    buf[..len].copy_from_slice(block);
    match format {
        Format::Iso4 => {
            key.decrypt_xor_decrypt(&mut buf, pan.field_4())?;
            parse_pin_word(first_word(&buf[..]), Format::Iso4)
        }
        _ => {
            key.decrypt_block(&mut buf[..len])?;
            if len == 16 && buf[8..].iter().any(|&b| b != 0) {
                return Err(Error::Padding);
            }
            parse_block_8(format, first_word(&buf[..]), pan)
        }
    }
}

/// Translates an enciphered block from one format and key to another, for the
/// same PAN (a translation never changes the PAN), under PCI PIN requirement 3-3:
/// see [`Format::may_translate_to`]. The clear PIN exists only inside this call.
pub fn translate(
    block: &[u8],
    from: Format,
    from_key: &ZoneKey,
    to: Format,
    to_key: &ZoneKey,
    pan: &Pan,
    rng: &mut impl CryptoRng,
) -> Result<EncipheredBlock, Error> {
    if !from.may_translate_to(to) {
        return Err(Error::TranslationNotAllowed { from, to });
    }
    // Check the target before deciphering, so a refused key costs no work.
    to.enciphered_len(to_key.algorithm())?;
    let pin = decipher(from, block, pan, from_key)?;
    encipher(to, &pin, pan, to_key, rng)
}

fn check_len(block: &[u8], expected: usize) -> Result<(), Error> {
    if block.len() == expected {
        Ok(())
    } else {
        Err(Error::BlockLength {
            expected,
            found: block.len(),
        })
    }
}

/// The first 8 bytes as a big-endian word (callers have checked the length).
fn first_word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    for (w, b) in word.iter_mut().zip(bytes) {
        *w = *b;
    }
    u64::from_be_bytes(word)
}

const LOW_NIBBLES: u64 = 0x0F0F_0F0F_0F0F_0F0F;
const SIXES: u64 = 0x0606_0606_0606_0606;
const CARRIES: u64 = 0x1010_1010_1010_1010;

/// Whether any nibble of `x` is above 9: a nibble plus 6 carries into bit 4 of
/// its byte lane exactly when it is 10 or more (lanes cannot overflow: 15 + 6 < 256).
fn any_nibble_above_9(x: u64) -> bool {
    let lo = x & LOW_NIBBLES;
    let hi = (x >> 4) & LOW_NIBBLES;
    ((lo + SIXES) | (hi + SIXES)) & CARRIES != 0
}

/// Whether every nibble of `x` is A to F (the same carry, in every lane).
fn all_nibbles_a_to_f(x: u64) -> bool {
    let lo = x & LOW_NIBBLES;
    let hi = (x >> 4) & LOW_NIBBLES;
    (lo + SIXES) & (hi + SIXES) & CARRIES == CARRIES
}

/// The first 8 bytes of a PIN field: control nibble, length nibble, the PIN's
/// digits, then `fill` (only its low 4 × (14 − length) bits are used).
fn pin_word(control: u8, pin: &Pin, fill: u64) -> u64 {
    let len = pin.len();
    let shift = 56 - 4 * len; // 8 to 40: a PIN has 4 to 12 digits
    (u64::from(control) << 60)
        | ((len as u64) << 56)
        | (pin.bcd() << shift)
        | (fill & ((1u64 << shift) - 1))
}

/// The 8-byte clear block of format 0, 1 or 3: control, length, PIN, fill; XORed
/// with the PAN field for formats 0 and 3.
fn block_8(format: Format, pin: &Pin, pan: &Pan, rng: &mut impl CryptoRng) -> u64 {
    let fill = match format {
        Format::Iso0 => u64::MAX,
        // The transaction field: random nibbles 0 to F.
        Format::Iso1 => rng.next_u64(),
        // Random A to F; format 4 never reaches here (see pin_field_4).
        Format::Iso3 | Format::Iso4 => random_a_to_f(rng),
    };
    let word = pin_word(format.control(), pin, fill);
    if format.binds_pan() {
        word ^ pan.field_03()
    } else {
        word
    }
}

/// Sixteen nibbles, each uniform over A to F: one draw for all of them, a redraw
/// only for the rare byte that would bias the modulo.
fn random_a_to_f(rng: &mut impl CryptoRng) -> u64 {
    let mut random = [0u8; 16];
    rng.fill_bytes(&mut random);
    random.iter().fold(0u64, |acc, &r| {
        let v = if r < 252 {
            r % 6
        } else {
            uniform_below(6, rng)
        };
        (acc << 4) | u64::from(0xA + v)
    })
}

/// Format 4's plaintext PIN field: 4, length, PIN, fill A up to nibble 16, then
/// 16 random nibbles.
fn pin_field_4(pin: &Pin, rng: &mut impl CryptoRng) -> u128 {
    let first = pin_word(4, pin, 0xAAAA_AAAA_AAAA_AAAA);
    (u128::from(first) << 64) | u128::from(rng.next_u64())
}

/// Reads the PIN out of the first word of a clear block or PIN field whose PAN
/// field (if any) is already removed, checking control, length, digits and fill.
fn parse_pin_word(word: u64, format: Format) -> Result<Pin, Error> {
    let control = format.control();
    let found = (word >> 60) as u8;
    if found != control {
        return Err(Error::ControlField {
            expected: control,
            found,
        });
    }
    let len = ((word >> 56) & 0xF) as usize;
    if !(crate::PIN_MIN_LEN..=crate::PIN_MAX_LEN).contains(&len) {
        return Err(Error::PinLength { found: len });
    }
    let shift = 56 - 4 * len;
    let digits = (word >> shift) & ((1u64 << (4 * len)) - 1);
    if any_nibble_above_9(digits) {
        return Err(Error::PinDigit);
    }
    let mask = (1u64 << shift) - 1;
    let fill = word & mask;
    let fill_ok = match format {
        Format::Iso0 => fill == mask,
        Format::Iso1 => true,
        // Positions outside the fill are set to F, which passes.
        Format::Iso3 => all_nibbles_a_to_f(fill | !mask),
        Format::Iso4 => fill == 0xAAAA_AAAA_AAAA_AAAA & mask,
    };
    if !fill_ok {
        return Err(Error::Fill);
    }
    Ok(Pin::from_bcd(digits, len))
}

fn parse_block_8(format: Format, word: u64, pan: &Pan) -> Result<Pin, Error> {
    let word = if format.binds_pan() {
        word ^ pan.field_03()
    } else {
        word
    };
    parse_pin_word(word, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibble_checks_are_exact_at_every_position() {
        for pos in 0..16 {
            for v in 0..16u64 {
                let alone = v << (4 * pos);
                assert_eq!(any_nibble_above_9(alone), v > 9, "pos {pos} v {v:X}");
                let others_f = !(0xF << (4 * pos)) | alone;
                assert_eq!(all_nibbles_a_to_f(others_f), v >= 0xA, "pos {pos} v {v:X}");
                let others_9 = (0x9999_9999_9999_9999 & !(0xF << (4 * pos))) | alone;
                assert_eq!(any_nibble_above_9(others_9), v > 9, "pos {pos} v {v:X}");
            }
        }
    }
}
