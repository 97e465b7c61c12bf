//! PostgreSQL: for many stateless nodes on one database. Every piece of state
//! (tokens and their attempts, fail counts, idempotency records, data key
//! versions) is in the database, and every rule that must hold under
//! concurrency is one conditional statement or a row lock taken in a fixed
//! order (the card before its tokens), at READ COMMITTED. A transaction the
//! server aborts as a serialization failure or a deadlock is run again; nothing
//! else is retried, because a write whose answer was lost may have committed.
//!
//! Connections are plain TCP (`NoTls`): put the database on a private network
//! or a local socket until TLS to the database is added.
//!
//! Events and the audit trail are written in the transaction of the change
//! they record. Webhook workers on every node claim due deliveries with
//! `FOR UPDATE SKIP LOCKED` and a lease, so two nodes never deliver the same
//! attempt; audit appends queue on the one `audit_head` row, so the hash chain
//! stays a chain whatever node writes.

mod pool;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, Row, Transaction};

pub use pool::PgSettings;
use pool::Pool;

use super::*;
use crate::domain::time::now;
use crate::domain::token;

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/postgres/0002_zone_keys.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/postgres/0003_transport_keys.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/postgres/0004_events_audit.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/postgres/0005_staged_pin.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/postgres/0006_live_tokens_index.sql"),
    ),
];

/// Times a transaction is run again after a serialization failure or deadlock.
const RETRIES: u32 = 5;

/// Key of the advisory lock that lets one node at a time migrate the schema.
const MIGRATION_LOCK: i64 = 0x7069_6e76_6175_6c74; // "pinvault"

#[derive(Clone)]
pub struct PgStore {
    pool: Arc<Pool>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("settings", self.pool.settings())
            .finish_non_exhaustive()
    }
}

/// What goes wrong inside a transaction: the database's error, or a row that
/// does not decode.
#[derive(Debug)]
enum PgErr {
    Pg(tokio_postgres::Error),
    Decode(String),
}

impl From<tokio_postgres::Error> for PgErr {
    fn from(e: tokio_postgres::Error) -> Self {
        PgErr::Pg(e)
    }
}

type PgResult<T> = Result<T, PgErr>;
type TxFuture<'a, T> = Pin<Box<dyn Future<Output = PgResult<T>> + Send + 'a>>;

fn store_error(e: PgErr) -> StoreError {
    match e {
        PgErr::Decode(m) => StoreError::Database(m),
        PgErr::Pg(e) => match e.as_db_error() {
            // Class 23: integrity constraint violation.
            Some(db) if db.code().code().starts_with("23") => StoreError::Conflict(db.to_string()),
            Some(db) => StoreError::Database(db.to_string()),
            None => StoreError::Database(e.to_string()),
        },
    }
}

fn retryable(e: &PgErr) -> bool {
    matches!(e, PgErr::Pg(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED))
}

fn is_db_error(e: &PgErr) -> bool {
    matches!(e, PgErr::Pg(e) if e.as_db_error().is_some())
}

fn decode(what: &str) -> PgErr {
    PgErr::Decode(format!("bad {what} in the database"))
}

fn u32_at(r: &Row, idx: usize) -> PgResult<u32> {
    let v: i64 = r.try_get(idx)?;
    u32::try_from(v).map_err(|_| decode(r.columns()[idx].name()))
}

fn hash32(r: &Row, idx: usize) -> PgResult<SecretHash> {
    let v: Vec<u8> = r.try_get(idx)?;
    v.try_into().map_err(|_| decode("hash"))
}

impl PgStore {
    /// Connects (checking the database answers) and brings the schema up to
    /// date. Safe when several nodes start at once: one migrates, the others
    /// wait for it and find nothing left to do.
    pub async fn open(url: &str, settings: PgSettings) -> StoreResult<Self> {
        let config: Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))?;
        let store = PgStore {
            pool: Pool::new(config, settings),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.write(|tx| {
            Box::pin(async move {
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                    .await?;
                tx.batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                )
                .await?;
                for (version, sql) in MIGRATIONS {
                    let done = tx
                        .query_opt(
                            "SELECT 1 FROM schema_migrations WHERE version = $1",
                            &[version],
                        )
                        .await?
                        .is_some();
                    if !done {
                        tx.batch_execute(sql).await?;
                        tx.execute(
                            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                            &[version, &now()],
                        )
                        .await?;
                    }
                }
                Ok(())
            })
        })
        .await
    }

    /// Longest one database operation may take from the client's side (the
    /// server enforces the statement timeout; this covers a connection that
    /// went silent).
    fn operation_timeout(&self) -> Duration {
        self.pool.settings().statement_timeout * 3
    }

    /// Runs `f` in a transaction, again (up to [`RETRIES`] times) when the
    /// database aborts it as a serialization failure or deadlock. `f` is called
    /// once per try, so it must own (or clone) what it needs.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send,
        F: for<'a> Fn(&'a Transaction<'a>) -> TxFuture<'a, T> + Send + Sync,
    {
        let mut attempt = 0;
        loop {
            let mut conn = self.pool.get().await?;
            let run = async {
                let tx = conn.client().transaction().await?;
                let out = f(&tx).await?;
                tx.commit().await?;
                Ok::<T, PgErr>(out)
            };
            let result = match tokio::time::timeout(self.operation_timeout(), run).await {
                Ok(result) => result,
                Err(_) => {
                    conn.discard();
                    return Err(StoreError::Database(
                        "the database did not answer in time".into(),
                    ));
                }
            };
            match result {
                Ok(out) => return Ok(out),
                Err(e) if retryable(&e) && attempt < RETRIES => {
                    attempt += 1;
                    tracing::debug!(
                        attempt,
                        "transaction aborted by the database; running it again"
                    );
                    drop(conn);
                    // A short, growing pause so the transactions that collided
                    // do not collide again at once.
                    tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                }
                Err(e) => {
                    if !is_db_error(&e) {
                        conn.discard();
                    }
                    return Err(store_error(e));
                }
            }
        }
    }

    /// Runs `f` on a pooled connection outside an explicit transaction (reads
    /// of one statement, or reads that need no snapshot across statements).
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send,
        F: for<'a> FnOnce(&'a Client) -> TxFuture<'a, T> + Send,
    {
        let mut conn = self.pool.get().await?;
        let result = tokio::time::timeout(self.operation_timeout(), f(conn.client())).await;
        match result {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => {
                if !is_db_error(&e) {
                    conn.discard();
                }
                Err(store_error(e))
            }
            Err(_) => {
                conn.discard();
                Err(StoreError::Database(
                    "the database did not answer in time".into(),
                ))
            }
        }
    }
}

const PROGRAM_COLS: &str = "id, name, mode, settings, created_at, updated_at";

/// A program from `PROGRAM_COLS` starting at column `at` (joins put it after others).
fn program_row_at(r: &Row, at: usize) -> PgResult<ProgramRow> {
    let mode: String = r.try_get(at + 2)?;
    let settings: &str = r.try_get(at + 3)?;
    let id: String = r.try_get(at)?;
    Ok(ProgramRow {
        settings: parse_settings(&id, settings).ok_or_else(|| decode("settings"))?,
        id,
        name: r.try_get(at + 1)?,
        mode: Mode::parse(&mode).ok_or_else(|| decode("mode"))?,
        created_at: r.try_get(at + 4)?,
        updated_at: r.try_get(at + 5)?,
    })
}

const API_KEY_COLS: &str = "id, program_id, key_hash, hint, created_at, revoked_at";

fn api_key_row(r: &Row) -> PgResult<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.try_get(0)?,
        program_id: r.try_get(1)?,
        key_hash: hash32(r, 2)?,
        hint: r.try_get(3)?,
        created_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
    })
}

const CARD_COLS: &str = "id, program_id, pan_hash, lookup_key_version, pan_sealed, pan_key_version, \
    last4, expiry, external_id, status, inactive_by_block, pin_block, pin_key_version, pin_set_by, \
    pin_updated_at, fail_count, last_failed_at, pin_blocked, created_at, updated_at, \
    staged_expires_at, staged_token_id, staged_pin_block, staged_pin_key_version";

fn card_row(r: &Row) -> PgResult<CardRow> {
    card_row_at(r, 0)
}

/// A card from `CARD_COLS` starting at column `at` (joins put it after others).
fn card_row_at(r: &Row, at: usize) -> PgResult<CardRow> {
    let status: String = r.try_get(at + 9)?;
    let set_by: String = r.try_get(at + 13)?;
    Ok(CardRow {
        id: r.try_get(at)?,
        program_id: r.try_get(at + 1)?,
        pan_hash: r.try_get(at + 2)?,
        lookup_key_version: u32_at(r, at + 3)?,
        pan_sealed: r.try_get(at + 4)?,
        pan_key_version: u32_at(r, at + 5)?,
        last4: r.try_get(at + 6)?,
        expiry: r.try_get(at + 7)?,
        external_id: r.try_get(at + 8)?,
        status: CardStatus::parse(&status).ok_or_else(|| decode("status"))?,
        inactive_by_block: r.try_get(at + 10)?,
        pin_block: r.try_get(at + 11)?,
        pin_key_version: u32_at(r, at + 12)?,
        pin_set_by: SetBy::parse(&set_by).ok_or_else(|| decode("pin_set_by"))?,
        pin_updated_at: r.try_get(at + 14)?,
        fail_count: u32_at(r, at + 15)?,
        last_failed_at: r.try_get(at + 16)?,
        pin_blocked: r.try_get(at + 17)?,
        created_at: r.try_get(at + 18)?,
        updated_at: r.try_get(at + 19)?,
        staged_expires_at: r.try_get(at + 20)?,
        staged_token_id: r.try_get(at + 21)?,
        staged_pin_block: r.try_get(at + 22)?,
        staged_pin_key_version: r
            .try_get::<_, Option<i64>>(at + 23)?
            .map(|v| u32::try_from(v).map_err(|_| decode("staged_pin_key_version")))
            .transpose()?,
    })
}

fn card_rows(rows: &[Row]) -> PgResult<Vec<CardRow>> {
    rows.iter().map(card_row).collect()
}

const TOKEN_COLS: &str = "id, token_hash, card_id, type, cvm, created_at, expires_at, attempts_remaining, used_at, superseded_at";

fn token_row(r: &Row) -> PgResult<TokenRow> {
    let kind: String = r.try_get(3)?;
    Ok(TokenRow {
        id: r.try_get(0)?,
        token_hash: hash32(r, 1)?,
        card_id: r.try_get(2)?,
        kind: TokenType::parse(&kind).ok_or_else(|| decode("type"))?,
        cvm: r.try_get(4)?,
        created_at: r.try_get(5)?,
        expires_at: r.try_get(6)?,
        attempts_remaining: u32_at(r, 7)?,
        used_at: r.try_get(8)?,
        superseded_at: r.try_get(9)?,
    })
}

const ZONE_KEY_COLS: &str = "id, name, algorithm, kcv, wrapped, created_at";

fn zone_key_row(r: &Row) -> PgResult<ZoneKeyRow> {
    let algorithm: String = r.try_get(2)?;
    Ok(ZoneKeyRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        algorithm: ZoneAlgorithm::parse(&algorithm).ok_or_else(|| decode("zone key algorithm"))?,
        kcv: r.try_get(3)?,
        wrapped: r.try_get(4)?,
        created_at: r.try_get(5)?,
    })
}

async fn insert_api_key(tx: &Transaction<'_>, key: &ApiKeyRow) -> PgResult<()> {
    tx.execute(
        "INSERT INTO api_keys (id, program_id, key_hash, hint, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[&key.id, &key.program_id, &&key.key_hash[..], &key.hint, &key.created_at],
    )
    .await?;
    Ok(())
}

/// Inserts an idempotency record (if there is one); false if the key is taken.
/// It goes in before what it records, so a concurrent request with the same key
/// (on any node) waits for this transaction and then writes nothing. `ON CONFLICT DO
/// NOTHING` rather than catching the error: an error would abort the
/// transaction.
async fn insert_idem(tx: &Transaction<'_>, idem: Option<&IdemRow>) -> PgResult<bool> {
    let Some(idem) = idem else { return Ok(true) };
    // Idempotency records live 24 hours; expired ones are cleared as new ones come.
    tx.execute(
        "DELETE FROM idempotency_keys WHERE program_id = $1 AND key = $2 AND created_at <= $3",
        &[&idem.program_id, &idem.key, &(idem.created_at - 86_400)],
    )
    .await?;
    let n = tx
        .execute(
            "INSERT INTO idempotency_keys (program_id, key, request_hash, status, response_sealed, key_version, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &idem.program_id,
                &idem.key,
                &idem.request_hash,
                &i64::from(idem.status),
                &idem.response_sealed,
                &i64::from(idem.key_version),
                &idem.created_at,
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Reads a token and says why it cannot be redeemed now.
async fn token_refusal(
    tx: &Transaction<'_>,
    token_id: &str,
    now: Timestamp,
) -> PgResult<TokenError> {
    let row = tx
        .query_opt(
            &format!("SELECT {TOKEN_COLS} FROM control_tokens WHERE id = $1"),
            &[&token_id],
        )
        .await?;
    Ok(match row {
        None => TokenError::Invalid,
        Some(r) => {
            let t = token_row(&r)?;
            token::state(
                t.used_at,
                t.superseded_at,
                t.expires_at,
                t.attempts_remaining,
                now,
            )
            .err()
            // Valid when re-read: only possible if the clock moved backwards; refuse anyway.
            .unwrap_or(TokenError::Expired)
        }
    })
}

/// Locks a card's row for the rest of the transaction. Every transaction that
/// writes a card's tokens takes this lock first, so they queue in one order
/// (and "newest token only" holds across nodes).
async fn lock_card(tx: &Transaction<'_>, card_id: &str) -> PgResult<bool> {
    Ok(tx
        .query_opt("SELECT 1 FROM cards WHERE id = $1 FOR UPDATE", &[&card_id])
        .await?
        .is_some())
}

/// The assignments that remove a card's staged PIN, for `UPDATE … SET`.
const CLEAR_STAGED: &str = "staged_pin_block = NULL, staged_pin_key_version = NULL, \
    staged_expires_at = NULL, staged_token_id = NULL";

/// The condition under which a token may still be used, for `WHERE` clauses.
const TOKEN_USABLE: &str =
    "used_at IS NULL AND superseded_at IS NULL AND expires_at > $2 AND attempts_remaining > 0";

/// Writes a change's events (with a delivery for each subscribed endpoint of
/// the program) and its audit record, inside the change's transaction.
async fn apply_effects(tx: &Transaction<'_>, effects: &Effects) -> PgResult<()> {
    for event in &effects.events {
        insert_event(tx, event).await?;
    }
    if let Some(entry) = &effects.audit {
        append_audit_tx(tx, entry).await?;
    }
    Ok(())
}

async fn insert_event(tx: &Transaction<'_>, ev: &EventRow) -> PgResult<()> {
    tx.execute(
        "INSERT INTO events (id, program_id, card_id, type, created_at, body) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&ev.id, &ev.program_id, &ev.card_id, &ev.kind, &ev.created_at, &ev.body],
    )
    .await?;
    let endpoints = tx
        .query(
            "SELECT id, events FROM webhook_endpoints WHERE program_id = $1 AND deleted_at IS NULL",
            &[&ev.program_id],
        )
        .await?;
    for r in endpoints {
        let endpoint_id: String = r.try_get(0)?;
        let types: String = r.try_get(1)?;
        let types: Vec<String> = serde_json::from_str(&types).map_err(|_| decode("events"))?;
        if types.iter().any(|t| t == &ev.kind) {
            tx.execute(
                "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, status, attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, 'pending', 0, $4, $4)",
                &[&crate::domain::ids::new_id("whd_"), &endpoint_id, &ev.id, &ev.created_at],
            )
            .await?;
        }
    }
    Ok(())
}

/// Appends a record to the chain. The single `audit_head` row is locked
/// (`FOR UPDATE`) for the rest of the transaction, so appends from every node
/// queue one behind the other and each sees the head the previous one left.
/// It is taken last in every transaction (after any card row), so it never
/// waits in a cycle.
async fn append_audit_tx(tx: &Transaction<'_>, entry: &AuditEntry) -> PgResult<()> {
    let head = tx
        .query_one("SELECT seq, hash FROM audit_head FOR UPDATE", &[])
        .await?;
    let seq: i64 = head.try_get::<_, i64>(0)? + 1;
    let prev: Vec<u8> = head.try_get(1)?;
    let hash = crate::audit::chain_hash(&prev, seq, entry);
    tx.execute(
        "INSERT INTO audit_log (seq, at, actor, request_id, source, action, program_id, card_id, details, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &seq,
            &entry.at,
            &entry.actor,
            &entry.request_id,
            &entry.source,
            &entry.action,
            &entry.program_id,
            &entry.card_id,
            &entry.details,
            &prev,
            &&hash[..],
        ],
    )
    .await?;
    tx.execute(
        "UPDATE audit_head SET seq = $1, hash = $2",
        &[&seq, &&hash[..]],
    )
    .await?;
    Ok(())
}

fn audit_row(r: &Row) -> PgResult<AuditRecord> {
    Ok(AuditRecord {
        seq: r.try_get(0)?,
        entry: AuditEntry {
            at: r.try_get(1)?,
            actor: r.try_get(2)?,
            request_id: r.try_get(3)?,
            source: r.try_get(4)?,
            action: r.try_get(5)?,
            program_id: r.try_get(6)?,
            card_id: r.try_get(7)?,
            details: r.try_get(8)?,
        },
        prev_hash: r.try_get(9)?,
        hash: r.try_get(10)?,
    })
}

const EVENT_COLS: &str = "id, program_id, card_id, type, created_at, body";

fn event_row(r: &Row) -> PgResult<EventRow> {
    Ok(EventRow {
        id: r.try_get(0)?,
        program_id: r.try_get(1)?,
        card_id: r.try_get(2)?,
        kind: r.try_get(3)?,
        created_at: r.try_get(4)?,
        body: r.try_get(5)?,
    })
}

const ENDPOINT_COLS: &str =
    "id, program_id, url, events, secret_sealed, secret_key_version, created_at";

fn endpoint_row(r: &Row) -> PgResult<WebhookEndpointRow> {
    let events: String = r.try_get(3)?;
    Ok(WebhookEndpointRow {
        id: r.try_get(0)?,
        program_id: r.try_get(1)?,
        url: r.try_get(2)?,
        events: serde_json::from_str(&events).map_err(|_| decode("events"))?,
        secret_sealed: r.try_get(4)?,
        secret_key_version: u32_at(r, 5)?,
        created_at: r.try_get(6)?,
    })
}

const DELIVERY_COLS: &str = "d.id, d.endpoint_id, d.event_id, ev.type, d.status, d.attempts, d.next_attempt_at, \
    d.last_attempt_at, d.last_response_code, d.last_error, d.delivered_at, d.created_at";

fn delivery_row(r: &Row) -> PgResult<DeliveryRow> {
    let status: String = r.try_get(4)?;
    let code: Option<i64> = r.try_get(8)?;
    Ok(DeliveryRow {
        id: r.try_get(0)?,
        endpoint_id: r.try_get(1)?,
        event_id: r.try_get(2)?,
        event_type: r.try_get(3)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| decode("status"))?,
        attempts: u32_at(r, 5)?,
        next_attempt_at: r.try_get(6)?,
        last_attempt_at: r.try_get(7)?,
        last_response_code: code
            .map(|c| u16::try_from(c).map_err(|_| decode("last_response_code")))
            .transpose()?,
        last_error: r.try_get(9)?,
        delivered_at: r.try_get(10)?,
        created_at: r.try_get(11)?,
    })
}

/// A query parameter.
type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// One query of a cursor-paginated list (API.md: `limit`, `starting_after`),
/// newest first by `seq`.
struct PageQuery<'a> {
    /// Finds the `seq` of the `starting_after` row: `$1` its id, then `scope`
    /// (so an id of another program's list is not found).
    lookup: &'static str,
    scope: &'a [Param<'a>],
    /// Selects the rows: `params`, then the `seq` to stay below and the row
    /// limit as its last two parameters.
    list: String,
    params: &'a [Param<'a>],
}

/// A page of at most `limit` rows and whether more follow; `None` when
/// `starting_after` names no row of the list.
async fn list_page<T>(
    c: &Client,
    q: PageQuery<'_>,
    starting_after: Option<&str>,
    limit: u32,
    row: fn(&Row) -> PgResult<T>,
) -> PgResult<Option<(Vec<T>, bool)>> {
    let before: i64 = match starting_after {
        None => i64::MAX,
        Some(id) => {
            let mut args: Vec<Param<'_>> = vec![&id];
            args.extend_from_slice(q.scope);
            match c.query_opt(q.lookup, &args).await? {
                Some(r) => r.try_get(0)?,
                None => return Ok(None),
            }
        }
    };
    let fetch = i64::from(limit) + 1;
    let mut args: Vec<Param<'_>> = q.params.to_vec();
    args.push(&before);
    args.push(&fetch);
    let mut rows = c
        .query(&q.list, &args)
        .await?
        .iter()
        .map(row)
        .collect::<PgResult<Vec<T>>>()?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok(Some((rows, has_more)))
}

/// A program's card, locked for the rest of the transaction.
async fn lock_card_row(
    tx: &Transaction<'_>,
    program_id: &str,
    card_id: &str,
) -> PgResult<Option<CardRow>> {
    tx.query_opt(
        &format!("SELECT {CARD_COLS} FROM cards WHERE id = $1 AND program_id = $2 FOR UPDATE"),
        &[&card_id, &program_id],
    )
    .await?
    .map(|r| card_row(&r))
    .transpose()
}

impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| {
            Box::pin(async move {
                c.simple_query("SELECT 1").await?;
                Ok(())
            })
        })
        .await
    }

    async fn data_keys(&self) -> StoreResult<Vec<DataKeyRow>> {
        self.read(|c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT kind, version, wrapped, created_at FROM data_keys ORDER BY kind, version",
                        &[],
                    )
                    .await?;
                rows.iter()
                    .map(|r| {
                        let kind: String = r.try_get(0)?;
                        Ok(DataKeyRow {
                            kind: KeyKind::parse(&kind).ok_or_else(|| decode("key kind"))?,
                            version: u32_at(r, 1)?,
                            wrapped: r.try_get(2)?,
                            created_at: r.try_get(3)?,
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn insert_data_key(&self, row: DataKeyRow) -> StoreResult<bool> {
        self.write(|tx| {
            let row = row.clone();
            Box::pin(async move {
                let n = tx
                    .execute(
                        "INSERT INTO data_keys (kind, version, wrapped, created_at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT DO NOTHING",
                        &[
                            &row.kind.as_str(),
                            &i64::from(row.version),
                            &row.wrapped,
                            &row.created_at,
                        ],
                    )
                    .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    async fn key_usage(&self) -> StoreResult<Vec<(KeyKind, u32, u64)>> {
        self.read(|c| {
            Box::pin(async move {
                let mut out = Vec::new();
                for (kind, sql) in [
                    (
                        KeyKind::Pin,
                        "SELECT pin_key_version, COUNT(*) FROM cards GROUP BY 1",
                    ),
                    (
                        KeyKind::Pan,
                        "SELECT pan_key_version, COUNT(*) FROM cards GROUP BY 1",
                    ),
                    (
                        KeyKind::Lookup,
                        "SELECT lookup_key_version, COUNT(*) FROM cards GROUP BY 1",
                    ),
                    (
                        KeyKind::Pin,
                        "SELECT staged_pin_key_version, COUNT(*) FROM cards
                         WHERE staged_pin_key_version IS NOT NULL GROUP BY 1",
                    ),
                    (
                        KeyKind::Pan,
                        "SELECT key_version, COUNT(*) FROM idempotency_keys GROUP BY 1",
                    ),
                    (
                        KeyKind::Pan,
                        "SELECT secret_key_version, COUNT(*) FROM webhook_endpoints GROUP BY 1",
                    ),
                ] {
                    for r in c.query(sql, &[]).await? {
                        let count: i64 = r.try_get(1)?;
                        out.push((kind, u32_at(&r, 0)?, count.unsigned_abs()));
                    }
                }
                Ok(out)
            })
        })
        .await
    }

    async fn cards_under_old_keys(
        &self,
        pin: u32,
        pan: u32,
        lookup: u32,
        limit: u32,
    ) -> StoreResult<Vec<CardRow>> {
        self.read(move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        &format!(
                            "SELECT {CARD_COLS} FROM cards
                             WHERE pin_key_version < $1 OR pan_key_version < $2 OR lookup_key_version < $3
                                OR staged_pin_key_version < $1
                             ORDER BY seq LIMIT $4"
                        ),
                        &[
                            &i64::from(pin),
                            &i64::from(pan),
                            &i64::from(lookup),
                            &i64::from(limit),
                        ],
                    )
                    .await?;
                card_rows(&rows)
            })
        })
        .await
    }

    async fn rewrap_card(&self, w: Rewrap) -> StoreResult<bool> {
        self.write(|tx| {
            let w = w.clone();
            Box::pin(async move {
                let staged = w.staged.as_ref();
                let n = tx
                    .execute(
                        "UPDATE cards SET pin_block = $1, pin_key_version = $2, pan_sealed = $3, pan_key_version = $4,
                             pan_hash = $5, lookup_key_version = $6, staged_pin_block = $10, staged_pin_key_version = $11
                         WHERE id = $7 AND pin_block = $8 AND staged_pin_block IS NOT DISTINCT FROM $9",
                        &[
                            &w.pin.block,
                            &i64::from(w.pin.key_version),
                            &w.pan_sealed,
                            &i64::from(w.pan_key_version),
                            &w.pan_hash,
                            &i64::from(w.lookup_key_version),
                            &w.card_id,
                            &w.old_pin_block,
                            &staged.map(|s| &s.old_block),
                            &staged.map(|s| &s.block),
                            &staged.map(|s| i64::from(s.key_version)),
                        ],
                    )
                    .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    async fn create_program(&self, p: ProgramRow, key: ApiKeyRow) -> StoreResult<()> {
        let settings =
            serde_json::to_string(&p.settings).map_err(|e| StoreError::Database(e.to_string()))?;
        self.write(|tx| {
            let (p, key, settings) = (p.clone(), key.clone(), settings.clone());
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO programs (id, name, mode, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&p.id, &p.name, &p.mode.as_str(), &settings, &p.created_at, &p.updated_at],
                )
                .await?;
                insert_api_key(tx, &key).await
            })
        })
        .await
    }

    async fn get_program(&self, id: &str) -> StoreResult<Option<ProgramRow>> {
        let id = id.to_owned();
        self.read(move |c| {
            Box::pin(async move {
                c.query_opt(
                    &format!("SELECT {PROGRAM_COLS} FROM programs WHERE id = $1"),
                    &[&id],
                )
                .await?
                .map(|r| program_row_at(&r, 0))
                .transpose()
            })
        })
        .await
    }

    async fn list_programs(&self) -> StoreResult<Vec<ProgramRow>> {
        self.read(|c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        &format!("SELECT {PROGRAM_COLS} FROM programs ORDER BY seq"),
                        &[],
                    )
                    .await?;
                rows.iter().map(|r| program_row_at(r, 0)).collect()
            })
        })
        .await
    }

    async fn update_program(
        &self,
        id: &str,
        settings: Settings,
        mode: Mode,
        now: Timestamp,
        audit: AuditEntry,
    ) -> StoreResult<bool> {
        let settings =
            serde_json::to_string(&settings).map_err(|e| StoreError::Database(e.to_string()))?;
        let id = id.to_owned();
        self.write(|tx| {
            let (id, settings, audit) = (id.clone(), settings.clone(), audit.clone());
            Box::pin(async move {
                let n = tx
                    .execute(
                        "UPDATE programs SET settings = $1, mode = $2, updated_at = $3 WHERE id = $4",
                        &[&settings, &mode.as_str(), &now, &id],
                    )
                    .await?;
                if n == 1 {
                    append_audit_tx(tx, &audit).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    async fn authenticate(
        &self,
        key_hash: SecretHash,
    ) -> StoreResult<Option<(ApiKeyRow, ProgramRow)>> {
        self.read(move |c| {
            Box::pin(async move {
                c.query_opt(
                    "SELECT k.id, k.program_id, k.key_hash, k.hint, k.created_at, k.revoked_at,
                            p.id, p.name, p.mode, p.settings, p.created_at, p.updated_at
                     FROM api_keys k JOIN programs p ON p.id = k.program_id
                     WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
                    &[&&key_hash[..]],
                )
                .await?
                .map(|r| Ok((api_key_row(&r)?, program_row_at(&r, 6)?)))
                .transpose()
            })
        })
        .await
    }

    async fn authenticate_card(
        &self,
        key_hash: SecretHash,
        card_id: &str,
    ) -> StoreResult<Option<AuthenticatedCard>> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let cols = CARD_COLS
                .split(',')
                .map(|c| format!("c.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "SELECT k.id, k.program_id, k.key_hash, k.hint, k.created_at, k.revoked_at,
                        p.id, p.name, p.mode, p.settings, p.created_at, p.updated_at, {cols}
                 FROM api_keys k JOIN programs p ON p.id = k.program_id
                 LEFT JOIN cards c ON c.id = $2 AND c.program_id = k.program_id
                 WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
            )
        });
        let card_id = card_id.to_owned();
        self.read(move |c| {
            Box::pin(async move {
                c.query_opt(SQL.as_str(), &[&&key_hash[..], &card_id])
                    .await?
                    .map(|r| {
                        let card = match r.try_get::<_, Option<String>>(12)? {
                            None => None,
                            Some(_) => Some(card_row_at(&r, 12)?),
                        };
                        Ok((api_key_row(&r)?, program_row_at(&r, 6)?, card))
                    })
                    .transpose()
            })
        })
        .await
    }

    async fn create_api_key(&self, key: ApiKeyRow) -> StoreResult<()> {
        self.write(|tx| {
            let key = key.clone();
            Box::pin(async move { insert_api_key(tx, &key).await })
        })
        .await
    }

    async fn list_api_keys(&self, program_id: &str) -> StoreResult<Vec<ApiKeyRow>> {
        let program_id = program_id.to_owned();
        self.read(move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        &format!(
                            "SELECT {API_KEY_COLS} FROM api_keys WHERE program_id = $1 ORDER BY seq"
                        ),
                        &[&program_id],
                    )
                    .await?;
                rows.iter().map(api_key_row).collect()
            })
        })
        .await
    }

    async fn revoke_api_key(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(|tx| {
            let id = id.clone();
            Box::pin(async move {
                let n = tx
                    .execute(
                        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                        &[&now, &id],
                    )
                    .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    async fn create_card(
        &self,
        c: CardRow,
        idem: Option<IdemRow>,
        effects: Effects,
    ) -> StoreResult<Created> {
        self.write(|tx| {
            let (c, idem, effects) = (c.clone(), idem.clone(), effects.clone());
            Box::pin(async move {
                if !insert_idem(tx, idem.as_ref()).await? {
                    return Ok(Created::IdempotencyKeyTaken);
                }
                tx.execute(
                    "INSERT INTO cards (id, program_id, pan_hash, lookup_key_version, pan_sealed, pan_key_version,
                        last4, expiry, external_id, status, inactive_by_block, pin_block, pin_key_version, pin_set_by,
                        pin_updated_at, fail_count, last_failed_at, pin_blocked, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
                    &[
                        &c.id,
                        &c.program_id,
                        &c.pan_hash,
                        &i64::from(c.lookup_key_version),
                        &c.pan_sealed,
                        &i64::from(c.pan_key_version),
                        &c.last4,
                        &c.expiry,
                        &c.external_id,
                        &c.status.as_str(),
                        &c.inactive_by_block,
                        &c.pin_block,
                        &i64::from(c.pin_key_version),
                        &c.pin_set_by.as_str(),
                        &c.pin_updated_at,
                        &i64::from(c.fail_count),
                        &c.last_failed_at,
                        &c.pin_blocked,
                        &c.created_at,
                        &c.updated_at,
                    ],
                )
                .await?;
                apply_effects(tx, &effects).await?;
                Ok(Created::Created)
            })
        })
        .await
    }

    async fn get_card(&self, program_id: &str, card_id: &str) -> StoreResult<Option<CardRow>> {
        let (program_id, card_id) = (program_id.to_owned(), card_id.to_owned());
        self.read(move |c| {
            Box::pin(async move {
                c.query_opt(
                    &format!("SELECT {CARD_COLS} FROM cards WHERE id = $1 AND program_id = $2"),
                    &[&card_id, &program_id],
                )
                .await?
                .map(|r| card_row(&r))
                .transpose()
            })
        })
        .await
    }

    async fn card_of_token(&self, card_id: &str) -> StoreResult<Option<CardRow>> {
        let card_id = card_id.to_owned();
        self.read(move |c| {
            Box::pin(async move {
                c.query_opt(
                    &format!("SELECT {CARD_COLS} FROM cards WHERE id = $1"),
                    &[&card_id],
                )
                .await?
                .map(|r| card_row(&r))
                .transpose()
            })
        })
        .await
    }

    async fn list_cards(
        &self,
        program_id: &str,
        external_id: Option<&str>,
        limit: u32,
        starting_after: Option<&str>,
    ) -> StoreResult<Option<(Vec<CardRow>, bool)>> {
        let program_id = program_id.to_owned();
        let external_id = external_id.map(str::to_owned);
        let starting_after = starting_after.map(str::to_owned);
        self.read(move |c| {
            Box::pin(async move {
                let q = PageQuery {
                    lookup: "SELECT seq FROM cards WHERE id = $1 AND program_id = $2",
                    scope: &[&program_id],
                    list: format!(
                        "SELECT {CARD_COLS} FROM cards
                         WHERE program_id = $1 AND ($2::text IS NULL OR external_id = $2) AND seq < $3
                         ORDER BY seq DESC LIMIT $4"
                    ),
                    params: &[&program_id, &external_id],
                };
                list_page(c, q, starting_after.as_deref(), limit, card_row).await
            })
        })
        .await
    }

    async fn set_card_status<F>(
        &self,
        program_id: &str,
        card_id: &str,
        status: CardStatus,
        now: Timestamp,
        effects: F,
    ) -> StoreResult<Option<CardRow>>
    where
        F: Fn(&CardRow, &CardRow) -> Effects + Send + Sync + 'static,
    {
        let (program_id, card_id) = (program_id.to_owned(), card_id.to_owned());
        let effects = Arc::new(effects);
        self.write(|tx| {
            let (program_id, card_id, effects) = (program_id.clone(), card_id.clone(), effects.clone());
            Box::pin(async move {
                // The card as it is before the change, locked: the effects are
                // computed from it and from the row the update returns.
                let Some(before) = lock_card_row(tx, &program_id, &card_id).await? else {
                    return Ok(None);
                };
                // One statement: the CASEs read the row as it is when the lock
                // is taken, so a concurrent change cannot slip in between.
                let after = tx.query_opt(
                    &format!(
                        "UPDATE cards SET status = $1, updated_at = $2, inactive_by_block = FALSE,
                             pin_blocked = CASE WHEN $1 = 'active' AND inactive_by_block THEN FALSE ELSE pin_blocked END,
                             fail_count = CASE WHEN $1 = 'active' AND inactive_by_block THEN 0 ELSE fail_count END
                         WHERE id = $3 AND program_id = $4
                         RETURNING {CARD_COLS}"
                    ),
                    &[&status.as_str(), &now, &card_id, &program_id],
                )
                .await?
                .map(|r| card_row(&r))
                .transpose()?;
                if let Some(after) = &after {
                    apply_effects(tx, &effects(&before, after)).await?;
                }
                Ok(after)
            })
        })
        .await
    }

    async fn unblock_pin<F>(
        &self,
        program_id: &str,
        card_id: &str,
        now: Timestamp,
        effects: F,
    ) -> StoreResult<Option<CardRow>>
    where
        F: Fn(&CardRow, &CardRow) -> Effects + Send + Sync + 'static,
    {
        let (program_id, card_id) = (program_id.to_owned(), card_id.to_owned());
        let effects = Arc::new(effects);
        self.write(|tx| {
            let (program_id, card_id, effects) =
                (program_id.clone(), card_id.clone(), effects.clone());
            Box::pin(async move {
                let Some(before) = lock_card_row(tx, &program_id, &card_id).await? else {
                    return Ok(None);
                };
                let after = tx
                    .query_opt(
                        &format!(
                            "UPDATE cards SET fail_count = 0, pin_blocked = FALSE, updated_at = $1,
                             status = CASE WHEN inactive_by_block THEN 'active' ELSE status END,
                             inactive_by_block = FALSE
                         WHERE id = $2 AND program_id = $3
                         RETURNING {CARD_COLS}"
                        ),
                        &[&now, &card_id, &program_id],
                    )
                    .await?
                    .map(|r| card_row(&r))
                    .transpose()?;
                if let Some(after) = &after {
                    apply_effects(tx, &effects(&before, after)).await?;
                }
                Ok(after)
            })
        })
        .await
    }

    async fn create_token(
        &self,
        t: TokenRow,
        idem: Option<IdemRow>,
        effects: Effects,
    ) -> StoreResult<Created> {
        self.write(|tx| {
            let (t, idem, effects) = (t.clone(), idem.clone(), effects.clone());
            Box::pin(async move {
                if !insert_idem(tx, idem.as_ref()).await? {
                    return Ok(Created::IdempotencyKeyTaken);
                }
                // Two creates for one card on two nodes queue on the card's row,
                // so the second supersedes the first: only the newest is valid.
                lock_card(tx, &t.card_id).await?;
                tx.execute(
                    "UPDATE control_tokens SET superseded_at = $1
                     WHERE card_id = $2 AND type = $3 AND superseded_at IS NULL AND used_at IS NULL",
                    &[&t.created_at, &t.card_id, &t.kind.as_str()],
                )
                .await?;
                tx.execute(
                    "INSERT INTO control_tokens (id, token_hash, card_id, type, cvm, created_at, expires_at, attempts_remaining)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        &t.id,
                        &&t.token_hash[..],
                        &t.card_id,
                        &t.kind.as_str(),
                        &t.cvm,
                        &t.created_at,
                        &t.expires_at,
                        &i64::from(t.attempts_remaining),
                    ],
                )
                .await?;
                apply_effects(tx, &effects).await?;
                Ok(Created::Created)
            })
        })
        .await
    }

    async fn find_token(&self, hash: SecretHash) -> StoreResult<Option<TokenRow>> {
        self.read(move |c| {
            Box::pin(async move {
                c.query_opt(
                    &format!("SELECT {TOKEN_COLS} FROM control_tokens WHERE token_hash = $1"),
                    &[&&hash[..]],
                )
                .await?
                .map(|r| token_row(&r))
                .transpose()
            })
        })
        .await
    }

    async fn use_token_attempt(
        &self,
        token_id: &str,
        now: Timestamp,
        effects: Effects,
    ) -> StoreResult<Result<u32, TokenError>> {
        let token_id = token_id.to_owned();
        self.write(|tx| {
            let (token_id, effects) = (token_id.clone(), effects.clone());
            Box::pin(async move {
                // Concurrent attempts queue on the token's row; each re-checks
                // the condition on the row as the one before it left it.
                let left = tx
                    .query_opt(
                        &format!(
                            "UPDATE control_tokens SET attempts_remaining = attempts_remaining - 1
                             WHERE id = $1 AND {TOKEN_USABLE} RETURNING attempts_remaining"
                        ),
                        &[&token_id, &now],
                    )
                    .await?;
                match left {
                    Some(r) => {
                        apply_effects(tx, &effects).await?;
                        Ok(Ok(u32_at(&r, 0)?))
                    }
                    None => Ok(Err(token_refusal(tx, &token_id, now).await?)),
                }
            })
        })
        .await
    }

    async fn redeem_token(
        &self,
        token_id: &str,
        change: Option<PinChange>,
        now: Timestamp,
        effects: Effects,
    ) -> StoreResult<Result<(), TokenError>> {
        let token_id = token_id.to_owned();
        self.write(|tx| {
            let (token_id, change, effects) = (token_id.clone(), change.clone(), effects.clone());
            Box::pin(async move {
                // The card first, then the token: the order create_token locks
                // them in, so the two never wait on each other in a cycle.
                let card = tx
                    .query_opt("SELECT card_id FROM control_tokens WHERE id = $1", &[&token_id])
                    .await?;
                let Some(card) = card else {
                    return Ok(Err(TokenError::Invalid));
                };
                let card_id: String = card.try_get(0)?;
                lock_card(tx, &card_id).await?;
                let redeemed = tx
                    .execute(
                        &format!(
                            "UPDATE control_tokens SET used_at = $2 WHERE id = $1 AND {TOKEN_USABLE}"
                        ),
                        &[&token_id, &now],
                    )
                    .await?;
                if redeemed == 0 {
                    return Ok(Err(token_refusal(tx, &token_id, now).await?));
                }
                match change {
                    None => {}
                    Some(PinChange::Set(pin)) => {
                        tx.execute(
                            &format!(
                                "UPDATE cards SET pin_block = $1, pin_key_version = $2, pin_set_by = $3, pin_updated_at = $4,
                                     fail_count = 0, pin_blocked = FALSE, updated_at = $4,
                                     status = CASE WHEN inactive_by_block THEN 'active' ELSE status END,
                                     inactive_by_block = FALSE, {CLEAR_STAGED}
                                 WHERE id = $5"
                            ),
                            &[
                                &pin.block,
                                &i64::from(pin.key_version),
                                &pin.set_by.as_str(),
                                &now,
                                &card_id,
                            ],
                        )
                        .await?;
                    }
                    Some(PinChange::Stage { pin, expires_at }) => {
                        tx.execute(
                            "UPDATE cards SET staged_pin_block = $1, staged_pin_key_version = $2,
                                 staged_expires_at = $3, staged_token_id = $4, updated_at = $5
                             WHERE id = $6",
                            &[
                                &pin.block,
                                &i64::from(pin.key_version),
                                &expires_at,
                                &token_id,
                                &now,
                                &card_id,
                            ],
                        )
                        .await?;
                    }
                }
                apply_effects(tx, &effects).await?;
                Ok(Ok(()))
            })
        })
        .await
    }

    async fn commit_staged_pin<F>(
        &self,
        program_id: &str,
        card_id: &str,
        now: Timestamp,
        effects: F,
    ) -> StoreResult<bool>
    where
        F: Fn(&CardRow) -> Effects + Send + Sync + 'static,
    {
        let (program_id, card_id) = (program_id.to_owned(), card_id.to_owned());
        let effects = Arc::new(effects);
        self.write(|tx| {
            let (program_id, card_id, effects) =
                (program_id.clone(), card_id.clone(), effects.clone());
            Box::pin(async move {
                // Commits of one card queue on its row; the one that comes
                // second re-reads it and finds nothing staged.
                let Some(before) = lock_card_row(tx, &program_id, &card_id).await? else {
                    return Ok(false);
                };
                // The compare-and-set: only a row that still holds an
                // unexpired staged PIN is changed, and the change clears it.
                let n = tx
                    .execute(
                        &format!(
                            "UPDATE cards SET pin_block = staged_pin_block, pin_key_version = staged_pin_key_version,
                                 pin_set_by = 'cardholder', pin_updated_at = $1,
                                 fail_count = 0, pin_blocked = FALSE, updated_at = $1,
                                 status = CASE WHEN inactive_by_block THEN 'active' ELSE status END,
                                 inactive_by_block = FALSE, {CLEAR_STAGED}
                             WHERE id = $2 AND program_id = $3
                               AND staged_pin_block IS NOT NULL AND staged_expires_at > $1"
                        ),
                        &[&now, &card_id, &program_id],
                    )
                    .await?;
                if n == 1 {
                    apply_effects(tx, &effects(&before)).await?;
                    return Ok(true);
                }
                // An expired staged PIN is absent: remove it now.
                tx.execute(
                    &format!(
                        "UPDATE cards SET {CLEAR_STAGED}
                         WHERE id = $1 AND staged_expires_at IS NOT NULL AND staged_expires_at <= $2"
                    ),
                    &[&card_id, &now],
                )
                .await?;
                Ok(false)
            })
        })
        .await
    }

    async fn clear_expired_staged_pins(&self, now: Timestamp) -> StoreResult<u64> {
        self.write(|tx| {
            Box::pin(async move {
                Ok(tx
                    .execute(
                        &format!(
                            "UPDATE cards SET {CLEAR_STAGED}
                             WHERE staged_expires_at IS NOT NULL AND staged_expires_at <= $1"
                        ),
                        &[&now],
                    )
                    .await?)
            })
        })
        .await
    }

    async fn insert_zone_key(&self, k: ZoneKeyRow, audit: AuditEntry) -> StoreResult<()> {
        self.write(|tx| {
            let (k, audit) = (k.clone(), audit.clone());
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO zone_keys (id, name, algorithm, kcv, wrapped, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &k.id,
                        &k.name,
                        &k.algorithm.as_str(),
                        &k.kcv,
                        &k.wrapped,
                        &k.created_at,
                    ],
                )
                .await?;
                append_audit_tx(tx, &audit).await
            })
        })
        .await
    }

    async fn get_zone_key(&self, id: &str) -> StoreResult<Option<ZoneKeyRow>> {
        let id = id.to_owned();
        self.read(move |c| {
            Box::pin(async move {
                c.query_opt(
                    &format!("SELECT {ZONE_KEY_COLS} FROM zone_keys WHERE id = $1"),
                    &[&id],
                )
                .await?
                .map(|r| zone_key_row(&r))
                .transpose()
            })
        })
        .await
    }

    async fn list_zone_keys(
        &self,
        limit: u32,
        starting_after: Option<&str>,
    ) -> StoreResult<Option<(Vec<ZoneKeyRow>, bool)>> {
        let starting_after = starting_after.map(str::to_owned);
        self.read(move |c| {
            Box::pin(async move {
                let q = PageQuery {
                    lookup: "SELECT seq FROM zone_keys WHERE id = $1",
                    scope: &[],
                    list: format!(
                        "SELECT {ZONE_KEY_COLS} FROM zone_keys WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
                    ),
                    params: &[],
                };
                list_page(c, q, starting_after.as_deref(), limit, zone_key_row).await
            })
        })
        .await
    }

    async fn record_pin_failure<F>(
        &self,
        card_id: &str,
        max_tries: u32,
        now: Timestamp,
        effects: F,
    ) -> StoreResult<Option<PinFailure>>
    where
        F: Fn(PinFailure) -> Effects + Send + Sync + 'static,
    {
        let card_id = card_id.to_owned();
        let effects = Arc::new(effects);
        self.write(|tx| {
            let (card_id, effects) = (card_id.clone(), effects.clone());
            Box::pin(async move {
                // One conditional update: concurrent failures on any node queue
                // on the card's row, each re-checks `pin_blocked` on the row as
                // the one before left it, and none is counted once it is blocked.
                let failure = tx
                    .query_opt(
                        "UPDATE cards SET
                         fail_count = fail_count + 1,
                         last_failed_at = $1,
                         updated_at = $1,
                         pin_blocked = (fail_count + 1 >= $2),
                         inactive_by_block = CASE WHEN fail_count + 1 >= $2 AND status = 'active'
                             THEN TRUE ELSE inactive_by_block END,
                         status = CASE WHEN fail_count + 1 >= $2 AND status = 'active'
                             THEN 'inactive' ELSE status END
                     WHERE id = $3 AND NOT pin_blocked
                     RETURNING fail_count, pin_blocked",
                        &[&now, &i64::from(max_tries), &card_id],
                    )
                    .await?
                    .map(|r| {
                        Ok::<_, PgErr>(PinFailure {
                            fail_count: u32_at(&r, 0)?,
                            blocked: r.try_get(1)?,
                        })
                    })
                    .transpose()?;
                if let Some(f) = failure {
                    apply_effects(tx, &effects(f)).await?;
                }
                Ok(failure)
            })
        })
        .await
    }

    async fn reset_pin_failures(&self, card_id: &str, now: Timestamp) -> StoreResult<bool> {
        let card_id = card_id.to_owned();
        self.write(|tx| {
            let card_id = card_id.clone();
            Box::pin(async move {
                let n = tx
                    .execute(
                        "UPDATE cards SET fail_count = 0, updated_at = $1
                         WHERE id = $2 AND NOT pin_blocked",
                        &[&now, &card_id],
                    )
                    .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    async fn rewrap_master(&self, rewraps: Vec<MasterRewrap>) -> StoreResult<u64> {
        self.write(|tx| {
            let rewraps = rewraps.clone();
            Box::pin(async move {
                let mut n = 0u64;
                for r in &rewraps {
                    n += match r {
                        MasterRewrap::DataKey {
                            kind,
                            version,
                            old,
                            new,
                        } => {
                            tx.execute(
                                "UPDATE data_keys SET wrapped = $1 WHERE kind = $2 AND version = $3 AND wrapped = $4",
                                &[new, &kind.as_str(), &i64::from(*version), old],
                            )
                            .await?
                        }
                        MasterRewrap::ZoneKey { id, old, new } => {
                            tx.execute(
                                "UPDATE zone_keys SET wrapped = $1 WHERE id = $2 AND wrapped = $3",
                                &[new, id, old],
                            )
                            .await?
                        }
                    };
                }
                Ok(n)
            })
        })
        .await
    }

    async fn get_idempotency(&self, program_id: &str, key: &str) -> StoreResult<Option<IdemRow>> {
        let since = now() - 86_400;
        let (program_id, key) = (program_id.to_owned(), key.to_owned());
        self.read(move |c| {
            Box::pin(async move {
                let row = c
                    .query_opt(
                        "SELECT program_id, key, request_hash, status, response_sealed, key_version, created_at
                         FROM idempotency_keys WHERE program_id = $1 AND key = $2 AND created_at > $3",
                        &[&program_id, &key, &since],
                    )
                    .await?;
                let Some(r) = row else { return Ok(None) };
                Ok(Some(IdemRow {
                    program_id: r.try_get(0)?,
                    key: r.try_get(1)?,
                    request_hash: r.try_get(2)?,
                    status: u16::try_from(r.try_get::<_, i64>(3)?).map_err(|_| decode("status"))?,
                    response_sealed: r.try_get(4)?,
                    key_version: u32_at(&r, 5)?,
                    created_at: r.try_get(6)?,
                }))
            })
        })
        .await
    }

    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.write(|tx| {
            let entry = entry.clone();
            Box::pin(async move { append_audit_tx(tx, &entry).await })
        })
        .await
    }

    async fn list_audit(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.read(move |c| {
            Box::pin(async move {
                c.query(
                    "SELECT seq, at, actor, request_id, source, action, program_id, card_id, details, prev_hash, hash
                     FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&after, &i64::from(limit)],
                )
                .await?
                .iter()
                .map(audit_row)
                .collect()
            })
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
        let program_id = program_id.to_owned();
        let card_id = card_id.map(str::to_owned);
        let kind = kind.map(str::to_owned);
        let starting_after = starting_after.map(str::to_owned);
        self.read(move |c| {
            Box::pin(async move {
                let q = PageQuery {
                    lookup: "SELECT seq FROM events WHERE id = $1 AND program_id = $2",
                    scope: &[&program_id],
                    list: format!(
                        "SELECT {EVENT_COLS} FROM events
                         WHERE program_id = $1 AND ($2::text IS NULL OR card_id = $2)
                           AND ($3::text IS NULL OR type = $3) AND seq < $4
                         ORDER BY seq DESC LIMIT $5"
                    ),
                    params: &[&program_id, &card_id, &kind],
                };
                list_page(c, q, starting_after.as_deref(), limit, event_row).await
            })
        })
        .await
    }

    async fn create_webhook_endpoint(
        &self,
        e: WebhookEndpointRow,
        idem: Option<IdemRow>,
        audit: AuditEntry,
    ) -> StoreResult<Created> {
        let events = serde_json::to_string(&e.events)
            .map_err(|err| StoreError::Database(err.to_string()))?;
        self.write(|tx| {
            let (e, idem, audit, events) = (e.clone(), idem.clone(), audit.clone(), events.clone());
            Box::pin(async move {
                if !insert_idem(tx, idem.as_ref()).await? {
                    return Ok(Created::IdempotencyKeyTaken);
                }
                tx.execute(
                    "INSERT INTO webhook_endpoints (id, program_id, url, events, secret_sealed, secret_key_version, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &e.id,
                        &e.program_id,
                        &e.url,
                        &events,
                        &e.secret_sealed,
                        &i64::from(e.secret_key_version),
                        &e.created_at,
                    ],
                )
                .await?;
                append_audit_tx(tx, &audit).await?;
                Ok(Created::Created)
            })
        })
        .await
    }

    async fn list_webhook_endpoints(
        &self,
        program_id: &str,
        limit: u32,
        starting_after: Option<&str>,
    ) -> StoreResult<Option<(Vec<WebhookEndpointRow>, bool)>> {
        let program_id = program_id.to_owned();
        let starting_after = starting_after.map(str::to_owned);
        self.read(move |c| {
            Box::pin(async move {
                let q = PageQuery {
                    lookup: "SELECT seq FROM webhook_endpoints WHERE id = $1 AND program_id = $2 AND deleted_at IS NULL",
                    scope: &[&program_id],
                    list: format!(
                        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints
                         WHERE program_id = $1 AND deleted_at IS NULL AND seq < $2 ORDER BY seq DESC LIMIT $3"
                    ),
                    params: &[&program_id],
                };
                list_page(c, q, starting_after.as_deref(), limit, endpoint_row).await
            })
        })
        .await
    }

    async fn get_webhook_endpoint(
        &self,
        program_id: &str,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpointRow>> {
        let (program_id, id) = (program_id.to_owned(), id.to_owned());
        self.read(move |c| {
            Box::pin(async move {
                c.query_opt(
                    &format!(
                        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints
                         WHERE id = $1 AND program_id = $2 AND deleted_at IS NULL"
                    ),
                    &[&id, &program_id],
                )
                .await?
                .map(|r| endpoint_row(&r))
                .transpose()
            })
        })
        .await
    }

    async fn delete_webhook_endpoint(
        &self,
        program_id: &str,
        id: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> StoreResult<bool> {
        let (program_id, id) = (program_id.to_owned(), id.to_owned());
        self.write(|tx| {
            let (program_id, id, audit) = (program_id.clone(), id.clone(), audit.clone());
            Box::pin(async move {
                let n = tx
                    .execute(
                        "UPDATE webhook_endpoints SET deleted_at = $1
                         WHERE id = $2 AND program_id = $3 AND deleted_at IS NULL",
                        &[&now, &id, &program_id],
                    )
                    .await?;
                if n == 1 {
                    tx.execute(
                        "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,
                             last_error = 'the endpoint was deleted', lease_owner = NULL, lease_until = NULL
                         WHERE endpoint_id = $1 AND status = 'pending'",
                        &[&id],
                    )
                    .await?;
                    append_audit_tx(tx, &audit).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    async fn list_deliveries(
        &self,
        endpoint_id: &str,
        limit: u32,
        starting_after: Option<&str>,
    ) -> StoreResult<Option<(Vec<DeliveryRow>, bool)>> {
        let endpoint_id = endpoint_id.to_owned();
        let starting_after = starting_after.map(str::to_owned);
        self.read(move |c| {
            Box::pin(async move {
                let q = PageQuery {
                    lookup: "SELECT seq FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2",
                    scope: &[&endpoint_id],
                    list: format!(
                        "SELECT {DELIVERY_COLS} FROM webhook_deliveries d JOIN events ev ON ev.id = d.event_id
                         WHERE d.endpoint_id = $1 AND d.seq < $2 ORDER BY d.seq DESC LIMIT $3"
                    ),
                    params: &[&endpoint_id],
                };
                list_page(c, q, starting_after.as_deref(), limit, delivery_row).await
            })
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let owner = owner.to_owned();
        self.write(|tx| {
            let owner = owner.clone();
            Box::pin(async move {
                // Due rows not held by an unexpired lease; rows another node is
                // claiming at this moment are skipped (SKIP LOCKED), not waited
                // for, so two nodes never take the same attempt.
                let rows = tx
                    .query(
                        "WITH claimed AS (
                             UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $3
                             WHERE id IN (SELECT id FROM webhook_deliveries
                                          WHERE status = 'pending' AND next_attempt_at <= $2
                                            AND (lease_until IS NULL OR lease_until <= $2)
                                          ORDER BY next_attempt_at, seq LIMIT $4
                                          FOR UPDATE SKIP LOCKED)
                             RETURNING id, attempts, endpoint_id, event_id)
                         SELECT c.id, c.attempts, e.id, e.url, e.secret_sealed, e.secret_key_version, ev.body
                         FROM claimed c
                         JOIN webhook_endpoints e ON e.id = c.endpoint_id
                         JOIN events ev ON ev.id = c.event_id",
                        &[&owner, &now, &lease_until, &i64::from(limit)],
                    )
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(ClaimedDelivery {
                            id: r.try_get(0)?,
                            attempts: u32_at(r, 1)?,
                            endpoint_id: r.try_get(2)?,
                            url: r.try_get(3)?,
                            secret_sealed: r.try_get(4)?,
                            secret_key_version: u32_at(r, 5)?,
                            event_body: r.try_get(6)?,
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn release_deliveries(&self, owner: &str) -> StoreResult<u64> {
        let owner = owner.to_owned();
        self.write(|tx| {
            let owner = owner.clone();
            Box::pin(async move {
                Ok(tx
                    .execute(
                        "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL
                         WHERE lease_owner = $1 AND status = 'pending'",
                        &[&owner],
                    )
                    .await?)
            })
        })
        .await
    }

    async fn finish_delivery(
        &self,
        id: &str,
        owner: &str,
        result: AttemptResult,
    ) -> StoreResult<bool> {
        let (id, owner) = (id.to_owned(), owner.to_owned());
        let (status, next_at, delivered_at) = match result.next {
            AttemptNext::Delivered => (DeliveryStatus::Delivered, None, Some(result.at)),
            AttemptNext::RetryAt(t) => (DeliveryStatus::Pending, Some(t), None),
            AttemptNext::GiveUp => (DeliveryStatus::Failed, None, None),
        };
        let code = result.response_code.map(i64::from);
        self.write(|tx| {
            let (id, owner, error) = (id.clone(), owner.clone(), result.error.clone());
            Box::pin(async move {
                let n = tx
                    .execute(
                        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = $1,
                             last_response_code = $2, last_error = $3, status = $4, next_attempt_at = $5,
                             delivered_at = $6, lease_owner = NULL, lease_until = NULL
                         WHERE id = $7 AND lease_owner = $8 AND status = 'pending'",
                        &[
                            &result.at,
                            &code,
                            &error,
                            &status.as_str(),
                            &next_at,
                            &delivered_at,
                            &id,
                            &owner,
                        ],
                    )
                    .await?;
                Ok(n == 1)
            })
        })
        .await
    }
}
