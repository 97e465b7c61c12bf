//! Cards: creating and finding them, and every change to their status and PIN
//! tries, each decided by `domain::card` and applied by `card_state`.

use super::card_state;
use super::outbox::{self, EffectsOf};
use super::page::{self, Page};
use super::programs::CARD;
use crate::domain::card::PinFailure;
use crate::domain::time::Timestamp;
use crate::store::backend::Backend;
use crate::store::db::{ALL, Db, DbResult, Sql, args, rows, sql, vals};
use crate::store::decode::{self, card_cols, select};
use crate::store::error::StoreFuture;
use crate::store::read_cache;
use crate::store::rows::{CardRow, CardStatus, Created, Effects, IdemRow};

/// The cards table and its columns in [`card_args`] order: one row
/// (`create_card`) or many a statement (a bulk import).
pub(super) const CARD_COLUMNS: &str = "cards (id, program_id, pan_hash, lookup_key_version, pan_sealed, pan_key_version,
        last4, expiry, external_id, status, inactive_by_block, pin_block, pin_key_version, pin_set_by,
        pin_updated_at, fail_count, last_failed_at, pin_blocked, created_at, updated_at,
        chip_key_set_id, chip_psn, chip_offline_pin, pin_verification, legacy_pvk_id, legacy_pvki)";
/// How many values [`card_args`] gives.
pub(super) const CARD_VALUES: usize = 26;
const CARD_BY_ID: Sql = select!(card_cols, " FROM cards WHERE id = $1");
/// A program's cards whose PAN has this keyed hash under this lookup key
/// version (`cards_pan_hash`); a PAN is shared by a few re-issues at most.
const CARDS_BY_PAN_HASH: Sql = select!(
    card_cols,
    " FROM cards WHERE pan_hash = $1 AND lookup_key_version = $2 AND program_id = $3
     ORDER BY seq LIMIT 50"
);
const CARDS: Page = Page {
    lookup: sql!("SELECT seq FROM cards WHERE id = $1 AND program_id = $2"),
    list: select!(
        card_cols,
        " FROM cards
         WHERE program_id = $1 AND (CAST($2 AS TEXT) IS NULL OR external_id = $2) AND seq < $3
         ORDER BY seq DESC LIMIT $4"
    ),
};
const ANY_EXPIRED_STAGED: Sql = sql!(
    "SELECT EXISTS (SELECT 1 FROM cards
     WHERE staged_expires_at IS NOT NULL AND staged_expires_at <= $1)"
);
const CLEAR_EXPIRED_STAGED: Sql = sql!(concat!(
    "UPDATE cards SET ",
    super::card_state::clear_staged!(),
    " WHERE staged_expires_at IS NOT NULL AND staged_expires_at <= $1"
));
const CLEAR_CARD_EXPIRED_STAGED: Sql = sql!(concat!(
    "UPDATE cards SET ",
    super::card_state::clear_staged!(),
    " WHERE id = $1 AND staged_expires_at IS NOT NULL AND staged_expires_at <= $2"
));

/// Effects of a change, from the card before and after it.
pub trait ChangeEffects: Fn(&CardRow, &CardRow) -> Effects + Send + Sync + 'static {}
impl<F: Fn(&CardRow, &CardRow) -> Effects + Send + Sync + 'static> ChangeEffects for F {}

/// How often a compare-and-set that lost to a concurrent change is tried
/// again (it cannot lose where the row is locked; this bounds the rest).
const CAS_TRIES: usize = 3;

/// A status change or an unblock: the domain's new state for the card, applied.
async fn change_state<F: ChangeEffects>(
    db: &mut dyn Db,
    program_id: &str,
    card_id: &str,
    now: Timestamp,
    next: impl Fn(crate::domain::card::PinState) -> crate::domain::card::PinState,
    effects: &F,
) -> DbResult<Option<CardRow>> {
    for _ in 0..CAS_TRIES {
        let Some(before) = card_state::lock(db, program_id, card_id).await? else {
            return Ok(None);
        };
        let (from, to) = (before.pin_state(), next(before.pin_state()));
        if card_state::apply(db, card_id, &from, &to, now).await? {
            let after = card_state::after(&before, &to, now);
            outbox::apply(db, &effects(&before, &after)).await?;
            return Ok(Some(after));
        }
    }
    Err(crate::store::db::lost("the card"))
}

/// The values of a card's row, in [`CARD_COLUMNS`] order.
pub(super) fn card_args(c: &CardRow) -> [crate::store::db::Arg<'_>; CARD_VALUES] {
    args![
        &c.id,
        &c.program_id,
        &c.pan_hash,
        c.lookup_key_version,
        &c.pan_sealed,
        c.pan_key_version,
        &c.last4,
        &c.expiry,
        &c.external_id,
        c.status.as_str(),
        c.inactive_by_block,
        &c.pin_block,
        c.pin_key_version,
        c.pin_set_by.as_str(),
        c.pin_updated_at,
        c.fail_count,
        c.last_failed_at,
        c.pin_blocked,
        c.created_at,
        c.updated_at,
        c.chip.as_ref().map(|x| x.issuer_key_set_id.as_str()),
        c.chip.as_ref().map(|x| x.pan_sequence_number.as_str()),
        c.chip.as_ref().map(|x| x.state.offline_pin.as_str()),
        crate::domain::legacy::verification(c.legacy.as_ref()),
        c.legacy.as_ref().map(|l| l.pvk_id.as_str()),
        c.legacy.as_ref().and_then(|l| l.pvki).map(u32::from),
    ]
}

pub trait CardStore: Backend {
    fn create_card(
        &self,
        card: CardRow,
        idem: Option<IdemRow>,
        effects: Effects,
    ) -> impl StoreFuture<Created> {
        self.write((card, idem, effects), |db, (c, idem, effects)| {
            Box::pin(async move {
                let row = card_args(c);
                let insert = super::bulk::insert_rows(CARD_COLUMNS, CARD_VALUES, 1);
                outbox::create(db, idem.as_ref(), &insert, &row, effects).await
            })
        })
    }

    /// Events and an audit record of something that changes no row (a PIN
    /// exported), in one transaction: written before the answer is given.
    fn record_effects(&self, effects: Effects) -> impl StoreFuture<()> {
        self.write(effects, |db, effects| {
            Box::pin(async move { outbox::apply(db, effects).await })
        })
    }

    fn get_card(&self, program_id: &str, card_id: &str) -> impl StoreFuture<Option<CardRow>> {
        self.first_row(&CARD, vals![card_id, program_id], decode::card)
    }

    /// The program's cards whose PAN has one of these keyed hashes (one per
    /// lookup key version in use: during a rotation cards are under either).
    fn cards_by_pan_hash(
        &self,
        program_id: &str,
        hashes: Vec<(u32, Vec<u8>)>,
    ) -> impl StoreFuture<Vec<CardRow>> {
        let program_id = program_id.to_owned();
        async move {
            // Held between commits like the cards a path names (SQLite).
            let cache = self.read_cache();
            let stamp = cache.and_then(|c| c.stamp());
            let key = stamp.map(|_| read_cache::lookup_key(&program_id, &hashes));
            if let (Some(cache), Some(stamp), Some(key)) = (cache, &stamp, &key) {
                if let Some(cards) = cache.get_lookup(stamp, key) {
                    return Ok(cards);
                }
            }
            let found = self
                .read_short((program_id, hashes), |db, (program_id, hashes)| {
                    Box::pin(async move {
                        let mut out = Vec::new();
                        for (version, hash) in hashes {
                            let args = args![hash, *version, program_id.as_str()];
                            out.extend(
                                rows(db, &CARDS_BY_PAN_HASH, &args, decode::card, ALL).await?,
                            );
                        }
                        Ok(out)
                    })
                })
                .await?;
            if let (Some(cache), Some(stamp), Some(key)) = (cache, &stamp, key) {
                cache.put_lookup(stamp, key, &found);
            }
            Ok(found)
        }
    }

    /// A card whatever its program: only for the hosted widgets, which reach the
    /// card of the control token they were given (and nothing else).
    fn card_of_token(&self, card_id: &str) -> impl StoreFuture<Option<CardRow>> {
        self.first_row(&CARD_BY_ID, vals![card_id], decode::card)
    }

    /// Newest first. `None` when `starting_after` names no card of the program.
    fn list_cards(
        &self,
        program_id: &str,
        external_id: Option<&str>,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl StoreFuture<Option<(Vec<CardRow>, bool)>> {
        let params = vals![program_id, external_id];
        page::read(
            self,
            &CARDS,
            vals![program_id],
            params,
            starting_after,
            limit,
            decode::card,
        )
    }

    /// Sets a card's status (`PinState::with_status`); `effects` is given the
    /// card before and after the change.
    fn set_card_status<F: ChangeEffects>(
        &self,
        program_id: &str,
        card_id: &str,
        status: CardStatus,
        now: Timestamp,
        effects: F,
    ) -> impl StoreFuture<Option<CardRow>> {
        let data = (
            program_id.to_owned(),
            card_id.to_owned(),
            status,
            now,
            effects,
        );
        self.write(data, |db, (p, c, status, now, effects)| {
            Box::pin(change_state(
                db,
                p,
                c,
                *now,
                |s| s.with_status(*status),
                effects,
            ))
        })
    }

    /// Unblocks the PIN (`PinState::unblocked`); `effects` as above.
    fn unblock_pin<F: ChangeEffects>(
        &self,
        program_id: &str,
        card_id: &str,
        now: Timestamp,
        effects: F,
    ) -> impl StoreFuture<Option<CardRow>> {
        let data = (program_id.to_owned(), card_id.to_owned(), now, effects);
        self.write(data, |db, (p, c, now, effects)| {
            Box::pin(change_state(db, p, c, *now, |s| s.unblocked(), effects))
        })
    }

    /// Counts one failed PIN try (`PinState::failed`), atomically, so
    /// concurrent failures stop at exactly `max_tries`. `None` when the PIN
    /// was already blocked (nothing is counted), or the card does not exist.
    /// `effects` (given the counted failure) are written with the count.
    fn record_pin_failure<F>(
        &self,
        card_id: &str,
        max_tries: u32,
        now: Timestamp,
        effects: F,
    ) -> impl StoreFuture<Option<PinFailure>>
    where
        F: Fn(PinFailure) -> Effects + Send + Sync + 'static,
    {
        let data = (card_id.to_owned(), max_tries, now, effects);
        self.write(data, |db, (card_id, max_tries, now, effects)| {
            Box::pin(async move {
                for _ in 0..CAS_TRIES {
                    let Some(card) = card_state::lock_by_id(db, card_id).await? else {
                        return Ok(None);
                    };
                    let from = card.pin_state();
                    let Some((to, failure)) = from.failed(*max_tries, *now) else {
                        return Ok(None);
                    };
                    if card_state::apply(db, card_id, &from, &to, *now).await? {
                        outbox::apply(db, &effects(failure)).await?;
                        return Ok(Some(failure));
                    }
                }
                Err(crate::store::db::lost("the card"))
            })
        })
    }

    /// Resets the fail count after a match (`PinState::matched`); false when
    /// the PIN was blocked meanwhile (a match never unblocks).
    fn reset_pin_failures(&self, card_id: &str, now: Timestamp) -> impl StoreFuture<bool> {
        self.write((card_id.to_owned(), now), |db, (card_id, now)| {
            Box::pin(async move {
                for _ in 0..CAS_TRIES {
                    let Some(card) = card_state::lock_by_id(db, card_id).await? else {
                        return Ok(false);
                    };
                    let from = card.pin_state();
                    let Some(to) = from.matched() else {
                        return Ok(!from.pin_blocked);
                    };
                    if card_state::apply(db, card_id, &from, &to, *now).await? {
                        return Ok(true);
                    }
                }
                Err(crate::store::db::lost("the card"))
            })
        })
    }

    /// Makes the card's staged PIN its PIN, as a set does, and clears it; of
    /// commits racing, exactly one succeeds. False (nothing committed) when
    /// the program's card has no unexpired staged PIN; an expired one is
    /// removed. `effects` (given the card before the commit) are written with it.
    fn commit_staged_pin<F: EffectsOf<CardRow>>(
        &self,
        program_id: &str,
        card_id: &str,
        now: Timestamp,
        effects: F,
    ) -> impl StoreFuture<bool> {
        let data = (program_id.to_owned(), card_id.to_owned(), now, effects);
        self.write(data, |db, (p, c, now, effects)| {
            Box::pin(async move {
                // Commits of one card queue on its row (PostgreSQL's lock, SQLite's
                // one writer); the one that comes second finds nothing staged.
                let Some(before) = card_state::lock(db, p, c).await? else {
                    return Ok(false);
                };
                if !before.has_staged_pin(*now) {
                    // An expired staged PIN is absent: remove it now.
                    db.exec(&CLEAR_CARD_EXPIRED_STAGED, &args![c, *now]).await?;
                    return Ok(false);
                }
                if !card_state::commit_staged(db, &before, *now).await? {
                    return Ok(false);
                }
                outbox::apply(db, &effects(&before)).await?;
                Ok(true)
            })
        })
    }

    /// Removes staged PINs that expired at or before `now`; returns how many.
    fn clear_expired_staged_pins(&self, now: Timestamp) -> impl StoreFuture<u64> {
        async move {
            // Where writes take one lock for everything, look on a reader first,
            // so that a sweep with nothing to do never takes it.
            if self.look_before_writing() {
                let due = self
                    .first_row(&ANY_EXPIRED_STAGED, vals![now], decode::flag)
                    .await?;
                if due != Some(true) {
                    return Ok(0);
                }
            }
            self.exec_one(&CLEAR_EXPIRED_STAGED, vals![now]).await
        }
    }
}

impl<B: Backend> CardStore for B {}
