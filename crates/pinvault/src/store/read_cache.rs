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

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use super::rows::{ApiKeyRow, CardRow, ProgramRow};
use crate::domain::ids::SecretHash;

/// The two copies of the WAL-index header.
const STAMP_LEN: usize = 96;
/// `WALINDEX_MAX_VERSION`: the only WAL-index format SQLite has had.
const WAL_INDEX_VERSION: u32 = 3_007_000;
/// At most this many cards are held (about 0.5 KB each); when full, the one
/// held longest makes room.
const MAX_CARDS: usize = 16_384;
/// API keys (one or a few per program; when full, the keys start again empty).
const MAX_KEYS: usize = 1_024;
/// Card lookups by PAN hash (when full, they start again empty).
const MAX_LOOKUPS: usize = 16_384;
/// How often the `-shm` file opened is checked to be still the one at its path.
const RECHECK: Duration = Duration::from_secs(1);

pub(crate) type Stamp = [u8; STAMP_LEN];

pub struct ReadCache {
    shm_path: PathBuf,
    /// The `-shm` file, and when it was last checked to be the one at the path.
    shm: RwLock<Option<(File, Instant)>>,
    state: Mutex<State>,
}

struct State {
    /// The stamp the entries were read under.
    stamp: Stamp,
    entries: Entries,
    /// Hashes of card ids read once and not held (see [`ReadCache::put`]).
    seen: HashSet<u64>,
    hasher: RandomState,
}

#[derive(Default)]
struct Entries {
    keys: HashMap<SecretHash, (ApiKeyRow, ProgramRow)>,
    cards: HashMap<String, CardRow>,
    /// Card ids in the order they were put in: when full, the oldest goes.
    order: VecDeque<String>,
    /// The cards found by a lookup: keyed by the program and the keyed PAN
    /// hashes asked (never the PAN).
    lookups: HashMap<Vec<u8>, Vec<CardRow>>,
}

/// The key of a lookup in the cache: the program, then each lookup key
/// version with its hash.
pub(crate) fn lookup_key(program_id: &str, hashes: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut key = Vec::with_capacity(program_id.len() + 1 + hashes.len() * 36);
    key.extend_from_slice(program_id.as_bytes());
    key.push(0);
    for (version, hash) in hashes {
        key.extend_from_slice(&version.to_be_bytes());
        key.extend_from_slice(hash);
    }
    key
}

debug_fields!(ReadCache: shm_path);

impl ReadCache {
    /// For the database at `db` (whose `-shm` file an open connection in WAL
    /// mode has already made).
    pub(crate) fn new(db: &std::path::Path) -> Self {
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
                entries: Entries::default(),
                seen: HashSet::new(),
                hasher: RandomState::new(),
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn shm_path(&self) -> &std::path::Path {
        &self.shm_path
    }

    /// The database's commit stamp now, or `None` when it cannot be read
    /// cleanly (a commit writing it this instant, no WAL index): then nothing
    /// is taken from the cache or put in it.
    pub(crate) fn stamp(&self) -> Option<Stamp> {
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
            let old = std::mem::take(&mut self.lock().entries);
            drop(old);
        } else if let Some((_, checked)) = shm.as_mut() {
            *checked = Instant::now();
        }
        read_stamp(&shm.as_ref()?.0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state, if its entries were read under `stamp`; else `None`, and
    /// the entries are all dropped (after the lock is released: thousands of
    /// rows take a while to free) and the state starts again at `stamp`.
    fn lock_at(&self, stamp: &Stamp) -> Option<std::sync::MutexGuard<'_, State>> {
        let mut state = self.lock();
        if state.stamp == *stamp {
            return Some(state);
        }
        state.stamp = *stamp;
        let old = std::mem::take(&mut state.entries);
        drop(state);
        drop(old);
        None
    }

    /// The live key with this hash and its program, and (if `card_id` is given)
    /// that card of the program, as far as they are held. When the database
    /// has changed since the entries were read, they are all dropped.
    pub(crate) fn get(
        &self,
        stamp: &Stamp,
        key_hash: &SecretHash,
        card_id: Option<&str>,
    ) -> (Option<(ApiKeyRow, ProgramRow)>, Option<CardRow>) {
        let Some(state) = self.lock_at(stamp) else {
            return (None, None);
        };
        let entries = &state.entries;
        let Some((key, program)) = entries.keys.get(key_hash) else {
            return (None, None);
        };
        let card = card_id
            .and_then(|id| entries.cards.get(id))
            .filter(|c| c.program_id == program.id)
            .cloned();
        (Some((key.clone(), program.clone())), card)
    }

    /// The cards a lookup found under this stamp, if held (and drops
    /// everything when the database has changed, as [`ReadCache::get`] does).
    pub(crate) fn get_lookup(&self, stamp: &Stamp, key: &[u8]) -> Option<Vec<CardRow>> {
        self.lock_at(stamp)?.entries.lookups.get(key).cloned()
    }

    /// Keeps what a lookup found, read after `stamp` was, from the second
    /// time it is read (as cards are). Nothing found is not kept: a PAN the
    /// program does not have is looked up every time.
    pub(crate) fn put_lookup(&self, stamp: &Stamp, key: Vec<u8>, cards: &[CardRow]) {
        let mut state = self.lock();
        if state.stamp != *stamp || cards.is_empty() {
            return;
        }
        let state = &mut *state;
        if !state.entries.lookups.contains_key(&key) {
            let seen = state.hasher.hash_one(&key);
            if !state.seen.remove(&seen) {
                if state.seen.len() >= MAX_CARDS {
                    state.seen.clear();
                }
                state.seen.insert(seen);
                return;
            }
            if state.entries.lookups.len() >= MAX_LOOKUPS {
                state.entries.lookups.clear();
            }
        }
        state.entries.lookups.insert(key, cards.to_vec());
    }

    /// Keeps rows read after `stamp` was: only if the database has not changed
    /// since. A card is held from the second time it is read: when the cards
    /// read are more than the cache holds (many cards, each verified once),
    /// a miss costs a hash, not a copy of the row that would be pushed out
    /// before it is read again.
    pub(crate) fn put(
        &self,
        stamp: &Stamp,
        auth: Option<(&ApiKeyRow, &ProgramRow)>,
        card: Option<&CardRow>,
    ) {
        let mut state = self.lock();
        if state.stamp != *stamp {
            return;
        }
        let state = &mut *state;
        let entries = &mut state.entries;
        if let Some((key, program)) = auth {
            if entries.keys.len() >= MAX_KEYS && !entries.keys.contains_key(&key.key_hash) {
                entries.keys.clear();
            }
            entries
                .keys
                .insert(key.key_hash, (key.clone(), program.clone()));
        }
        if let Some(card) = card {
            if !entries.cards.contains_key(&card.id) {
                let seen = state.hasher.hash_one(&card.id);
                if !state.seen.remove(&seen) {
                    if state.seen.len() >= MAX_CARDS {
                        state.seen.clear();
                    }
                    state.seen.insert(seen);
                    return;
                }
            }
            if entries
                .cards
                .insert(card.id.clone(), card.clone())
                .is_none()
            {
                entries.order.push_back(card.id.clone());
                while entries.cards.len() > MAX_CARDS {
                    match entries.order.pop_front() {
                        Some(oldest) => entries.cards.remove(&oldest),
                        None => break,
                    };
                }
            }
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

    /// A directory of a test's own, removed with what is in it when dropped.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let dir =
                std::env::temp_dir().join(format!("pinvault-cache-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn db(tag: &str) -> (Dir, PathBuf, Connection) {
        let dir = Dir::new(tag);
        let path = dir.0.join("t.db");
        let conn = Connection::open(&path).unwrap();
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        (dir, path, conn)
    }

    #[test]
    fn every_commit_from_any_connection_changes_the_stamp() {
        let (_dir, path, mine) = db("commits");
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

    fn card(id: &str, program: &str) -> CardRow {
        CardRow::for_test(id.to_owned(), program.to_owned(), vec![1; 32], 0)
    }

    fn auth(hash: u8, program: &str) -> (ApiKeyRow, ProgramRow) {
        (
            ApiKeyRow {
                id: format!("key_{hash}"),
                program_id: program.to_owned(),
                key_hash: [hash; 32],
                hint: "pv_test_…".to_owned(),
                created_at: 0,
                revoked_at: None,
            },
            ProgramRow {
                id: program.to_owned(),
                name: "p".to_owned(),
                mode: crate::domain::program::Mode::Test,
                settings: crate::domain::program::Settings::default(),
                created_at: 0,
                updated_at: 0,
            },
        )
    }

    #[test]
    fn entries_serve_only_their_stamp_their_program_and_a_bounded_count() {
        let (_dir, path, conn) = db("entries");
        let cache = ReadCache::new(&path);
        let s1 = cache.stamp().unwrap();
        let (key, program) = auth(7, "prg_a");
        // Nothing held yet; a miss leaves nothing behind.
        assert!(cache.get(&s1, &[7; 32], Some("card_1")).0.is_none());
        cache.put(&s1, Some((&key, &program)), Some(&card("card_1", "prg_a")));
        // A card is held from its second reading.
        assert!(cache.get(&s1, &[7; 32], Some("card_1")).1.is_none());
        cache.put(&s1, None, Some(&card("card_1", "prg_a")));
        cache.put(&s1, None, Some(&card("card_b", "prg_b")));
        cache.put(&s1, None, Some(&card("card_b", "prg_b")));
        let (found, c) = cache.get(&s1, &[7; 32], Some("card_1"));
        assert_eq!(found.unwrap().1.id, "prg_a");
        assert_eq!(c.unwrap().id, "card_1");
        // Another program's card is not this caller's.
        assert!(cache.get(&s1, &[7; 32], Some("card_b")).1.is_none());
        assert!(cache.get(&s1, &[8; 32], Some("card_1")).0.is_none());

        // A commit: everything read before it is gone, and rows read under the
        // old stamp are not kept.
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let s2 = cache.stamp().unwrap();
        assert_ne!(s1, s2);
        assert!(cache.get(&s2, &[7; 32], Some("card_1")).0.is_none());
        cache.put(&s1, Some((&key, &program)), Some(&card("card_1", "prg_a")));
        cache.put(&s1, Some((&key, &program)), Some(&card("card_1", "prg_a")));
        assert!(cache.get(&s2, &[7; 32], Some("card_1")).0.is_none());

        // At most MAX_CARDS cards; the oldest make room.
        cache.put(&s2, Some((&key, &program)), None);
        for i in 0..MAX_CARDS + 10 {
            let c = card(&format!("card_{i}"), "prg_a");
            cache.put(&s2, None, Some(&c));
            cache.put(&s2, None, Some(&c));
        }
        let held = cache.lock().entries.cards.len();
        assert_eq!(held, MAX_CARDS);
        assert_eq!(cache.lock().entries.order.len(), MAX_CARDS);
        assert!(cache.get(&s2, &[7; 32], Some("card_0")).1.is_none());
        let last = format!("card_{}", MAX_CARDS + 9);
        assert!(cache.get(&s2, &[7; 32], Some(&last)).1.is_some());
    }

    #[test]
    fn lookups_are_held_from_their_second_reading_until_a_commit() {
        let (_dir, path, conn) = db("lookups");
        let cache = ReadCache::new(&path);
        let s1 = cache.stamp().unwrap();
        let key = lookup_key("prg_a", &[(1, vec![9; 32])]);
        let other = lookup_key("prg_b", &[(1, vec![9; 32])]);
        assert_ne!(key, other, "the program is part of the key");
        let found = vec![card("card_1", "prg_a"), card("card_2", "prg_a")];
        assert!(cache.get_lookup(&s1, &key).is_none());
        cache.put_lookup(&s1, key.clone(), &found);
        assert!(
            cache.get_lookup(&s1, &key).is_none(),
            "held from the second reading"
        );
        cache.put_lookup(&s1, key.clone(), &found);
        let held = cache.get_lookup(&s1, &key).unwrap();
        assert_eq!(
            held.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["card_1", "card_2"]
        );
        assert!(cache.get_lookup(&s1, &other).is_none());
        // Nothing found is never held.
        cache.put_lookup(&s1, other.clone(), &[]);
        cache.put_lookup(&s1, other.clone(), &[]);
        assert!(cache.get_lookup(&s1, &other).is_none());
        // A commit empties it.
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let s2 = cache.stamp().unwrap();
        assert!(cache.get_lookup(&s2, &key).is_none());
        cache.put_lookup(&s1, key.clone(), &found);
        cache.put_lookup(&s1, key.clone(), &found);
        assert!(
            cache.get_lookup(&s2, &key).is_none(),
            "rows read under an old stamp are not kept"
        );
    }

    #[test]
    fn no_stamp_without_a_wal_index() {
        let dir = Dir::new("none");
        let cache = ReadCache::new(&dir.0.join("absent.db"));
        assert!(cache.stamp().is_none());
    }
}
