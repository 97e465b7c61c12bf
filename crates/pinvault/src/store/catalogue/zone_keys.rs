//! Zone PIN keys, wrapped by the master key.

use std::future::Future;

use super::outbox;
use super::page::{self, Page};
use crate::store::backend::Backend;
use crate::store::db::{Sql, args, first, sql};
use crate::store::decode::{self, zone_key_cols};
use crate::store::error::StoreResult;
use crate::store::rows::{AuditEntry, ZoneKeyRow};

const INSERT_ZONE_KEY: Sql = sql!(
    "INSERT INTO zone_keys (id, name, algorithm, kcv, wrapped, created_at)
     VALUES ($1, $2, $3, $4, $5, $6)"
);
const ZONE_KEY: Sql = sql!(concat!(
    "SELECT ",
    zone_key_cols!(),
    " FROM zone_keys WHERE id = $1"
));
const ZONE_KEYS: Page = Page {
    lookup: sql!("SELECT seq FROM zone_keys WHERE id = $1"),
    list: sql!(concat!(
        "SELECT ",
        zone_key_cols!(),
        " FROM zone_keys WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
    )),
};

pub trait ZoneKeyStore {
    fn insert_zone_key(
        &self,
        key: ZoneKeyRow,
        audit: AuditEntry,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn get_zone_key(
        &self,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<ZoneKeyRow>>> + Send;
    /// Newest first. `None` when `starting_after` names no zone key.
    fn list_zone_keys(
        &self,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl Future<Output = StoreResult<Option<(Vec<ZoneKeyRow>, bool)>>> + Send;
}

impl<B: Backend> ZoneKeyStore for B {
    async fn insert_zone_key(&self, k: ZoneKeyRow, audit: AuditEntry) -> StoreResult<()> {
        self.write((k, audit), |db, (k, audit)| {
            Box::pin(async move {
                let row = args![
                    &k.id,
                    &k.name,
                    k.algorithm.as_str(),
                    &k.kcv,
                    &k.wrapped,
                    k.created_at
                ];
                db.exec(&INSERT_ZONE_KEY, &row).await?;
                outbox::append_audit(db, audit).await
            })
        })
        .await
    }

    async fn get_zone_key(&self, id: &str) -> StoreResult<Option<ZoneKeyRow>> {
        self.read(id.to_owned(), |db, id| {
            Box::pin(async move { first(db, &ZONE_KEY, &args![id], decode::zone_key).await })
        })
        .await
    }

    async fn list_zone_keys(
        &self,
        limit: u32,
        starting_after: Option<&str>,
    ) -> StoreResult<Option<(Vec<ZoneKeyRow>, bool)>> {
        self.read(
            (starting_after.map(str::to_owned), limit),
            |db, (after, limit)| {
                Box::pin(page::fetch(
                    db,
                    &ZONE_KEYS,
                    &[],
                    &[],
                    after.as_deref(),
                    *limit,
                    decode::zone_key,
                ))
            },
        )
        .await
    }
}
