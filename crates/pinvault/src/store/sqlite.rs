//! SQLite: one file in the data directory, WAL, `synchronous=FULL` (an answered
//! write survives a crash or power loss), a busy timeout so operator commands
//! and servers share the file. Writes go to one thread that owns the one write
//! connection and runs them inside `BEGIN IMMEDIATE` transactions (SQLite has
//! one writer at a time anyway), with group commit: the writes queued while
//! one group commits share the next transaction (each in its own savepoint)
//! and its one fsync, and each is answered only after that commit (see
//! `SqliteStore::write`); reads use a pool of connections and run in parallel.
//! Reads run on the blocking thread pool, except the one-statement indexed
//! reads of a request's API key and card and of a presented control token
//! (`SqliteStore::read_short`), which run on the async thread: on the path of
//! every PIN verification, the hand-off cost more than the read.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use rusqlite::ToSql;
use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};

use super::sqlite_cache::ReadCache;
use super::*;
use crate::domain::ids::new_id;
use crate::domain::time::now;
use crate::domain::token;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_zone_keys.sql"),
    ),
    (
        3,
        include_str!("../../migrations/sqlite/0003_transport_keys.sql"),
    ),
    (
        4,
        include_str!("../../migrations/sqlite/0004_events_audit.sql"),
    ),
    (
        5,
        include_str!("../../migrations/sqlite/0005_staged_pin.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_live_tokens_index.sql"),
    ),
];

/// The most writes one transaction (one fsync) carries.
const GROUP_MAX: usize = 64;

/// Delivers a write's answer once its group's commit is known (`Some`: failed).
type Deliver = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;
/// A queued write: run on the writer connection (`None`: not run, the group
/// failed first); says whether it succeeded, and how to deliver its answer.
type WriteJob = Box<dyn FnOnce(Option<&Connection>) -> (bool, Deliver) + Send>;

fn aborted(why: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
        Some(why.to_owned()),
    )
}

/// Runs a group of writes in one immediate transaction, each in a savepoint,
/// commits once, then delivers every answer.
fn run_group(conn: &mut Connection, jobs: Vec<WriteJob>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        for job in jobs {
            job(None).1(Some(&e));
        }
        return;
    }
    let mut failed: Option<rusqlite::Error> = None;
    let mut delivers = Vec::with_capacity(jobs.len());
    for job in jobs {
        if failed.is_some() {
            delivers.push(job(None).1);
            continue;
        }
        if let Err(e) = conn.execute_batch("SAVEPOINT w") {
            failed = Some(e);
            delivers.push(job(None).1);
            continue;
        }
        let (ok, deliver) = job(Some(conn));
        delivers.push(deliver);
        let end = if ok {
            conn.execute_batch("RELEASE w")
        } else {
            conn.execute_batch("ROLLBACK TO w; RELEASE w")
        };
        if let Err(e) = end {
            failed = Some(e);
        } else if conn.is_autocommit() {
            // An error made SQLite roll back the whole transaction.
            failed = Some(aborted("the transaction was rolled back"));
        }
    }
    let outcome = match failed {
        Some(e) => Err(e),
        None => conn.execute_batch("COMMIT"),
    };
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let commit_error = outcome.err();
    for deliver in delivers {
        deliver(commit_error.as_ref());
    }
}

/// Readers kept open between requests (more are opened under load, then closed).
const IDLE_READERS: usize = 16;

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Writes for the writer thread (see `SqliteStore::write`); the thread ends
    /// when the store is dropped and this sender with it.
    writes: Sender<WriteJob>,
    readers: Mutex<Vec<Connection>>,
    /// API keys with their programs, and cards, between commits.
    cache: ReadCache,
}

/// The writer thread: takes the next write (waiting for one), then whatever
/// else is queued, up to `GROUP_MAX`, runs them as one group, and again.
fn write_loop(mut conn: Connection, writes: Receiver<WriteJob>) {
    while let Ok(first) = writes.recv() {
        let mut group = Vec::with_capacity(GROUP_MAX);
        group.push(first);
        while group.len() < GROUP_MAX {
            match writes.try_recv() {
                Ok(job) => group.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        run_group(&mut conn, group);
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (version, sql) in MIGRATIONS {
        let done: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        if !done {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, now()],
            )?;
        }
    }
    tx.commit()
}

fn db_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            StoreError::Conflict(e.to_string())
        }
        _ => StoreError::Database(e.to_string()),
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

fn bad_value(idx: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, format!("bad {what}").into())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    /// A new file is created mode 0600; SQLite gives its `-wal` and `-shm` files
    /// the database file's mode.
    pub fn open(path: &Path) -> StoreResult<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StoreError::Database(format!(
                    "cannot create {}: {e}",
                    path.display()
                )));
            }
        }
        let mut writer = connect(path).map_err(db_error)?;
        migrate(&mut writer).map_err(db_error)?;
        // The file name as SQLite resolved it (symbolic links followed): its
        // WAL index is that name with `-shm`.
        let cache = ReadCache::new(writer.path().map_or(path, Path::new));
        let (writes, queued) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || write_loop(writer, queued))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writes,
                readers: Mutex::new(Vec::new()),
                cache,
            }),
        })
    }

    /// Runs `f` as one write on the writer thread, and answers only once the
    /// transaction holding it is committed (so an answered write is durable).
    ///
    /// Group commit: the writer thread takes every write queued while it was
    /// busy (at most `GROUP_MAX`) and runs them in one `BEGIN IMMEDIATE`
    /// transaction, each in its own savepoint, and commits once: one fsync for
    /// the group instead of one per write. A write whose `f` fails is rolled
    /// back to its savepoint and gets its own error; the others are unaffected.
    /// If the commit fails, every write of the group gets the error and none of
    /// them happened. A dedicated thread, rather than callers taking turns
    /// with the connection on the blocking pool: under load it never sleeps
    /// between groups, and no caller waits on a lock held through an fsync
    /// (profiles showed those waits and wake-ups as most of a write's cost).
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (send, recv) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let job: WriteJob = Box::new(move |conn: Option<&Connection>| {
            let out: StoreResult<T> = match conn {
                None => Err(StoreError::Database("write not run".to_owned())),
                Some(conn) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
                    .unwrap_or_else(|_| Err(aborted("database write panicked")))
                    .map_err(db_error),
            };
            let ok = out.is_ok();
            let deliver: Deliver = Box::new(move |commit: Option<&rusqlite::Error>| {
                let answer = match (out, commit) {
                    (Err(e), _) => Err(e),
                    (Ok(_), Some(e)) => Err(StoreError::Database(format!("commit failed: {e}"))),
                    (Ok(v), None) => Ok(v),
                };
                // The caller may have gone (request cancelled): nothing to do.
                let _ = send.send(answer);
            });
            (ok, deliver)
        });
        self.inner
            .writes
            .send(job)
            .map_err(|_| StoreError::Database("the writer thread has stopped".to_owned()))?;
        recv.await
            .map_err(|_| StoreError::Database("database write was dropped".to_owned()))?
    }

    /// A create with its optional idempotency record, in one transaction: the
    /// record goes first, so a concurrent request with the same key writes nothing.
    async fn write_created<F>(&self, idem: Option<IdemRow>, create: F) -> StoreResult<Created>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    {
        self.write(move |tx| {
            if let Some(idem) = &idem {
                if !insert_idem(tx, idem)? {
                    return Ok(Created::IdempotencyKeyTaken);
                }
            }
            create(tx)?;
            Ok(Created::Created)
        })
        .await
    }

    /// A short read, run on the calling (async) thread: one statement that finds
    /// a few rows by primary key or unique index (the API key and the card of a
    /// request). Handing such a read to the blocking pool and back costs more
    /// than the read itself (two thread wake-ups for a few microseconds of
    /// work), and it is on the path of every PIN verification. Readers never
    /// wait for the writer under WAL, so the thread blocks only for what the
    /// read itself needs (a page not in memory is read from the file). Uses an
    /// idle pooled connection; with none idle, goes through [`Self::read`].
    async fn read_short<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let Some(conn) = pooled else {
            return self.read(f).await;
        };
        let out = f(&conn);
        let mut idle = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        drop(idle);
        out.map_err(db_error)
    }

    /// Runs `f` on a pooled read connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            let conn = match pooled {
                Some(c) => c,
                None => connect(&inner.path)?,
            };
            let out = f(&conn);
            let mut idle = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Database(format!("database task failed: {e}")))?
        .map_err(db_error)
    }
}

const PROGRAM_COLS: &str = "id, name, mode, settings, created_at, updated_at";

fn program_row(r: &Row<'_>) -> rusqlite::Result<ProgramRow> {
    program_row_at(r, 0)
}

/// A program from `PROGRAM_COLS` starting at column `at` (joins put it after others).
fn program_row_at(r: &Row<'_>, at: usize) -> rusqlite::Result<ProgramRow> {
    let mode: String = r.get(at + 2)?;
    let id: String = r.get(at)?;
    let settings = r
        .get_ref(at + 3)?
        .as_str()
        .map_err(|_| bad_value(at + 3, "settings"))?;
    Ok(ProgramRow {
        settings: parse_settings(&id, settings).ok_or_else(|| bad_value(at + 3, "settings"))?,
        id,
        name: r.get(at + 1)?,
        mode: Mode::parse(&mode).ok_or_else(|| bad_value(at + 2, "mode"))?,
        created_at: r.get(at + 4)?,
        updated_at: r.get(at + 5)?,
    })
}

const API_KEY_COLS: &str = "id, program_id, key_hash, hint, created_at, revoked_at";

fn hash32(r: &Row<'_>, idx: usize) -> rusqlite::Result<SecretHash> {
    let v: Vec<u8> = r.get(idx)?;
    v.try_into().map_err(|_| bad_value(idx, "hash"))
}

fn api_key_row(r: &Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.get(0)?,
        program_id: r.get(1)?,
        key_hash: hash32(r, 2)?,
        hint: r.get(3)?,
        created_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

const CARD_COLS: &str = "id, program_id, pan_hash, lookup_key_version, pan_sealed, pan_key_version, \
    last4, expiry, external_id, status, inactive_by_block, pin_block, pin_key_version, pin_set_by, \
    pin_updated_at, fail_count, last_failed_at, pin_blocked, created_at, updated_at, \
    staged_expires_at, staged_token_id, staged_pin_block, staged_pin_key_version";

fn card_row(r: &Row<'_>) -> rusqlite::Result<CardRow> {
    card_row_at(r, 0)
}

/// A card from `CARD_COLS` starting at column `at` (joins put it after others).
fn card_row_at(r: &Row<'_>, at: usize) -> rusqlite::Result<CardRow> {
    let status: String = r.get(at + 9)?;
    let set_by: String = r.get(at + 13)?;
    Ok(CardRow {
        id: r.get(at)?,
        program_id: r.get(at + 1)?,
        pan_hash: r.get(at + 2)?,
        lookup_key_version: r.get(at + 3)?,
        pan_sealed: r.get(at + 4)?,
        pan_key_version: r.get(at + 5)?,
        last4: r.get(at + 6)?,
        expiry: r.get(at + 7)?,
        external_id: r.get(at + 8)?,
        status: CardStatus::parse(&status).ok_or_else(|| bad_value(at + 9, "status"))?,
        inactive_by_block: r.get(at + 10)?,
        pin_block: r.get(at + 11)?,
        pin_key_version: r.get(at + 12)?,
        pin_set_by: SetBy::parse(&set_by).ok_or_else(|| bad_value(at + 13, "pin_set_by"))?,
        pin_updated_at: r.get(at + 14)?,
        fail_count: r.get(at + 15)?,
        last_failed_at: r.get(at + 16)?,
        pin_blocked: r.get(at + 17)?,
        created_at: r.get(at + 18)?,
        updated_at: r.get(at + 19)?,
        staged_expires_at: r.get(at + 20)?,
        staged_token_id: r.get(at + 21)?,
        staged_pin_block: r.get(at + 22)?,
        staged_pin_key_version: r.get(at + 23)?,
    })
}

const TOKEN_COLS: &str = "id, token_hash, card_id, type, cvm, created_at, expires_at, attempts_remaining, used_at, superseded_at";

fn token_row(r: &Row<'_>) -> rusqlite::Result<TokenRow> {
    let kind: String = r.get(3)?;
    Ok(TokenRow {
        id: r.get(0)?,
        token_hash: hash32(r, 1)?,
        card_id: r.get(2)?,
        kind: TokenType::parse(&kind).ok_or_else(|| bad_value(3, "type"))?,
        cvm: r.get(4)?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        attempts_remaining: r.get(7)?,
        used_at: r.get(8)?,
        superseded_at: r.get(9)?,
    })
}

const ZONE_KEY_COLS: &str = "id, name, algorithm, kcv, wrapped, created_at";

fn zone_key_row(r: &Row<'_>) -> rusqlite::Result<ZoneKeyRow> {
    let algorithm: String = r.get(2)?;
    Ok(ZoneKeyRow {
        id: r.get(0)?,
        name: r.get(1)?,
        algorithm: ZoneAlgorithm::parse(&algorithm)
            .ok_or_else(|| bad_value(2, "zone key algorithm"))?,
        kcv: r.get(3)?,
        wrapped: r.get(4)?,
        created_at: r.get(5)?,
    })
}

/// `cols` (a comma-separated list) with each column qualified by `prefix`.
fn prefixed(prefix: &str, cols: &str) -> String {
    cols.split(',')
        .map(|c| format!("{prefix}{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn get_card_tx(
    conn: &Connection,
    program_id: &str,
    card_id: &str,
) -> rusqlite::Result<Option<CardRow>> {
    conn.prepare_cached(&format!(
        "SELECT {CARD_COLS} FROM cards WHERE id = ?1 AND program_id = ?2"
    ))?
    .query_row(params![card_id, program_id], card_row)
    .optional()
}

fn insert_api_key(tx: &Connection, key: &ApiKeyRow) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO api_keys (id, program_id, key_hash, hint, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key.id, key.program_id, &key.key_hash[..], key.hint, key.created_at],
    )?;
    Ok(())
}

fn insert_idem(tx: &Connection, idem: &IdemRow) -> rusqlite::Result<bool> {
    // Idempotency records live 24 hours; expired ones are cleared as new ones come.
    tx.execute(
        "DELETE FROM idempotency_keys WHERE program_id = ?1 AND key = ?2 AND created_at <= ?3",
        params![idem.program_id, idem.key, idem.created_at - 86_400],
    )?;
    match tx.execute(
        "INSERT INTO idempotency_keys (program_id, key, request_hash, status, response_sealed, key_version, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            idem.program_id,
            idem.key,
            idem.request_hash,
            idem.status,
            idem.response_sealed,
            idem.key_version,
            idem.created_at
        ],
    ) {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads a token and says why it cannot be redeemed now.
fn token_refusal(
    conn: &Connection,
    token_id: &str,
    now: Timestamp,
) -> rusqlite::Result<TokenError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLS} FROM control_tokens WHERE id = ?1"
        ))?
        .query_row([token_id], token_row)
        .optional()?;
    Ok(match row {
        None => TokenError::Invalid,
        Some(t) => token::state(
            t.used_at,
            t.superseded_at,
            t.expires_at,
            t.attempts_remaining,
            now,
        )
        .err()
        // Valid when re-read: only possible if the clock moved backwards; refuse anyway.
        .unwrap_or(TokenError::Expired),
    })
}

/// Writes a change's events (with a delivery for each subscribed endpoint of
/// the program) and its audit record, inside the change's transaction.
fn apply_effects(tx: &Connection, effects: &Effects) -> rusqlite::Result<()> {
    for event in &effects.events {
        insert_event(tx, event)?;
    }
    if let Some(entry) = &effects.audit {
        append_audit_tx(tx, entry)?;
    }
    Ok(())
}

fn insert_event(tx: &Connection, ev: &EventRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (id, program_id, card_id, type, created_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![ev.id, ev.program_id, ev.card_id, ev.kind, ev.created_at, ev.body])?;
    let endpoints: Vec<(String, String)> = tx
        .prepare_cached(
            "SELECT id, events FROM webhook_endpoints WHERE program_id = ?1 AND deleted_at IS NULL",
        )?
        .query_map([&ev.program_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (endpoint_id, types) in endpoints {
        let types: Vec<String> =
            serde_json::from_str(&types).map_err(|_| bad_value(1, "events"))?;
        if types.iter().any(|t| t == &ev.kind) {
            tx.prepare_cached(
                "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, status, attempts, next_attempt_at, created_at)
                 VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4)",
            )?
            .execute(params![new_id("whd_"), endpoint_id, ev.id, ev.created_at])?;
        }
    }
    Ok(())
}

/// Appends a record to the chain. Runs in a write (`BEGIN IMMEDIATE`)
/// transaction, so appends are serialized and each sees the latest head.
fn append_audit_tx(tx: &Connection, entry: &AuditEntry) -> rusqlite::Result<()> {
    let head = tx
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .optional()?;
    let (seq, prev) = match head {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, crate::audit::GENESIS.to_vec()),
    };
    let hash = crate::audit::chain_hash(&prev, seq, entry);
    tx.prepare_cached(
        "INSERT INTO audit_log (seq, at, actor, request_id, source, action, program_id, card_id, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        seq,
        entry.at,
        entry.actor,
        entry.request_id,
        entry.source,
        entry.action,
        entry.program_id,
        entry.card_id,
        entry.details,
        prev,
        &hash[..]
    ])?;
    Ok(())
}

fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.get(0)?,
        entry: AuditEntry {
            at: r.get(1)?,
            actor: r.get(2)?,
            request_id: r.get(3)?,
            source: r.get(4)?,
            action: r.get(5)?,
            program_id: r.get(6)?,
            card_id: r.get(7)?,
            details: r.get(8)?,
        },
        prev_hash: r.get(9)?,
        hash: r.get(10)?,
    })
}

const EVENT_COLS: &str = "id, program_id, card_id, type, created_at, body";

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        program_id: r.get(1)?,
        card_id: r.get(2)?,
        kind: r.get(3)?,
        created_at: r.get(4)?,
        body: r.get(5)?,
    })
}

const ENDPOINT_COLS: &str =
    "id, program_id, url, events, secret_sealed, secret_key_version, created_at";

fn endpoint_row(r: &Row<'_>) -> rusqlite::Result<WebhookEndpointRow> {
    let events: String = r.get(3)?;
    Ok(WebhookEndpointRow {
        id: r.get(0)?,
        program_id: r.get(1)?,
        url: r.get(2)?,
        events: serde_json::from_str(&events).map_err(|_| bad_value(3, "events"))?,
        secret_sealed: r.get(4)?,
        secret_key_version: r.get(5)?,
        created_at: r.get(6)?,
    })
}

const DELIVERY_COLS: &str = "d.id, d.endpoint_id, d.event_id, ev.type, d.status, d.attempts, d.next_attempt_at, \
    d.last_attempt_at, d.last_response_code, d.last_error, d.delivered_at, d.created_at";

fn delivery_row(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    let status: String = r.get(4)?;
    Ok(DeliveryRow {
        id: r.get(0)?,
        endpoint_id: r.get(1)?,
        event_id: r.get(2)?,
        event_type: r.get(3)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| bad_value(4, "status"))?,
        attempts: r.get(5)?,
        next_attempt_at: r.get(6)?,
        last_attempt_at: r.get(7)?,
        last_response_code: r.get(8)?,
        last_error: r.get(9)?,
        delivered_at: r.get(10)?,
        created_at: r.get(11)?,
    })
}

/// One query of a cursor-paginated list (API.md: `limit`, `starting_after`),
/// newest first by `seq`.
struct PageQuery<'a> {
    /// Finds the `seq` of the `starting_after` row: `?1` its id, then `scope`
    /// (so an id of another program's list is not found).
    lookup: &'static str,
    scope: &'a [&'a dyn ToSql],
    /// Selects the rows: `params`, then the `seq` to stay below and the row
    /// limit as its last two parameters.
    list: String,
    params: &'a [&'a dyn ToSql],
}

/// A page of at most `limit` rows and whether more follow; `None` when
/// `starting_after` names no row of the list.
fn list_page<T>(
    c: &Connection,
    q: PageQuery<'_>,
    starting_after: Option<&str>,
    limit: u32,
    row: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<(Vec<T>, bool)>> {
    let before: i64 = match starting_after {
        None => i64::MAX,
        Some(id) => {
            let mut args: Vec<&dyn ToSql> = vec![&id];
            args.extend_from_slice(q.scope);
            match c
                .prepare_cached(q.lookup)?
                .query_row(&args[..], |r| r.get(0))
                .optional()?
            {
                Some(seq) => seq,
                None => return Ok(None),
            }
        }
    };
    let fetch = limit + 1;
    let mut args: Vec<&dyn ToSql> = q.params.to_vec();
    args.push(&before);
    args.push(&fetch);
    let mut rows = c
        .prepare_cached(&q.list)?
        .query_map(&args[..], row)?
        .collect::<rusqlite::Result<Vec<T>>>()?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok(Some((rows, has_more)))
}

/// The assignments that remove a card's staged PIN, for `UPDATE … SET`.
const CLEAR_STAGED: &str = "staged_pin_block = NULL, staged_pin_key_version = NULL, \
    staged_expires_at = NULL, staged_token_id = NULL";

/// The condition under which a token may still be used, for `WHERE` clauses.
const TOKEN_USABLE: &str =
    "used_at IS NULL AND superseded_at IS NULL AND expires_at > ?2 AND attempts_remaining > 0";

impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    async fn data_keys(&self) -> StoreResult<Vec<DataKeyRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT kind, version, wrapped, created_at FROM data_keys ORDER BY kind, version",
            )?;
            let rows = stmt.query_map([], |r| {
                let kind: String = r.get(0)?;
                Ok(DataKeyRow {
                    kind: KeyKind::parse(&kind).ok_or_else(|| bad_value(0, "key kind"))?,
                    version: r.get(1)?,
                    wrapped: r.get(2)?,
                    created_at: r.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn insert_data_key(&self, row: DataKeyRow) -> StoreResult<bool> {
        self.write(move |tx| {
            match tx.execute(
                "INSERT INTO data_keys (kind, version, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![row.kind.as_str(), row.version, row.wrapped, row.created_at],
            ) {
                Ok(_) => Ok(true),
                Err(e) if is_unique_violation(&e) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn key_usage(&self) -> StoreResult<Vec<(KeyKind, u32, u64)>> {
        self.read(|c| {
            let mut out = Vec::new();
            for (kind, col) in [
                (KeyKind::Pin, "pin_key_version"),
                (KeyKind::Pan, "pan_key_version"),
                (KeyKind::Lookup, "lookup_key_version"),
            ] {
                let mut stmt =
                    c.prepare(&format!("SELECT {col}, COUNT(*) FROM cards GROUP BY {col}"))?;
                let rows =
                    stmt.query_map([], |r| Ok((kind, r.get::<_, u32>(0)?, r.get::<_, u64>(1)?)))?;
                for row in rows {
                    out.push(row?);
                }
            }
            let mut stmt = c.prepare(
                "SELECT staged_pin_key_version, COUNT(*) FROM cards
                 WHERE staged_pin_key_version IS NOT NULL GROUP BY staged_pin_key_version",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((KeyKind::Pin, r.get::<_, u32>(0)?, r.get::<_, u64>(1)?))
            })?;
            for row in rows {
                out.push(row?);
            }
            for sql in [
                "SELECT key_version, COUNT(*) FROM idempotency_keys GROUP BY key_version",
                "SELECT secret_key_version, COUNT(*) FROM webhook_endpoints GROUP BY secret_key_version",
            ] {
                let mut stmt = c.prepare(sql)?;
                let rows = stmt.query_map([], |r| {
                    Ok((KeyKind::Pan, r.get::<_, u32>(0)?, r.get::<_, u64>(1)?))
                })?;
                for row in rows {
                    out.push(row?);
                }
            }
            Ok(out)
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
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CARD_COLS} FROM cards
                 WHERE pin_key_version < ?1 OR pan_key_version < ?2 OR lookup_key_version < ?3
                    OR staged_pin_key_version < ?1
                 ORDER BY seq LIMIT ?4"
            ))?;
            let rows = stmt.query_map(params![pin, pan, lookup, limit], card_row)?;
            rows.collect()
        })
        .await
    }

    async fn rewrap_card(&self, w: Rewrap) -> StoreResult<bool> {
        self.write(move |tx| {
            let staged = w.staged.as_ref();
            let n = tx.execute(
                "UPDATE cards SET pin_block = ?1, pin_key_version = ?2, pan_sealed = ?3, pan_key_version = ?4,
                     pan_hash = ?5, lookup_key_version = ?6, staged_pin_block = ?10, staged_pin_key_version = ?11
                 WHERE id = ?7 AND pin_block = ?8 AND staged_pin_block IS ?9",
                params![
                    w.pin.block,
                    w.pin.key_version,
                    w.pan_sealed,
                    w.pan_key_version,
                    w.pan_hash,
                    w.lookup_key_version,
                    w.card_id,
                    w.old_pin_block,
                    staged.map(|s| &s.old_block),
                    staged.map(|s| &s.block),
                    staged.map(|s| s.key_version),
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn create_program(&self, p: ProgramRow, key: ApiKeyRow) -> StoreResult<()> {
        let settings =
            serde_json::to_string(&p.settings).map_err(|e| StoreError::Database(e.to_string()))?;
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO programs (id, name, mode, settings, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![p.id, p.name, p.mode.as_str(), settings, p.created_at, p.updated_at],
            )?;
            insert_api_key(tx, &key)
        })
        .await
    }

    async fn get_program(&self, id: &str) -> StoreResult<Option<ProgramRow>> {
        let id = id.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {PROGRAM_COLS} FROM programs WHERE id = ?1"
            ))?
            .query_row([id], program_row)
            .optional()
        })
        .await
    }

    async fn list_programs(&self) -> StoreResult<Vec<ProgramRow>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {PROGRAM_COLS} FROM programs ORDER BY seq"))?;
            let rows = stmt.query_map([], program_row)?;
            rows.collect()
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
        let id = id.to_owned();
        let settings =
            serde_json::to_string(&settings).map_err(|e| StoreError::Database(e.to_string()))?;
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE programs SET settings = ?1, mode = ?2, updated_at = ?3 WHERE id = ?4",
                params![settings, mode.as_str(), now, id],
            )?;
            if n == 1 {
                append_audit_tx(tx, &audit)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn authenticate(
        &self,
        key_hash: SecretHash,
    ) -> StoreResult<Option<(ApiKeyRow, ProgramRow)>> {
        let stamp = self.inner.cache.stamp();
        if let Some(stamp) = &stamp {
            if let (Some(auth), _) = self.inner.cache.get(stamp, &key_hash, None) {
                return Ok(Some(auth));
            }
        }
        let found = self
            .read_short(move |c| {
                c.prepare_cached(
                    "SELECT k.id, k.program_id, k.key_hash, k.hint, k.created_at, k.revoked_at,
                        p.id, p.name, p.mode, p.settings, p.created_at, p.updated_at
                 FROM api_keys k JOIN programs p ON p.id = k.program_id
                 WHERE k.key_hash = ?1 AND k.revoked_at IS NULL",
                )?
                .query_row([&key_hash[..]], |r| {
                    Ok((api_key_row(r)?, program_row_at(r, 6)?))
                })
                .optional()
            })
            .await?;
        if let (Some(stamp), Some((key, program))) = (&stamp, &found) {
            self.inner.cache.put(stamp, Some((key, program)), None);
        }
        Ok(found)
    }

    async fn authenticate_card(
        &self,
        key_hash: SecretHash,
        card_id: &str,
    ) -> StoreResult<Option<AuthenticatedCard>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT k.id, k.program_id, k.key_hash, k.hint, k.created_at, k.revoked_at,
                        p.id, p.name, p.mode, p.settings, p.created_at, p.updated_at, {}
                 FROM api_keys k JOIN programs p ON p.id = k.program_id
                 LEFT JOIN cards c ON c.id = ?2 AND c.program_id = k.program_id
                 WHERE k.key_hash = ?1 AND k.revoked_at IS NULL",
                prefixed("c.", CARD_COLS)
            )
        });
        let cache = &self.inner.cache;
        let stamp = cache.stamp();
        if let Some(stamp) = &stamp {
            match cache.get(stamp, &key_hash, Some(card_id)) {
                (Some((key, program)), Some(card)) => return Ok(Some((key, program, Some(card)))),
                (Some((key, program)), None) => {
                    // The caller is known: only the card to read.
                    let (program_id, card_id) = (program.id.clone(), card_id.to_owned());
                    let card = self
                        .read_short(move |c| get_card_tx(c, &program_id, &card_id))
                        .await?;
                    if let Some(card) = &card {
                        cache.put(stamp, None, Some(card));
                    }
                    return Ok(Some((key, program, card)));
                }
                (None, _) => {}
            }
        }
        let card_id = card_id.to_owned();
        let found = self
            .read_short(move |c| {
                c.prepare_cached(&SQL)?
                    .query_row(params![&key_hash[..], card_id], |r| {
                        let card = match r.get_ref(12)? {
                            rusqlite::types::ValueRef::Null => None,
                            _ => Some(card_row_at(r, 12)?),
                        };
                        Ok((api_key_row(r)?, program_row_at(r, 6)?, card))
                    })
                    .optional()
            })
            .await?;
        if let (Some(stamp), Some((key, program, card))) = (&stamp, &found) {
            cache.put(stamp, Some((key, program)), card.as_ref());
        }
        Ok(found)
    }

    async fn create_api_key(&self, key: ApiKeyRow) -> StoreResult<()> {
        self.write(move |tx| insert_api_key(tx, &key)).await
    }

    async fn list_api_keys(&self, program_id: &str) -> StoreResult<Vec<ApiKeyRow>> {
        let program_id = program_id.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {API_KEY_COLS} FROM api_keys WHERE program_id = ?1 ORDER BY seq"
            ))?;
            let rows = stmt.query_map([program_id], api_key_row)?;
            rows.collect()
        })
        .await
    }

    async fn revoke_api_key(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                params![now, id],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn create_card(
        &self,
        c: CardRow,
        idem: Option<IdemRow>,
        effects: Effects,
    ) -> StoreResult<Created> {
        self.write_created(idem, move |tx| {
            tx.prepare_cached(
                "INSERT INTO cards (id, program_id, pan_hash, lookup_key_version, pan_sealed, pan_key_version,
                    last4, expiry, external_id, status, inactive_by_block, pin_block, pin_key_version, pin_set_by,
                    pin_updated_at, fail_count, last_failed_at, pin_blocked, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
            )?
            .execute(params![
                c.id,
                c.program_id,
                c.pan_hash,
                c.lookup_key_version,
                c.pan_sealed,
                c.pan_key_version,
                c.last4,
                c.expiry,
                c.external_id,
                c.status.as_str(),
                c.inactive_by_block,
                c.pin_block,
                c.pin_key_version,
                c.pin_set_by.as_str(),
                c.pin_updated_at,
                c.fail_count,
                c.last_failed_at,
                c.pin_blocked,
                c.created_at,
                c.updated_at
            ])?;
            apply_effects(tx, &effects)
        })
        .await
    }

    async fn get_card(&self, program_id: &str, card_id: &str) -> StoreResult<Option<CardRow>> {
        let (program_id, card_id) = (program_id.to_owned(), card_id.to_owned());
        self.read(move |c| get_card_tx(c, &program_id, &card_id))
            .await
    }

    async fn card_of_token(&self, card_id: &str) -> StoreResult<Option<CardRow>> {
        let card_id = card_id.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {CARD_COLS} FROM cards WHERE id = ?1"))?
                .query_row(params![card_id], card_row)
                .optional()
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
            let q = PageQuery {
                lookup: "SELECT seq FROM cards WHERE id = ?1 AND program_id = ?2",
                scope: &[&program_id],
                list: format!(
                    "SELECT {CARD_COLS} FROM cards
                     WHERE program_id = ?1 AND (?2 IS NULL OR external_id = ?2) AND seq < ?3
                     ORDER BY seq DESC LIMIT ?4"
                ),
                params: &[&program_id, &external_id],
            };
            list_page(c, q, starting_after.as_deref(), limit, card_row)
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
        self.write(move |tx| {
            let Some(card) = get_card_tx(tx, &program_id, &card_id)? else {
                return Ok(None);
            };
            let unblock = status == CardStatus::Active && card.inactive_by_block;
            tx.execute(
                "UPDATE cards SET status = ?1, updated_at = ?2, inactive_by_block = 0,
                     pin_blocked = CASE WHEN ?3 THEN 0 ELSE pin_blocked END,
                     fail_count = CASE WHEN ?3 THEN 0 ELSE fail_count END
                 WHERE id = ?4",
                params![status.as_str(), now, unblock, card_id],
            )?;
            let after = get_card_tx(tx, &program_id, &card_id)?;
            if let Some(after) = &after {
                apply_effects(tx, &effects(&card, after))?;
            }
            Ok(after)
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
        self.write(move |tx| {
            let Some(before) = get_card_tx(tx, &program_id, &card_id)? else {
                return Ok(None);
            };
            let n = tx.execute(
                "UPDATE cards SET fail_count = 0, pin_blocked = 0, updated_at = ?1,
                     status = CASE WHEN inactive_by_block THEN 'active' ELSE status END,
                     inactive_by_block = 0
                 WHERE id = ?2 AND program_id = ?3",
                params![now, card_id, program_id],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let after = get_card_tx(tx, &program_id, &card_id)?;
            if let Some(after) = &after {
                apply_effects(tx, &effects(&before, after))?;
            }
            Ok(after)
        })
        .await
    }

    async fn create_token(
        &self,
        t: TokenRow,
        idem: Option<IdemRow>,
        effects: Effects,
    ) -> StoreResult<Created> {
        self.write_created(idem, move |tx| {
            // Only the newest token of a type is valid for a card.
            tx.prepare_cached(
                "UPDATE control_tokens SET superseded_at = ?1
                 WHERE card_id = ?2 AND type = ?3 AND superseded_at IS NULL AND used_at IS NULL",
            )?
            .execute(params![t.created_at, t.card_id, t.kind.as_str()])?;
            tx.prepare_cached(
                "INSERT INTO control_tokens (id, token_hash, card_id, type, cvm, created_at, expires_at, attempts_remaining)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                t.id,
                &t.token_hash[..],
                t.card_id,
                t.kind.as_str(),
                t.cvm,
                t.created_at,
                t.expires_at,
                t.attempts_remaining
            ])?;
            apply_effects(tx, &effects)
        })
        .await
    }

    async fn find_token(&self, hash: SecretHash) -> StoreResult<Option<TokenRow>> {
        // One unique-index lookup, on the path of every set and reveal.
        self.read_short(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TOKEN_COLS} FROM control_tokens WHERE token_hash = ?1"
            ))?
            .query_row([&hash[..]], token_row)
            .optional()
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
        self.write(move |tx| {
            let left = tx
                .prepare_cached(&format!(
                    "UPDATE control_tokens SET attempts_remaining = attempts_remaining - 1
                     WHERE id = ?1 AND {TOKEN_USABLE} RETURNING attempts_remaining"
                ))?
                .query_row(params![token_id, now], |r| r.get::<_, u32>(0))
                .optional()?;
            match left {
                Some(left) => {
                    apply_effects(tx, &effects)?;
                    Ok(Ok(left))
                }
                None => Ok(Err(token_refusal(tx, &token_id, now)?)),
            }
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
        self.write(move |tx| {
            let card_id = tx
                .prepare_cached(&format!(
                    "UPDATE control_tokens SET used_at = ?2 WHERE id = ?1 AND {TOKEN_USABLE} RETURNING card_id"
                ))?
                .query_row(params![token_id, now], |r| r.get::<_, String>(0))
                .optional()?;
            let Some(card_id) = card_id else {
                return Ok(Err(token_refusal(tx, &token_id, now)?));
            };
            match change {
                None => {}
                Some(PinChange::Set(pin)) => {
                    tx.prepare_cached(&format!(
                        "UPDATE cards SET pin_block = ?1, pin_key_version = ?2, pin_set_by = ?3, pin_updated_at = ?4,
                             fail_count = 0, pin_blocked = 0, updated_at = ?4,
                             status = CASE WHEN inactive_by_block THEN 'active' ELSE status END,
                             inactive_by_block = 0, {CLEAR_STAGED}
                         WHERE id = ?5"
                    ))?
                    .execute(params![pin.block, pin.key_version, pin.set_by.as_str(), now, card_id])?;
                }
                Some(PinChange::Stage { pin, expires_at }) => {
                    tx.prepare_cached(
                        "UPDATE cards SET staged_pin_block = ?1, staged_pin_key_version = ?2,
                             staged_expires_at = ?3, staged_token_id = ?4, updated_at = ?5
                         WHERE id = ?6",
                    )?
                    .execute(params![pin.block, pin.key_version, expires_at, token_id, now, card_id])?;
                }
            }
            apply_effects(tx, &effects)?;
            Ok(Ok(()))
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
        self.write(move |tx| {
            let Some(before) = get_card_tx(tx, &program_id, &card_id)? else {
                return Ok(false);
            };
            // The compare-and-set: only a row that still holds an unexpired
            // staged PIN is changed, and the change clears it.
            let n = tx
                .prepare_cached(&format!(
                    "UPDATE cards SET pin_block = staged_pin_block, pin_key_version = staged_pin_key_version,
                         pin_set_by = 'cardholder', pin_updated_at = ?1,
                         fail_count = 0, pin_blocked = 0, updated_at = ?1,
                         status = CASE WHEN inactive_by_block THEN 'active' ELSE status END,
                         inactive_by_block = 0, {CLEAR_STAGED}
                     WHERE id = ?2 AND program_id = ?3
                       AND staged_pin_block IS NOT NULL AND staged_expires_at > ?1"
                ))?
                .execute(params![now, card_id, program_id])?;
            if n == 1 {
                apply_effects(tx, &effects(&before))?;
                return Ok(true);
            }
            // An expired staged PIN is absent: remove it now.
            tx.prepare_cached(&format!(
                "UPDATE cards SET {CLEAR_STAGED}
                 WHERE id = ?1 AND staged_expires_at IS NOT NULL AND staged_expires_at <= ?2"
            ))?
            .execute(params![card_id, now])?;
            Ok(false)
        })
        .await
    }

    async fn clear_expired_staged_pins(&self, now: Timestamp) -> StoreResult<u64> {
        // Look on a reader first, so that a sweep with nothing to do never
        // takes the write lock.
        let due = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM cards
                     WHERE staged_expires_at IS NOT NULL AND staged_expires_at <= ?1)",
                )?
                .query_row([now], |r| r.get::<_, bool>(0))
            })
            .await?;
        if !due {
            return Ok(0);
        }
        self.write(move |tx| {
            let n = tx
                .prepare_cached(&format!(
                    "UPDATE cards SET {CLEAR_STAGED}
                     WHERE staged_expires_at IS NOT NULL AND staged_expires_at <= ?1"
                ))?
                .execute([now])?;
            Ok(n as u64)
        })
        .await
    }

    async fn get_idempotency(&self, program_id: &str, key: &str) -> StoreResult<Option<IdemRow>> {
        let (program_id, key) = (program_id.to_owned(), key.to_owned());
        let since = now() - 86_400;
        self.read(move |c| {
            c.prepare_cached(
                "SELECT program_id, key, request_hash, status, response_sealed, key_version, created_at
                 FROM idempotency_keys WHERE program_id = ?1 AND key = ?2 AND created_at > ?3",
            )?
            .query_row(params![program_id, key, since], |r| {
                Ok(IdemRow {
                    program_id: r.get(0)?,
                    key: r.get(1)?,
                    request_hash: r.get(2)?,
                    status: r.get(3)?,
                    response_sealed: r.get(4)?,
                    key_version: r.get(5)?,
                    created_at: r.get(6)?,
                })
            })
            .optional()
        })
        .await
    }

    async fn insert_zone_key(&self, k: ZoneKeyRow, audit: AuditEntry) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO zone_keys (id, name, algorithm, kcv, wrapped, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    k.id,
                    k.name,
                    k.algorithm.as_str(),
                    k.kcv,
                    k.wrapped,
                    k.created_at
                ],
            )?;
            append_audit_tx(tx, &audit)
        })
        .await
    }

    async fn get_zone_key(&self, id: &str) -> StoreResult<Option<ZoneKeyRow>> {
        let id = id.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ZONE_KEY_COLS} FROM zone_keys WHERE id = ?1"
            ))?
            .query_row(params![id], zone_key_row)
            .optional()
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
            let q = PageQuery {
                lookup: "SELECT seq FROM zone_keys WHERE id = ?1",
                scope: &[],
                list: format!(
                    "SELECT {ZONE_KEY_COLS} FROM zone_keys WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2"
                ),
                params: &[],
            };
            list_page(c, q, starting_after.as_deref(), limit, zone_key_row)
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
        self.write(move |tx| {
            // One conditional update: concurrent failures serialize on it, and
            // none is counted once the PIN is blocked.
            let failure = tx
                .prepare_cached(
                    "UPDATE cards SET
                     fail_count = fail_count + 1,
                     last_failed_at = ?1,
                     updated_at = ?1,
                     pin_blocked = (fail_count + 1 >= ?2),
                     inactive_by_block = CASE WHEN fail_count + 1 >= ?2 AND status = 'active'
                         THEN 1 ELSE inactive_by_block END,
                     status = CASE WHEN fail_count + 1 >= ?2 AND status = 'active'
                         THEN 'inactive' ELSE status END
                 WHERE id = ?3 AND pin_blocked = 0
                 RETURNING fail_count, pin_blocked",
                )?
                .query_row(params![now, max_tries, card_id], |r| {
                    Ok(PinFailure {
                        fail_count: r.get(0)?,
                        blocked: r.get(1)?,
                    })
                })
                .optional()?;
            if let Some(f) = failure {
                apply_effects(tx, &effects(f))?;
            }
            Ok(failure)
        })
        .await
    }

    async fn reset_pin_failures(&self, card_id: &str, now: Timestamp) -> StoreResult<bool> {
        let card_id = card_id.to_owned();
        self.write(move |tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE cards SET fail_count = 0, updated_at = ?1
                     WHERE id = ?2 AND pin_blocked = 0",
                )?
                .execute(params![now, card_id])?;
            Ok(n == 1)
        })
        .await
    }

    async fn rewrap_master(&self, rewraps: Vec<MasterRewrap>) -> StoreResult<u64> {
        self.write(move |tx| {
            let mut n = 0u64;
            for r in &rewraps {
                n += match r {
                    MasterRewrap::DataKey {
                        kind,
                        version,
                        old,
                        new,
                    } => tx.execute(
                        "UPDATE data_keys SET wrapped = ?1 WHERE kind = ?2 AND version = ?3 AND wrapped = ?4",
                        params![new, kind.as_str(), version, old],
                    )?,
                    MasterRewrap::ZoneKey { id, old, new } => tx.execute(
                        "UPDATE zone_keys SET wrapped = ?1 WHERE id = ?2 AND wrapped = ?3",
                        params![new, id, old],
                    )?,
                } as u64;
            }
            Ok(n)
        })
        .await
    }

    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.write(move |tx| append_audit_tx(tx, &entry)).await
    }

    async fn list_audit(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT seq, at, actor, request_id, source, action, program_id, card_id, details, prev_hash, hash
                 FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?
            .query_map(params![after, limit], audit_row)?
            .collect()
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
            let q = PageQuery {
                lookup: "SELECT seq FROM events WHERE id = ?1 AND program_id = ?2",
                scope: &[&program_id],
                list: format!(
                    "SELECT {EVENT_COLS} FROM events
                     WHERE program_id = ?1 AND (?2 IS NULL OR card_id = ?2) AND (?3 IS NULL OR type = ?3) AND seq < ?4
                     ORDER BY seq DESC LIMIT ?5"
                ),
                params: &[&program_id, &card_id, &kind],
            };
            list_page(c, q, starting_after.as_deref(), limit, event_row)
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
        self.write_created(idem, move |tx| {
            tx.execute(
                "INSERT INTO webhook_endpoints (id, program_id, url, events, secret_sealed, secret_key_version, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![e.id, e.program_id, e.url, events, e.secret_sealed, e.secret_key_version, e.created_at],
            )?;
            append_audit_tx(tx, &audit)
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
            let q = PageQuery {
                lookup: "SELECT seq FROM webhook_endpoints WHERE id = ?1 AND program_id = ?2 AND deleted_at IS NULL",
                scope: &[&program_id],
                list: format!(
                    "SELECT {ENDPOINT_COLS} FROM webhook_endpoints
                     WHERE program_id = ?1 AND deleted_at IS NULL AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
                ),
                params: &[&program_id],
            };
            list_page(c, q, starting_after.as_deref(), limit, endpoint_row)
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
            c.prepare_cached(&format!(
                "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = ?1 AND program_id = ?2 AND deleted_at IS NULL"
            ))?
            .query_row(params![id, program_id], endpoint_row)
            .optional()
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
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE webhook_endpoints SET deleted_at = ?1 WHERE id = ?2 AND program_id = ?3 AND deleted_at IS NULL",
                params![now, id, program_id],
            )?;
            if n == 1 {
                tx.execute(
                    "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,
                         last_error = 'the endpoint was deleted', lease_owner = NULL, lease_until = NULL
                     WHERE endpoint_id = ?1 AND status = 'pending'",
                    params![id],
                )?;
                append_audit_tx(tx, &audit)?;
            }
            Ok(n == 1)
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
            let q = PageQuery {
                lookup: "SELECT seq FROM webhook_deliveries WHERE id = ?1 AND endpoint_id = ?2",
                scope: &[&endpoint_id],
                list: format!(
                    "SELECT {DELIVERY_COLS} FROM webhook_deliveries d JOIN events ev ON ev.id = d.event_id
                     WHERE d.endpoint_id = ?1 AND d.seq < ?2 ORDER BY d.seq DESC LIMIT ?3"
                ),
                params: &[&endpoint_id],
            };
            list_page(c, q, starting_after.as_deref(), limit, delivery_row)
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
        // Workers poll every second: look on a reader first, so that an idle
        // poll never takes the write lock.
        let due = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM webhook_deliveries
                     WHERE status = 'pending' AND next_attempt_at <= ?1
                       AND (lease_until IS NULL OR lease_until <= ?1))",
                )?
                .query_row([now], |r| r.get::<_, bool>(0))
            })
            .await?;
        if !due {
            return Ok(Vec::new());
        }
        self.write(move |tx| {
            // One conditional update takes the rows: a row is due, and not held
            // by an unexpired lease. (PostgreSQL: the inner SELECT is
            // `FOR UPDATE SKIP LOCKED`.)
            let ids: Vec<String> = tx
                .prepare_cached(
                    "UPDATE webhook_deliveries SET lease_owner = ?1, lease_until = ?3
                     WHERE id IN (SELECT id FROM webhook_deliveries
                                  WHERE status = 'pending' AND next_attempt_at <= ?2
                                    AND (lease_until IS NULL OR lease_until <= ?2)
                                  ORDER BY next_attempt_at, seq LIMIT ?4)
                     RETURNING id",
                )?
                .query_map(params![owner, now, lease_until, limit], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.push(
                    tx.prepare_cached(
                        "SELECT d.id, d.attempts, e.id, e.url, e.secret_sealed, e.secret_key_version, ev.body
                         FROM webhook_deliveries d
                         JOIN webhook_endpoints e ON e.id = d.endpoint_id
                         JOIN events ev ON ev.id = d.event_id
                         WHERE d.id = ?1",
                    )?
                    .query_row([&id], |r| {
                        Ok(ClaimedDelivery {
                            id: r.get(0)?,
                            attempts: r.get(1)?,
                            endpoint_id: r.get(2)?,
                            url: r.get(3)?,
                            secret_sealed: r.get(4)?,
                            secret_key_version: r.get(5)?,
                            event_body: r.get(6)?,
                        })
                    })?,
                );
            }
            Ok(out)
        })
        .await
    }

    async fn release_deliveries(&self, owner: &str) -> StoreResult<u64> {
        let owner = owner.to_owned();
        self.write(move |tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL
                     WHERE lease_owner = ?1 AND status = 'pending'",
                )?
                .execute([&owner])?;
            Ok(n as u64)
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
        self.write(move |tx| {
            let (status, next_at, delivered_at) = match result.next {
                AttemptNext::Delivered => (DeliveryStatus::Delivered, None, Some(result.at)),
                AttemptNext::RetryAt(t) => (DeliveryStatus::Pending, Some(t), None),
                AttemptNext::GiveUp => (DeliveryStatus::Failed, None, None),
            };
            let n = tx
                .prepare_cached(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = ?1,
                         last_response_code = ?2, last_error = ?3, status = ?4, next_attempt_at = ?5,
                         delivered_at = ?6, lease_owner = NULL, lease_until = NULL
                     WHERE id = ?7 AND lease_owner = ?8 AND status = 'pending'",
                )?
                .execute(params![
                    result.at,
                    result.response_code,
                    result.error,
                    status.as_str(),
                    next_at,
                    delivered_at,
                    id,
                    owner
                ])?;
            Ok(n == 1)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through a symbolic link, the cache reads the WAL index SQLite uses (the
    /// link's target with `-shm`), not a file beside the link.
    #[test]
    fn the_wal_index_is_found_through_a_symbolic_link() {
        let dir = std::env::temp_dir().join(format!("pinvault-sqlite-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real")).unwrap();
        let real = dir.join("real").join("pinvault.db");
        let link = dir.join("pinvault.db");
        connect(&real).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        std::fs::write(dir.join("pinvault.db-shm"), [0u8; 4096]).unwrap();
        let store = SqliteStore::open(&link).unwrap();
        let mut expected = std::fs::canonicalize(&real).unwrap().into_os_string();
        expected.push("-shm");
        assert_eq!(store.inner.cache.shm_path(), Path::new(&expected));
        assert!(store.inner.cache.stamp().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
