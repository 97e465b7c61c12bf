//! PostgreSQL over TLS, against a TLS-only cluster (`hostssl` lines only, a
//! test CA; scripts/test starts it with scripts/pg-tls-cluster and names it in
//! `PINVAULT_TEST_POSTGRES_TLS_URL` and `PINVAULT_TEST_POSTGRES_TLS_CA`):
//! `serve` starts and answers with `sslmode=verify-full`, a password login is
//! bound to the TLS session, and a wrong CA, a wrong host name, `disable`, an
//! unknown `sslmode` or a bad `sslrootcert` fail at start with one clear line.
//! Whatever backend the pass is on: these tests make their own databases on
//! that cluster. Without it they say SKIPPED (and fail with `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BIN, Server, fresh_path, missing_dependency, postgres_query};

/// The TLS-only cluster: its superuser URL without a query, and the test CA.
struct Cluster {
    /// `postgres://postgres@localhost:PORT`
    server: String,
    port: String,
    ca: String,
}

fn cluster(test: &str) -> Option<Cluster> {
    let (Ok(url), Ok(ca)) = (
        std::env::var("PINVAULT_TEST_POSTGRES_TLS_URL"),
        std::env::var("PINVAULT_TEST_POSTGRES_TLS_CA"),
    ) else {
        missing_dependency(
            test,
            "no TLS-only PostgreSQL cluster (PINVAULT_TEST_POSTGRES_TLS_URL and \
             PINVAULT_TEST_POSTGRES_TLS_CA; scripts/test starts one with scripts/pg-tls-cluster)",
        );
        return None;
    };
    let base = url.split('?').next().unwrap();
    let server = base[..base.rfind('/').unwrap()].to_owned();
    let port = server.rsplit(':').next().unwrap().to_owned();
    Some(Cluster { server, port, ca })
}

impl Cluster {
    /// The superuser's URL to `db` with this query (`sslmode=…&…`).
    fn url(&self, db: &str, query: &str) -> String {
        format!("{}/{db}?{query}", self.server)
    }

    fn verify_full(&self) -> String {
        format!("sslmode=verify-full&sslrootcert={}", self.ca)
    }

    /// SQL as the superuser, over verify-full (through the library's connector).
    fn admin(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        postgres_query(&self.url("postgres", &self.verify_full()), sql)
    }
}

/// A database (and maybe a role) on the cluster, dropped afterwards.
struct Database<'a> {
    cluster: &'a Cluster,
    name: String,
    role: Option<String>,
}

impl<'a> Database<'a> {
    fn new(cluster: &'a Cluster, tag: &str, role: Option<(&str, &str)>) -> Self {
        let name = format!("pinvault_tls_{}_{tag}", std::process::id());
        let role = role.map(|(user, password)| {
            let user = format!("{user}_{}", std::process::id());
            cluster.admin(&format!(
                "DROP ROLE IF EXISTS {user}; CREATE ROLE {user} LOGIN PASSWORD '{password}'"
            ));
            user
        });
        let owner = role.as_deref().unwrap_or("postgres");
        cluster.admin(&format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE); CREATE DATABASE {name} OWNER {owner}"
        ));
        Database {
            cluster,
            name,
            role,
        }
    }
}

impl Drop for Database<'_> {
    fn drop(&mut self) {
        self.cluster.admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        if let Some(role) = &self.role {
            self.cluster.admin(&format!("DROP ROLE IF EXISTS {role}"));
        }
    }
}

/// `serve` with this database URL must exit non-zero within seconds, with one
/// line on stderr; that line.
fn fails_at_start(url: &str) -> String {
    let data = fresh_path("pgtls");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("PINVAULT_DATABASE_URL", url)
        .env_remove("PINVAULT_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("serve did not fail at start with {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let _ = std::fs::remove_dir_all(&data);
    assert!(!status.success(), "serve started with {url}: {stderr}");
    // The failure is one line, the last; a warning of the log may come before it.
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors = lines.iter().filter(|l| l.contains("error")).count();
    assert_eq!(errors, 1, "one line of error on stderr: {stderr}");
    let last = lines.last().copied().unwrap_or_default();
    assert!(last.starts_with("error: "), "{stderr}");
    last.to_owned()
}

/// An operator command (`programs list`) with this database URL succeeds
/// (in `data`: the master key the database's data keys are sealed under).
fn command_works(data: &std::path::Path, url: &str) {
    let out = Command::new(BIN)
        .args(["programs", "list", "--data-dir"])
        .arg(data)
        .env("PINVAULT_DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A second CA, that signed nothing the cluster presents.
fn other_ca() -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = fresh_path("other-ca");
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("other-ca.crt");
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=another test CA", "-keyout"])
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, cert)
}

#[test]
fn serve_starts_and_answers_with_verify_full() {
    let Some(c) = cluster("postgres_tls::serve_starts_and_answers_with_verify_full") else {
        return;
    };
    let db = Database::new(&c, "serve", None);
    let url = c.url(&db.name, &c.verify_full());
    let s = Server::start_env("pgtls", &[("PINVAULT_DATABASE_URL", &url)]);
    assert_eq!(s.call("GET", "/readyz", None, None).status, 200);
    let key = s.program("live", &["allow_plaintext_pin=true"]);
    let card = s.card(&key, "4111111111111111");
    assert_eq!(s.set_pin(&key, &card, "4821").status, 204);
    // The server's connections to the database are TLS ones.
    let rows = c.admin(&format!(
        "SELECT count(*) FILTER (WHERE NOT s.ssl)::int, count(*)::int FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.datname = '{}'",
        db.name
    ));
    let (plain, all): (i32, i32) = (rows[0].get(0), rows[0].get(1));
    assert!(
        all >= 1 && plain == 0,
        "{plain} of {all} connections without TLS"
    );
}

#[test]
fn a_password_login_is_bound_to_the_tls_session_and_never_printed() {
    let Some(c) = cluster("postgres_tls::a_password_login_is_bound_to_the_tls_session") else {
        return;
    };
    let password = "Pw-9f3c7a1e-not-in-any-log";
    let db = Database::new(&c, "scram", Some(("pv_scram", password)));
    let role = db.role.clone().unwrap();
    let server = c
        .server
        .replace("postgres@", &format!("{role}:{password}@"));
    // channel_binding=require: SCRAM-SHA-256-PLUS, over our tls-server-end-point.
    let url = format!(
        "{server}/{}?{}&channel_binding=require",
        db.name,
        c.verify_full()
    );
    let s = Server::start_env("pgtls-scram", &[("PINVAULT_DATABASE_URL", &url)]);
    assert_eq!(s.call("GET", "/readyz", None, None).status, 200);
    assert!(!s.logs().contains(password), "the password in the log");
    drop(s);
    let wrong = "Wrong-pw-77d1c0de";
    let bad = url.replace(password, wrong);
    let line = fails_at_start(&bad);
    assert!(line.contains("password authentication failed"), "{line}");
    assert!(!line.contains(wrong) && !line.contains(password), "{line}");
}

#[test]
fn a_certificate_from_another_ca_fails_at_start() {
    let Some(c) = cluster("postgres_tls::a_certificate_from_another_ca_fails_at_start") else {
        return;
    };
    let (dir, other) = other_ca();
    let other = other.display();
    let line = fails_at_start(&c.url(
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    ));
    assert!(
        line.contains("certificate verification failed for host localhost (sslmode=verify-full"),
        "{line}"
    );
    assert!(line.contains(&format!("sslrootcert {other}")), "{line}");
    // verify-ca checks the chain too; and require given an sslrootcert, as libpq.
    for mode in ["verify-ca", "require"] {
        let line =
            fails_at_start(&c.url("postgres", &format!("sslmode={mode}&sslrootcert={other}")));
        let expected =
            format!("certificate verification failed for host localhost (sslmode={mode}");
        assert!(line.contains(&expected), "{line}");
    }
    // Without any sslrootcert, verify-full checks against the built-in roots.
    let line = fails_at_start(&c.url("postgres", "sslmode=verify-full"));
    assert!(line.contains("built-in Mozilla root CAs"), "{line}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_host_name_the_certificate_is_not_for_fails_at_start() {
    let Some(c) = cluster("postgres_tls::a_host_name_the_certificate_is_not_for") else {
        return;
    };
    // The cluster's certificate is for localhost and 127.0.0.1: connect to
    // 127.0.0.1 under another name.
    let db = Database::new(&c, "name", None);
    let url = |mode: &str| {
        format!(
            "postgres://postgres@wrong-name.invalid:{}/{}?hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={}",
            c.port, db.name, c.ca
        )
    };
    let line = fails_at_start(&url("verify-full"));
    assert!(
        line.contains(
            "the server's certificate does not match the host name wrong-name.invalid (sslmode=verify-full)"
        ),
        "{line}"
    );
    // verify-ca does not check the name: the same URL works.
    let data = fresh_path("pgtls-ca");
    command_works(&data, &url("verify-ca"));
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn sslmode_disable_against_a_tls_only_server_fails_at_start() {
    let Some(c) = cluster("postgres_tls::sslmode_disable_against_a_tls_only_server") else {
        return;
    };
    let line = fails_at_start(&c.url("postgres", "sslmode=disable"));
    assert!(line.contains("no pg_hba.conf entry"), "{line}");
    assert!(line.contains("sslmode=disable"), "{line}");
}

#[test]
fn an_unknown_sslmode_or_a_bad_sslrootcert_is_refused_naming_it() {
    let Some(c) = cluster("postgres_tls::an_unknown_sslmode_or_a_bad_sslrootcert") else {
        return;
    };
    let line = fails_at_start(&c.url("postgres", "sslmode=verify-everything"));
    assert!(
        line.contains("unknown sslmode \"verify-everything\""),
        "{line}"
    );
    assert!(line.contains("verify-full"), "{line}");
    let missing = fresh_path("no-such-ca");
    let line = fails_at_start(&c.url(
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={}", missing.display()),
    ));
    assert!(
        line.contains(&format!(
            "sslrootcert {}: cannot read it",
            missing.display()
        )),
        "{line}"
    );
    let not_pem = fresh_path("not-pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let line = fails_at_start(&c.url(
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={}", not_pem.display()),
    ));
    assert!(line.contains("no PEM certificate"), "{line}");
    let _ = std::fs::remove_file(not_pem);
}

#[test]
fn require_and_prefer_encrypt_without_checking_the_certificate() {
    let Some(c) = cluster("postgres_tls::require_and_prefer_encrypt") else {
        return;
    };
    let db = Database::new(&c, "require", None);
    // The server's certificate is from a CA these URLs do not name.
    let data = fresh_path("pgtls-require");
    for query in ["sslmode=require", "sslmode=prefer", ""] {
        command_works(&data, &c.url(&db.name, query));
    }
    let _ = std::fs::remove_dir_all(&data);
}
