//! When the writer's commits reach the disk.

use rusqlite::Connection;

use super::SqliteStore;
use crate::store::error::{StoreError, StoreResult};

/// When a commit of the writer is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before it is answered (`synchronous=FULL`: the WAL is synced at every
    /// commit): what the service and every other command use.
    EachCommit,
    /// At the next checkpoint, or at [`SqliteStore::sync`] (`synchronous=NORMAL`:
    /// a crash of the process loses nothing, a power cut the commits since the
    /// last sync, and the database stays whole either way). Only for a bulk load
    /// that is safe to run again and syncs when it ends: `cards import` skips the
    /// external ids a program has, so a second run imports what a power cut lost.
    AtSync,
}

impl Durability {
    pub(super) fn apply(self, writer: &Connection) -> rusqlite::Result<()> {
        match self {
            Durability::EachCommit => Ok(()),
            Durability::AtSync => writer.execute_batch("PRAGMA synchronous=NORMAL"),
        }
    }
}

impl SqliteStore {
    /// Everything committed so far, on disk: the WAL (where commits are until a
    /// checkpoint) and the database file (where a checkpoint copied them) are
    /// synced, whichever connection wrote them.
    pub fn sync(&self) -> StoreResult<()> {
        // The file SQLite opened (symbolic links followed): its WAL is beside it.
        let db = std::fs::canonicalize(&self.inner.path).map_err(|e| {
            StoreError::database(format!("cannot find {}: {e}", self.inner.path.display()))
        })?;
        let wal = {
            let mut name = db.clone().into_os_string();
            name.push("-wal");
            std::path::PathBuf::from(name)
        };
        for path in [wal.as_path(), db.as_path()] {
            let file = match std::fs::File::open(path) {
                Ok(file) => file,
                // No WAL: a checkpoint removed it (its pages are in the file).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == wal => continue,
                Err(e) => {
                    return Err(StoreError::database(format!(
                        "cannot open {}: {e}",
                        path.display()
                    )));
                }
            };
            file.sync_all().map_err(|e| {
                StoreError::database(format!("cannot sync {}: {e}", path.display()))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    /// The service's connections sync every commit (FULL, 2); a bulk load's
    /// writer leaves it to the sync at its end (NORMAL, 1).
    #[test]
    fn a_bulk_writer_syncs_at_the_end_and_the_service_at_every_commit() {
        let dir = std::env::temp_dir().join(format!(
            "pinvault-durability-{}",
            crate::domain::ids::new_id("")
        ));
        std::fs::create_dir_all(dir.join("real")).unwrap();
        let real = dir.join("real").join("pinvault.db");
        let conn = super::super::connect(&real).unwrap();
        assert_eq!(synchronous(&conn), 2);
        Durability::EachCommit.apply(&conn).unwrap();
        assert_eq!(synchronous(&conn), 2);
        Durability::AtSync.apply(&conn).unwrap();
        assert_eq!(synchronous(&conn), 1);
        drop(conn);
        // Synced through a symbolic link (its target and the target's WAL).
        let link = dir.join("pinvault.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let store = SqliteStore::open_with(&link, Durability::AtSync).unwrap();
        store.sync().unwrap();
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
