//! Zone PIN keys, wrapped by the master key.

use std::future::Future;

use super::outbox;
use super::page::{self, Page};
use crate::store::backend::Backend;
use crate::store::db::{Sql, args, sql, vals};
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

pub trait ZoneKeyStore: Backend {
    fn insert_zone_key(
        &self,
        key: ZoneKeyRow,
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
                db.exec(&INSERT_ZONE_KEY, &row).await?;
                outbox::append_audit(db, audit).await
            })
        })
    }

    fn get_zone_key(
        &self,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<ZoneKeyRow>>> + Send {
        self.first_row(&ZONE_KEY, vals![id], decode::zone_key)
    }

    /// Newest first. `None` when `starting_after` names no zone key.
    fn list_zone_keys(
        &self,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl Future<Output = StoreResult<Option<(Vec<ZoneKeyRow>, bool)>>> + Send {
        page::read(
            self,
            &ZONE_KEYS,
            vec![],
            vec![],
            starting_after,
            limit,
            decode::zone_key,
        )
    }
}

impl<B: Backend> ZoneKeyStore for B {}
