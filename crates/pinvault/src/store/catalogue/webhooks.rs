//! Webhook endpoints and their deliveries: the outbox the workers of every
//! node claim from.

use super::outbox;
use super::page::{self, Page};
use crate::domain::time::Timestamp;
use crate::store::backend::Backend;
use crate::store::db::{ALL, Sql, args, first, rows, sql, sql_each, vals};
use crate::store::decode::{self, delivery_cols, endpoint_cols, select};
use crate::store::error::{StoreError, StoreFuture};
use crate::store::rows::{
    AttemptNext, AttemptResult, AuditEntry, ClaimedDelivery, Created, DeliveryRow, DeliveryStatus,
    Effects, IdemRow, WebhookEndpointRow,
};

const INSERT_ENDPOINT: Sql = sql!(
    "INSERT INTO webhook_endpoints (id, program_id, url, events, secret_sealed, secret_key_version, created_at, secret_key_kind, format)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
const ENDPOINTS: Page = Page {
    lookup: sql!(
        "SELECT seq FROM webhook_endpoints WHERE id = $1 AND program_id = $2 AND deleted_at IS NULL"
    ),
    list: select!(
        endpoint_cols,
        " FROM webhook_endpoints
         WHERE program_id = $1 AND deleted_at IS NULL AND seq < $2 ORDER BY seq DESC LIMIT $3"
    ),
};
const ENDPOINT: Sql = select!(
    endpoint_cols,
    " FROM webhook_endpoints WHERE id = $1 AND program_id = $2 AND deleted_at IS NULL"
);
const DELETE_ENDPOINT: Sql = sql!(
    "UPDATE webhook_endpoints SET deleted_at = $1
     WHERE id = $2 AND program_id = $3 AND deleted_at IS NULL"
);
const FAIL_PENDING: Sql = sql!(
    "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,
         last_error = 'the endpoint was deleted', lease_owner = NULL, lease_until = NULL
     WHERE endpoint_id = $1 AND status = 'pending'"
);
const DELIVERIES: Page = Page {
    lookup: sql!("SELECT seq FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2"),
    list: select!(
        delivery_cols,
        " FROM webhook_deliveries d JOIN events ev ON ev.id = d.event_id
         WHERE d.endpoint_id = $1 AND d.seq < $2 ORDER BY d.seq DESC LIMIT $3"
    ),
};
const ANY_DUE: Sql = sql!(
    "SELECT EXISTS (SELECT 1 FROM webhook_deliveries
     WHERE status = 'pending' AND next_attempt_at <= $1
       AND (lease_until IS NULL OR lease_until <= $1))"
);
/// Due rows not held by an unexpired lease. PostgreSQL skips the rows another
/// node is claiming at this moment (`SKIP LOCKED`) rather than waiting for
/// them, so two nodes never take the same attempt; SQLite has one writer.
const CLAIM: Sql = sql_each!(
    pg: "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $3
         WHERE id IN (SELECT id FROM webhook_deliveries
                      WHERE status = 'pending' AND next_attempt_at <= $2
                        AND (lease_until IS NULL OR lease_until <= $2)
                      ORDER BY next_attempt_at, seq LIMIT $4
                      FOR UPDATE SKIP LOCKED)
         RETURNING id",
    sqlite: "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $3
         WHERE id IN (SELECT id FROM webhook_deliveries
                      WHERE status = 'pending' AND next_attempt_at <= $2
                        AND (lease_until IS NULL OR lease_until <= $2)
                      ORDER BY next_attempt_at, seq LIMIT $4)
         RETURNING id",
);
const CLAIMED: Sql = sql!(
    "SELECT d.id, d.attempts, e.id, e.url, e.secret_sealed, e.secret_key_version, ev.body,
         e.secret_key_kind, d.delivered_as
     FROM webhook_deliveries d
     JOIN webhook_endpoints e ON e.id = d.endpoint_id
     JOIN events ev ON ev.id = d.event_id
     WHERE d.id = $1"
);
const RELEASE: Sql = sql!(
    "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL
     WHERE lease_owner = $1 AND status = 'pending'"
);
const FINISH: Sql = sql!(
    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = $1,
         last_response_code = $2, last_error = $3, status = $4, next_attempt_at = $5,
         delivered_at = $6, lease_owner = NULL, lease_until = NULL
     WHERE id = $7 AND lease_owner = $8 AND status = 'pending'"
);

pub trait WebhookStore: Backend {
    fn create_webhook_endpoint(
        &self,
        e: WebhookEndpointRow,
        idem: Option<IdemRow>,
        audit: AuditEntry,
    ) -> impl StoreFuture<Created> {
        async move {
            let events = serde_json::to_string(&e.events)
                .map_err(|err| StoreError::database(err.to_string()))?;
            let effects = Effects {
                events: Vec::new(),
                audit: Some(audit),
            };
            self.write(
                (e, idem, effects, events),
                |db, (e, idem, effects, events)| {
                    Box::pin(async move {
                        let row = args![
                            &e.id,
                            &e.program_id,
                            &e.url,
                            events,
                            &e.secret_sealed,
                            e.secret_key_version,
                            e.created_at,
                            e.secret_key_kind.as_str(),
                            e.format.as_str()
                        ];
                        outbox::create(db, idem.as_ref(), &INSERT_ENDPOINT, &row, effects).await
                    })
                },
            )
            .await
        }
    }

    /// A program's endpoints that are not deleted, newest first.
    fn list_webhook_endpoints(
        &self,
        program_id: &str,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl StoreFuture<Option<(Vec<WebhookEndpointRow>, bool)>> {
        page::read_in(
            self,
            &ENDPOINTS,
            vals![program_id],
            starting_after,
            limit,
            decode::endpoint,
        )
    }

    fn get_webhook_endpoint(
        &self,
        program_id: &str,
        id: &str,
    ) -> impl StoreFuture<Option<WebhookEndpointRow>> {
        self.first_row(&ENDPOINT, vals![id, program_id], decode::endpoint)
    }

    /// Deletes an endpoint; its pending deliveries fail. False if there is none.
    fn delete_webhook_endpoint(
        &self,
        program_id: &str,
        id: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> impl StoreFuture<bool> {
        async move {
            let data = (program_id.to_owned(), id.to_owned(), now, audit);
            self.write(data, |db, (p, id, now, audit)| {
                Box::pin(async move {
                    let n = db.exec(&DELETE_ENDPOINT, &args![*now, id, p]).await?;
                    if n == 1 {
                        db.exec(&FAIL_PENDING, &args![id]).await?;
                        outbox::append_audit(db, audit).await?;
                    }
                    Ok(n == 1)
                })
            })
            .await
        }
    }

    /// An endpoint's deliveries, newest first.
    fn list_deliveries(
        &self,
        endpoint_id: &str,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl StoreFuture<Option<(Vec<DeliveryRow>, bool)>> {
        page::read_in(
            self,
            &DELIVERIES,
            vals![endpoint_id],
            starting_after,
            limit,
            decode::delivery,
        )
    }

    /// Claims up to `limit` due deliveries for `owner` until `lease_until`: a
    /// conditional update, so two workers (or nodes) never claim the same
    /// attempt while a lease holds.
    fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> impl StoreFuture<Vec<ClaimedDelivery>> {
        async move {
            // Workers poll every second: where writes take one lock for
            // everything, look on a reader first, so that an idle poll never takes it.
            if self.look_before_writing() {
                let due = self.first_row(&ANY_DUE, vals![now], decode::flag).await?;
                if due != Some(true) {
                    return Ok(Vec::new());
                }
            }
            let data = (owner.to_owned(), now, lease_until, limit);
            self.write(data, |db, (owner, now, until, limit)| {
                Box::pin(async move {
                    let ids = rows(
                        db,
                        &CLAIM,
                        &args![owner, *now, *until, *limit],
                        decode::text,
                        ALL,
                    )
                    .await?;
                    let mut out = Vec::with_capacity(ids.len());
                    for id in &ids {
                        if let Some(d) =
                            first(db, &CLAIMED, &args![id], decode::claimed_delivery).await?
                        {
                            out.push(d);
                        }
                    }
                    Ok(out)
                })
            })
            .await
        }
    }

    /// Gives back every claim `owner` still holds (a worker stopped before its
    /// attempts ended), so another worker takes them at once rather than when
    /// the leases expire; the attempts count as not made. Returns how many.
    fn release_deliveries(&self, owner: &str) -> impl StoreFuture<u64> {
        self.exec_one(&RELEASE, vals![owner])
    }

    /// Records an attempt of a delivery `owner` holds; false (nothing written)
    /// when the lease was lost.
    fn finish_delivery(
        &self,
        id: &str,
        owner: &str,
        result: AttemptResult,
    ) -> impl StoreFuture<bool> {
        async move {
            let (status, next_at, delivered_at) = match result.next {
                AttemptNext::Delivered => (DeliveryStatus::Delivered, None, Some(result.at)),
                AttemptNext::RetryAt(t) => (DeliveryStatus::Pending, Some(t), None),
                AttemptNext::GiveUp => (DeliveryStatus::Failed, None, None),
            };
            let data = (
                id.to_owned(),
                owner.to_owned(),
                result,
                status,
                next_at,
                delivered_at,
            );
            self.write(
                data,
                |db, (id, owner, result, status, next_at, delivered_at)| {
                    Box::pin(async move {
                        let args = args![
                            result.at,
                            result.response_code,
                            &result.error,
                            status.as_str(),
                            *next_at,
                            *delivered_at,
                            id,
                            owner
                        ];
                        Ok(db.exec(&FINISH, &args).await? == 1)
                    })
                },
            )
            .await
        }
    }
}

impl<B: Backend> WebhookStore for B {}
