//! The key block header: 16 fixed characters, then the optional blocks.
//!
//! | chars | field |
//! |---|---|
//! | 0 | version (`B`, `C`, `D`) |
//! | 1–4 | the whole block's length, 4 decimal digits |
//! | 5–6 | key usage (`P0`, `V2`, …) |
//! | 7 | algorithm of the wrapped key (`T`, `A`, …) |
//! | 8 | mode of use |
//! | 9–10 | key version number |
//! | 11 | exportability |
//! | 12–13 | number of optional blocks, 2 decimal digits |
//! | 14–15 | reserved, `00` |
//!
//! Each optional block is a 2-character ID, a length in upper-case hex that counts
//! the ID and itself (2 digits, or `00`, a length of length `LL` and `2·LL` digits
//! when longer than 255), and printable ASCII data. The pad block `PB`, last when
//! present, brings the header to a whole number of cipher blocks; it is not kept
//! among the parsed blocks and [`crate::wrap`] adds it as needed (as psec does).

use core::fmt;

use crate::Tr31Error;

/// The key block version: how it is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// TDES key derivation binding (CMAC-derived keys, 8-byte CMAC as the CBC IV).
    B,
    /// TDES key variant binding (KBPK XOR 45/4D, 4-byte CBC-MAC over the ciphertext).
    C,
    /// AES key derivation binding (CMAC-derived keys, 16-byte CMAC as the CBC IV).
    D,
}

impl Version {
    /// `B`, `C` or `D`.
    pub fn as_char(self) -> char {
        match self {
            Version::B => 'B',
            Version::C => 'C',
            Version::D => 'D',
        }
    }

    /// The cipher block length in bytes (TDES 8, AES 16).
    pub(crate) fn block_len(self) -> usize {
        match self {
            Version::B | Version::C => 8,
            Version::D => 16,
        }
    }

    /// The MAC length in bytes.
    pub(crate) fn mac_len(self) -> usize {
        match self {
            Version::B => 8,
            Version::C => 4,
            Version::D => 16,
        }
    }
}

impl TryFrom<char> for Version {
    type Error = Tr31Error;
    fn try_from(c: char) -> Result<Self, Tr31Error> {
        match c {
            'B' => Ok(Version::B),
            'C' => Ok(Version::C),
            'D' => Ok(Version::D),
            other => Err(Tr31Error::UnsupportedVersion(other)),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// A key block header. Every field is checked when it is made or parsed; the
/// length and the number of optional blocks are not kept (they are computed when
/// the block is made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    version: Version,
    key_usage: [u8; 2],
    algorithm: u8,
    mode_of_use: u8,
    key_version: [u8; 2],
    exportability: u8,
    blocks: Vec<(String, String)>,
}

/// The fixed part's length.
const FIXED: usize = 16;
/// The longest key block: its length field has 4 digits.
pub(crate) const MAX_BLOCK_LEN: usize = 9999;
const PAD_BLOCK: &[u8] = b"PB";

fn alnum(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_alphanumeric)
}

fn printable(bytes: &[u8]) -> bool {
    bytes.iter().all(|&c| (0x20..=0x7E).contains(&c))
}

fn one_char(c: char, what: &'static str) -> Result<u8, Tr31Error> {
    u8::try_from(c)
        .ok()
        .filter(u8::is_ascii_alphanumeric)
        .ok_or(Tr31Error::Malformed(what))
}

fn two_chars(s: &str, what: &'static str) -> Result<[u8; 2], Tr31Error> {
    match s.as_bytes() {
        &[a, b] if alnum(&[a, b]) => Ok([a, b]),
        _ => Err(Tr31Error::Malformed(what)),
    }
}

/// The value of upper-case hex digits (at most 8 of them).
fn hex_value(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    digits.iter().try_fold(0usize, |acc, &c| {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        Some((acc << 4) | usize::from(v))
    })
}

fn ascii_string(bytes: &[u8]) -> Result<String, Tr31Error> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Tr31Error::NotAscii)
}

const USAGE: &str = "key usage is not 2 alphanumeric characters";
const ALGORITHM: &str = "algorithm is not 1 alphanumeric character";
const MODE: &str = "mode of use is not 1 alphanumeric character";
const KEY_VERSION: &str = "key version number is not 2 alphanumeric characters";
const EXPORTABILITY: &str = "exportability is not 1 alphanumeric character";
const CUT: &str = "an optional block runs past the end of the key block";

impl Header {
    /// A header without optional blocks. Key usage and key version number are 2
    /// alphanumeric ASCII characters, algorithm, mode of use and exportability
    /// one each.
    pub fn new(
        version: Version,
        key_usage: &str,
        algorithm: char,
        mode_of_use: char,
        key_version: &str,
        exportability: char,
    ) -> Result<Self, Tr31Error> {
        Ok(Header {
            version,
            key_usage: two_chars(key_usage, USAGE)?,
            algorithm: one_char(algorithm, ALGORITHM)?,
            mode_of_use: one_char(mode_of_use, MODE)?,
            key_version: two_chars(key_version, KEY_VERSION)?,
            exportability: one_char(exportability, EXPORTABILITY)?,
            blocks: Vec::new(),
        })
    }

    /// Adds an optional block: a 2-character alphanumeric ID other than `PB` (the
    /// pad block is added by [`crate::wrap`]) and not already present, and
    /// printable ASCII data.
    pub fn with_optional_block(mut self, id: &str, data: &str) -> Result<Self, Tr31Error> {
        let id_bytes = id.as_bytes();
        if id_bytes.len() != 2 || !alnum(id_bytes) {
            return Err(Tr31Error::Malformed(
                "optional block ID is not 2 alphanumeric characters",
            ));
        }
        if id_bytes == PAD_BLOCK {
            return Err(Tr31Error::Malformed(
                "PB is the pad block, added when the block is made",
            ));
        }
        if self.optional_block(id).is_some() {
            return Err(Tr31Error::Malformed("optional block ID appears twice"));
        }
        if !printable(data.as_bytes()) {
            return Err(Tr31Error::NotAscii);
        }
        if data.len() > MAX_BLOCK_LEN {
            return Err(Tr31Error::Malformed(
                "optional block longer than a key block",
            ));
        }
        self.blocks.push((id.to_owned(), data.to_owned()));
        Ok(self)
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Two characters, e.g. `P0` (PIN encryption), `V2` (Visa PVV), `K0`.
    pub fn key_usage(&self) -> &str {
        core::str::from_utf8(&self.key_usage).unwrap_or("")
    }

    /// The wrapped key's algorithm, e.g. `T` (TDES), `A` (AES).
    pub fn algorithm(&self) -> char {
        char::from(self.algorithm)
    }

    /// E.g. `E` (encrypt only), `B` (both), `V` (verify only), `X` (derive).
    pub fn mode_of_use(&self) -> char {
        char::from(self.mode_of_use)
    }

    /// Two characters; `00` when versioning is not used.
    pub fn key_version(&self) -> &str {
        core::str::from_utf8(&self.key_version).unwrap_or("")
    }

    /// E.g. `N` (not exportable), `E` (under a KEK), `S` (sensitive).
    pub fn exportability(&self) -> char {
        char::from(self.exportability)
    }

    /// The optional blocks (ID, data) in the order of the block, without the pad block.
    pub fn optional_blocks(&self) -> impl Iterator<Item = (&str, &str)> {
        self.blocks
            .iter()
            .map(|(id, data)| (id.as_str(), data.as_str()))
    }

    /// The data of optional block `id`, if present.
    pub fn optional_block(&self, id: &str) -> Option<&str> {
        self.blocks
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, data)| data.as_str())
    }

    /// Parses the header of a whole key block (printable ASCII, checked by the
    /// caller) and checks its length field; answers the header and its length in
    /// characters (a whole number of cipher blocks).
    pub(crate) fn parse(block: &str) -> Result<(Header, usize), Tr31Error> {
        let b = block.as_bytes();
        let fixed: &[u8; FIXED] = b
            .get(..FIXED)
            .and_then(|f| f.try_into().ok())
            .ok_or(Tr31Error::Malformed("shorter than the 16-character header"))?;
        let &[
            v,
            l0,
            l1,
            l2,
            l3,
            u0,
            u1,
            alg,
            mode,
            kv0,
            kv1,
            exp,
            n0,
            n1,
            r0,
            r1,
        ] = fixed;
        let version = Version::try_from(char::from(v))?;
        let length = [l0, l1, l2, l3];
        if !length.iter().all(u8::is_ascii_digit) {
            return Err(Tr31Error::Malformed("length field is not 4 decimal digits"));
        }
        let declared = length
            .iter()
            .fold(0usize, |acc, &d| acc * 10 + usize::from(d - b'0'));
        if declared != b.len() {
            return Err(Tr31Error::Length {
                declared,
                actual: b.len(),
            });
        }
        let check = |ok: bool, what| {
            if ok {
                Ok(())
            } else {
                Err(Tr31Error::Malformed(what))
            }
        };
        check(alnum(&[u0, u1]), USAGE)?;
        check(alg.is_ascii_alphanumeric(), ALGORITHM)?;
        check(mode.is_ascii_alphanumeric(), MODE)?;
        check(alnum(&[kv0, kv1]), KEY_VERSION)?;
        check(exp.is_ascii_alphanumeric(), EXPORTABILITY)?;
        check(
            n0.is_ascii_digit() && n1.is_ascii_digit(),
            "number of optional blocks is not 2 decimal digits",
        )?;
        check([r0, r1] == *b"00", "reserved field is not 00")?;
        let count = usize::from(n0 - b'0') * 10 + usize::from(n1 - b'0');

        let mut blocks: Vec<(String, String)> = Vec::new();
        let mut pos = FIXED;
        let mut padded = false;
        for _ in 0..count {
            if padded {
                return Err(Tr31Error::Malformed(
                    "the pad block PB is not the last optional block",
                ));
            }
            let (id, data, next) = optional_block_at(b, pos)?;
            pos = next;
            if id == PAD_BLOCK {
                padded = true;
            } else {
                let id = ascii_string(id)?;
                if blocks.iter().any(|(i, _)| *i == id) {
                    return Err(Tr31Error::Malformed("optional block ID appears twice"));
                }
                blocks.push((id, ascii_string(data)?));
            }
        }
        if pos % version.block_len() != 0 {
            return Err(Tr31Error::Malformed(
                "header is not a whole number of cipher blocks",
            ));
        }
        let header = Header {
            version,
            key_usage: [u0, u1],
            algorithm: alg,
            mode_of_use: mode,
            key_version: [kv0, kv1],
            exportability: exp,
            blocks,
        };
        Ok((header, pos))
    }

    /// The header as it starts a key block of `16 + optional blocks + body_len`
    /// characters, with the pad block psec would add.
    pub(crate) fn encode(&self, body_len: usize) -> Result<String, Tr31Error> {
        let (count, blocks) = self.encode_blocks()?;
        let total = FIXED + blocks.len() + body_len;
        if total > MAX_BLOCK_LEN {
            return Err(Tr31Error::Malformed(
                "the key block would be longer than 9999 characters",
            ));
        }
        let mut out = String::with_capacity(total);
        out.push(self.version.as_char());
        out.push_str(&format!("{total:04}"));
        out.push_str(self.key_usage());
        out.push(self.algorithm());
        out.push(self.mode_of_use());
        out.push_str(self.key_version());
        out.push(self.exportability());
        out.push_str(&format!("{count:02}00"));
        out.push_str(&blocks);
        Ok(out)
    }

    fn encode_blocks(&self) -> Result<(usize, String), Tr31Error> {
        let mut s = String::new();
        for (id, data) in &self.blocks {
            s.push_str(id);
            if data.len() + 4 <= 0xFF {
                s.push_str(&format!("{:02X}", data.len() + 4));
            } else {
                // `00`, a length of length of 2 bytes, the length with all of them.
                s.push_str(&format!("0002{:04X}", data.len() + 10));
            }
            s.push_str(data);
        }
        let mut count = self.blocks.len();
        let bs = self.version.block_len();
        if s.len() % bs != 0 {
            // psec's pad: 1 to `bs` zeros after `PB` and its length.
            let pad = bs - (s.len() + 4) % bs;
            s.push_str(&format!("PB{:02X}", pad + 4));
            s.extend(core::iter::repeat_n('0', pad));
            count += 1;
        }
        if count > 99 {
            return Err(Tr31Error::Malformed("more than 99 optional blocks"));
        }
        Ok((count, s))
    }
}

/// The optional block at `pos`: its ID, its data and where the next one starts.
/// Every length is checked before it is used to slice.
fn optional_block_at(b: &[u8], pos: usize) -> Result<(&[u8], &[u8], usize), Tr31Error> {
    let field = |from: usize, len: usize| {
        from.checked_add(len)
            .and_then(|to| b.get(from..to))
            .ok_or(Tr31Error::Malformed(CUT))
    };
    let id = field(pos, 2)?;
    if !alnum(id) {
        return Err(Tr31Error::Malformed(
            "optional block ID is not 2 alphanumeric characters",
        ));
    }
    let bad_length = Tr31Error::Malformed("optional block length is not upper-case hex");
    let short = hex_value(field(pos + 2, 2)?).ok_or(bad_length)?;
    let (data_start, total) = if short != 0 {
        (pos + 4, short)
    } else {
        let ll = hex_value(field(pos + 4, 2)?).ok_or(bad_length)?;
        if !(1..=4).contains(&ll) {
            return Err(Tr31Error::Malformed(
                "optional block length of length is not 1 to 4",
            ));
        }
        let total = hex_value(field(pos + 6, 2 * ll)?).ok_or(bad_length)?;
        (pos + 6 + 2 * ll, total)
    };
    let data_len = total
        .checked_sub(data_start - pos)
        .ok_or(Tr31Error::Malformed(
            "optional block length does not cover its ID and length",
        ))?;
    let data = field(data_start, data_len)?;
    if !printable(data) {
        return Err(Tr31Error::NotAscii);
    }
    Ok((id, data, data_start + data_len))
}

#[cfg(test)]
mod tests;
