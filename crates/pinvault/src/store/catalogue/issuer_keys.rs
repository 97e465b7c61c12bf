//! Issuer master key sets for chip cards, per program, wrapped by the master key.

use super::key_tables::{KeyRow, KeyTable, key_table};
use crate::domain::chip::Cvn;
use crate::store::db::{DbResult, Row, Sql, Val, bad, sql, vals};
use crate::store::decode::{tr31_origin, tr31_text};
use crate::store::rows::IssuerKeySetRow;

macro_rules! issuer_key_cols {
    () => {
        "id, program_id, name, cvn, kcv_ac, kcv_smi, kcv_smc, wrapped_ac, wrapped_smi, \
         wrapped_smc, created_at, tr31_ac, tr31_smi, tr31_smc"
    };
}

static TABLE: KeyTable<IssuerKeySetRow> = key_table!(
    "issuer_key_sets",
    issuer_key_cols,
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14",
    decode,
    encode,
    program
);
pub(super) const REWRAP: [Sql; 3] = [
    sql!("UPDATE issuer_key_sets SET wrapped_ac = $1 WHERE id = $2 AND wrapped_ac = $3"),
    sql!("UPDATE issuer_key_sets SET wrapped_smi = $1 WHERE id = $2 AND wrapped_smi = $3"),
    sql!("UPDATE issuer_key_sets SET wrapped_smc = $1 WHERE id = $2 AND wrapped_smc = $3"),
];

fn decode(r: Row<'_>) -> DbResult<IssuerKeySetRow> {
    Ok(IssuerKeySetRow {
        id: r.string(0)?,
        program_id: r.string(1)?,
        name: r.string(2)?,
        cvn: Cvn::parse(r.str(3)?).map_err(|_| bad("cvn"))?,
        kcv: [r.string(4)?, r.string(5)?, r.string(6)?],
        wrapped: [r.bytes(7)?, r.bytes(8)?, r.bytes(9)?],
        created_at: r.time(10)?,
        tr31: [
            tr31_origin(r, 11)?,
            tr31_origin(r, 12)?,
            tr31_origin(r, 13)?,
        ],
    })
}

impl KeyRow for IssuerKeySetRow {
    fn table() -> &'static KeyTable<Self> {
        &TABLE
    }
}

fn encode(k: &IssuerKeySetRow) -> Vec<Val> {
    let tr31 = k.tr31.each_ref().map(|o| tr31_text(o.as_ref()));
    let (kcv, wrapped) = (&k.kcv, &k.wrapped);
    let row = vals![
        &k.id,
        &k.program_id,
        &k.name,
        k.cvn.as_str(),
        &kcv[0],
        &kcv[1],
        &kcv[2]
    ];
    let rest = vals![&wrapped[0], &wrapped[1], &wrapped[2], k.created_at];
    let tr31 = vals![&tr31[0], &tr31[1], &tr31[2]];
    [row, rest, tr31].concat()
}
