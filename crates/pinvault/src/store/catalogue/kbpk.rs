//! Key block protection keys, wrapped by the master key: operator-level, no
//! program's.

use super::key_tables::{KeyRow, KeyTable, key_table};
use crate::store::db::{Sql, Val, sql};
use crate::store::decode;
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
    decode::wrapped_key,
    encode
);
pub(super) const REWRAP: Sql =
    sql!("UPDATE key_block_protection_keys SET wrapped = $1 WHERE id = $2 AND wrapped = $3");

impl KeyRow for KbpkRow {
    fn table() -> &'static KeyTable<Self> {
        &TABLE
    }
}

fn encode(k: &KbpkRow) -> Vec<Val> {
    decode::wrapped_key_args(k)
        .into_iter()
        .map(Val::from)
        .collect()
}
