//! PostgreSQL: for many stateless nodes on one database. Every piece of state
//! (tokens and their attempts, fail counts, idempotency records, data key
//! versions) is in the database, and every rule that must hold under
//! concurrency is one conditional statement or a row lock taken in a fixed
//! order (the card before its tokens), at READ COMMITTED. A transaction the
//! server aborts as a serialization failure or a deadlock is run again; nothing
//! else is retried, because a write whose answer was lost may have committed.
//!
//! Connections use TLS as the URL's `sslmode` asks (`disable`, `prefer` by
//! default, `require`, `verify-ca`, `verify-full`, with `sslrootcert=FILE`),
//! with libpq's meaning, over rustls: `url.rs` takes those two parameters out
//! of the URL (tokio-postgres 0.7 knows neither the verify modes nor a root
//! certificate), `tls.rs` is the connector handed to tokio-postgres, `cert.rs`
//! reads the CAs and checks certificates. A server identity left unchecked
//! (`disable`; `prefer` or `require` without `sslrootcert`; `verify-ca` on the
//! public roots) is a warning in the log at start; SECURITY.md ("PostgreSQL
//! over TLS") says what each mode protects against.
//!
//! The statements and what they do are the catalogue's (`store/catalogue`);
//! this folder is how they reach PostgreSQL: the connection (TLS), the pool,
//! transactions and their retries, parameters and rows (`db.rs`).
//!
//! Events and the audit trail are written in the transaction of the change
//! they record. Webhook workers on every node claim due deliveries with
//! `FOR UPDATE SKIP LOCKED` and a lease, so two nodes never deliver the same
//! attempt; audit appends queue on the one `audit_head` row, so the hash chain
//! stays a chain whatever node writes.

mod cert;
mod db;
mod pool;
mod tls;
mod url;

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;

use self::db::PgDb;
pub use pool::PgSettings;
use pool::Pool;
pub use tls::{PgTls, PgTlsConnect, PgTlsStream, TlsError};
pub use url::SslMode;

use super::backend::Backend;
use super::db::{Arg, Db, DbError, DbFuture, Op, Sql, first, sql};
use super::error::{StoreError, StoreResult};
use crate::domain::time::now;

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
    (
        7,
        include_str!("../../../migrations/postgres/0007_zone_key_grants.sql"),
    ),
    (
        8,
        include_str!("../../../migrations/postgres/0008_purpose_keys.sql"),
    ),
    (
        9,
        include_str!("../../../migrations/postgres/0009_pin_changes.sql"),
    ),
    (
        10,
        include_str!("../../../migrations/postgres/0010_chip.sql"),
    ),
    (
        11,
        include_str!("../../../migrations/postgres/0011_chip_scripts.sql"),
    ),
    (
        12,
        include_str!("../../../migrations/postgres/0012_legacy_pins.sql"),
    ),
    (
        13,
        include_str!("../../../migrations/postgres/0013_kbpk.sql"),
    ),
    (
        14,
        include_str!("../../../migrations/postgres/0014_pvk_tr31.sql"),
    ),
    (
        15,
        include_str!("../../../migrations/postgres/0015_audit_queue.sql"),
    ),
    (
        16,
        include_str!("../../../migrations/postgres/0016_compat.sql"),
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

fn retryable(e: &DbError) -> bool {
    matches!(e, DbError::Postgres(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED))
}

/// The database answered (the connection is fine) rather than failed under us.
fn is_db_error(e: &DbError) -> bool {
    !matches!(e, DbError::Postgres(e) if e.as_db_error().is_none())
}

const MIGRATION_LOCK_SQL: Sql = sql!("SELECT pg_advisory_xact_lock($1)");
const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";
const MIGRATION_DONE: Sql = sql!("SELECT 1 FROM schema_migrations WHERE version = $1");
const MIGRATION_RECORD: Sql =
    sql!("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)");

/// Brings the schema up to date, one node at a time (an advisory lock).
fn migrate_op<'a>(db: &'a mut dyn Db, (): &'a ()) -> DbFuture<'a, ()> {
    Box::pin(async move {
        db.exec(&MIGRATION_LOCK_SQL, &[Arg::Int(MIGRATION_LOCK)])
            .await?;
        db.batch(MIGRATIONS_TABLE).await?;
        for (version, sql) in MIGRATIONS {
            let done = first(db, &MIGRATION_DONE, &[Arg::Int(*version)], |_| Ok(())).await?;
            if done.is_none() {
                db.batch(sql).await?;
                db.exec(&MIGRATION_RECORD, &[Arg::Int(*version), Arg::Int(now())])
                    .await?;
            }
        }
        Ok(())
    })
}

impl PgStore {
    /// Connects (checking the database answers) and brings the schema up to
    /// date. Safe when several nodes start at once: one migrates, the others
    /// wait for it and find nothing left to do.
    pub async fn open(url: &str, settings: PgSettings) -> StoreResult<Self> {
        let (config, tls) = PgTls::from_url(url).map_err(StoreError::database)?;
        if let Some(weakness) = tls.weakness() {
            tracing::warn!("{weakness}");
        }
        let store = PgStore {
            pool: Pool::new(config, tls, settings),
        };
        store.write((), migrate_op).await?;
        Ok(store)
    }

    /// Longest one database operation may take from the client's side (the
    /// server enforces the statement timeout; this covers a connection that
    /// went silent).
    fn operation_timeout(&self) -> Duration {
        self.pool.settings().statement_timeout * 3
    }
}

fn timed_out() -> StoreError {
    StoreError::database("the database did not answer in time")
}

impl Backend for PgStore {
    /// Runs `op` in a transaction, again (up to `RETRIES` times) when the
    /// database aborts it as a serialization failure or deadlock. Nothing
    /// else is retried: a write whose answer was lost may have committed.
    async fn write<D, T>(&self, data: D, op: Op<D, T>) -> StoreResult<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        let mut attempt = 0;
        loop {
            let mut conn = self.pool.get().await?;
            let run = async {
                let (client, statements) = conn.parts();
                let tx = client.transaction().await?;
                let out = op(&mut PgDb::Tx(&tx, statements), &data).await?;
                tx.commit().await?;
                Ok::<T, DbError>(out)
            };
            let result = match tokio::time::timeout(self.operation_timeout(), run).await {
                Ok(result) => result,
                Err(_) => {
                    conn.discard();
                    return Err(timed_out());
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
                    return Err(e.into());
                }
            }
        }
    }

    /// Runs `op` on a pooled connection outside an explicit transaction
    /// (reads of one statement, or reads that need no snapshot across
    /// statements).
    async fn read<D, T>(&self, data: D, op: Op<D, T>) -> StoreResult<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        let mut conn = self.pool.get().await?;
        let run = async {
            let (client, statements) = conn.parts();
            op(&mut PgDb::Client(client, statements), &data).await
        };
        match tokio::time::timeout(self.operation_timeout(), run).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => {
                if !is_db_error(&e) {
                    conn.discard();
                }
                Err(e.into())
            }
            Err(_) => {
                conn.discard();
                Err(timed_out())
            }
        }
    }
}
