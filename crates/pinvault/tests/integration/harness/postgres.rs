//! The test PostgreSQL server: which one (if the tests run on PostgreSQL), SQL
//! on it (over TLS when its URL asks: the service's own connector), and
//! dropping the databases of test processes that are gone.

use std::sync::OnceLock;

/// The PostgreSQL server the tests use, when they run on PostgreSQL: a URL to
/// a database the harness can create other databases from.
pub fn postgres_admin_url() -> Option<&'static str> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        match std::env::var("PINVAULT_TEST_BACKEND").as_deref() {
            Ok("postgres") => {}
            Ok("sqlite") | Err(_) => return None,
            Ok(other) => panic!("PINVAULT_TEST_BACKEND={other}: expected sqlite or postgres"),
        }
        Some(
            std::env::var("PINVAULT_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
        )
    })
    .as_deref()
}

pub fn on_postgres() -> bool {
    postgres_admin_url().is_some()
}

/// Runs SQL on the admin connection of the test PostgreSQL server.
pub fn postgres_admin(sql: &str) -> Vec<tokio_postgres::Row> {
    postgres_query(postgres_admin_url().expect("on PostgreSQL"), sql)
}

/// Runs SQL (statements separated by `;` are run one by one; the rows of the
/// last are returned) against the database at `url`.
pub fn postgres_query(url: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, connection) = connect(url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL server: {e}"));
        tokio::spawn(connection);
        let mut rows = Vec::new();
        for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
            rows = client
                .query(statement, &[])
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        rows
    })
}

/// Connects to `url` as the service would: its `sslmode` and `sslrootcert`
/// read by the library's own TLS connector (so the admin connections work on a
/// TLS-only server too).
pub async fn connect(
    url: &str,
) -> Result<
    (
        tokio_postgres::Client,
        tokio_postgres::Connection<
            tokio_postgres::Socket,
            pinvault::store::PgTlsStream<tokio_postgres::Socket>,
        >,
    ),
    String,
> {
    let (config, tls) = pinvault::store::PgTls::from_url(url)?;
    config
        .connect(tls.clone())
        .await
        .map_err(|e| tls.explain(&e))
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    format!("{}/{db}{query}", &base[..host_end])
}

/// Whether a PostgreSQL server answers at `PINVAULT_TEST_POSTGRES_URL` (else
/// the local one at 127.0.0.1:5432), whatever backend this run is on: for a
/// test that only applies to PostgreSQL, to tell "this pass is on SQLite" from
/// "there is no PostgreSQL on this machine".
pub fn postgres_reachable() -> bool {
    let url = postgres_admin_url().map_or_else(
        || {
            std::env::var("PINVAULT_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
        },
        str::to_owned,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match tokio::time::timeout(std::time::Duration::from_secs(5), connect(&url)).await {
            Ok(Ok((client, connection))) => {
                tokio::spawn(connection);
                client.simple_query("SELECT 1").await.is_ok()
            }
            _ => false,
        }
    })
}

/// Drops the test databases of test processes that are gone (killed before
/// their data directories were dropped), once per process. Only on a server on
/// this machine: the process ids in the names mean nothing on a shared one.
pub(super) fn drop_stale_databases() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let url = postgres_admin_url().unwrap_or("");
        let host = url
            .split_once("://")
            .map_or("", |(_, rest)| rest)
            .rsplit_once('@')
            .map_or_else(|| url.split_once("://").map_or("", |(_, r)| r), |(_, h)| h);
        if !["127.0.0.1", "localhost", "[::1]"].iter().any(|local| {
            host.starts_with(&format!("{local}:")) || host.starts_with(&format!("{local}/"))
        }) {
            return;
        }
        let rows = postgres_admin(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'pinvault\\_test\\_%'",
        );
        for row in rows {
            let name: String = row.get(0);
            let pid = name.split('_').nth(2).unwrap_or("");
            let alive = !pid.is_empty() && std::path::Path::new("/proc").join(pid).exists();
            if !alive {
                postgres_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    });
}
