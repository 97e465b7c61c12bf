//! A small strict BER-TLV reader and writer, for ISO 8583 DE 55 (EMV Book 3
//! Annex B, ISO/IEC 7816-4 §5.2.2.1 / ISO 8825 BER).
//!
//! What is accepted, and why:
//! - Tags of one to three bytes: a first byte whose low five bits are all 1
//!   continues into further bytes while bit 8 is set (EMV uses two, ISO/IEC
//!   7816-4 three). A first byte `00` or `FF` is refused: EMV allows those as
//!   padding between records' TLVs, but DE 55 carries none, and reading them as
//!   tags would give meaning to garbage. A second byte `80` (a tag number with a
//!   leading zero) is refused.
//! - Lengths `00`–`7F`, `81 xx` and `82 xx xx` (EMV's one to three length
//!   bytes). The long forms are accepted even where the short form would do, as
//!   BER allows; the indefinite form `80` and `83` and up are refused.
//! - Every length is checked against what is left of its template (or of the
//!   input) before anything is sliced; a template's content must be whole TLVs
//!   exactly filling it, and the input must be whole TLVs to its last byte (no
//!   trailing bytes, no padding).
//! - Bit 6 of the first tag byte says constructed: its value is parsed as TLVs,
//!   at most [`MAX_DEPTH`] templates deep.
//! - A primitive tag may appear once per template (and once at the top level):
//!   a second ARQC or ATC would leave the reader to pick one. Constructed tags
//!   may repeat (several `72` issuer script templates are normal).
//!
//! [`encode`] writes minimal lengths and refuses what [`parse`] would refuse, so
//! `parse(encode(x)) == x`.

use core::fmt;

use crate::TlvError;

/// Templates nested deeper than this are refused.
pub const MAX_DEPTH: usize = 8;

/// The longest value [`encode`] writes (a three-byte length, `82 FF FF`).
pub const MAX_VALUE_LEN: usize = 0xFFFF;

/// A tag: its one to three bytes, big-endian in a `u32` (`9F26` is `0x9F26`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(u32);

/// Application Cryptogram (the ARQC in an authorization request), 8 bytes.
pub const ARQC: Tag = Tag(0x9F26);
/// Application Transaction Counter, 2 bytes.
pub const ATC: Tag = Tag(0x9F36);
/// Issuer Script Results, 5 bytes per script.
pub const ISSUER_SCRIPT_RESULTS: Tag = Tag(0x9F5B);
/// Issuer Script Identifier, 4 bytes.
pub const ISSUER_SCRIPT_ID: Tag = Tag(0x9F18);
/// Issuer Script Template 2 (scripts run after the second GENERATE AC).
pub const ISSUER_SCRIPT_TEMPLATE_2: Tag = Tag(0x72);
/// Issuer Script Command (one APDU).
pub const ISSUER_SCRIPT_COMMAND: Tag = Tag(0x86);

impl Tag {
    /// A tag from its bytes as a big-endian number; refused unless it is a
    /// whole, valid tag as [`parse`] reads them.
    pub fn new(raw: u32) -> Result<Tag, TlvError> {
        let bytes = raw.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let bytes = bytes.get(skip..).unwrap_or(&[]);
        match read_tag(bytes, bytes.len(), 0) {
            Ok((tag, end)) if end == bytes.len() => Ok(tag),
            _ => Err(TlvError::InvalidTag { offset: 0 }),
        }
    }

    /// The tag as a number (`0x9F26`).
    pub fn raw(self) -> u32 {
        self.0
    }

    /// Bit 6 of the first byte: the value is a template of TLVs.
    pub fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    fn len(self) -> usize {
        match self.0 {
            0..=0xFF => 1,
            0x100..=0xFFFF => 2,
            _ => 3,
        }
    }

    fn first_byte(self) -> u8 {
        (self.0 >> (8 * (self.len() - 1))) as u8
    }

    fn push(self, out: &mut Vec<u8>) {
        let be = self.0.to_be_bytes();
        out.extend_from_slice(&be[4 - self.len()..]);
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0width$X}", self.0, width = 2 * self.len())
    }
}

/// One data object: a primitive value, or a template of further objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tlv<'a> {
    Primitive { tag: Tag, value: &'a [u8] },
    Constructed { tag: Tag, children: Vec<Tlv<'a>> },
}

impl Tlv<'_> {
    pub fn tag(&self) -> Tag {
        match self {
            Tlv::Primitive { tag, .. } | Tlv::Constructed { tag, .. } => *tag,
        }
    }
}

/// The byte at `pos`, if it is before `end`.
fn byte(data: &[u8], end: usize, pos: usize) -> Option<u8> {
    if pos < end {
        data.get(pos).copied()
    } else {
        None
    }
}

/// Reads a tag at `pos`; returns it and the position after it.
fn read_tag(data: &[u8], end: usize, pos: usize) -> Result<(Tag, usize), TlvError> {
    let first = byte(data, end, pos).ok_or(TlvError::TruncatedTag { offset: pos })?;
    if first == 0x00 || first == 0xFF {
        return Err(TlvError::InvalidTag { offset: pos });
    }
    let mut raw = u32::from(first);
    let mut next = pos + 1;
    if first & 0x1F == 0x1F {
        loop {
            let b = byte(data, end, next).ok_or(TlvError::TruncatedTag { offset: pos })?;
            if next == pos + 1 && b == 0x80 {
                return Err(TlvError::InvalidTag { offset: pos });
            }
            if next - pos >= 3 {
                return Err(TlvError::TagTooLong { offset: pos });
            }
            raw = (raw << 8) | u32::from(b);
            next += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    Ok((Tag(raw), next))
}

/// Reads a length at `pos`; returns it and the position after it.
fn read_len(data: &[u8], end: usize, pos: usize) -> Result<(usize, usize), TlvError> {
    let first = byte(data, end, pos).ok_or(TlvError::TruncatedLength { offset: pos })?;
    let count = match first {
        0x00..=0x7F => return Ok((usize::from(first), pos + 1)),
        0x80 => return Err(TlvError::IndefiniteLength { offset: pos }),
        0x81 => 1,
        0x82 => 2,
        _ => return Err(TlvError::LengthTooLong { offset: pos }),
    };
    let mut len = 0usize;
    for i in 1..=count {
        let b = byte(data, end, pos + i).ok_or(TlvError::TruncatedLength { offset: pos })?;
        len = (len << 8) | usize::from(b);
    }
    Ok((len, pos + 1 + count))
}

/// Refuses a primitive tag seen twice among `seen` (tag, offset) pairs.
fn check_duplicates(seen: &mut [(Tag, usize)]) -> Result<(), TlvError> {
    seen.sort_unstable();
    match seen.windows(2).find(|w| w[0].0 == w[1].0) {
        Some(w) => Err(TlvError::DuplicateTag {
            tag: w[1].0,
            offset: w[1].1,
        }),
        None => Ok(()),
    }
}

/// Parses `data[start..end]` as a sequence of TLVs at nesting `depth`.
fn parse_level<'a>(
    data: &'a [u8],
    start: usize,
    end: usize,
    depth: usize,
) -> Result<Vec<Tlv<'a>>, TlvError> {
    let mut out = Vec::new();
    let mut primitives = Vec::new();
    let mut pos = start;
    while pos < end {
        let (tag, after_tag) = read_tag(data, end, pos)?;
        let (len, value_start) = read_len(data, end, after_tag)?;
        let value_end =
            value_start
                .checked_add(len)
                .filter(|&e| e <= end)
                .ok_or(TlvError::ValueOverrun {
                    offset: value_start,
                })?;
        if tag.is_constructed() {
            if depth >= MAX_DEPTH {
                return Err(TlvError::TooDeep { offset: pos });
            }
            let children = parse_level(data, value_start, value_end, depth + 1)?;
            out.push(Tlv::Constructed { tag, children });
        } else {
            let value = data
                .get(value_start..value_end)
                .ok_or(TlvError::ValueOverrun {
                    offset: value_start,
                })?;
            primitives.push((tag, pos));
            out.push(Tlv::Primitive { tag, value });
        }
        pos = value_end;
    }
    check_duplicates(&mut primitives)?;
    Ok(out)
}

/// Parses a whole input (a DE 55 value) as BER-TLV.
pub fn parse(data: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    parse_level(data, 0, data.len(), 0)
}

/// Writes a tag and a minimal length. Lengths over [`MAX_VALUE_LEN`] get as
/// many length bytes as they need: callers check first where it matters.
pub(crate) fn push_header(out: &mut Vec<u8>, tag: Tag, len: usize) {
    tag.push(out);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (be.len() - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
}

fn encode_level(items: &[Tlv<'_>], depth: usize, out: &mut Vec<u8>) -> Result<(), TlvError> {
    let mut primitives = Vec::new();
    for item in items {
        match item {
            Tlv::Primitive { tag, value } => {
                if tag.is_constructed() {
                    return Err(TlvError::ConstructedMismatch { tag: *tag });
                }
                if value.len() > MAX_VALUE_LEN {
                    return Err(TlvError::ValueTooLong { tag: *tag });
                }
                primitives.push((*tag, out.len()));
                push_header(out, *tag, value.len());
                out.extend_from_slice(value);
            }
            Tlv::Constructed { tag, children } => {
                if !tag.is_constructed() {
                    return Err(TlvError::ConstructedMismatch { tag: *tag });
                }
                if depth >= MAX_DEPTH {
                    return Err(TlvError::TooDeep { offset: out.len() });
                }
                let mut inner = Vec::new();
                encode_level(children, depth + 1, &mut inner)?;
                if inner.len() > MAX_VALUE_LEN {
                    return Err(TlvError::ValueTooLong { tag: *tag });
                }
                push_header(out, *tag, inner.len());
                out.extend_from_slice(&inner);
            }
        }
    }
    check_duplicates(&mut primitives)
}

/// Encodes TLVs with minimal lengths. Refused: a primitive value under a
/// constructed tag or the reverse, a value over [`MAX_VALUE_LEN`] bytes,
/// nesting over [`MAX_DEPTH`], a primitive tag twice in one template (the
/// offsets in these errors are into the output).
pub fn encode(items: &[Tlv<'_>]) -> Result<Vec<u8>, TlvError> {
    let mut out = Vec::new();
    encode_level(items, 0, &mut out)?;
    Ok(out)
}
