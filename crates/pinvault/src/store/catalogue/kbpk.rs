//! Key block protection keys, wrapped by the master key: operator-level, no
//! program's.

use super::key_tables::{KeyRow, KeyTable, key_table};
use crate::keys::ZoneAlgorithm;
use crate::store::db::{DbResult, Row, Sql, Val, sql, vals};
use crate::store::rows::KbpkRow;

macro_rules! kbpk_cols {
    () => {
        "id, name, algorithm, kcv, wrapped, created_at"
    };
}

static TABLE: KeyTable<KbpkRow> = key_table!(
    "key_block_protection_keys",
    kbpk_cols,
    "$1, $2, $3, $4, $5, $6",
    decode,
    encode
);
pub(super) const REWRAP: Sql =
    sql!("UPDATE key_block_protection_keys SET wrapped = $1 WHERE id = $2 AND wrapped = $3");

fn decode(r: Row<'_>) -> DbResult<KbpkRow> {
    Ok(KbpkRow {
        id: r.string(0)?,
        name: r.string(1)?,
        algorithm: r.parse(2, ZoneAlgorithm::parse, "kbpk algorithm")?,
        kcv: r.string(3)?,
        wrapped: r.bytes(4)?,
        created_at: r.time(5)?,
    })
}

impl KeyRow for KbpkRow {
    fn table() -> &'static KeyTable<Self> {
        &TABLE
    }
}

fn encode(k: &KbpkRow) -> Vec<Val> {
    let row = vals![
        &k.id,
        &k.name,
        k.algorithm.as_str(),
        &k.kcv,
        &k.wrapped,
        k.created_at
    ];
    row
}
