//! PIN changes at an ATM, and their reversal: the new PIN written only while
//! the card still holds the PIN that was checked, the change kept 24 hours
//! with the PIN before it, and a reversal that puts that PIN back only while
//! the card still holds the one the change wrote. Also the program's own
//! write of a PIN, with no token (the seed-compatible routes of Thredd and
//! Stripe).

use super::card_state;
use super::outbox::{self, EffectsOf};
use crate::domain::time::Timestamp;
use crate::store::backend::Backend;
use crate::store::db::{Db, DbResult, Sql, args, first, sql, sql_each};
use crate::store::decode::{self, change_cols};
use crate::store::error::StoreFuture;
use crate::store::rows::{CardRow, PinChangeRow, PinWrite};

/// How long a change can be reversed, and is kept.
pub const REVERSIBLE_S: i64 = 86_400;

const INSERT_CHANGE: Sql = sql!(
    "INSERT INTO pin_changes (id, program_id, card_id, previous_pin_block,
         previous_pin_key_version, previous_pin_set_by, new_pin_block, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);
/// The program's change, locked (PostgreSQL) for the rest of the transaction.
const LOCK_CHANGE: Sql = sql_each!(
    pg: concat!("SELECT ", change_cols!(), " FROM pin_changes WHERE id = $1 AND program_id = $2 FOR UPDATE"),
    sqlite: concat!("SELECT ", change_cols!(), " FROM pin_changes WHERE id = $1 AND program_id = $2"),
);
const MARK_REVERSED: Sql =
    sql!("UPDATE pin_changes SET reversed_at = $1 WHERE id = $2 AND reversed_at IS NULL");
const PURGE: Sql = sql!("DELETE FROM pin_changes WHERE created_at <= $1");

/// What a change or a reversal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinChangeOutcome {
    Done,
    /// No such card or change for the program.
    NotFound,
    /// The card no longer holds the PIN the operation was decided on (another
    /// change came first), or the change is reversed, or too old to reverse.
    Moved,
}

/// The card, locked, if it still holds `block` as its PIN.
async fn card_holding(
    db: &mut dyn Db,
    program_id: &str,
    card_id: &str,
    block: &[u8],
) -> DbResult<Result<CardRow, PinChangeOutcome>> {
    Ok(match card_state::lock(db, program_id, card_id).await? {
        None => Err(PinChangeOutcome::NotFound),
        Some(card) if card.pin_block != block => Err(PinChangeOutcome::Moved),
        Some(card) => Ok(card),
    })
}

pub trait PinChangeStore: Backend {
    /// Writes `change`'s new PIN (`new`) if the card still holds
    /// `change.previous` (the PIN that was checked), with the change kept for
    /// its reversal and `effects` (given the card as it was), in one transaction.
    fn change_pin<F: EffectsOf<CardRow>>(
        &self,
        change: PinChangeRow,
        new: PinWrite,
        effects: F,
    ) -> impl StoreFuture<PinChangeOutcome> {
        self.write((change, new, effects), |db, (c, new, effects)| {
            Box::pin(async move {
                let card =
                    match card_holding(db, &c.program_id, &c.card_id, &c.previous.block).await? {
                        Ok(card) => card,
                        Err(outcome) => return Ok(outcome),
                    };
                if !card_state::set_pin(db, &card, new, c.created_at).await? {
                    return Ok(PinChangeOutcome::Moved);
                }
                let row = args![
                    &c.id,
                    &c.program_id,
                    &c.card_id,
                    &c.previous.block,
                    c.previous.key_version,
                    c.previous.set_by.as_str(),
                    &new.block,
                    c.created_at
                ];
                db.exec(&INSERT_CHANGE, &row).await?;
                outbox::apply(db, &effects(&card)).await?;
                Ok(PinChangeOutcome::Done)
            })
        })
    }

    /// Puts back the PIN before the program's change `change_id`, if it is
    /// less than 24 hours old, not reversed, and the card still holds the PIN
    /// it wrote; `effects` (given the change) in the same transaction.
    fn reverse_pin_change<F: EffectsOf<PinChangeRow>>(
        &self,
        program_id: &str,
        change_id: &str,
        now: Timestamp,
        effects: F,
    ) -> impl StoreFuture<PinChangeOutcome> {
        let data = (program_id.to_owned(), change_id.to_owned(), now, effects);
        self.write(data, |db, (program_id, change_id, now, effects)| {
            Box::pin(async move {
                let Some(c) = first(
                    db,
                    &LOCK_CHANGE,
                    &args![change_id, program_id],
                    decode::pin_change,
                )
                .await?
                else {
                    return Ok(PinChangeOutcome::NotFound);
                };
                if c.reversed_at.is_some() || *now - c.created_at >= REVERSIBLE_S {
                    return Ok(PinChangeOutcome::Moved);
                }
                let card = match card_holding(db, program_id, &c.card_id, &c.new_pin_block).await? {
                    Ok(card) => card,
                    Err(_) => return Ok(PinChangeOutcome::Moved),
                };
                if db.exec(&MARK_REVERSED, &args![*now, change_id]).await? != 1 {
                    return Ok(PinChangeOutcome::Moved);
                }
                // The card is locked and holds the change's PIN: the write
                // cannot lose; if it did, the error rolls the mark back.
                if !card_state::set_pin(db, &card, &c.previous, *now).await? {
                    return Err(crate::store::db::lost("the card"));
                }
                outbox::apply(db, &effects(&c)).await?;
                Ok(PinChangeOutcome::Done)
            })
        })
    }

    /// The program's own write of a card's PIN, with no token (Thredd's set,
    /// Stripe's `pin[encrypted_number]`): what any new PIN does to the card's
    /// state, and `effects` (given the card as it was), in one transaction.
    /// `None` if the program has no such card.
    fn write_pin<F: EffectsOf<CardRow>>(
        &self,
        program_id: &str,
        card_id: &str,
        new: PinWrite,
        now: Timestamp,
        effects: F,
    ) -> impl StoreFuture<Option<CardRow>> {
        let data = (program_id.to_owned(), card_id.to_owned(), new, now, effects);
        self.write(data, |db, (program_id, card_id, new, now, effects)| {
            Box::pin(async move {
                let Some(card) = card_state::lock(db, program_id, card_id).await? else {
                    return Ok(None);
                };
                // The card is locked: the write cannot lose.
                if !card_state::set_pin(db, &card, new, *now).await? {
                    return Err(crate::store::db::lost("the card"));
                }
                outbox::apply(db, &effects(&card)).await?;
                Ok(Some(card))
            })
        })
    }

    /// Removes changes made at or before `before` (no longer reversible).
    fn purge_pin_changes(&self, before: Timestamp) -> impl StoreFuture<u64> {
        self.exec_one(&PURGE, crate::store::db::vals![before])
    }
}

impl<B: Backend> PinChangeStore for B {}
