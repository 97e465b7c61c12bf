//! Applying what `domain::card` decided to a card's row: a compare-and-set
//! that changes the row only while it is still in the state the decision was
//! made from. On PostgreSQL the row is also locked when read (`FOR UPDATE`),
//! so a concurrent change on another node waits rather than loses; on SQLite
//! writes run one at a time. Either way the rules are stated once, in Rust.

use crate::domain::card::PinState;
use crate::domain::chip::ChipState;
use crate::domain::time::Timestamp;
use crate::store::db::{Arg, Db, DbResult, Sql, args, first, sql, sql_each};
use crate::store::decode::{self, card_cols};
use crate::store::rows::{CardRow, PinWrite};

/// The card, locked for the rest of the transaction (PostgreSQL).
const LOCK_CARD: Sql = sql_each!(
    pg: concat!("SELECT ", card_cols!(), " FROM cards WHERE id = $1 AND program_id = $2 FOR UPDATE"),
    sqlite: concat!("SELECT ", card_cols!(), " FROM cards WHERE id = $1 AND program_id = $2"),
);
const LOCK_CARD_BY_ID: Sql = sql_each!(
    pg: concat!("SELECT ", card_cols!(), " FROM cards WHERE id = $1 FOR UPDATE"),
    sqlite: concat!("SELECT ", card_cols!(), " FROM cards WHERE id = $1"),
);

/// `$1`–`$6`: the new state; `$7` the card; `$8`–`$11` the state it must still be in.
macro_rules! set_state {
    () => {
        "status = $1, inactive_by_block = $2, fail_count = $3, pin_blocked = $4,
         last_failed_at = $5, updated_at = $6"
    };
}
macro_rules! still_in_state {
    () => {
        "id = $7 AND status = $8 AND inactive_by_block = $9 AND fail_count = $10 AND pin_blocked = $11"
    };
}
/// The assignments that remove a card's staged PIN.
macro_rules! clear_staged {
    () => {
        "staged_pin_block = NULL, staged_pin_key_version = NULL,
         staged_expires_at = NULL, staged_token_id = NULL"
    };
}
/// The assignments of a new PIN besides its block: the card's PIN is stored
/// from now on (legacy verification data, if any, is gone).
macro_rules! stored_pin {
    () => {
        ", pin_verification = 'stored', legacy_pvk_id = NULL, legacy_pvki = NULL"
    };
}
pub(super) use clear_staged;

const APPLY_STATE: Sql = sql!(concat!(
    "UPDATE cards SET ",
    set_state!(),
    " WHERE ",
    still_in_state!()
));
/// What a new PIN leaves the chip to be told (`domain::chip`), in the five
/// parameters given (NULL, false, false, NULL, NULL on a card without a chip).
macro_rules! chip_after_pin {
    ($a:literal, $b:literal, $c:literal, $d:literal, $e:literal) => {
        concat!(
            ", chip_offline_pin = $",
            $a,
            ", chip_pending_change = $",
            $b,
            ", chip_pending_unblock = $",
            $c,
            ", chip_script_id = $",
            $d,
            ", chip_script_command = $",
            $e,
            ", "
        )
    };
}

/// A new PIN (`$12` block, `$13` key version, `$14` who set it); a staged PIN
/// is discarded.
const SET_PIN: Sql = sql!(concat!(
    "UPDATE cards SET ",
    set_state!(),
    ", pin_block = $12, pin_key_version = $13, pin_set_by = $14, pin_updated_at = $6",
    stored_pin!(),
    chip_after_pin!(15, 16, 17, 18, 19),
    clear_staged!(),
    " WHERE ",
    still_in_state!()
));
/// The staged PIN becomes the PIN, while it is still the one read (`$12` its
/// token, `$13` its expiry).
const COMMIT_STAGED: Sql = sql!(concat!(
    "UPDATE cards SET ",
    set_state!(),
    ", pin_block = staged_pin_block, pin_key_version = staged_pin_key_version,
       pin_set_by = 'cardholder', pin_updated_at = $6",
    stored_pin!(),
    chip_after_pin!(14, 15, 16, 17, 18),
    clear_staged!(),
    " WHERE ",
    still_in_state!(),
    " AND staged_token_id = $12 AND staged_expires_at = $13 AND staged_pin_block IS NOT NULL"
));

/// A program's card, locked (PostgreSQL) for the rest of the transaction.
pub async fn lock(db: &mut dyn Db, program_id: &str, card_id: &str) -> DbResult<Option<CardRow>> {
    first(db, &LOCK_CARD, &args![card_id, program_id], decode::card).await
}

/// A card whatever its program, locked (PostgreSQL) for the rest of the
/// transaction. Every transaction that writes a card's tokens takes this lock
/// first, so they queue in one order (and "newest token only" holds across
/// nodes).
pub async fn lock_by_id(db: &mut dyn Db, card_id: &str) -> DbResult<Option<CardRow>> {
    first(db, &LOCK_CARD_BY_ID, &args![card_id], decode::card).await
}

fn state_args<'a>(
    card_id: &'a str,
    from: &PinState,
    to: &PinState,
    now: Timestamp,
) -> Vec<Arg<'a>> {
    args![
        to.status.as_str(),
        to.inactive_by_block,
        to.fail_count,
        to.pin_blocked,
        to.last_failed_at,
        now,
        card_id,
        from.status.as_str(),
        from.inactive_by_block,
        from.fail_count,
        from.pin_blocked,
    ]
    .to_vec()
}

/// Moves the card from `from` to `to`; false if it is no longer in `from`.
pub async fn apply(
    db: &mut dyn Db,
    card_id: &str,
    from: &PinState,
    to: &PinState,
    now: Timestamp,
) -> DbResult<bool> {
    let args = state_args(card_id, from, to, now);
    Ok(db.exec(&APPLY_STATE, &args).await? == 1)
}

/// Gives the card a new PIN (what a new PIN does to its state included).
pub async fn set_pin(
    db: &mut dyn Db,
    card: &CardRow,
    pin: &PinWrite,
    now: Timestamp,
) -> DbResult<bool> {
    let from = card.pin_state();
    let mut args = state_args(&card.id, &from, &from.new_pin(), now);
    args.extend(args![&pin.block, pin.key_version, pin.set_by.as_str()]);
    let chip = chip_after_new_pin(card);
    args.extend(chip_args(chip.as_ref()));
    Ok(db.exec(&SET_PIN, &args).await? == 1)
}

/// Commits the card's staged PIN, as it was read in `card`.
pub async fn commit_staged(db: &mut dyn Db, card: &CardRow, now: Timestamp) -> DbResult<bool> {
    let from = card.pin_state();
    let mut args = state_args(&card.id, &from, &from.new_pin(), now);
    args.extend(args![&card.staged_token_id, card.staged_expires_at]);
    let chip = chip_after_new_pin(card);
    args.extend(chip_args(chip.as_ref()));
    Ok(db.exec(&COMMIT_STAGED, &args).await? == 1)
}

/// The chip state any new PIN leaves (`None` without a chip).
fn chip_after_new_pin(card: &CardRow) -> Option<ChipState> {
    card.chip.as_ref().map(|c| c.state.pin_changed())
}

fn chip_args(chip: Option<&ChipState>) -> [Arg<'_>; 5] {
    match chip {
        None => [
            Arg::Null,
            Arg::Bool(false),
            Arg::Bool(false),
            Arg::Null,
            Arg::Null,
        ],
        Some(s) => [
            Arg::Text(s.offline_pin.as_str()),
            Arg::Bool(s.pending_change_pin),
            Arg::Bool(s.pending_unblock_pin),
            s.live_script.as_ref().map(|l| l.id.as_str()).into(),
            s.live_script.as_ref().map(|l| l.command.as_str()).into(),
        ],
    }
}

/// `card` as [`apply`] left it.
pub fn after(card: &CardRow, to: &PinState, now: Timestamp) -> CardRow {
    CardRow {
        status: to.status,
        inactive_by_block: to.inactive_by_block,
        fail_count: to.fail_count,
        pin_blocked: to.pin_blocked,
        last_failed_at: to.last_failed_at,
        updated_at: now,
        ..card.clone()
    }
}
