//! Key block protection keys, wrapped by the master key: operator-level, no
//! program's.

use std::future::Future;

use super::outbox;
use super::page::{self, Page};
use crate::keys::ZoneAlgorithm;
use crate::store::backend::Backend;
use crate::store::db::{DbResult, Row, Sql, args, bad, sql, vals};
use crate::store::error::StoreResult;
use crate::store::rows::{AuditEntry, KbpkRow};

macro_rules! kbpk_cols {
    () => {
        "id, name, algorithm, kcv, wrapped, created_at"
    };
}

const INSERT: Sql = sql!(
    "INSERT INTO key_block_protection_keys (id, name, algorithm, kcv, wrapped, created_at)
     VALUES ($1, $2, $3, $4, $5, $6)"
);
const ONE: Sql = sql!(concat!(
    "SELECT ",
    kbpk_cols!(),
    " FROM key_block_protection_keys WHERE id = $1"
));
const ALL: Page = Page {
    lookup: sql!("SELECT seq FROM key_block_protection_keys WHERE id = $1"),
    list: sql!(concat!(
        "SELECT ",
        kbpk_cols!(),
        " FROM key_block_protection_keys WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
    )),
};
pub(super) const REWRAP: Sql =
    sql!("UPDATE key_block_protection_keys SET wrapped = $1 WHERE id = $2 AND wrapped = $3");

fn decode(r: Row<'_>) -> DbResult<KbpkRow> {
    Ok(KbpkRow {
        id: r.string(0)?,
        name: r.string(1)?,
        algorithm: ZoneAlgorithm::parse(r.str(2)?).ok_or_else(|| bad("kbpk algorithm"))?,
        kcv: r.string(3)?,
        wrapped: r.bytes(4)?,
        created_at: r.time(5)?,
    })
}

pub trait KbpkStore: Backend {
    /// A new key block protection key, with its audit record.
    fn insert_kbpk(
        &self,
        key: KbpkRow,
        audit: AuditEntry,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.write((key, audit), |db, (k, audit)| {
            Box::pin(async move {
                let row = args![
                    &k.id,
                    &k.name,
                    k.algorithm.as_str(),
                    &k.kcv,
                    &k.wrapped,
                    k.created_at
                ];
                db.exec(&INSERT, &row).await?;
                outbox::append_audit(db, audit).await
            })
        })
    }

    /// The key block protection key with this id.
    fn get_kbpk(&self, id: &str) -> impl Future<Output = StoreResult<Option<KbpkRow>>> + Send {
        self.first_row(&ONE, vals![id], decode)
    }

    /// Every key block protection key, newest first; `None` when
    /// `starting_after` names none.
    fn list_kbpks(
        &self,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl Future<Output = StoreResult<Option<(Vec<KbpkRow>, bool)>>> + Send {
        page::read(self, &ALL, vec![], vec![], starting_after, limit, decode)
    }
}

impl<B: Backend> KbpkStore for B {}
