//! Unwrapping and wrapping whole key blocks.

use core::fmt;

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{self, Secret};
use crate::header::MAX_BLOCK_LEN;
use crate::{Header, Tr31Error, Version};

/// A key taken out of a key block: no `Display`, a redacted `Debug`, zeroed on drop.
pub struct KeyMaterial(Secret);

impl KeyMaterial {
    /// The key bytes. Every call site is a place where key material leaves this type.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (never 0).
    #[allow(clippy::len_without_is_empty)] // an unwrapped key is never empty
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial(<redacted>, {} bytes)", self.0.len())
    }
}

/// What a key block held, its MAC checked: the header it was bound to and the key.
#[derive(Debug)]
pub struct Unwrapped {
    pub header: Header,
    pub key: KeyMaterial,
}

/// Reads a key block under `kbpk` (versions B and C: TDES, 16 or 24 bytes;
/// version D: AES, 16, 24 or 32 bytes).
///
/// In this order: printable ASCII throughout; the header (fixed fields, the length
/// field equal to the block's length, each optional block's length checked before
/// it is read, a whole number of cipher blocks); the KBPK's length for the
/// version; the payload and MAC as upper-case hex, the payload a whole number of
/// cipher blocks; then the MAC, compared in constant time. Only after the MAC
/// matched is the clear payload read (its key length field, in bits, a whole
/// number of bytes that fits the payload); before that, a failure says
/// [`Tr31Error::BadMac`] and nothing else, and the clear payload is zeroed.
///
/// Version C's MAC is over the header and the ciphertext, so it is checked before
/// anything is deciphered. Versions B and D bind the MAC to the clear payload (it
/// is the CBC IV), so the payload is deciphered into a zeroed-on-drop buffer and
/// looked at only once the MAC over it matched.
pub fn unwrap(kbpk: &[u8], block: &str) -> Result<Unwrapped, Tr31Error> {
    if !block.bytes().all(|c| (0x20..=0x7E).contains(&c)) {
        return Err(Tr31Error::NotAscii);
    }
    let (header, header_len) = Header::parse(block)?;
    let version = header.version();
    crypto::check_kbpk(version, kbpk)?;
    let (header_text, rest) = block
        .split_at_checked(header_len)
        .ok_or(Tr31Error::Malformed(
            "header runs past the end of the block",
        ))?;
    let bs = version.block_len();
    let payload_hex = rest
        .len()
        .checked_sub(2 * version.mac_len())
        .ok_or(Tr31Error::Malformed("no room for the MAC"))?;
    if payload_hex == 0 || payload_hex % (2 * bs) != 0 {
        return Err(Tr31Error::Malformed(
            "encrypted payload is not a whole number of cipher blocks",
        ));
    }
    let (payload_text, mac_text) = rest
        .split_at_checked(payload_hex)
        .ok_or(Tr31Error::Malformed("no room for the MAC"))?;
    let ciphertext = decode_hex(payload_text)?;
    let mac = decode_hex(mac_text)?;
    let header_bytes = header_text.as_bytes();
    let (kbek, kbak) = crypto::derive(version, kbpk)?;

    let clear: Secret = match version {
        Version::C => {
            let expected = crypto::cbc_mac(version, &kbak, &[header_bytes, &ciphertext])?;
            let expected = expected.get(..mac.len()).unwrap_or(&[]);
            if !bool::from(expected.ct_eq(&mac)) {
                return Err(Tr31Error::BadMac);
            }
            let mut clear = Zeroizing::new(ciphertext);
            crypto::cbc_decrypt(version, &kbek, iv_of(header_bytes)?, &mut clear)?;
            clear
        }
        Version::B | Version::D => {
            let mut clear = Zeroizing::new(ciphertext);
            crypto::cbc_decrypt(version, &kbek, &mac, &mut clear)?;
            let expected = crypto::cmac(version, &kbak, &[header_bytes, &clear])?;
            if !bool::from(expected.ct_eq(&mac)) {
                return Err(Tr31Error::BadMac);
            }
            clear
        }
    };

    // The MAC matched: the payload is the sender's. Key length (bits), key, pad.
    let bits = match clear.get(..2) {
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return Err(Tr31Error::KeyLength),
    };
    if bits == 0 || bits % 8 != 0 {
        return Err(Tr31Error::KeyLength);
    }
    let key = clear.get(2..2 + bits / 8).ok_or(Tr31Error::KeyLength)?;
    Ok(Unwrapped {
        header,
        key: KeyMaterial(Zeroizing::new(key.to_vec())),
    })
}

/// Wraps `key` under `kbpk` with `header`, its length hidden as psec and the
/// TR-31 recommendation do: the payload is padded as for a key of the longest
/// length of its algorithm (`T` and `D`: 24 bytes, `A`: 32; any other algorithm:
/// the key's own length). See [`wrap_masked`].
pub fn wrap(
    kbpk: &[u8],
    header: &Header,
    key: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<String, Tr31Error> {
    let masked = match header.algorithm() {
        'T' | 'D' => 24,
        'A' => 32,
        _ => key.len(),
    };
    wrap_masked(kbpk, header, key, masked, rng)
}

/// The longest masked key length taken: far more than any symmetric key, well
/// within a 9999-character block.
const MAX_MASKED_LEN: usize = 1024;

/// Wraps `key` (1 byte to the KBPK's length) under `kbpk`, padded as for a key of
/// `masked_len` bytes (no masking when that is not longer than the key). The pad
/// is random, drawn from `rng`; the header's length and block count are computed,
/// and a pad block is added when its optional blocks need one.
///
/// Version B and D: the MAC is the CMAC of the header and the clear payload under
/// the derived KBAK, and the CBC IV of its encipherment under the KBEK. Version C:
/// the payload is enciphered under KBPK XOR 45… with the header's first 8
/// characters as IV, and the MAC is the first 4 bytes of the CBC-MAC of the header
/// and the ciphertext under KBPK XOR 4D….
pub fn wrap_masked(
    kbpk: &[u8],
    header: &Header,
    key: &[u8],
    masked_len: usize,
    rng: &mut impl CryptoRng,
) -> Result<String, Tr31Error> {
    let version = header.version();
    crypto::check_kbpk(version, kbpk)?;
    if key.is_empty() || key.len() > kbpk.len() {
        return Err(Tr31Error::WrapKeyLength {
            found: key.len(),
            kbpk: kbpk.len(),
        });
    }
    if masked_len > MAX_MASKED_LEN {
        return Err(Tr31Error::Malformed("masked key length is too long"));
    }
    let bs = version.block_len();
    let extra = masked_len.saturating_sub(key.len());
    // psec's rule: 1 to `bs` bytes of pad after the length, key and masking.
    let pad = bs - (2 + key.len() + extra) % bs;
    let mut payload = Zeroizing::new(vec![0u8; 2 + key.len() + extra + pad]);
    let bits = u16::try_from(key.len() * 8).map_err(|_| Tr31Error::WrapKeyLength {
        found: key.len(),
        kbpk: kbpk.len(),
    })?;
    let (length_field, rest) = payload.split_at_mut(2);
    length_field.copy_from_slice(&bits.to_be_bytes());
    let (key_field, pad_field) = rest.split_at_mut(key.len());
    key_field.copy_from_slice(key);
    rng.fill_bytes(pad_field);

    let body_len = 2 * payload.len() + 2 * version.mac_len();
    let header_text = header.encode(body_len)?;
    let header_bytes = header_text.as_bytes();
    let (kbek, kbak) = crypto::derive(version, kbpk)?;
    let (ciphertext, mac) = match version {
        Version::C => {
            let mut ciphertext = payload.clone();
            crypto::cbc_encrypt(version, &kbek, iv_of(header_bytes)?, &mut ciphertext)?;
            let mut mac = crypto::cbc_mac(version, &kbak, &[header_bytes, &ciphertext])?;
            mac.truncate(version.mac_len());
            (ciphertext, mac)
        }
        Version::B | Version::D => {
            let mac = crypto::cmac(version, &kbak, &[header_bytes, &payload])?;
            let mut ciphertext = payload.clone();
            crypto::cbc_encrypt(version, &kbek, &mac, &mut ciphertext)?;
            (ciphertext, mac.to_vec())
        }
    };
    let mut out = String::with_capacity(header_text.len() + body_len);
    out.push_str(&header_text);
    encode_hex(&ciphertext, &mut out);
    encode_hex(&mac, &mut out);
    if out.len() > MAX_BLOCK_LEN {
        return Err(Tr31Error::Malformed(
            "the key block would be longer than 9999 characters",
        ));
    }
    Ok(out)
}

/// Version C's IV: the header's first 8 characters.
fn iv_of(header: &[u8]) -> Result<&[u8], Tr31Error> {
    header
        .get(..8)
        .ok_or(Tr31Error::Malformed("shorter than the 16-character header"))
}

/// Upper-case hex only: TR-31 blocks are written so, and one spelling per block
/// leaves nothing to normalise.
fn decode_hex(text: &str) -> Result<Vec<u8>, Tr31Error> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            &[hi, lo] => match (nibble(hi), nibble(lo)) {
                (Some(h), Some(l)) => Ok((h << 4) | l),
                _ => Err(Tr31Error::Malformed("payload or MAC is not upper-case hex")),
            },
            _ => Err(Tr31Error::Malformed("payload or MAC is not upper-case hex")),
        })
        .collect()
}

fn encode_hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
}
