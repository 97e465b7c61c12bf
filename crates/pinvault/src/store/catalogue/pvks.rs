//! PIN verification keys (Visa PVK, IBM 3624), per program, wrapped by the
//! master key.

use pinblock::ibm3624::Ibm3624Params;
use serde_json::json;

use super::key_tables::{KeyRow, KeyTable, key_table};
use crate::domain::legacy::Method;
use crate::store::db::{DbResult, Row, Sql, Val, bad, sql, vals};
use crate::store::decode::{tr31_origin, tr31_text};
use crate::store::rows::PvkRow;

macro_rules! pvk_cols {
    () => {
        "id, program_id, name, method, kcv, wrapped, params, created_at, tr31"
    };
}

static TABLE: KeyTable<PvkRow> = key_table!(
    "pin_verification_keys",
    pvk_cols,
    "$1, $2, $3, $4, $5, $6, $7, $8, $9",
    decode,
    encode,
    program
);
pub(super) const REWRAP: Sql =
    sql!("UPDATE pin_verification_keys SET wrapped = $1 WHERE id = $2 AND wrapped = $3");

/// IBM 3624 parameters as stored.
pub fn params_json(p: &Ibm3624Params) -> serde_json::Value {
    json!({
        "decimalization_table": String::from_utf8_lossy(p.decimalization()),
        "validation_data_offset": p.validation_offset(),
        "validation_data_length": p.validation_length(),
        "pad_character": char::from(p.pad()).to_string(),
        "pin_length": p.pin_length(),
    })
}

fn parse_params(text: &str) -> Option<Ibm3624Params> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let small = |k: &str| v.get(k)?.as_u64().and_then(|n| u8::try_from(n).ok());
    let pad = v.get("pad_character")?.as_str()?.as_bytes();
    Ibm3624Params::new(
        v.get("decimalization_table")?.as_str()?,
        small("validation_data_offset")?,
        small("validation_data_length")?,
        *pad.first()?,
        small("pin_length")?,
    )
    .ok()
}

fn decode(r: Row<'_>) -> DbResult<PvkRow> {
    let method = r.parse(3, Method::parse, "method")?;
    let params = match r.opt_str(6)? {
        None => None,
        Some(t) => Some(parse_params(t).ok_or_else(|| bad("params"))?),
    };
    Ok(PvkRow {
        id: r.string(0)?,
        program_id: r.string(1)?,
        name: r.string(2)?,
        method,
        kcv: r.string(4)?,
        wrapped: r.bytes(5)?,
        params,
        created_at: r.time(7)?,
        tr31: tr31_origin(r, 8)?,
    })
}

impl KeyRow for PvkRow {
    fn table() -> &'static KeyTable<Self> {
        &TABLE
    }
}

fn encode(k: &PvkRow) -> Vec<Val> {
    let params = k.params.as_ref().map(|p| params_json(p).to_string());
    let tr31 = tr31_text(k.tr31.as_ref());
    let row = vals![
        &k.id,
        &k.program_id,
        &k.name,
        k.method.as_str(),
        &k.kcv,
        &k.wrapped
    ];
    let rest = vals![params.as_deref(), k.created_at, tr31.as_deref()];
    [row, rest].concat()
}
