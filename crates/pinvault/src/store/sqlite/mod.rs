//! SQLite: one file in the data directory, WAL, `synchronous=FULL` (an answered
//! write survives a crash or power loss; a bulk load that can be run again
//! syncs once at its end instead: [`Durability`]), a busy timeout so operator commands
//! and servers share the file. Writes go to one thread that owns the one write
//! connection and runs them inside `BEGIN IMMEDIATE` transactions (SQLite has
//! one writer at a time anyway), with group commit: the writes queued while
//! one group commits share the next transaction (each in its own savepoint)
//! and its one fsync, and each is answered only after that commit (see
//! `SqliteStore::write`); reads use a pool of connections and run in parallel.
//! The WAL is checkpointed by a thread of its own (passive, every 200 ms), off
//! the writer's path; the writer checkpoints only as a fallback.
//! Reads run on the blocking thread pool, except the one-statement indexed
//! reads of a request's API key and card and of a presented control token
//! (`SqliteStore::read_short`), which run on the async thread: on the path of
//! every PIN verification, the hand-off cost more than the read.

mod db;
mod durability;

pub use durability::Durability;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};

use self::db::LiteDb;
use super::backend::Backend;
use super::db::{DbError, DbResult, Op, run_now};
use super::error::{StoreError, StoreResult};
use super::read_cache::ReadCache;
use crate::domain::time::now;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../../migrations/sqlite/0002_zone_keys.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/sqlite/0003_transport_keys.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/sqlite/0004_events_audit.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/sqlite/0005_staged_pin.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/sqlite/0006_live_tokens_index.sql"),
    ),
    (
        7,
        include_str!("../../../migrations/sqlite/0007_zone_key_grants.sql"),
    ),
    (
        8,
        include_str!("../../../migrations/sqlite/0008_purpose_keys.sql"),
    ),
    (
        9,
        include_str!("../../../migrations/sqlite/0009_pin_changes.sql"),
    ),
    (10, include_str!("../../../migrations/sqlite/0010_chip.sql")),
    (
        11,
        include_str!("../../../migrations/sqlite/0011_chip_scripts.sql"),
    ),
    (
        12,
        include_str!("../../../migrations/sqlite/0012_legacy_pins.sql"),
    ),
    (13, include_str!("../../../migrations/sqlite/0013_kbpk.sql")),
    (
        14,
        include_str!("../../../migrations/sqlite/0014_pvk_tr31.sql"),
    ),
    (
        15,
        include_str!("../../../migrations/sqlite/0015_audit_queue.sql"),
    ),
    (
        16,
        include_str!("../../../migrations/sqlite/0016_compat.sql"),
    ),
];

/// The writer connection's page cache, in KiB (SQLite's default is 2 MiB).
const WRITER_CACHE_KIB: u32 = 64 * 1024;

/// The most writes one transaction (one fsync) carries.
const GROUP_MAX: usize = 64;

/// Delivers a write's answer once its group's commit is known (`Some`: failed).
type Deliver = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;
/// A queued write: run on the writer connection (`None`: not run, the group
/// failed first); says whether it succeeded, and how to deliver its answer.
type WriteJob = Box<dyn FnOnce(Option<&mut Connection>) -> (bool, Deliver) + Send>;

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
        let (ok, deliver) = job(Some(&mut *conn));
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

/// How often the checkpointer copies the WAL's committed pages into the
/// database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// The WAL's size (pages) at which the writer checkpoints itself.
const FALLBACK_CHECKPOINT_PAGES: u32 = 10_000;

/// The checkpointer thread: every [`CHECKPOINT_EVERY`], a passive checkpoint
/// on a connection of its own (it waits for no reader or writer, and the
/// database file's fsync happens here rather than in a commit), so the WAL
/// stays small and the writer's commits never pay for a checkpoint. Ends
/// when the store is dropped.
fn checkpoint_loop(conn: &Connection, alive: &std::sync::Weak<Inner>) {
    while alive.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "passive WAL checkpoint");
        }
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

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    /// A new file is created mode 0600; SQLite gives its `-wal` and `-shm` files
    /// the database file's mode.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with(path, Durability::EachCommit)
    }

    /// [`Self::open`], with the writer's commits made durable as `durability` says.
    pub fn open_with(path: &Path, durability: Durability) -> StoreResult<Self> {
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
                return Err(StoreError::database(format!(
                    "cannot create {}: {e}",
                    path.display()
                )));
            }
        }
        let mut writer = connect(path).map_err(|e| StoreError::from(DbError::from(e)))?;
        migrate(&mut writer).map_err(|e| StoreError::from(DbError::from(e)))?;
        // The WAL is checkpointed by a thread of its own (below); the writer
        // does it only as a fallback, when the WAL has grown this many pages
        // (about 40 MB) because that thread could not keep up.
        // The writer keeps more of the indexes it updates in its own page
        // cache than SQLite's 2 MiB default: a storage rotation over millions
        // of cards writes each card's new `pan_hash` at a random index page,
        // and every page not cached is read (copied) from the OS again.
        writer
            .execute_batch(&format!(
                "PRAGMA wal_autocheckpoint={FALLBACK_CHECKPOINT_PAGES}; PRAGMA cache_size=-{WRITER_CACHE_KIB}"
            ))
            .map_err(|e| StoreError::from(DbError::from(e)))?;
        durability
            .apply(&writer)
            .map_err(|e| StoreError::from(DbError::from(e)))?;
        let checkpointer = connect(path).map_err(|e| StoreError::from(DbError::from(e)))?;
        // The file name as SQLite resolved it (symbolic links followed): its
        // WAL index is that name with `-shm`.
        let cache = ReadCache::new(writer.path().map_or(path, Path::new));
        let (writes, queued) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || write_loop(writer, queued))
            .map_err(|e| StoreError::database(format!("cannot start the writer thread: {e}")))?;
        let inner = Arc::new(Inner {
            path: path.to_owned(),
            writes,
            readers: Mutex::new(Vec::new()),
            cache,
        });
        let alive = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("sqlite-checkpointer".to_owned())
            .spawn(move || checkpoint_loop(&checkpointer, &alive))
            .map_err(|e| StoreError::database(format!("cannot start the checkpointer: {e}")))?;
        Ok(SqliteStore { inner })
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
    async fn write_with<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    {
        let (send, recv) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let job: WriteJob = Box::new(move |conn: Option<&mut Connection>| {
            let out: StoreResult<T> = match conn {
                None => Err(StoreError::database("write not run".to_owned())),
                Some(conn) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
                    .unwrap_or_else(|_| Err(aborted("database write panicked").into()))
                    .map_err(StoreError::from),
            };
            let ok = out.is_ok();
            let deliver: Deliver = Box::new(move |commit: Option<&rusqlite::Error>| {
                let answer = match (out, commit) {
                    (Err(e), _) => Err(e),
                    (Ok(_), Some(e)) => Err(StoreError::database(format!("commit failed: {e}"))),
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
            .map_err(|_| StoreError::database("the writer thread has stopped".to_owned()))?;
        recv.await
            .map_err(|_| StoreError::database("database write was dropped".to_owned()))?
    }

    /// A short read, run on the calling (async) thread: one statement that finds
    /// a few rows by primary key or unique index (the API key and the card of a
    /// request). Handing such a read to the blocking pool and back costs more
    /// than the read itself (two thread wake-ups for a few microseconds of
    /// work), and it is on the path of every PIN verification. Readers never
    /// wait for the writer under WAL, so the thread blocks only for what the
    /// read itself needs (a page not in memory is read from the file). Uses an
    /// idle pooled connection; with none idle, goes through [`Self::read`].
    async fn read_short_with<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    {
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let Some(mut conn) = pooled else {
            return self.read_with(f).await;
        };
        let out = f(&mut conn);
        let mut idle = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        drop(idle);
        out.map_err(StoreError::from)
    }

    /// Runs `f` on a pooled read connection on the blocking pool.
    async fn read_with<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            let mut conn = match pooled {
                Some(c) => c,
                None => connect(&inner.path)?,
            };
            let out = f(&mut conn);
            let mut idle = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::database(format!("database task failed: {e}")))?
        .map_err(StoreError::from)
    }
}

/// A catalogue operation and its data as a call on one SQLite connection,
/// whose calls never wait (see [`run_now`]).
fn on_connection<D, T>(data: D, op: Op<D, T>) -> impl FnOnce(&mut Connection) -> DbResult<T>
where
    D: Send + Sync + 'static,
    T: Send + 'static,
{
    move |conn| run_now(op(&mut LiteDb(conn), &data))
}

impl Backend for SqliteStore {
    async fn write<D, T>(&self, data: D, op: Op<D, T>) -> StoreResult<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.write_with(on_connection(data, op)).await
    }

    async fn read<D, T>(&self, data: D, op: Op<D, T>) -> StoreResult<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.read_with(on_connection(data, op)).await
    }

    async fn read_short<D, T>(&self, data: D, op: Op<D, T>) -> StoreResult<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.read_short_with(on_connection(data, op)).await
    }

    fn read_cache(&self) -> Option<&ReadCache> {
        Some(&self.inner.cache)
    }

    fn look_before_writing(&self) -> bool {
        true
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
