//! A data directory (and, on PostgreSQL, a database of its own) for one or
//! more servers and commands, and fresh temporary paths.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::postgres::{
    drop_stale_databases, postgres_admin, postgres_admin_url, postgres_query, with_database,
};

/// The `pinvault` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_pinvault");

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A data directory (and, on PostgreSQL, a database) for one or more servers
/// and commands; both are removed when the last user drops it.
pub struct DataDir {
    pub path: PathBuf,
    /// The database on PostgreSQL, for the tests' own SQL: straight to the
    /// server.
    pub database_url: Option<String>,
    /// The same database as servers and commands reach it: through the
    /// PgBouncer at `PINVAULT_TEST_POSTGRES_SERVICE_URL` where one is set
    /// (scripts/test's PgBouncer pass), else straight to the server.
    service_url: Option<String>,
    database: Option<String>,
    /// The program of each API key `Server::program` made (for commands that
    /// name a program, as `zone-keys import --program`).
    pub(super) programs: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl DataDir {
    /// The binary with these arguments, then `--data-dir` (and the database URL
    /// in the environment, on PostgreSQL).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--data-dir").arg(&self.path);
        match &self.service_url {
            Some(url) => cmd.env("PINVAULT_DATABASE_URL", url),
            None => cmd.env_remove("PINVAULT_DATABASE_URL"),
        };
        cmd
    }

    /// Everything the database holds, as text (PostgreSQL; bytes as hex).
    pub fn database_dump(&self) -> Option<String> {
        self.database_rows("t::text")
    }

    /// Every row with its row version (`xmin`): any write to a row, even of the
    /// same values, changes it (PostgreSQL).
    pub fn database_versions(&self) -> Option<String> {
        self.database_rows("xmin::text || ' ' || t::text")
    }

    fn database_rows(&self, select: &str) -> Option<String> {
        let url = self.database_url.as_deref()?;
        let tables = postgres_query(
            url,
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        );
        let mut dump = String::new();
        for t in tables {
            let name: String = t.get(0);
            let sql = format!("SELECT {select} FROM \"{name}\" t ORDER BY 1");
            for row in postgres_query(url, &sql) {
                dump.push_str(row.get::<_, &str>(0));
                dump.push('\n');
            }
        }
        Some(dump)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        if let Some(db) = &self.database {
            // FORCE: a killed server's connections may not be gone yet.
            postgres_admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        }
    }
}

/// A new, not yet existing path under the temporary directory (for what is not
/// a data directory; the caller removes it).
pub fn fresh_path(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!("pinvault-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    path
}

pub fn fresh_dir(tag: &str) -> Arc<DataDir> {
    let path = fresh_path(tag);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let (database, database_url, service_url) = match postgres_admin_url() {
        None => (None, None, None),
        Some(admin) => {
            let tag: String = tag
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_lowercase())
                .collect();
            drop_stale_databases();
            let db = format!("pinvault_test_{}_{n}_{tag}", std::process::id());
            postgres_admin(&format!(
                "DROP DATABASE IF EXISTS {db} WITH (FORCE); CREATE DATABASE {db}"
            ));
            let url = with_database(admin, &db);
            let service = std::env::var("PINVAULT_TEST_POSTGRES_SERVICE_URL")
                .map_or_else(|_| url.clone(), |base| with_database(&base, &db));
            (Some(db), Some(url), Some(service))
        }
    };
    Arc::new(DataDir {
        path,
        database_url,
        service_url,
        database,
        programs: Default::default(),
    })
}
