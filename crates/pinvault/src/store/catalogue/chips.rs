//! A chip card's chip data and offline-PIN state, changed under the card's
//! lock (PIN writes take it too, so a pending command is never lost to a
//! concurrent PIN change).

use super::{card_state, outbox};
use crate::domain::time::Timestamp;
use crate::store::backend::Backend;
use crate::store::db::{Arg, Sql, args, sql};
use crate::store::error::StoreFuture;
use crate::store::rows::{CardRow, ChipData, Effects};

const SET_CHIP: Sql = sql!(
    "UPDATE cards SET chip_key_set_id = $1, chip_psn = $2, chip_offline_pin = $3,
         chip_pending_change = $4, chip_pending_unblock = $5, chip_last_script_at = $6,
         chip_last_script_result = $7, chip_script_id = $8, chip_script_command = $9,
         updated_at = $10
     WHERE id = $11"
);

/// The columns of `chip` (NULL and false for none).
fn chip_args(chip: Option<&ChipData>) -> [Arg<'_>; 9] {
    match chip {
        None => [
            Arg::Null,
            Arg::Null,
            Arg::Null,
            Arg::Bool(false),
            Arg::Bool(false),
            Arg::Null,
            Arg::Null,
            Arg::Null,
            Arg::Null,
        ],
        Some(c) => [
            Arg::Text(&c.issuer_key_set_id),
            Arg::Text(&c.pan_sequence_number),
            Arg::Text(c.state.offline_pin.as_str()),
            Arg::Bool(c.state.pending_change_pin),
            Arg::Bool(c.state.pending_unblock_pin),
            c.state.last_script_at.into(),
            c.state.last_script_result.map(|r| r.as_str()).into(),
            c.state.live_script.as_ref().map(|l| l.id.as_str()).into(),
            c.state
                .live_script
                .as_ref()
                .map(|l| l.command.as_str())
                .into(),
        ],
    }
}

pub trait ChipStore: Backend {
    /// Gives the program's card the chip data `next` makes of the card as it
    /// is under its lock, with the effects it makes (`None` from `next`:
    /// nothing changes, and the answer is the card as it is); the card after,
    /// or `None` when the program has no such card.
    fn change_card_chip<F>(
        &self,
        program_id: &str,
        card_id: &str,
        now: Timestamp,
        next: F,
    ) -> impl StoreFuture<Option<CardRow>>
    where
        F: Fn(&CardRow) -> Option<(Option<ChipData>, Effects)> + Send + Sync + 'static,
    {
        let data = (program_id.to_owned(), card_id.to_owned(), now, next);
        self.write(data, |db, (program_id, card_id, now, next)| {
            Box::pin(async move {
                let Some(card) = card_state::lock(db, program_id, card_id).await? else {
                    return Ok(None);
                };
                let Some((chip, effects)) = next(&card) else {
                    return Ok(Some(card));
                };
                let mut row = chip_args(chip.as_ref()).to_vec();
                row.extend(args![*now, card_id.as_str()]);
                db.exec(&SET_CHIP, &row).await?;
                outbox::apply(db, &effects).await?;
                Ok(Some(CardRow {
                    chip,
                    updated_at: *now,
                    ..card
                }))
            })
        })
    }
}

impl<B: Backend> ChipStore for B {}
