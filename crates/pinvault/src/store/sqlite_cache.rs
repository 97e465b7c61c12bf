//! The rows nearly every request reads, held in memory between commits: the
//! API key presented with its program, and the card a path names.
//!
//! The cache is exactly as fresh as the database. Every entry is tagged with
//! the database's *commit stamp*, read before the rows were, and is used only
//! while the stamp is unchanged. The stamp is the header of SQLite's WAL index
//! (the `-shm` file, "WAL-mode File Format" at sqlite.org/walformat.html): two
//! copies of a 48-byte header that every commit rewrites, whichever connection
//! or process makes it (this server's writer, `pinvault api-keys revoke` in
//! another process, another server on the same file, an operator's `sqlite3`).
//! Its change counter and frame count only grow, and a restart of the WAL
//! draws new salts, so a header never comes back to a value it had before a
//! commit. Reading it costs one `pread` of 96 bytes, against the statement,
//! the locks it takes and the rows it decodes.
//!
//! What that gives: a key revoked, a program's settings changed, a card's PIN
//! blocked, by any writer, is seen by the next request that starts after the
//! commit returned, exactly as without the cache. The price: any commit
//! empties the cache (the stamp does not say which rows changed), so it helps
//! most when reads outnumber writes, as PIN verifications that match do.
//!
//! Nothing is cached that the database did not return: an unknown or revoked
//! key, or a card id the program does not have, is looked up every time.
//! The entries hold what the rows hold: key hashes and sealed values, never a
//! key or a PIN in the clear.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use super::{ApiKeyRow, CardRow, ProgramRow};
use crate::domain::ids::SecretHash;

/// The two copies of the WAL-index header.
const STAMP_LEN: usize = 96;
/// `WALINDEX_MAX_VERSION`: the only WAL-index format SQLite has had.
const WAL_INDEX_VERSION: u32 = 3_007_000;
/// At most this many cards are held (about 0.5 KB each); when full, the cache
/// of cards starts again empty.
const MAX_CARDS: usize = 16_384;
/// API keys (one or a few per program).
const MAX_KEYS: usize = 1_024;
/// How often the `-shm` file opened is checked to be still the one at its path.
const RECHECK: Duration = Duration::from_secs(1);

pub(super) type Stamp = [u8; STAMP_LEN];

pub(super) struct ReadCache {
    shm_path: PathBuf,
    /// The `-shm` file, and when it was last checked to be the one at the path.
    shm: RwLock<Option<(File, Instant)>>,
    state: Mutex<State>,
}

struct State {
    stamp: Stamp,
    keys: HashMap<SecretHash, (ApiKeyRow, ProgramRow)>,
    cards: HashMap<String, CardRow>,
}

impl ReadCache {
    /// For the database at `db` (whose `-shm` file an open connection in WAL
    /// mode has already made).
    pub(super) fn new(db: &std::path::Path) -> Self {
        let mut shm_path = db.as_os_str().to_owned();
        shm_path.push("-shm");
        let shm_path = PathBuf::from(shm_path);
        let shm = File::open(&shm_path).ok().map(|f| (f, Instant::now()));
        if shm.is_none() {
            tracing::warn!(path = %shm_path.display(), "no WAL index to read: API keys and cards are read from the database on every request");
        }
        ReadCache {
            shm_path,
            shm: RwLock::new(shm),
            state: Mutex::new(State {
                stamp: [0; STAMP_LEN],
                keys: HashMap::new(),
                cards: HashMap::new(),
            }),
        }
    }

    /// The database's commit stamp now, or `None` when it cannot be read
    /// cleanly (a commit writing it this instant, no WAL index): then nothing
    /// is taken from the cache or put in it.
    pub(super) fn stamp(&self) -> Option<Stamp> {
        let stale = {
            let shm = self.shm.read().unwrap_or_else(|p| p.into_inner());
            let (file, checked) = shm.as_ref()?;
            if checked.elapsed() < RECHECK {
                return read_stamp(file);
            }
            !same_file(file, &self.shm_path)
        };
        // Once a second: is the file still the one SQLite uses? (SQLite never
        // replaces it while a connection is open, and the store keeps one.)
        let mut shm = self.shm.write().unwrap_or_else(|p| p.into_inner());
        if stale {
            tracing::warn!(path = %self.shm_path.display(), "the WAL index file was replaced: reopened");
            *shm = File::open(&self.shm_path).ok().map(|f| (f, Instant::now()));
            self.clear();
        } else if let Some((_, checked)) = shm.as_mut() {
            *checked = Instant::now();
        }
        read_stamp(&shm.as_ref()?.0)
    }

    #[cfg(test)]
    pub(super) fn shm_path(&self) -> &std::path::Path {
        &self.shm_path
    }

    fn clear(&self) {
        let mut state = self.lock();
        state.stamp = [0; STAMP_LEN];
        state.keys.clear();
        state.cards.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state, emptied first if the database has changed since its entries were read.
    fn at(&self, stamp: &Stamp) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.lock();
        if state.stamp != *stamp {
            state.stamp = *stamp;
            state.keys.clear();
            state.cards.clear();
        }
        state
    }

    /// The live key with this hash and its program, and (if `card_id` is given)
    /// that card of the program, as far as they are held.
    pub(super) fn get(
        &self,
        stamp: &Stamp,
        key_hash: &SecretHash,
        card_id: Option<&str>,
    ) -> (Option<(ApiKeyRow, ProgramRow)>, Option<CardRow>) {
        let state = self.at(stamp);
        let Some((key, program)) = state.keys.get(key_hash) else {
            return (None, None);
        };
        let card = card_id
            .and_then(|id| state.cards.get(id))
            .filter(|c| c.program_id == program.id)
            .cloned();
        (Some((key.clone(), program.clone())), card)
    }

    /// Keeps rows read after `stamp` was: only if the database has not changed since.
    pub(super) fn put(
        &self,
        stamp: &Stamp,
        auth: Option<(&ApiKeyRow, &ProgramRow)>,
        card: Option<&CardRow>,
    ) {
        let mut state = self.lock();
        if state.stamp != *stamp {
            return;
        }
        if let Some((key, program)) = auth {
            if state.keys.len() >= MAX_KEYS {
                state.keys.clear();
            }
            state
                .keys
                .insert(key.key_hash, (key.clone(), program.clone()));
        }
        if let Some(card) = card {
            if state.cards.len() >= MAX_CARDS {
                state.cards.clear();
            }
            state.cards.insert(card.id.clone(), card.clone());
        }
    }
}

/// Both copies of the header, if they agree and the index is initialised (a
/// commit writes the second copy, then the first: copies that differ are
/// being written).
fn read_stamp(file: &File) -> Option<Stamp> {
    let mut stamp = [0u8; STAMP_LEN];
    file.read_exact_at(&mut stamp, 0).ok()?;
    let (first, second) = stamp.split_at(STAMP_LEN / 2);
    let version = u32::from_ne_bytes(first[..4].try_into().ok()?);
    // isInit, the 13th byte of a copy.
    if first != second || version != WAL_INDEX_VERSION || first[12] == 0 {
        return None;
    }
    Some(stamp)
}

fn same_file(file: &File, path: &std::path::Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn db(tag: &str) -> (PathBuf, Connection) {
        let dir = std::env::temp_dir().join(format!("pinvault-cache-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let conn = Connection::open(&path).unwrap();
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        (path, conn)
    }

    #[test]
    fn every_commit_from_any_connection_changes_the_stamp() {
        let (path, mine) = db("commits");
        let other = Connection::open(&path).unwrap();
        let cache = ReadCache::new(&path);
        let mut seen = vec![cache.stamp().expect("a stamp in WAL mode")];
        for i in 0..50 {
            let conn = if i % 2 == 0 { &mine } else { &other };
            conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
            if i % 10 == 9 {
                // A checkpoint that restarts the WAL: later commits overwrite
                // its frames from the start.
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .unwrap();
            }
            let now = cache.stamp().unwrap();
            assert!(!seen.contains(&now), "commit {i} left a stamp seen before");
            seen.push(now);
        }
        // Reads change nothing.
        let n: i64 = other
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 50);
        assert_eq!(cache.stamp().unwrap(), *seen.last().unwrap());
    }

    #[test]
    fn no_stamp_without_a_wal_index() {
        let dir = std::env::temp_dir().join(format!("pinvault-cache-none-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cache = ReadCache::new(&dir.join("absent.db"));
        assert!(cache.stamp().is_none());
    }
}
