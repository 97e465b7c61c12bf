//! Issuer master key sets for chip cards, per program, wrapped by the master key.

use std::future::Future;

use super::outbox;
use super::page::{self, Page};
use crate::domain::chip::Cvn;
use crate::store::backend::Backend;
use crate::store::db::{DbResult, Row, Sql, args, bad, sql, vals};
use crate::store::decode::{tr31_origin, tr31_text};
use crate::store::error::StoreResult;
use crate::store::rows::{AuditEntry, IssuerKeySetRow};

macro_rules! issuer_key_cols {
    () => {
        "id, program_id, name, cvn, kcv_ac, kcv_smi, kcv_smc, wrapped_ac, wrapped_smi, \
         wrapped_smc, created_at, tr31_ac, tr31_smi, tr31_smc"
    };
}

const INSERT: Sql = sql!(
    "INSERT INTO issuer_key_sets (id, program_id, name, cvn, kcv_ac, kcv_smi, kcv_smc,
         wrapped_ac, wrapped_smi, wrapped_smc, created_at, tr31_ac, tr31_smi, tr31_smc)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);
const ONE: Sql = sql!(concat!(
    "SELECT ",
    issuer_key_cols!(),
    " FROM issuer_key_sets WHERE id = $1 AND program_id = $2"
));
const PROGRAM_SETS: Page = Page {
    lookup: sql!("SELECT seq FROM issuer_key_sets WHERE id = $1 AND program_id = $2"),
    list: sql!(concat!(
        "SELECT ",
        issuer_key_cols!(),
        " FROM issuer_key_sets WHERE program_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
    )),
};
const ALL_SETS: Page = Page {
    lookup: sql!("SELECT seq FROM issuer_key_sets WHERE id = $1"),
    list: sql!(concat!(
        "SELECT ",
        issuer_key_cols!(),
        " FROM issuer_key_sets WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
    )),
};
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

pub trait IssuerKeyStore: Backend {
    /// A new set, with its audit record.
    fn insert_issuer_key_set(
        &self,
        set: IssuerKeySetRow,
        audit: AuditEntry,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.write((set, audit), |db, (k, audit)| {
            Box::pin(async move {
                let tr31 = k.tr31.each_ref().map(|o| tr31_text(o.as_ref()));
                let row = args![
                    &k.id,
                    &k.program_id,
                    &k.name,
                    k.cvn.as_str(),
                    &k.kcv[0],
                    &k.kcv[1],
                    &k.kcv[2],
                    &k.wrapped[0],
                    &k.wrapped[1],
                    &k.wrapped[2],
                    k.created_at,
                    &tr31[0],
                    &tr31[1],
                    &tr31[2]
                ];
                db.exec(&INSERT, &row).await?;
                outbox::append_audit(db, audit).await
            })
        })
    }

    /// The program's set with this id.
    fn get_issuer_key_set(
        &self,
        program_id: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<IssuerKeySetRow>>> + Send {
        self.first_row(&ONE, vals![id, program_id], decode)
    }

    /// The program's sets, newest first; `None` when `starting_after` names
    /// none of them.
    fn list_issuer_key_sets(
        &self,
        program_id: Option<&str>,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl Future<Output = StoreResult<Option<(Vec<IssuerKeySetRow>, bool)>>> + Send {
        let (page, scope) = match program_id {
            Some(p) => (&PROGRAM_SETS, vals![p]),
            None => (&ALL_SETS, vec![]),
        };
        page::read(
            self,
            page,
            scope.clone(),
            scope,
            starting_after,
            limit,
            decode,
        )
    }
}

impl<B: Backend> IssuerKeyStore for B {}
