//! The store contract: the same cases, in-process, on SQLite and on
//! PostgreSQL, the concurrent ones included (exact fail counts, one winner
//! per token, newest token only, one commit of a staged PIN, idempotency keys,
//! a gapless audit chain, claims that never overlap).
//!
//! PostgreSQL: `PINVAULT_TEST_POSTGRES_URL` (a database from which others may
//! be created), else the local server at 127.0.0.1:5432 as `postgres` if it
//! answers; each case gets a database of its own. Without one the PostgreSQL
//! half says SKIPPED, and fails when `CI=true`.

mod cards;
mod outbox;
mod tokens;
mod zone_keys;

use std::future::Future;
pub(super) use std::sync::atomic::{AtomicU32, Ordering};

pub(super) use super::*;
pub(super) use crate::domain::ids::{new_id, secret_hash};
use crate::domain::program::{Mode, Settings};
pub(super) use crate::domain::time::now;
pub(super) use crate::domain::token::{TokenError, TokenType};

/// A store of each backend, and what removes it afterwards.
pub(super) struct Backends {
    pub(super) stores: Vec<(&'static str, AnyStore)>,
    cleanup: Vec<Box<dyn FnOnce() + Send>>,
}

impl Drop for Backends {
    fn drop(&mut self) {
        for f in self.cleanup.drain(..) {
            f();
        }
    }
}

impl Backends {
    /// Each store, with a new program on it.
    pub(super) async fn with_programs(&self) -> Vec<(&'static str, &AnyStore, ProgramRow)> {
        let mut out = Vec::new();
        for (name, store) in &self.stores {
            out.push((*name, store, with_program(store).await));
        }
        out
    }
}

fn postgres_url() -> Option<String> {
    if let Ok(url) = std::env::var("PINVAULT_TEST_POSTGRES_URL") {
        return Some(url);
    }
    let local = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:5432".parse().ok()?,
        std::time::Duration::from_millis(500),
    );
    local
        .is_ok()
        .then(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{db}{query}", &base[..host_end])
}

async fn admin(url: &str, sql: &str) {
    let (config, tls) = PgTls::from_url(url).unwrap_or_else(|e| panic!("{e}"));
    let (client, conn) = config.connect(tls.clone()).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach the test PostgreSQL server: {}",
            tls.explain(&e)
        )
    });
    tokio::spawn(conn);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

static CASE: AtomicU32 = AtomicU32::new(0);

pub(super) async fn backends(tag: &str) -> Backends {
    let n = CASE.fetch_add(1, Ordering::Relaxed);
    let name = format!("pv_contract_{tag}_{}_{n}", std::process::id());
    let mut b = Backends {
        stores: Vec::new(),
        cleanup: Vec::new(),
    };
    let dir = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = SqliteStore::open(&dir.join("pinvault.db")).unwrap();
    b.stores.push(("sqlite", AnyStore::Sqlite(sqlite)));
    b.cleanup.push(Box::new(move || {
        let _ = std::fs::remove_dir_all(&dir);
    }));
    match postgres_url() {
        Some(url) => {
            // With the statement cache, and without it (what a pooler in
            // transaction mode needs: every statement sent as text), each on
            // a database of its own.
            for (label, cache, db) in [
                ("postgres", true, name.clone()),
                ("postgres, no statement cache", false, format!("{name}_nc")),
            ] {
                admin(&url, &format!("CREATE DATABASE {db}")).await;
                let settings = PgSettings {
                    statement_cache: cache,
                    ..PgSettings::default()
                };
                let store = PgStore::open(&with_database(&url, &db), settings)
                    .await
                    .unwrap();
                b.stores.push((label, AnyStore::Postgres(store)));
                let url = url.clone();
                b.cleanup.push(Box::new(move || {
                    // A runtime of its own: the test's may be shutting down.
                    std::thread::spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .unwrap();
                        rt.block_on(admin(
                            &url,
                            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
                        ));
                    })
                    .join()
                    .unwrap();
                }));
            }
        }
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and no PostgreSQL: the store contract must run on both backends")
        }
        None => eprintln!(
            "SKIPPED: the store contract on PostgreSQL (no server at PINVAULT_TEST_POSTGRES_URL or 127.0.0.1:5432)"
        ),
    }
    b
}

pub(crate) fn program() -> (ProgramRow, ApiKeyRow) {
    let t = now();
    let program = ProgramRow {
        id: new_id("prg_"),
        name: "contract".into(),
        mode: Mode::Live,
        settings: Settings::default(),
        created_at: t,
        updated_at: t,
    };
    let key = ApiKeyRow {
        id: new_id("key_"),
        program_id: program.id.clone(),
        key_hash: secret_hash(new_id("secret_").as_bytes()),
        hint: "pv_live_abcd".into(),
        created_at: t,
        revoked_at: None,
    };
    (program, key)
}

pub(crate) fn card(program_id: &str) -> CardRow {
    let hash = secret_hash(new_id("pan_").as_bytes()).to_vec();
    let card = CardRow::for_test(new_id("card_"), program_id.to_owned(), hash, now());
    CardRow {
        expiry: Some("2029-12".into()),
        ..card
    }
}

pub(super) fn token(card_id: &str, attempts: u32) -> (TokenRow, SecretHash) {
    let hash = secret_hash(new_id("pct_").as_bytes());
    let t = now();
    let row = TokenRow {
        id: new_id("pctid_"),
        token_hash: hash,
        card_id: card_id.to_owned(),
        kind: TokenType::SetPin,
        cvm: None,
        created_at: t,
        expires_at: t + 600,
        attempts_remaining: attempts,
        used_at: None,
        superseded_at: None,
        always_staged: false,
    };
    (row, hash)
}

pub(super) use crate::domain::ids::SecretHash;

/// A program with one card on `store`.
/// A program on `store`.
pub(super) async fn with_program(store: &AnyStore) -> ProgramRow {
    let (p, k) = program();
    store
        .create_program(p.clone(), k, Vec::new())
        .await
        .unwrap();
    p
}

pub(super) async fn with_card(store: &AnyStore) -> (ProgramRow, CardRow) {
    let p = with_program(store).await;
    let c = card(&p.id);
    assert!(matches!(
        store
            .create_card(c.clone(), None, Effects::default())
            .await
            .unwrap(),
        Created::Created
    ));
    (p, c)
}

pub(super) fn no_effects<T>(_: T) -> Effects {
    Effects::default()
}

pub(super) fn no_change_effects(_: &CardRow, _: &CardRow) -> Effects {
    Effects::default()
}

/// `n` copies of `task` at once; their answers.
pub(super) async fn race<T, Fut>(n: usize, task: impl Fn() -> Fut) -> Vec<T>
where
    T: Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(task())).collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// `n` wrong PINs for the card.
pub(super) async fn fail(store: &AnyStore, card_id: &str, max_tries: u32, n: usize) {
    for _ in 0..n {
        store
            .record_pin_failure(card_id, max_tries, now(), no_effects)
            .await
            .unwrap();
    }
}

/// The rows of a page that must exist (its `starting_after` names a row).
pub(super) async fn listed<T>(
    page: impl Future<Output = StoreResult<Option<(Vec<T>, bool)>>>,
) -> Vec<T> {
    page.await.unwrap().unwrap().0
}

pub(super) async fn read(store: &AnyStore, c: &CardRow) -> CardRow {
    store.get_card(&c.program_id, &c.id).await.unwrap().unwrap()
}
