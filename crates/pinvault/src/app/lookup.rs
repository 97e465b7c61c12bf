//! Finding a card at authorization time by what the host read from the card:
//! its PAN (through the keyed PAN hash, never the PAN itself), and optionally
//! its sequence number and expiry (the rule is `domain::lookup`).

use super::error::{AppError, AppResult};
use super::{App, Caller};
use crate::domain::card::{parse_pan, valid_expiry};
use crate::domain::lookup::{self, Candidate, LookupError, Narrowing};
use crate::keys::KeyKind;
use crate::store::{CardRow, Store};

/// What the host sends.
#[derive(Debug)]
pub struct Lookup<'a> {
    pub pan: &'a str,
    pub pan_sequence_number: Option<&'a str>,
    pub expiry: Option<&'a str>,
}

impl<S: Store> App<S> {
    /// The caller's one card with this PAN (and sequence number and expiry,
    /// where given): `NotFound`, or `CardAmbiguous` when several are left.
    pub async fn look_up_card(&self, caller: &Caller, q: Lookup<'_>) -> AppResult<CardRow> {
        let pan = parse_pan(q.pan).ok_or(AppError::InvalidPan)?;
        if q.pan_sequence_number
            .is_some_and(|p| !lookup::valid_pan_sequence_number(p))
        {
            return Err(AppError::Invalid(
                "`pan_sequence_number` is two digits (DE 23): \"01\"".into(),
            ));
        }
        if q.expiry.is_some_and(|e| !valid_expiry(e)) {
            return Err(AppError::Invalid(
                "`expiry` must be a year and month: \"2029-12\"".into(),
            ));
        }
        let mut hashes = Vec::new();
        for version in self.keys.versions(KeyKind::Lookup) {
            hashes.push((version, self.keys.pan_hash_with(version, &pan)?));
        }
        drop(pan);
        let mut cards = self
            .store
            .cards_by_pan_hash(&caller.program.id, hashes)
            .await?;
        let candidates: Vec<Candidate<'_>> = cards
            .iter()
            .map(|c| Candidate {
                // Cards carry a sequence number with their chip data.
                pan_sequence_number: c.chip.as_ref().map(|x| x.pan_sequence_number.as_str()),
                expiry: c.expiry.as_deref(),
            })
            .collect();
        let by = Narrowing {
            pan_sequence_number: q.pan_sequence_number,
            expiry: q.expiry,
        };
        match lookup::pick(&candidates, by) {
            Ok(i) => Ok(cards.swap_remove(i)),
            Err(LookupError::NotFound) => Err(AppError::NotFound("card with this PAN")),
            Err(LookupError::Ambiguous) => Err(AppError::CardAmbiguous),
        }
    }
}
