//! Each table's columns, named once, and the row types decoded from them, for
//! both databases.

use super::db::{Arg, DbResult, Row, args, bad};
use super::rows::*;
use crate::domain::chip::{ChipState, Command, LiveScript, OfflinePin, ScriptResult};
use crate::domain::program::{Mode, Settings};
use crate::domain::token::TokenType;
use crate::domain::webhook_format::WebhookFormat;
use crate::domain::zone_key::{Grants, Usage};
use crate::keys::{DataKeyRow, KeyKind, ZoneAlgorithm};

/// The columns [`program`] reads, in its order (`p.`: as joins name them).
macro_rules! program_cols {
    () => {
        "id, name, mode, settings, created_at, updated_at"
    };
    (p) => {
        "p.id, p.name, p.mode, p.settings, p.created_at, p.updated_at"
    };
}

/// The columns [`pin_change`] reads, in its order.
macro_rules! change_cols {
    () => {
        "id, program_id, card_id, previous_pin_block, previous_pin_key_version, \
         previous_pin_set_by, new_pin_block, created_at, reversed_at"
    };
}
macro_rules! api_key_cols {
    () => {
        "id, program_id, key_hash, hint, created_at, revoked_at"
    };
    (k) => {
        "k.id, k.program_id, k.key_hash, k.hint, k.created_at, k.revoked_at"
    };
}

macro_rules! card_cols {
    () => {
        "id, program_id, pan_hash, lookup_key_version, pan_sealed, pan_key_version, \
         last4, expiry, external_id, status, inactive_by_block, pin_block, pin_key_version, pin_set_by, \
         pin_updated_at, fail_count, last_failed_at, pin_blocked, created_at, updated_at, \
         staged_expires_at, staged_token_id, staged_pin_block, staged_pin_key_version, \
         chip_key_set_id, chip_psn, chip_offline_pin, chip_pending_change, chip_pending_unblock, \
         chip_last_script_at, chip_last_script_result, chip_script_id, chip_script_command, \
         pin_verification, legacy_pvk_id, legacy_pvki"
    };
    (c) => {
        "c.id, c.program_id, c.pan_hash, c.lookup_key_version, c.pan_sealed, c.pan_key_version, \
         c.last4, c.expiry, c.external_id, c.status, c.inactive_by_block, c.pin_block, c.pin_key_version, \
         c.pin_set_by, c.pin_updated_at, c.fail_count, c.last_failed_at, c.pin_blocked, c.created_at, \
         c.updated_at, c.staged_expires_at, c.staged_token_id, c.staged_pin_block, c.staged_pin_key_version, \
         c.chip_key_set_id, c.chip_psn, c.chip_offline_pin, c.chip_pending_change, c.chip_pending_unblock, \
         c.chip_last_script_at, c.chip_last_script_result, c.chip_script_id, c.chip_script_command, \
         c.pin_verification, c.legacy_pvk_id, c.legacy_pvki"
    };
}

macro_rules! token_cols {
    () => {
        "id, token_hash, card_id, type, cvm, created_at, expires_at, attempts_remaining, used_at, superseded_at, always_staged"
    };
}

macro_rules! zone_key_cols {
    () => {
        "id, name, algorithm, kcv, wrapped, created_at, usage, all_programs, tr31"
    };
}

macro_rules! event_cols {
    () => {
        "id, program_id, card_id, type, created_at, body"
    };
}

macro_rules! endpoint_cols {
    () => {
        "id, program_id, url, events, secret_sealed, secret_key_version, created_at, secret_key_kind, format"
    };
}

macro_rules! delivery_cols {
    () => {
        "d.id, d.endpoint_id, d.event_id, COALESCE(d.delivered_as, ev.type), d.status, d.attempts, d.next_attempt_at, \
         d.last_attempt_at, d.last_response_code, d.last_error, d.delivered_at, d.created_at"
    };
}

macro_rules! audit_cols {
    () => {
        "seq, at, actor, request_id, source, action, program_id, card_id, details, prev_hash, hash"
    };
}

/// A statement selecting the columns of one kind of row, then `$rest` (which
/// starts with its own space): `select!(card_cols, " FROM cards WHERE id = $1")`.
macro_rules! select {
    ($cols:ident, $rest:expr) => {
        $crate::store::db::sql!(concat!("SELECT ", $cols!(), $rest))
    };
}

pub(crate) use {
    api_key_cols, audit_cols, card_cols, change_cols, delivery_cols, endpoint_cols, event_cols,
    program_cols, select, token_cols, zone_key_cols,
};

/// Program settings from their stored JSON text. Every authenticated request
/// reads its program's settings; parsing them is a large part of a PIN
/// verification's own work, so the parsed value is kept per program with the
/// exact text it came from, and used again only for that same text (a changed
/// setting is different text, so nothing is ever stale). Looking a program up
/// by its id and comparing the text costs less than hashing the whole text.
/// At most `SETTINGS_MEMO` programs are kept; past that the memo starts again.
pub(crate) fn parse_settings(program_id: &str, text: &str) -> Option<Settings> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, RwLock};
    const SETTINGS_MEMO: usize = 1024;
    type Memo = HashMap<String, (String, Settings)>;
    static MEMO: LazyLock<RwLock<Memo>> = LazyLock::new(Default::default);
    if let Some((seen, s)) = MEMO
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(program_id)
    {
        if seen == text {
            return Some(s.clone());
        }
    }
    let parsed: Settings = serde_json::from_str(text).ok()?;
    let mut memo = MEMO.write().unwrap_or_else(|p| p.into_inner());
    if memo.len() >= SETTINGS_MEMO {
        memo.clear();
    }
    memo.insert(program_id.to_owned(), (text.to_owned(), parsed.clone()));
    Some(parsed)
}

pub fn program(r: Row<'_>) -> DbResult<ProgramRow> {
    let id = r.str(0)?;
    Ok(ProgramRow {
        settings: parse_settings(id, r.str(3)?).ok_or_else(|| bad("settings"))?,
        id: id.to_owned(),
        name: r.string(1)?,
        mode: r.parse(2, Mode::parse, "mode")?,
        created_at: r.time(4)?,
        updated_at: r.time(5)?,
    })
}

pub fn api_key(r: Row<'_>) -> DbResult<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.string(0)?,
        program_id: r.string(1)?,
        key_hash: r.bytes32(2)?,
        hint: r.string(3)?,
        created_at: r.time(4)?,
        revoked_at: r.opt_time(5)?,
    })
}

/// An API key (`api_key_cols!(k)`) and its program (`program_cols!(p)`).
pub fn key_and_program(r: Row<'_>) -> DbResult<(ApiKeyRow, ProgramRow)> {
    Ok((api_key(r)?, program(r.from(6))?))
}

pub fn card(r: Row<'_>) -> DbResult<CardRow> {
    Ok(CardRow {
        id: r.string(0)?,
        program_id: r.string(1)?,
        pan_hash: r.bytes(2)?,
        lookup_key_version: r.u32(3)?,
        pan_sealed: r.bytes(4)?,
        pan_key_version: r.u32(5)?,
        last4: r.string(6)?,
        expiry: r.opt_string(7)?,
        external_id: r.opt_string(8)?,
        status: r.parse(9, CardStatus::parse, "status")?,
        inactive_by_block: r.bool(10)?,
        pin_block: r.bytes(11)?,
        pin_key_version: r.u32(12)?,
        pin_set_by: r.parse(13, SetBy::parse, "pin_set_by")?,
        pin_updated_at: r.time(14)?,
        fail_count: r.u32(15)?,
        last_failed_at: r.opt_time(16)?,
        pin_blocked: r.bool(17)?,
        created_at: r.time(18)?,
        updated_at: r.time(19)?,
        staged_expires_at: r.opt_time(20)?,
        staged_token_id: r.opt_string(21)?,
        staged_pin_block: r.opt_bytes(22)?,
        staged_pin_key_version: r.opt_u32(23)?,
        chip: chip(r)?,
        legacy: legacy(r)?,
    })
}

/// A card's legacy verification columns (33 to 35): `None` for a stored PIN.
fn legacy(r: Row<'_>) -> DbResult<Option<crate::domain::legacy::Legacy>> {
    use crate::domain::legacy::{Legacy, Method};
    let verification = r.str(33)?;
    if verification == "stored" {
        return Ok(None);
    }
    let method = Method::parse(verification).ok_or_else(|| bad("pin_verification"))?;
    let pvki = match r.opt_u32(35)? {
        None => None,
        Some(v) => Some(u8::try_from(v).map_err(|_| bad("legacy_pvki"))?),
    };
    Ok(Some(Legacy {
        method,
        pvk_id: r.opt_string(34)?.ok_or_else(|| bad("legacy_pvk_id"))?,
        pvki,
    }))
}

/// A card's chip columns (24 to 32): `None` without an issuer key set.
fn chip(r: Row<'_>) -> DbResult<Option<ChipData>> {
    let Some(issuer_key_set_id) = r.opt_string(24)? else {
        return Ok(None);
    };
    Ok(Some(ChipData {
        issuer_key_set_id,
        pan_sequence_number: r.string(25)?,
        state: ChipState {
            offline_pin: r.parse(26, OfflinePin::parse, "chip_offline_pin")?,
            pending_change_pin: r.bool(27)?,
            pending_unblock_pin: r.bool(28)?,
            last_script_at: r.opt_time(29)?,
            last_script_result: match r.opt_str(30)? {
                None => None,
                Some(t) => {
                    Some(ScriptResult::parse(t).ok_or_else(|| bad("chip_last_script_result"))?)
                }
            },
            live_script: match (r.opt_string(31)?, r.opt_str(32)?) {
                (Some(id), Some(c)) => Some(LiveScript {
                    id,
                    command: Command::parse(c).ok_or_else(|| bad("chip_script_command"))?,
                }),
                _ => None,
            },
        },
    }))
}

/// An API key, its program, and the card of a `LEFT JOIN` (none: no such card).
pub fn authenticated_card(r: Row<'_>) -> DbResult<AuthenticatedCard> {
    let (key, program) = key_and_program(r)?;
    let card = if r.is_null(12)? {
        None
    } else {
        Some(card(r.from(12))?)
    };
    Ok((key, program, card))
}

pub fn token(r: Row<'_>) -> DbResult<TokenRow> {
    Ok(TokenRow {
        id: r.string(0)?,
        token_hash: r.bytes32(1)?,
        card_id: r.string(2)?,
        kind: r.parse(3, TokenType::parse, "type")?,
        cvm: r.opt_string(4)?,
        created_at: r.time(5)?,
        expires_at: r.time(6)?,
        attempts_remaining: r.u32(7)?,
        used_at: r.opt_time(8)?,
        superseded_at: r.opt_time(9)?,
        always_staged: r.bool(10)?,
    })
}

/// The six columns a wrapped key's table begins with (`id, name, algorithm,
/// kcv, wrapped, created_at`).
pub fn wrapped_key(r: Row<'_>) -> DbResult<WrappedKey> {
    Ok(WrappedKey {
        id: r.string(0)?,
        name: r.string(1)?,
        algorithm: r.parse(2, ZoneAlgorithm::parse, "key algorithm")?,
        kcv: r.string(3)?,
        wrapped: r.bytes(4)?,
        created_at: r.time(5)?,
    })
}

/// [`wrapped_key`]'s columns, to insert.
pub fn wrapped_key_args(k: &WrappedKey) -> [Arg<'_>; 6] {
    args![
        &k.id,
        &k.name,
        k.algorithm.as_str(),
        &k.kcv,
        &k.wrapped,
        k.created_at
    ]
}

pub fn zone_key(r: Row<'_>) -> DbResult<ZoneKeyRow> {
    Ok(ZoneKeyRow {
        key: wrapped_key(r)?,
        usage: r.parse(6, Usage::parse, "zone key usage")?,
        // The list of programs is read apart (`catalogue::zone_keys`).
        grants: if r.bool(7)? {
            Grants::All
        } else {
            Grants::Programs(Vec::new())
        },
        tr31: tr31_origin(r, 8)?,
    })
}

/// A key's TR-31 origin from its stored JSON text (`NULL`: from components).
pub fn tr31_origin(r: Row<'_>, idx: usize) -> DbResult<Option<crate::keys::tr31::Tr31Origin>> {
    r.opt_str(idx)?
        .map(|text| serde_json::from_str(text).map_err(|_| bad("tr31 origin")))
        .transpose()
}

/// A key's TR-31 origin as stored: JSON text, or `NULL`.
pub fn tr31_text(origin: Option<&crate::keys::tr31::Tr31Origin>) -> Option<String> {
    origin.and_then(|o| serde_json::to_string(o).ok())
}

pub fn data_key(r: Row<'_>) -> DbResult<DataKeyRow> {
    Ok(DataKeyRow {
        kind: r.parse(0, KeyKind::parse, "key kind")?,
        version: r.u32(1)?,
        wrapped: r.bytes(2)?,
        created_at: r.time(3)?,
    })
}

pub fn idempotency(r: Row<'_>) -> DbResult<IdemRow> {
    Ok(IdemRow {
        program_id: r.string(0)?,
        key: r.string(1)?,
        request_hash: r.bytes(2)?,
        status: u16::try_from(r.i64(3)?).map_err(|_| bad("status"))?,
        response_sealed: r.bytes(4)?,
        key_kind: r.parse(7, KeyKind::parse, "key kind")?,
        key_version: r.u32(5)?,
        created_at: r.time(6)?,
    })
}

pub fn event(r: Row<'_>) -> DbResult<EventRow> {
    Ok(EventRow {
        id: r.string(0)?,
        program_id: r.string(1)?,
        card_id: r.opt_string(2)?,
        kind: r.string(3)?,
        created_at: r.time(4)?,
        body: r.string(5)?,
    })
}

/// The event types an endpoint subscribes to, as stored (a JSON array).
pub fn event_types(text: &str) -> DbResult<Vec<String>> {
    serde_json::from_str(text).map_err(|_| bad("events"))
}

pub fn endpoint(r: Row<'_>) -> DbResult<WebhookEndpointRow> {
    Ok(WebhookEndpointRow {
        id: r.string(0)?,
        program_id: r.string(1)?,
        url: r.string(2)?,
        events: event_types(r.str(3)?)?,
        secret_sealed: r.bytes(4)?,
        secret_key_kind: r.parse(7, KeyKind::parse, "key kind")?,
        secret_key_version: r.u32(5)?,
        created_at: r.time(6)?,
        format: r.parse(8, WebhookFormat::parse, "format")?,
    })
}

pub fn delivery(r: Row<'_>) -> DbResult<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.string(0)?,
        endpoint_id: r.string(1)?,
        event_id: r.string(2)?,
        event_type: r.string(3)?,
        status: r.parse(4, DeliveryStatus::parse, "status")?,
        attempts: r.u32(5)?,
        next_attempt_at: r.opt_time(6)?,
        last_attempt_at: r.opt_time(7)?,
        last_response_code: r
            .opt_i64(8)?
            .map(|c| u16::try_from(c).map_err(|_| bad("last_response_code")))
            .transpose()?,
        last_error: r.opt_string(9)?,
        delivered_at: r.opt_time(10)?,
        created_at: r.time(11)?,
    })
}

pub fn claimed_delivery(r: Row<'_>) -> DbResult<ClaimedDelivery> {
    Ok(ClaimedDelivery {
        id: r.string(0)?,
        attempts: r.u32(1)?,
        endpoint_id: r.string(2)?,
        url: r.string(3)?,
        secret_sealed: r.bytes(4)?,
        secret_key_kind: r.parse(7, KeyKind::parse, "key kind")?,
        secret_key_version: r.u32(5)?,
        event_body: delivered_as(r.string(6)?, r.opt_string(8)?)?,
    })
}

/// An event's body as a delivery sends it: under the name it is delivered
/// as, where that is not the event's own type (`domain::webhook_format`).
fn delivered_as(body: String, name: Option<String>) -> DbResult<String> {
    let Some(name) = name else { return Ok(body) };
    let mut v: serde_json::Value = serde_json::from_str(&body).map_err(|_| bad("event body"))?;
    v["type"] = serde_json::Value::String(name);
    Ok(v.to_string())
}

/// An audit entry from its eight columns, the first at `from`.
pub fn audit_entry(r: Row<'_>, from: usize) -> DbResult<AuditEntry> {
    Ok(AuditEntry {
        at: r.time(from)?,
        actor: r.string(from + 1)?,
        request_id: r.opt_string(from + 2)?,
        source: r.opt_string(from + 3)?,
        action: r.string(from + 4)?,
        program_id: r.opt_string(from + 5)?,
        card_id: r.opt_string(from + 6)?,
        details: r.string(from + 7)?,
    })
}

pub fn audit(r: Row<'_>) -> DbResult<AuditRecord> {
    Ok(AuditRecord {
        seq: r.i64(0)?,
        entry: audit_entry(r, 1)?,
        prev_hash: r.bytes(9)?,
        hash: r.bytes(10)?,
    })
}

/// One integer column.
pub fn int(r: Row<'_>) -> DbResult<i64> {
    r.i64(0)
}

/// One text column.
pub fn text(r: Row<'_>) -> DbResult<String> {
    r.string(0)
}

/// One flag column (`EXISTS (…)`).
pub fn flag(r: Row<'_>) -> DbResult<bool> {
    r.bool(0)
}

pub fn pin_change(r: Row<'_>) -> DbResult<PinChangeRow> {
    Ok(PinChangeRow {
        id: r.string(0)?,
        program_id: r.string(1)?,
        card_id: r.string(2)?,
        previous: PinWrite {
            block: r.bytes(3)?,
            key_version: r.u32(4)?,
            set_by: r.parse(5, SetBy::parse, "previous_pin_set_by")?,
        },
        new_pin_block: r.bytes(6)?,
        created_at: r.time(7)?,
        reversed_at: r.opt_time(8)?,
    })
}
