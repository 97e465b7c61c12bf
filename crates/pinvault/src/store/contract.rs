//! The store contract: the same cases, in-process, on SQLite and on
//! PostgreSQL, the concurrent ones included (exact fail counts, one winner
//! per token, newest token only, one commit of a staged PIN, idempotency keys,
//! a gapless audit chain, claims that never overlap).
//!
//! PostgreSQL: `PINVAULT_TEST_POSTGRES_URL` (a database from which others may
//! be created), else the local server at 127.0.0.1:5432 as `postgres` if it
//! answers; each case gets a database of its own. Without one the PostgreSQL
//! half says SKIPPED, and fails when `CI=true`.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::domain::audit::{GENESIS, chain_hash};
use crate::domain::ids::{new_id, secret_hash};
use crate::domain::program::{Mode, Settings};
use crate::domain::time::now;
use crate::domain::token::{TokenError, TokenType};

/// A store of each backend, and what removes it afterwards.
struct Backends {
    stores: Vec<(&'static str, AnyStore)>,
    cleanup: Vec<Box<dyn FnOnce() + Send>>,
}

impl Drop for Backends {
    fn drop(&mut self) {
        for f in self.cleanup.drain(..) {
            f();
        }
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
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL server: {e}"));
    tokio::spawn(conn);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

static CASE: AtomicU32 = AtomicU32::new(0);

async fn backends(tag: &str) -> Backends {
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
            admin(&url, &format!("CREATE DATABASE {name}")).await;
            let store = PgStore::open(&with_database(&url, &name), PgSettings::default())
                .await
                .unwrap();
            b.stores.push(("postgres", AnyStore::Postgres(store)));
            b.cleanup.push(Box::new(move || {
                // A runtime of its own: the test's may be shutting down.
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(admin(
                        &url,
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    ));
                })
                .join()
                .unwrap();
            }));
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

fn program() -> (ProgramRow, ApiKeyRow) {
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

fn card(program_id: &str) -> CardRow {
    let t = now();
    CardRow {
        id: new_id("card_"),
        program_id: program_id.to_owned(),
        pan_hash: secret_hash(new_id("pan_").as_bytes()).to_vec(),
        lookup_key_version: 1,
        pan_sealed: vec![1, 2, 3],
        pan_key_version: 1,
        last4: "1111".into(),
        expiry: Some("2029-12".into()),
        external_id: None,
        status: CardStatus::Active,
        inactive_by_block: false,
        pin_block: vec![9; 16],
        pin_key_version: 1,
        pin_set_by: SetBy::Random,
        pin_updated_at: t,
        fail_count: 0,
        last_failed_at: None,
        pin_blocked: false,
        created_at: t,
        updated_at: t,
        staged_expires_at: None,
        staged_token_id: None,
        staged_pin_block: None,
        staged_pin_key_version: None,
    }
}

fn token(card_id: &str, attempts: u32) -> (TokenRow, SecretHash) {
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
    };
    (row, hash)
}

use crate::domain::ids::SecretHash;

/// A program with one card on `store`.
async fn with_card(store: &AnyStore) -> (ProgramRow, CardRow) {
    let (p, k) = program();
    store
        .create_program(p.clone(), k, Vec::new())
        .await
        .unwrap();
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

fn no_effects<T>(_: T) -> Effects {
    Effects::default()
}

fn no_change_effects(_: &CardRow, _: &CardRow) -> Effects {
    Effects::default()
}

/// `n` copies of `task` at once; their answers.
async fn race<T, Fut>(n: usize, task: impl Fn() -> Fut) -> Vec<T>
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
async fn fail(store: &AnyStore, card_id: &str, max_tries: u32, n: usize) {
    for _ in 0..n {
        store
            .record_pin_failure(card_id, max_tries, now(), no_effects)
            .await
            .unwrap();
    }
}

async fn read(store: &AnyStore, c: &CardRow) -> CardRow {
    store.get_card(&c.program_id, &c.id).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cards_are_found_by_program_and_listed_newest_first() {
    let b = backends("cards").await;
    for (name, store) in &b.stores {
        let (p, first) = with_card(store).await;
        let second = card(&p.id);
        store
            .create_card(second.clone(), None, Effects::default())
            .await
            .unwrap();
        let got = read(store, &first).await;
        assert_eq!(
            (&got.id, got.last4.as_str(), got.expiry.as_deref()),
            (&first.id, "1111", Some("2029-12")),
            "{name}"
        );
        assert!(
            store
                .get_card("prg_other", &first.id)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        let (page, more) = store
            .list_cards(&p.id, None, 1, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&page[0].id, more), (&second.id, true), "{name}");
        let (page, more) = store
            .list_cards(&p.id, None, 1, Some(&second.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&page[0].id, more), (&first.id, false), "{name}");
        assert!(
            store
                .list_cards(&p.id, None, 1, Some("card_nosuch"))
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        // The same id twice: a constraint, named, without the values.
        let err = store
            .create_card(first.clone(), None, Effects::default())
            .await
            .unwrap_err();
        let constraint = err.constraint().unwrap_or_else(|| panic!("{name}: {err}"));
        assert!(
            constraint.contains("id") || constraint.contains("cards"),
            "{name}: {constraint}"
        );
        assert!(!err.to_string().contains(&first.id), "{name}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures_stop_at_exactly_max_tries() {
    let b = backends("tries").await;
    for (name, store) in &b.stores {
        let (p, c) = with_card(store).await;
        let answers = race(20, || {
            let (store, id) = (store.clone(), c.id.clone());
            async move {
                store
                    .record_pin_failure(&id, 5, now(), no_effects)
                    .await
                    .unwrap()
            }
        })
        .await;
        let mut counted: Vec<PinFailure> = answers.into_iter().flatten().collect();
        counted.sort_by_key(|f| f.fail_count);
        let counts: Vec<u32> = counted.iter().map(|f| f.fail_count).collect();
        assert_eq!(counts, [1, 2, 3, 4, 5], "{name}");
        assert_eq!(counted.iter().filter(|f| f.blocked).count(), 1, "{name}");
        let after = read(store, &c).await;
        assert!(after.pin_blocked && after.inactive_by_block, "{name}");
        assert_eq!(
            (after.fail_count, after.status),
            (5, CardStatus::Inactive),
            "{name}"
        );
        // A match never unblocks; an unblock does, and reactivates.
        assert!(
            !store.reset_pin_failures(&c.id, now()).await.unwrap(),
            "{name}"
        );
        let unblocked = store
            .unblock_pin(&p.id, &c.id, now(), no_change_effects)
            .await
            .unwrap()
            .unwrap();
        assert!(
            !unblocked.pin_blocked && unblocked.status == CardStatus::Active,
            "{name}"
        );
        assert_eq!(
            read(store, &c).await.pin_state(),
            unblocked.pin_state(),
            "{name}"
        );
        // A match resets the count.
        fail(store, &c.id, 5, 1).await;
        assert!(
            store.reset_pin_failures(&c.id, now()).await.unwrap(),
            "{name}"
        );
        assert_eq!(read(store, &c).await.fail_count, 0, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_changes_follow_the_domain() {
    let b = backends("status").await;
    for (name, store) in &b.stores {
        let status = async |c: &CardRow, to| {
            store
                .set_card_status(&c.program_id, &c.id, to, now(), no_change_effects)
                .await
                .unwrap()
                .unwrap()
        };
        let (_, c) = with_card(store).await;
        fail(store, &c.id, 3, 3).await;
        let suspended = status(&c, CardStatus::Suspended).await;
        assert!(
            suspended.pin_blocked && !suspended.inactive_by_block,
            "{name}: a suspension keeps the PIN blocked"
        );
        assert!(
            status(&c, CardStatus::Active).await.pin_blocked,
            "{name}: reactivating a suspended card does not unblock"
        );
        let (_, c2) = with_card(store).await;
        fail(store, &c2.id, 3, 3).await;
        let back = status(&c2, CardStatus::Active).await;
        assert!(
            !back.pin_blocked && back.fail_count == 0,
            "{name}: reactivating a card blocking made inactive unblocks"
        );
        let none = store.set_card_status(
            &c.program_id,
            "card_nosuch",
            CardStatus::Active,
            now(),
            no_change_effects,
        );
        assert!(none.await.unwrap().is_none(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_redemption_per_token_and_newest_token_only() {
    let b = backends("tokens").await;
    for (name, store) in &b.stores {
        let (_, c) = with_card(store).await;
        let (old, _) = token(&c.id, 3);
        store
            .create_token(old.clone(), None, Effects::default())
            .await
            .unwrap();
        let (newest, hash) = token(&c.id, 3);
        store
            .create_token(newest.clone(), None, Effects::default())
            .await
            .unwrap();
        let r = store
            .redeem_token(&old.id, None, now(), Effects::default())
            .await
            .unwrap();
        assert_eq!(r, Err(TokenError::Superseded), "{name}");
        assert_eq!(
            store.find_token(hash).await.unwrap().unwrap().id,
            newest.id,
            "{name}"
        );
        let answers = race(12, || {
            let (store, id) = (store.clone(), newest.id.clone());
            async move {
                store
                    .redeem_token(&id, None, now(), Effects::default())
                    .await
                    .unwrap()
            }
        })
        .await;
        assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 1, "{name}");
        assert!(
            answers
                .iter()
                .all(|a| *a == Ok(()) || *a == Err(TokenError::Used)),
            "{name}"
        );
        // Attempts: exactly as many as the token has, whoever races.
        let (limited, _) = token(&c.id, 4);
        store
            .create_token(limited.clone(), None, Effects::default())
            .await
            .unwrap();
        let answers = race(10, || {
            let (store, id) = (store.clone(), limited.id.clone());
            async move {
                store
                    .use_token_attempt(&id, now(), Effects::default())
                    .await
                    .unwrap()
            }
        })
        .await;
        let mut left: Vec<u32> = answers.iter().filter_map(|a| a.ok()).collect();
        left.sort_unstable();
        assert_eq!(left, [0, 1, 2, 3], "{name}");
        assert!(
            answers
                .iter()
                .all(|a| a.is_ok() || *a == Err(TokenError::Exhausted)),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_staged_pin_is_committed_once() {
    let b = backends("staged").await;
    for (name, store) in &b.stores {
        let (p, c) = with_card(store).await;
        fail(store, &c.id, 3, 3).await;
        let (t, _) = token(&c.id, 3);
        store
            .create_token(t.clone(), None, Effects::default())
            .await
            .unwrap();
        let pin = PinWrite {
            block: vec![7; 16],
            key_version: 1,
            set_by: SetBy::Cardholder,
        };
        let stage = PinChange::Stage {
            pin,
            expires_at: now() + 600,
        };
        store
            .redeem_token(&t.id, Some(stage), now(), Effects::default())
            .await
            .unwrap()
            .unwrap();
        let answers = race(8, || {
            let (store, p, c) = (store.clone(), p.id.clone(), c.id.clone());
            async move {
                store
                    .commit_staged_pin(&p, &c, now(), |_: &CardRow| Effects::default())
                    .await
                    .unwrap()
            }
        })
        .await;
        assert_eq!(answers.iter().filter(|won| **won).count(), 1, "{name}");
        let after = read(store, &c).await;
        assert_eq!(after.pin_block, vec![7; 16], "{name}");
        assert!(
            !after.pin_blocked
                && after.status == CardStatus::Active
                && after.staged_pin_block.is_none(),
            "{name}"
        );
        assert_eq!(after.pin_set_by, SetBy::Cardholder, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_create_per_idempotency_key() {
    let b = backends("idem").await;
    for (name, store) in &b.stores {
        let (p, k) = program();
        store
            .create_program(p.clone(), k, Vec::new())
            .await
            .unwrap();
        let idem = IdemRow {
            program_id: p.id.clone(),
            key: "k1".into(),
            request_hash: vec![1; 32],
            status: 201,
            response_sealed: vec![2; 40],
            key_version: 1,
            created_at: now(),
        };
        let answers = race(6, || {
            let (store, c, idem) = (store.clone(), card(&p.id), idem.clone());
            async move {
                store
                    .create_card(c, Some(idem), Effects::default())
                    .await
                    .unwrap()
            }
        })
        .await;
        assert_eq!(
            answers
                .iter()
                .filter(|a| matches!(a, Created::Created))
                .count(),
            1,
            "{name}"
        );
        let (cards, _) = store
            .list_cards(&p.id, None, 10, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cards.len(), 1, "{name}");
        let row = store.get_idempotency(&p.id, "k1").await.unwrap().unwrap();
        assert_eq!((row.status, row.request_hash), (201, vec![1; 32]), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_appends_from_everywhere_make_one_chain() {
    let b = backends("audit").await;
    for (name, store) in &b.stores {
        let n = AtomicU32::new(0);
        race(16, || {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let entry = crate::audit::Actor::operator().record(
                "contract.test",
                None,
                None,
                serde_json::json!({ "i": i }),
            );
            let store = store.clone();
            async move { store.append_audit(entry).await.unwrap() }
        })
        .await;
        let records = store.list_audit(0, 100).await.unwrap();
        assert_eq!(records.len(), 16, "{name}");
        let mut prev = GENESIS.to_vec();
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.seq, i as i64 + 1, "{name}");
            assert_eq!(r.prev_hash, prev, "{name}");
            assert_eq!(
                r.hash,
                chain_hash(&prev, r.seq, &r.entry).to_vec(),
                "{name}"
            );
            prev = r.hash.clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_never_claim_the_same_delivery() {
    let b = backends("claims").await;
    for (name, store) in &b.stores {
        let (p, k) = program();
        store
            .create_program(p.clone(), k, Vec::new())
            .await
            .unwrap();
        let endpoint = WebhookEndpointRow {
            id: new_id("we_"),
            program_id: p.id.clone(),
            url: "https://example.test/hook".into(),
            events: vec!["card.created".into()],
            secret_sealed: vec![3; 40],
            secret_key_version: 1,
            created_at: now(),
        };
        let audit = crate::audit::Actor::operator().record(
            "webhook_endpoint.created",
            Some(&p.id),
            None,
            serde_json::json!({}),
        );
        store
            .create_webhook_endpoint(endpoint.clone(), None, audit)
            .await
            .unwrap();
        for _ in 0..30 {
            let c = card(&p.id);
            let ev = crate::events::event(
                &p.id,
                &c.id,
                crate::events::EventType::CardCreated,
                serde_json::json!({}),
            );
            store
                .create_card(
                    c,
                    None,
                    Effects {
                        events: vec![ev],
                        audit: None,
                    },
                )
                .await
                .unwrap();
        }
        let worker = AtomicU32::new(0);
        let claims = race(4, || {
            let (store, owner) = (
                store.clone(),
                format!("worker-{}", worker.fetch_add(1, Ordering::Relaxed)),
            );
            async move {
                let mut mine = Vec::new();
                loop {
                    let claimed = store
                        .claim_deliveries(&owner, now(), now() + 60, 4)
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    mine.extend(claimed.into_iter().map(|d| d.id));
                }
            }
        })
        .await;
        let mut ids: Vec<String> = claims.into_iter().flatten().collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(
            (n, ids.len()),
            (30, 30),
            "{name}: every delivery claimed once"
        );
        let (deliveries, _) = store
            .list_deliveries(&endpoint.id, 100, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(deliveries.len(), 30, "{name}");
    }
}
