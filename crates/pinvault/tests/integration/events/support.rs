//! What the events tests share: constants, helpers and fixtures.

use crate::harness::{self, Server};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(super) const PAN: &str = "4111111111111111";

pub(super) const PAN2: &str = "5500005555555559";

pub(super) const PIN: &str = "8264";

pub(super) const WRONG_PIN: &str = "1357";

pub(super) const ALL_TYPES: [&str; 10] = [
    "card.created",
    "pin.token_created",
    "pin.changed",
    "pin.staged",
    "pin.stage_failed",
    "pin.revealed",
    "pin.verification_failed",
    "pin.blocked",
    "pin.unblocked",
    "pin.fail_count_reset",
];

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
pub(super) struct Hit {
    pub(super) path: String,
    pub(super) signature: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) body: String,
    pub(super) answered: u16,
}

/// A tiny HTTP server on loopback: answers 500 to its first `fail_first`
/// requests, and while `failing` is set; 200 otherwise.
pub(super) struct Receiver {
    pub(super) port: u16,
    pub(super) hits: Arc<Mutex<Vec<Hit>>>,
    pub(super) failing: Arc<AtomicBool>,
}

impl Receiver {
    pub(super) fn start(fail_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicBool::new(false));
        let (h, f) = (hits.clone(), failing.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (h, f) = (h.clone(), f.clone());
                std::thread::spawn(move || serve_one(stream, &h, &f, fail_first));
            }
        });
        Receiver {
            port,
            hits,
            failing,
        }
    }

    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/pinvault", self.port)
    }

    pub(super) fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

pub(super) fn serve_one(
    mut s: TcpStream,
    hits: &Mutex<Vec<Hit>>,
    failing: &AtomicBool,
    fail_first: usize,
) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let header = |name: &str| {
        head.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    let answered = {
        let mut hits = hits.lock().unwrap();
        let code = if hits.len() < fail_first || failing.load(Ordering::SeqCst) {
            500
        } else {
            200
        };
        hits.push(Hit {
            path,
            signature: header("pinvault-signature"),
            content_type: header("content-type"),
            body,
            answered: code,
        });
        code
    };
    let reason = if answered == 200 {
        "OK"
    } else {
        "Internal Server Error"
    };
    let _ = s.write_all(
        format!("HTTP/1.1 {answered} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
}

/// Checks `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub(super) fn signature_valid(secret: &str, header: &str, body: &str) -> bool {
    use aws_lc_rs::hmac;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_owned()),
            Some(("v1", x)) => v1 = Some(x.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Ok(tag) = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(v1.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, format!("{t}.{body}").as_bytes(), &tag).is_ok()
}

/// Waits for `cond`, up to a generous bound (not a timing assertion: only a
/// hang is a failure).
pub(super) fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(super) fn env(allow_private: bool) -> Vec<(String, String)> {
    let mut env = vec![
        // Short delays so the test sees several retries: 30 of 1 s.
        (
            "PINVAULT_WEBHOOK_RETRY_SCHEDULE".to_owned(),
            vec!["1s"; 30].join(","),
        ),
        ("PINVAULT_WEBHOOK_TIMEOUT_S".to_owned(), "5".to_owned()),
    ];
    if allow_private {
        env.push((
            "PINVAULT_ALLOW_PRIVATE_WEBHOOK_TARGETS".to_owned(),
            "1".to_owned(),
        ));
    }
    env
}

pub(super) fn start_env(tag: &str, env: Vec<(String, String)>) -> Server {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_env(tag, &pairs)
}

/// Every event of the program, newest first, through the paginated API.
pub(super) fn all_events(s: &Server, key: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    loop {
        let path = match out.last() {
            None => "/v1/events?limit=5".to_owned(),
            Some(last) => format!(
                "/v1/events?limit=5&starting_after={}",
                last["id"].as_str().unwrap()
            ),
        };
        let r = s.get(&path, key);
        assert_eq!(r.status, 200, "{}", r.body);
        out.extend(r.body["data"].as_array().unwrap().iter().cloned());
        if r.body["has_more"] != true {
            return out;
        }
    }
}

/// A card's life: created, PIN set by the cardholder, revealed, blocked by
/// three wrong PINs, unblocked. Returns the card id.
pub(super) fn lifecycle(s: &Server, key: &str) -> String {
    let card = s.card(key, PAN);
    assert_eq!(s.set_pin(key, &card, PIN).status, 204);
    assert_eq!(s.reveal(key, &card), PIN);
    for _ in 0..3 {
        assert_eq!(
            s.sandbox_verify(key, &card, WRONG_PIN)["result"],
            "mismatch"
        );
    }
    assert_eq!(s.sandbox_verify(key, &card, PIN)["result"], "blocked");
    let r = s.post(
        &format!("/v1/cards/{card}/pin/unblock"),
        key,
        r#"{"description":"cardholder called, identity checked","updated_by":"agent 7"}"#,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    card
}

pub(super) fn types_of(events: &[Value]) -> Vec<String> {
    let mut t: Vec<String> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    t.sort();
    t
}

/// No PAN or PIN of these tests in `text`. The audit trail's record hashes
/// (64 random-looking hex digits each) are left out of the search: a 4-digit
/// PIN turns up in one of them by chance about once in a thousand.
pub(super) fn no_secrets(text: &str) {
    let mut rest = text;
    let mut searched = String::with_capacity(text.len());
    while let Some(i) = rest.find("\"hash\":\"") {
        let (before, after) = rest.split_at(i + 8);
        searched.push_str(before);
        let end = after.find('"').unwrap_or(after.len());
        rest = &after[end..];
    }
    searched.push_str(rest);
    for secret in [PAN, PAN2, PIN, WRONG_PIN] {
        assert!(!searched.contains(secret), "`{secret}` found in {text}");
    }
}

pub(super) fn audit_list(s: &Server, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "list", "--limit", "10000"];
    all.extend_from_slice(args);
    s.cli_json(&all).as_array().unwrap().clone()
}

pub(super) fn audit_verify(s: &Server) -> (bool, Value, String) {
    let out = s.cli(&["audit", "verify"]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The server's database, reached directly, as someone with access to it would.
pub(super) enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(String),
}

impl Db {
    pub(super) fn open(s: &Server) -> Db {
        match &s.data.database_url {
            Some(url) => Db::Postgres(url.clone()),
            None => Db::Sqlite(rusqlite::Connection::open(s.data_dir.join("pinvault.db")).unwrap()),
        }
    }

    /// Runs one statement; the number of rows it changed, or the error.
    pub(super) fn exec(&self, sql: &str) -> Result<u64, String> {
        match self {
            Db::Sqlite(c) => c
                .execute(sql, [])
                .map(|n| n as u64)
                .map_err(|e| e.to_string()),
            Db::Postgres(url) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let (client, conn) = harness::postgres_connect(url).await?;
                    tokio::spawn(conn);
                    client.execute(sql, &[]).await.map_err(|e| e.to_string())
                })
            }
        }
    }

    /// The one integer a query answers (`SELECT COUNT(*) …`).
    pub(super) fn count(&self, sql: &str) -> i64 {
        match self {
            Db::Sqlite(c) => c.query_row(sql, [], |r| r.get(0)).unwrap(),
            Db::Postgres(url) => harness::postgres_query(url, sql)[0].get::<_, i64>(0),
        }
    }

    pub(super) fn drop_triggers(&self) {
        match self {
            Db::Sqlite(c) => c
                .execute_batch(
                    "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
                )
                .unwrap(),
            Db::Postgres(_) => {
                self.exec("DROP TRIGGER audit_log_no_update ON audit_log")
                    .unwrap();
            }
        }
    }

    /// A blob column of record `seq`, in hex.
    pub(super) fn hex(&self, column: &str, seq: i64) -> String {
        match self {
            Db::Sqlite(c) => c
                .query_row(
                    &format!("SELECT hex({column}) FROM audit_log WHERE seq = {seq}"),
                    [],
                    |r| r.get(0),
                )
                .unwrap(),
            Db::Postgres(url) => {
                let rows = harness::postgres_query(
                    url,
                    &format!("SELECT encode({column}, 'hex') FROM audit_log WHERE seq = {seq}"),
                );
                rows[0].get::<_, String>(0)
            }
        }
    }

    /// A blob literal from hex.
    pub(super) fn blob(&self, hex: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("X'{hex}'"),
            Db::Postgres(_) => format!("decode('{hex}', 'hex')"),
        }
    }
}

/// The ids of a whole list, walked one row per page with `starting_after`.
pub(super) fn walk(s: &Server, key: &str, path: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    loop {
        let page = match ids.last() {
            None => format!("{path}?limit=1"),
            Some(last) => format!("{path}?limit=1&starting_after={last}"),
        };
        let r = s.get(&page, key);
        assert_eq!(r.status, 200, "{page}: {}", r.body);
        let data = r.body["data"].as_array().unwrap();
        assert!(data.len() <= 1, "{}", r.body);
        ids.extend(data.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        if r.body["has_more"] != true {
            return ids;
        }
        assert_eq!(data.len(), 1, "has_more with an empty page");
    }
}
