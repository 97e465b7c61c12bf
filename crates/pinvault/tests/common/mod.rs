//! Test harness: the real `pinvault` binary, serving on port 0 over a fresh data
//! directory and database, driven over HTTP and through its command line.
//!
//! The database is SQLite in the data directory, or, with
//! `PINVAULT_TEST_BACKEND=postgres`, a PostgreSQL database of its own per data
//! directory (made on the server at `PINVAULT_TEST_POSTGRES_URL`, else the local
//! one at 127.0.0.1:5432), dropped when the data directory goes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_pinvault");

static COUNTER: AtomicU32 = AtomicU32::new(0);

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
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
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

/// A data directory (and, on PostgreSQL, a database) for one or more servers
/// and commands; both are removed when the last user drops it.
pub struct DataDir {
    pub path: PathBuf,
    /// The database URL servers and commands get, on PostgreSQL.
    pub database_url: Option<String>,
    database: Option<String>,
}

impl DataDir {
    /// The binary with these arguments, then `--data-dir` (and the database URL
    /// in the environment, on PostgreSQL).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--data-dir").arg(&self.path);
        match &self.database_url {
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

/// Drops the test databases of test processes that are gone (killed before
/// their data directories were dropped), once per process. Only on a server on
/// this machine: the process ids in the names mean nothing on a shared one.
fn drop_stale_databases() {
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
    let (database, database_url) = match postgres_admin_url() {
        None => (None, None),
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
            (Some(db), Some(url))
        }
    };
    Arc::new(DataDir {
        path,
        database_url,
        database,
    })
}

pub struct Server {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub data: Arc<DataDir>,
    stderr: Arc<Mutex<String>>,
    agent: ureq::Agent,
    /// Environment given to the server and to operator commands.
    env: Vec<(String, String)>,
    /// Leak canaries: every PAN and every long PIN sent (see [`Server::leaks`]).
    canaries: Arc<Mutex<std::collections::BTreeSet<String>>>,
}

/// The values of a request body that must never be stored or logged in
/// clear: every `pan`, and every `pin` of 8 digits or more (shorter ones occur
/// by chance in binary files, so a scan for them would mean nothing).
fn canaries_in(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if let Value::String(text) = v {
                    let digits = text.chars().all(|c| c.is_ascii_digit());
                    if digits
                        && ((k == "pan" && text.len() >= 12) || (k == "pin" && text.len() >= 8))
                    {
                        out.insert(text.clone());
                    }
                }
                canaries_in(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| canaries_in(v, out)),
        _ => {}
    }
}

/// Where `needles` occur in `hay` (as they are, and as hex of their ASCII,
/// the way PostgreSQL prints `bytea`).
pub fn find_canaries(
    hay: &[u8],
    needles: &std::collections::BTreeSet<String>,
    place: &str,
) -> Vec<String> {
    let mut found = Vec::new();
    for n in needles {
        let hex: String = n.bytes().map(|b| format!("{b:02x}")).collect();
        for (form, pat) in [("digits", n.as_bytes()), ("hex", hex.as_bytes())] {
            if hay.windows(pat.len()).any(|w| w == pat) {
                found.push(format!("{n} ({form}) in {place}"));
            }
        }
    }
    found
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// With `PINVAULT_TEST_KEY_PROVIDER=pkcs11` (scripts/test sets it, with a
/// SoftHSM2 token, `PINVAULT_TEST_PKCS11_MODULE`, `PINVAULT_TEST_PKCS11_TOKEN`
/// and `PINVAULT_PKCS11_PIN`), every server's data directory is first put on
/// the token with `pinvault keys init --provider pkcs11`: no key file.
pub fn pkcs11_provider() -> bool {
    std::env::var("PINVAULT_TEST_KEY_PROVIDER").as_deref() == Ok("pkcs11")
}

fn init_key_provider(data: &DataDir, env: &[(String, String)]) {
    if !pkcs11_provider() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let key_label = data
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let module = var("PINVAULT_TEST_PKCS11_MODULE");
    let token = var("PINVAULT_TEST_PKCS11_TOKEN");
    let out = data
        .command(&[
            "keys",
            "init",
            "--provider",
            "pkcs11",
            "--module",
            &module,
            "--token-label",
            &token,
            "--key-label",
            &key_label,
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run pinvault keys init");
    assert!(
        out.status.success(),
        "keys init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Server {
    pub fn start(tag: &str) -> Server {
        Self::start_in(fresh_dir(tag))
    }

    /// Another server (node) on the same data directory and database.
    pub fn another_node(&self) -> Server {
        Self::start_with(self.data.clone(), self.env.clone())
    }

    pub fn start_in(data: Arc<DataDir>) -> Server {
        if !data.path.exists() {
            init_key_provider(&data, &[]);
        }
        Self::start_with(data, Vec::new())
    }

    /// A server on a fresh data directory with extra environment (also given
    /// to its operator commands).
    pub fn start_env(tag: &str, env: &[(&str, &str)]) -> Server {
        let data = fresh_dir(tag);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        init_key_provider(&data, &env);
        Self::start_with(data, env)
    }

    /// A server with extra environment (also given to its operator commands;
    /// `PINVAULT_DATABASE_URL` there overrides the data directory's database).
    pub fn start_with(data: Arc<DataDir>, env: Vec<(String, String)>) -> Server {
        let mut child = data
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .env("PINVAULT_LOG", "debug")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pinvault serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("pinvault listening on ") {
                    let _ = tx.send(base.to_owned());
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start: {}", stderr.lock().unwrap());
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Server {
            child,
            base,
            data_dir: data.path.clone(),
            data,
            stderr,
            agent,
            env,
            canaries: Arc::default(),
        }
    }

    /// Marks a value as a leak canary (a PIN sent encrypted, say).
    pub fn mark(&self, value: &str) {
        self.canaries.lock().unwrap().insert(value.to_owned());
    }

    /// The canaries registered so far.
    pub fn canaries(&self) -> std::collections::BTreeSet<String> {
        self.canaries.lock().unwrap().clone()
    }

    /// Where the canaries occur: every file of the data directory (the SQLite
    /// database with its WAL and shared memory, the key file…), the server's
    /// log, and on PostgreSQL every row of the database as text. Empty when
    /// none leaked.
    pub fn leaks(&self) -> Vec<String> {
        self.leaks_of(&self.canaries())
    }

    pub fn leaks_of(&self, canaries: &std::collections::BTreeSet<String>) -> Vec<String> {
        if canaries.is_empty() {
            return Vec::new();
        }
        let mut found = Vec::new();
        let mut files = Vec::new();
        files_under(&self.data_dir, &mut files);
        for f in files {
            if let Ok(bytes) = std::fs::read(&f) {
                found.extend(find_canaries(&bytes, canaries, &f.display().to_string()));
            }
        }
        found.extend(find_canaries(
            self.logs().as_bytes(),
            canaries,
            "the server log",
        ));
        if let Some(dump) = self.data.database_dump() {
            found.extend(find_canaries(
                dump.as_bytes(),
                canaries,
                "the PostgreSQL database",
            ));
        }
        found
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Runs an operator command against this server's data directory and database.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.data
            .command(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run pinvault")
    }

    pub fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "pinvault {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    }

    /// A new program with these settings (`key=value`); returns its API key.
    pub fn program(&self, mode: &str, settings: &[&str]) -> String {
        let created = self.cli_json(&["programs", "create", "--name", "test", "--mode", mode]);
        let id = created["program_id"].as_str().unwrap().to_owned();
        if !settings.is_empty() {
            let mut args = vec!["programs", "update", &id];
            for s in settings {
                args.push("--set");
                args.push(s);
            }
            self.cli_json(&args);
        }
        created["api_key"].as_str().unwrap().to_owned()
    }

    /// A request with a JSON body (or none) and an API key (or none).
    pub fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Reply {
        self.call_with(method, path, key, body, "application/json", &[])
    }

    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.try_call_with(method, path, key, body, content_type, headers)
            .expect("HTTP request")
    }

    /// As [`Server::call`], with a failed connection as an error rather than a panic.
    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Result<Reply, ureq::Error> {
        self.try_call_with(method, path, key, body, "application/json", &[])
    }

    pub fn try_call_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, ureq::Error> {
        if let Some(v) = body.and_then(|b| serde_json::from_str::<Value>(b).ok()) {
            canaries_in(&v, &mut self.canaries.lock().unwrap());
        }
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(key) = key {
            req = req.header("Authorization", format!("Bearer {key}"));
        }
        if body.is_some() {
            req = req.header("Content-Type", content_type);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.unwrap_or("").to_owned()).unwrap();
        // A kept-alive connection the server closed as the request went out
        // (after an answer that left a body unread, or idle past the header
        // timeout) never reached a handler: send it once more, on a new one.
        let again = req.clone();
        let mut res = match self.agent.run(req) {
            Err(ureq::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                self.agent.run(again)?
            }
            other => other?,
        };
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Reply {
            status,
            body,
            headers,
        })
    }

    pub fn get(&self, path: &str, key: &str) -> Reply {
        self.call("GET", path, Some(key), None)
    }

    pub fn post(&self, path: &str, key: &str, body: &str) -> Reply {
        self.call("POST", path, Some(key), Some(body))
    }

    /// Creates a card; returns its id.
    pub fn card(&self, key: &str, pan: &str) -> String {
        let r = self.post("/v1/cards", key, &format!(r#"{{"pan":"{pan}"}}"#));
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// A control token of `kind` for a card.
    pub fn token(&self, key: &str, card: &str, kind: &str) -> String {
        let body = if kind == "reveal_pin" {
            r#"{"type":"reveal_pin","cardholder_verification_method":"BIOMETRIC_FACE"}"#.to_owned()
        } else {
            format!(r#"{{"type":"{kind}"}}"#)
        };
        let r = self.post(&format!("/v1/cards/{card}/control-tokens"), key, &body);
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["token"].as_str().unwrap().to_owned()
    }

    /// Sets a PIN in clear through a fresh token.
    pub fn set_pin(&self, key: &str, card: &str, pin: &str) -> Reply {
        let token = self.token(key, card, "set_pin");
        self.call(
            "PUT",
            &format!("/v1/cards/{card}/pin"),
            Some(key),
            Some(&format!(r#"{{"control_token":"{token}","pin":"{pin}"}}"#)),
        )
    }

    /// Reveals the PIN in clear through a fresh token.
    pub fn reveal(&self, key: &str, card: &str) -> String {
        let token = self.token(key, card, "reveal_pin");
        let r = self.post(
            &format!("/v1/cards/{card}/pin/reveal"),
            key,
            &format!(r#"{{"control_token":"{token}"}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["pin"].as_str().unwrap().to_owned()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a clean stop), without waiting.
    pub fn sigterm(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits for the server to exit; its exit status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for the server")
    }

    /// The sandbox's answer (`{"result","remaining_tries"}`) for `pin`, in a
    /// test-mode program.
    pub fn sandbox_verify(&self, key: &str, card: &str, pin: &str) -> Value {
        let r = self.post(
            &format!("/v1/test/cards/{card}/pin/verify"),
            key,
            &format!(r#"{{"pin":"{pin}"}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    /// Asserts that none of `canaries` (clear PINs, PANs, tokens, keys) is in
    /// the server's log or, in clear or as hex, in the data directory's files
    /// and the database. Failures name a canary by position, never by value.
    pub fn assert_nowhere(&self, canaries: &[&str]) {
        let logs = self.logs();
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.data_dir).unwrap() {
            let path = entry.unwrap().path();
            files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
        match self.data.database_dump() {
            // PostgreSQL: the rows as text, byte columns in hex.
            Some(dump) => files.push(("the PostgreSQL database".into(), dump.into_bytes())),
            None => assert!(files.iter().any(|(p, _)| p.ends_with("pinvault.db"))),
        }
        for (i, canary) in canaries.iter().enumerate() {
            assert!(!logs.contains(canary), "log holds canary #{i}");
            let hex: String = canary.bytes().map(|b| format!("{b:02x}")).collect();
            for (path, bytes) in &files {
                let found = [canary.as_bytes(), hex.as_bytes()]
                    .iter()
                    .any(|needle| bytes.windows(needle.len()).any(|w| w == *needle));
                assert!(!found, "{path} holds canary #{i} in clear");
            }
        }
    }

    /// Kills the server at once (SIGKILL): no shutdown, no flushing.
    pub fn kill9(&self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
    }

    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    /// Stops the server, then checks that no PAN or long PIN it was sent is in
    /// its data directory, its database or its log (unless the test failed).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let leaks = self.leaks();
            assert!(leaks.is_empty(), "leak canaries found: {leaks:#?}");
        }
    }
}
