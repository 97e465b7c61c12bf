//! What changes leave behind: idempotency records, the audit chain, webhook claims.

use super::*;
use crate::domain::audit::{GENESIS, chain_hash};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_create_per_idempotency_key() {
    let b = backends("idem").await;
    for (name, store, p) in b.with_programs().await {
        let idem = IdemRow {
            program_id: p.id.clone(),
            key: "k1".into(),
            request_hash: vec![1; 32],
            status: 201,
            response_sealed: vec![2; 40],
            key_kind: crate::keys::KeyKind::Idempotency,
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
        let cards = listed(store.list_cards(&p.id, None, 10, None)).await;
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
        // Queued, not chained yet; then sealers racing each other (the
        // servers' skip a turn, the command line's waits) seal each record
        // once, in one chain.
        assert!(store.list_audit(0, 100).await.unwrap().is_empty(), "{name}");
        assert_eq!(store.audit_pending().await.unwrap().records, 16, "{name}");
        let turn = std::sync::Arc::new(AtomicU32::new(0));
        let counts = race(6, || {
            let (store, turn) = (store.clone(), turn.clone());
            async move {
                match turn.fetch_add(1, Ordering::Relaxed) % 2 {
                    0 => store
                        .seal_audit(false, SealFrom::Oldest)
                        .await
                        .unwrap()
                        .map_or(0, |s| s.records as u64),
                    _ => store.seal_all_audit().await.unwrap(),
                }
            }
        })
        .await;
        let rest = store.seal_all_audit().await.unwrap();
        assert_eq!(counts.iter().sum::<u64>() + rest, 16, "{name}");
        assert_eq!(store.audit_pending().await.unwrap().records, 0, "{name}");
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
    for (name, store, p) in b.with_programs().await {
        let endpoint = endpoint(&p.id);
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
        let deliveries = listed(store.list_deliveries(&endpoint.id, 100, None)).await;
        assert_eq!(deliveries.len(), 30, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_writes_its_events_its_audit_record_and_a_delivery_per_subscriber() {
    let b = backends("effects").await;
    for (name, store, p) in b.with_programs().await {
        let other = with_program(store).await;
        let make = |program: &str, events: &[&str]| {
            let mut e = endpoint(program);
            e.events = events.iter().map(|s| (*s).to_owned()).collect();
            e
        };
        let audit = || {
            crate::audit::Actor::operator().record(
                "contract.endpoint",
                None,
                None,
                serde_json::json!({}),
            )
        };
        // Of the program: one for both events, one for the second only, one
        // deleted; and one of another program for both.
        let both = make(&p.id, &["card.created", "pin.changed"]);
        let second = make(&p.id, &["pin.changed"]);
        let deleted = make(&p.id, &["card.created"]);
        let elsewhere = make(&other.id, &["card.created", "pin.changed"]);
        for e in [&both, &second, &deleted, &elsewhere] {
            store
                .create_webhook_endpoint(e.clone(), None, audit())
                .await
                .unwrap();
        }
        assert!(
            store
                .delete_webhook_endpoint(&p.id, &deleted.id, now(), audit())
                .await
                .unwrap()
        );
        store.seal_all_audit().await.unwrap();
        let c = card(&p.id);
        let ev = |kind| crate::events::event(&p.id, &c.id, kind, serde_json::json!({ "n": 1 }));
        let events = vec![
            ev(crate::events::EventType::CardCreated),
            ev(crate::events::EventType::PinChanged),
        ];
        let record = crate::audit::Actor::operator().record(
            "card.created",
            Some(&p.id),
            Some(&c.id),
            serde_json::json!({ "via": "contract" }),
        );
        let effects = Effects {
            events: events.clone(),
            audit: Some(record),
        };
        let created = store.create_card(c.clone(), None, effects).await.unwrap();
        assert!(matches!(created, Created::Created), "{name}");
        let stored = listed(store.list_events(&p.id, Some(&c.id), None, 10, None)).await;
        let mut ids: Vec<&str> = stored.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        let mut want: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        want.sort_unstable();
        assert_eq!(ids, want, "{name}: both events");
        assert_eq!(
            store.audit_pending().await.unwrap().records,
            1,
            "{name}: its audit record queued"
        );
        let delivered = |id: &str| {
            let store = store.clone();
            let id = id.to_owned();
            async move {
                let mut d: Vec<(String, String)> = listed(store.list_deliveries(&id, 10, None))
                    .await
                    .into_iter()
                    .map(|d| (d.event_id, d.event_type))
                    .collect();
                d.sort();
                d
            }
        };
        let mut to_both: Vec<(String, String)> = events
            .iter()
            .map(|e| (e.id.clone(), e.kind.clone()))
            .collect();
        to_both.sort();
        assert_eq!(
            delivered(&both.id).await,
            to_both,
            "{name}: an endpoint for both"
        );
        assert_eq!(
            delivered(&second.id).await,
            vec![(events[1].id.clone(), events[1].kind.clone())],
            "{name}: an endpoint for the second"
        );
        assert!(
            delivered(&deleted.id).await.is_empty(),
            "{name}: a deleted endpoint"
        );
        assert!(
            delivered(&elsewhere.id).await.is_empty(),
            "{name}: another program's"
        );
    }
}

/// An endpoint of the program for `card.created`.
fn endpoint(program_id: &str) -> WebhookEndpointRow {
    WebhookEndpointRow {
        id: new_id("we_"),
        program_id: program_id.to_owned(),
        url: "https://example.test/hook".into(),
        events: vec!["card.created".into()],
        secret_sealed: vec![3; 40],
        secret_key_kind: crate::keys::KeyKind::Webhook,
        secret_key_version: 1,
        created_at: now(),
        format: Default::default(),
    }
}

/// A record queued with an id below a sealed batch's, as a transaction that
/// took its id first and committed after would leave it.
const STRAGGLER: crate::store::db::Sql = crate::store::db::sql!(
    "INSERT INTO audit_queue (id, at, actor, action, details) VALUES ($1, $2, 'operator', 'contract.straggler', '{}')"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_sealed_batch_after_batch_and_a_straggler_is_not_left() {
    let b = backends("backlog").await;
    for (name, store) in &b.stores {
        let total = SEAL_BATCH + 5;
        for i in 0..total {
            let entry = crate::audit::Actor::operator().record(
                "contract.backlog",
                None,
                None,
                serde_json::json!({ "i": i }),
            );
            store.append_audit(entry).await.unwrap();
        }
        // A full batch from the oldest: the next starts after it.
        let first = store
            .seal_audit(true, SealFrom::Oldest)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.records, SEAL_BATCH, "{name}");
        let after = first.next();
        let SealFrom::After(last) = after else {
            panic!("{name}: a full batch continues after itself, not {after:?}")
        };
        // A record below that batch's last id, committed now.
        let vals = crate::store::db::vals![1i64, now()];
        store.exec_one(&STRAGGLER, vals).await.unwrap();
        let second = store.seal_audit(true, after).await.unwrap().unwrap();
        assert_eq!(
            second.records, 5,
            "{name}: the rest after {last}, not the straggler"
        );
        assert_eq!(second.next(), SealFrom::Oldest, "{name}");
        // From the oldest again: the straggler is sealed, and nothing twice.
        assert_eq!(store.seal_all_audit().await.unwrap(), 1, "{name}");
        assert_eq!(store.audit_pending().await.unwrap().records, 0, "{name}");
        let mut prev = GENESIS.to_vec();
        let (mut seen, mut from) = (0, 0);
        loop {
            let page = store.list_audit(from, 500).await.unwrap();
            let Some(last) = page.last() else { break };
            from = last.seq;
            for r in &page {
                assert_eq!(r.prev_hash, prev, "{name}");
                prev = r.hash.clone();
                seen += 1;
            }
        }
        assert_eq!(
            seen,
            total + 1,
            "{name}: every record sealed once, in one chain"
        );
    }
}
