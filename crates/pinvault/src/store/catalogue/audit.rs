//! Reading what changes left behind: the audit trail, the events, the
//! idempotency records.

use super::outbox::{self, IDEMPOTENCY_TTL_S};
use super::page::{self, Page};
use crate::domain::time::now;
use crate::store::backend::Backend;
use crate::store::db::{ALL, Sql, sql, vals};
use crate::store::decode::{self, audit_cols, event_cols, select};
use crate::store::error::StoreFuture;
use crate::store::rows::{AuditEntry, AuditRecord, EventRow, IdemRow};

const AUDIT: Sql = select!(
    audit_cols,
    " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
);
const EVENTS: Page = Page {
    lookup: sql!("SELECT seq FROM events WHERE id = $1 AND program_id = $2"),
    list: select!(
        event_cols,
        " FROM events
         WHERE program_id = $1 AND (CAST($2 AS TEXT) IS NULL OR card_id = $2)
           AND (CAST($3 AS TEXT) IS NULL OR type = $3) AND seq < $4
         ORDER BY seq DESC LIMIT $5"
    ),
};
const IDEMPOTENCY: Sql = sql!(
    "SELECT program_id, key, request_hash, status, response_sealed, key_version, created_at, key_kind
     FROM idempotency_keys WHERE program_id = $1 AND key = $2 AND created_at > $3"
);

pub trait AuditStore: Backend {
    /// Appends one audit record on its own (operator actions whose change is
    /// not one transaction, such as a key rotation).
    fn append_audit(&self, entry: AuditEntry) -> impl StoreFuture<()> {
        self.write(entry, |db, entry| Box::pin(outbox::append_audit(db, entry)))
    }

    /// Audit records with `seq` greater than `after`, oldest first.
    fn list_audit(&self, after: i64, limit: u32) -> impl StoreFuture<Vec<AuditRecord>> {
        self.rows_read(&AUDIT, vals![after, limit], decode::audit, ALL)
    }

    /// A program's events, newest first, optionally of one card and one type.
    /// `None` when `starting_after` names no event of the program.
    fn list_events(
        &self,
        program_id: &str,
        card_id: Option<&str>,
        kind: Option<&str>,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl StoreFuture<Option<(Vec<EventRow>, bool)>> {
        let params = vals![program_id, card_id, kind];
        page::read(
            self,
            &EVENTS,
            vals![program_id],
            params,
            starting_after,
            limit,
            decode::event,
        )
    }

    /// The first response to an `Idempotency-Key` of the program, while it lives.
    fn get_idempotency(&self, program_id: &str, key: &str) -> impl StoreFuture<Option<IdemRow>> {
        let since = now() - IDEMPOTENCY_TTL_S;
        self.first_row(
            &IDEMPOTENCY,
            vals![program_id, key, since],
            decode::idempotency,
        )
    }
}

impl<B: Backend> AuditStore for B {}
