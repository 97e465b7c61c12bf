//! Reading what changes left behind: the audit trail, the events, the
//! idempotency records.

use std::future::Future;

use super::outbox::{self, IDEMPOTENCY_TTL_S};
use super::page::{self, Page};
use crate::domain::time::now;
use crate::store::backend::Backend;
use crate::store::db::{Sql, all, args, first, sql};
use crate::store::decode::{self, audit_cols, event_cols};
use crate::store::error::StoreResult;
use crate::store::rows::{AuditEntry, AuditRecord, EventRow, IdemRow};

const AUDIT: Sql = sql!(concat!(
    "SELECT ",
    audit_cols!(),
    " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
));
const EVENTS: Page = Page {
    lookup: sql!("SELECT seq FROM events WHERE id = $1 AND program_id = $2"),
    list: sql!(concat!(
        "SELECT ",
        event_cols!(),
        " FROM events
         WHERE program_id = $1 AND (CAST($2 AS TEXT) IS NULL OR card_id = $2)
           AND (CAST($3 AS TEXT) IS NULL OR type = $3) AND seq < $4
         ORDER BY seq DESC LIMIT $5"
    )),
};
const IDEMPOTENCY: Sql = sql!(
    "SELECT program_id, key, request_hash, status, response_sealed, key_version, created_at
     FROM idempotency_keys WHERE program_id = $1 AND key = $2 AND created_at > $3"
);

pub trait AuditStore {
    /// Appends one audit record on its own (operator actions whose change is
    /// not one transaction, such as a key rotation).
    fn append_audit(&self, entry: AuditEntry) -> impl Future<Output = StoreResult<()>> + Send;
    /// Audit records with `seq` greater than `after`, oldest first.
    fn list_audit(
        &self,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<AuditRecord>>> + Send;
    /// A program's events, newest first, optionally of one card and one type.
    /// `None` when `starting_after` names no event of the program.
    fn list_events(
        &self,
        program_id: &str,
        card_id: Option<&str>,
        kind: Option<&str>,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl Future<Output = StoreResult<Option<(Vec<EventRow>, bool)>>> + Send;
    /// The first response to an `Idempotency-Key` of the program, while it lives.
    fn get_idempotency(
        &self,
        program_id: &str,
        key: &str,
    ) -> impl Future<Output = StoreResult<Option<IdemRow>>> + Send;
}

impl<B: Backend> AuditStore for B {
    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.write(entry, |db, entry| Box::pin(outbox::append_audit(db, entry)))
            .await
    }

    async fn list_audit(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.read((after, limit), |db, (after, limit)| {
            Box::pin(async move { all(db, &AUDIT, &args![*after, *limit], decode::audit).await })
        })
        .await
    }

    async fn list_events(
        &self,
        program_id: &str,
        card_id: Option<&str>,
        kind: Option<&str>,
        limit: u32,
        starting_after: Option<&str>,
    ) -> StoreResult<Option<(Vec<EventRow>, bool)>> {
        let owned = |s: Option<&str>| s.map(str::to_owned);
        let data = (
            program_id.to_owned(),
            owned(card_id),
            owned(kind),
            owned(starting_after),
            limit,
        );
        self.read(data, |db, (p, card, kind, after, limit)| {
            Box::pin(async move {
                let (scope, params) = (args![p], args![p, card, kind]);
                page::fetch(
                    db,
                    &EVENTS,
                    &scope,
                    &params,
                    after.as_deref(),
                    *limit,
                    decode::event,
                )
                .await
            })
        })
        .await
    }

    async fn get_idempotency(&self, program_id: &str, key: &str) -> StoreResult<Option<IdemRow>> {
        let since = now() - IDEMPOTENCY_TTL_S;
        self.read(
            (program_id.to_owned(), key.to_owned(), since),
            |db, (p, k, since)| {
                Box::pin(async move {
                    first(db, &IDEMPOTENCY, &args![p, k, *since], decode::idempotency).await
                })
            },
        )
        .await
    }
}
