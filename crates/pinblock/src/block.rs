//! ISO 9564-1 PIN block formats 0, 1, 3 and 4.

use core::fmt;
use core::str::FromStr;

use rand_core::CryptoRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::secret::{pack, uniform_below, unpack};
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

/// A block that holds a PIN in clear (a clear PIN block, or format 4's plaintext
/// PIN field). As secret as the PIN: redacted `Debug`, zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ClearBlock {
    bytes: [u8; 16],
    len: u8,
}

impl ClearBlock {
    fn new(source: &[u8]) -> Self {
        let mut block = ClearBlock {
            bytes: [0; 16],
            len: source.len().min(16) as u8,
        };
        for (slot, &b) in block.bytes.iter_mut().zip(source) {
            *slot = b;
        }
        block
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
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
pub struct EncipheredBlock {
    bytes: [u8; 16],
    len: u8,
}

impl EncipheredBlock {
    fn new(source: &[u8]) -> Self {
        let mut block = EncipheredBlock {
            bytes: [0; 16],
            len: source.len().min(16) as u8,
        };
        for (slot, &b) in block.bytes.iter_mut().zip(source) {
            *slot = b;
        }
        block
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
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
pub fn encode_clear(
    format: Format,
    pin: &Pin,
    pan: &Pan,
    rng: &mut impl CryptoRngCore,
) -> ClearBlock {
    match format {
        Format::Iso4 => ClearBlock::new(&*pin_field_4(pin, rng)),
        _ => ClearBlock::new(&*block_8(format, pin, pan, rng)),
    }
}

/// Reads the PIN out of a clear block (for format 4, out of the plaintext PIN
/// field), checking every field the format defines.
pub fn decode_clear(format: Format, block: &[u8], pan: &Pan) -> Result<Pin, Error> {
    check_len(block, format.clear_len())?;
    match format {
        Format::Iso4 => parse_pin_field_4(block),
        _ => {
            let mut bytes = Zeroizing::new([0u8; 8]);
            bytes.copy_from_slice(block);
            parse_block_8(format, &mut bytes, pan)
        }
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
    rng: &mut impl CryptoRngCore,
) -> Result<EncipheredBlock, Error> {
    let len = format.enciphered_len(key.algorithm())?;
    let mut buf = Zeroizing::new([0u8; 16]);
    match format {
        Format::Iso4 => {
            buf.copy_from_slice(&*pin_field_4(pin, rng));
            key.encrypt_block(&mut buf[..])?;
            xor_into(&mut buf[..], &pan.field_4());
            key.encrypt_block(&mut buf[..])?;
        }
        _ => {
            buf[..8].copy_from_slice(&*block_8(format, pin, pan, rng));
            key.encrypt_block(&mut buf[..len])?;
        }
    }
    Ok(EncipheredBlock::new(&buf[..len]))
}

/// Deciphers a PIN block under `key` and reads the PIN out of it, checking every
/// field (see [`encipher`] for the layouts).
pub fn decipher(format: Format, block: &[u8], pan: &Pan, key: &ZoneKey) -> Result<Pin, Error> {
    let len = format.enciphered_len(key.algorithm())?;
    check_len(block, len)?;
    let mut buf = Zeroizing::new([0u8; 16]);
    buf[..len].copy_from_slice(block);
    key.decrypt_block(&mut buf[..len])?;
    match format {
        Format::Iso4 => {
            xor_into(&mut buf[..], &pan.field_4());
            key.decrypt_block(&mut buf[..])?;
            parse_pin_field_4(&buf[..])
        }
        _ => {
            if len == 16 && buf[8..].iter().any(|&b| b != 0) {
                return Err(Error::Padding);
            }
            let mut bytes = Zeroizing::new([0u8; 8]);
            bytes.copy_from_slice(&buf[..8]);
            parse_block_8(format, &mut bytes, pan)
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
    rng: &mut impl CryptoRngCore,
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

fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

/// The 8-byte clear block of format 0, 1 or 3: control, length, PIN, fill; XORed
/// with the PAN field for formats 0 and 3.
fn block_8(
    format: Format,
    pin: &Pin,
    pan: &Pan,
    rng: &mut impl CryptoRngCore,
) -> Zeroizing<[u8; 8]> {
    let mut nibbles = Zeroizing::new([0u8; 16]);
    nibbles[0] = format.control();
    nibbles[1] = pin.len() as u8;
    let fill_start = 2 + pin.len();
    for (slot, &d) in nibbles[2..].iter_mut().zip(pin.digit_values()) {
        *slot = d;
    }
    let fill = &mut nibbles[fill_start..];
    match format {
        Format::Iso0 => fill.fill(0xF),
        Format::Iso1 => {
            // The transaction field: random nibbles 0 to F.
            let mut random = [0u8; 8];
            rng.fill_bytes(&mut random);
            let random: [u8; 16] = unpack(&random);
            for (slot, r) in fill.iter_mut().zip(random) {
                *slot = r;
            }
        }
        Format::Iso3 | Format::Iso4 => {
            // Random fill from A to F, uniform: one draw for all nibbles, a
            // redraw only for the rare byte that would bias the modulo.
            let mut random = [0u8; 10];
            rng.fill_bytes(&mut random);
            for (slot, r) in fill.iter_mut().zip(random) {
                *slot = 0xA
                    + if r < 252 {
                        r % 6
                    } else {
                        uniform_below(6, rng)
                    };
            }
        }
    }
    let mut block = Zeroizing::new(pack::<8>(&nibbles[..]));
    if format.binds_pan() {
        xor_into(&mut block[..], &pan.field_03());
    }
    block
}

/// Format 4's plaintext PIN field: 4, length, PIN, fill A up to nibble 16, then
/// 16 random nibbles.
fn pin_field_4(pin: &Pin, rng: &mut impl CryptoRngCore) -> Zeroizing<[u8; 16]> {
    let mut nibbles = Zeroizing::new([0xAu8; 16]);
    nibbles[0] = 4;
    nibbles[1] = pin.len() as u8;
    for (slot, &d) in nibbles[2..].iter_mut().zip(pin.digit_values()) {
        *slot = d;
    }
    let mut field = Zeroizing::new([0u8; 16]);
    field[..8].copy_from_slice(&pack::<8>(&nibbles[..]));
    rng.fill_bytes(&mut field[8..]);
    field
}

/// Checks control, length, digits and fill of the first 16 nibbles of a block
/// whose control field should be `control`; `fill_ok` judges each fill nibble.
fn parse_pin_nibbles(
    nibbles: &[u8; 16],
    control: u8,
    fill_ok: impl Fn(u8) -> bool,
) -> Result<Pin, Error> {
    if nibbles[0] != control {
        return Err(Error::ControlField {
            expected: control,
            found: nibbles[0],
        });
    }
    let len = usize::from(nibbles[1]);
    if !(crate::PIN_MIN_LEN..=crate::PIN_MAX_LEN).contains(&len) {
        return Err(Error::PinLength { found: len });
    }
    let digits = &nibbles[2..2 + len];
    if digits.iter().any(|&d| d > 9) {
        return Err(Error::PinDigit);
    }
    if !nibbles[2 + len..].iter().all(|&n| fill_ok(n)) {
        return Err(Error::Fill);
    }
    Pin::from_values(digits)
}

fn parse_block_8(format: Format, block: &mut [u8; 8], pan: &Pan) -> Result<Pin, Error> {
    if format.binds_pan() {
        xor_into(&mut block[..], &pan.field_03());
    }
    let nibbles = Zeroizing::new(unpack::<16>(&block[..]));
    match format {
        Format::Iso0 => parse_pin_nibbles(&nibbles, 0, |n| n == 0xF),
        Format::Iso1 => parse_pin_nibbles(&nibbles, 1, |_| true),
        _ => parse_pin_nibbles(&nibbles, 3, |n| n >= 0xA),
    }
}

fn parse_pin_field_4(field: &[u8]) -> Result<Pin, Error> {
    // Only the first 16 nibbles carry structure; the last 16 are random.
    let nibbles = Zeroizing::new(unpack::<16>(field.get(..8).unwrap_or(&[])));
    parse_pin_nibbles(&nibbles, 4, |n| n == 0xA)
}
