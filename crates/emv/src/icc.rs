//! What pinvault reads from an authorization's ICC data (ISO 8583 DE 55): the
//! ARQC (9F26), the ATC (9F36) and the issuer script results (9F5B).
//!
//! The whole field must be well-formed BER-TLV as [`crate::tlv`] reads it; the
//! three tags are looked for at the top level only (where terminals put them;
//! one inside some template is not the transaction's) and every other tag is
//! ignored. 9F26 must be 8 bytes and 9F36 2; 9F5B is optional and is 5 bytes
//! per script: the result in the high nibble of the first byte (0 not
//! performed, 1 failed, 2 successful; anything else is refused), the sequence
//! number of the command it stopped at in the low nibble (EMV Book 4 Annex
//! A5: 0 none, 1–E, F for 15 and over), then the script's 9F18 identifier.

use crate::IccDataError;
use crate::tlv::{self, ARQC, ATC, ISSUER_SCRIPT_RESULTS, Tag, Tlv};

/// What became of an issuer script on the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptOutcome {
    NotPerformed,
    Failed,
    Successful,
}

impl ScriptOutcome {
    fn nibble(self) -> u8 {
        match self {
            ScriptOutcome::NotPerformed => 0,
            ScriptOutcome::Failed => 1,
            ScriptOutcome::Successful => 2,
        }
    }
}

/// One 5-byte entry of 9F5B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScriptResult {
    pub outcome: ScriptOutcome,
    /// The low nibble of the first byte: which command the card stopped at.
    pub sequence: u8,
    /// The script's identifier (its 9F18).
    pub script_id: [u8; 4],
}

impl ScriptResult {
    /// Reads one entry.
    pub fn from_bytes(bytes: [u8; 5]) -> Result<Self, IccDataError> {
        let outcome = match bytes[0] >> 4 {
            0 => ScriptOutcome::NotPerformed,
            1 => ScriptOutcome::Failed,
            2 => ScriptOutcome::Successful,
            found => return Err(IccDataError::ScriptResult { found }),
        };
        let [_, a, b, c, d] = bytes;
        Ok(ScriptResult {
            outcome,
            sequence: bytes[0] & 0x0F,
            script_id: [a, b, c, d],
        })
    }

    /// The entry's 5 bytes (the sequence number's high bits are dropped).
    pub fn to_bytes(&self) -> [u8; 5] {
        let [a, b, c, d] = self.script_id;
        [
            (self.outcome.nibble() << 4) | (self.sequence & 0x0F),
            a,
            b,
            c,
            d,
        ]
    }
}

/// The tags pinvault needs from DE 55.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IccData {
    pub arqc: [u8; 8],
    pub atc: [u8; 2],
    /// In the order they appear; empty without 9F5B.
    pub script_results: Vec<ScriptResult>,
}

fn find<'a>(items: &[Tlv<'a>], tag: Tag) -> Option<&'a [u8]> {
    items.iter().find_map(|item| match item {
        Tlv::Primitive { tag: t, value } if *t == tag => Some(*value),
        _ => None,
    })
}

fn fixed<const N: usize>(items: &[Tlv<'_>], tag: Tag) -> Result<[u8; N], IccDataError> {
    let value = find(items, tag).ok_or(IccDataError::Missing { tag })?;
    value.try_into().map_err(|_| IccDataError::Length {
        tag,
        found: value.len(),
    })
}

/// Reads DE 55.
pub fn parse_icc_data(de55: &[u8]) -> Result<IccData, IccDataError> {
    let items = tlv::parse(de55)?;
    let arqc = fixed::<8>(&items, ARQC)?;
    let atc = fixed::<2>(&items, ATC)?;
    let mut script_results = Vec::new();
    if let Some(value) = find(&items, ISSUER_SCRIPT_RESULTS) {
        if value.len() % 5 != 0 {
            return Err(IccDataError::Length {
                tag: ISSUER_SCRIPT_RESULTS,
                found: value.len(),
            });
        }
        for chunk in value.chunks_exact(5) {
            let mut entry = [0u8; 5];
            entry.copy_from_slice(chunk);
            script_results.push(ScriptResult::from_bytes(entry)?);
        }
    }
    Ok(IccData {
        arqc,
        atc,
        script_results,
    })
}
