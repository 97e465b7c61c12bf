//! Cards: finding and listing them, PIN tries under concurrency, status changes.

use super::*;

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

fn operator(action: &str) -> AuditEntry {
    crate::audit::Actor::operator().record(action, None, None, serde_json::json!({}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_legacy_pin_is_captured_once() {
    use crate::domain::legacy::{Legacy, Method};
    let b = backends("legacy").await;
    for (name, store, p) in b.with_programs().await {
        let pvk = PvkRow {
            id: new_id("pvk_"),
            program_id: p.id.clone(),
            name: "old PVK".into(),
            method: Method::Ibm3624,
            kcv: "ABCDEF".into(),
            wrapped: vec![1, 2, 3],
            params: Some(pinblock::ibm3624::Ibm3624Params::default()),
            tr31: None,
            created_at: now(),
        };
        store
            .insert_key(pvk.clone(), operator("pin_verification_key.imported"))
            .await
            .unwrap();
        let got = store
            .get_key::<PvkRow>(Some(&p.id), &pvk.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (got.method, got.params),
            (pvk.method, pvk.params.clone()),
            "{name}"
        );
        assert!(
            store
                .get_key::<PvkRow>(Some("prg_other"), &pvk.id)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        let mut c = card(&p.id);
        c.legacy = Some(Legacy {
            method: Method::Ibm3624,
            pvk_id: pvk.id.clone(),
            pvki: None,
        });
        store
            .create_card(c.clone(), None, Effects::default())
            .await
            .unwrap();
        assert_eq!(read(store, &c).await.legacy, c.legacy, "{name}");
        // Matching verifications on several nodes at once: one capture.
        let wins = race(8, || {
            let (store, c) = (store.clone(), c.clone());
            async move {
                let pin = PinWrite {
                    block: vec![9; 16],
                    key_version: 1,
                    set_by: SetBy::Issuer,
                };
                store
                    .capture_legacy_pin(&c, pin, now(), Effects::default())
                    .await
                    .unwrap()
            }
        })
        .await;
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{name}: {wins:?}");
        let after = read(store, &c).await;
        assert_eq!(
            (after.legacy, after.pin_block),
            (None, vec![9; 16]),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn imports_skip_the_external_ids_a_program_has() {
    let b = backends("import").await;
    for (name, store) in &b.stores {
        let p = with_program(store).await;
        let with_id = |x: &str| {
            let mut c = card(&p.id);
            c.external_id = Some(x.to_owned());
            (c, Effects::default())
        };
        let batch = vec![with_id("a"), with_id("a"), with_id("b")];
        let skipped = store
            .import_cards(&p.id, batch, |_, _| operator("cards.imported"))
            .await
            .unwrap();
        assert_eq!(skipped, vec![1], "{name}: the second `a` of one batch");
        // Two imports of the same ids at once: each id once.
        let answers = race(4, || {
            let (store, p) = (store.clone(), p.id.clone());
            async move {
                let batch = ["b", "c", "d", "e"]
                    .iter()
                    .map(|x| {
                        let mut c = card(&p);
                        c.external_id = Some((*x).to_owned());
                        (c, Effects::default())
                    })
                    .collect();
                store
                    .import_cards(&p, batch, |_, _| operator("cards.imported"))
                    .await
                    .unwrap()
                    .len()
            }
        })
        .await;
        assert_eq!(
            answers.iter().sum::<usize>(),
            4 * 4 - 3,
            "{name}: {answers:?}"
        );
        for x in ["a", "b", "c", "d", "e"] {
            let page = listed(store.list_cards(&p.id, Some(x), 10, None)).await;
            assert_eq!(page.len(), 1, "{name}: {x}");
        }
        // Another program may have the same external ids.
        let q = with_program(store).await;
        let mut c = card(&q.id);
        c.external_id = Some("a".into());
        let skipped = store
            .import_cards(&q.id, vec![(c, Effects::default())], |_, _| {
                operator("cards.imported")
            })
            .await
            .unwrap();
        assert!(skipped.is_empty(), "{name}");
    }
}

/// A rotation's pass over the cards (`cards_under_old_keys` from the first
/// card until it says the last was reached): each call's cards and where the
/// next begins.
async fn pass(
    store: &AnyStore,
    current: (u32, u32, u32),
    limit: u32,
    window: u32,
) -> Vec<(Vec<String>, Option<String>)> {
    let mut calls = Vec::new();
    let mut from = String::new();
    loop {
        let w = store
            .cards_under_old_keys(current, &from, limit, window)
            .await
            .unwrap();
        calls.push((w.cards.into_iter().map(|c| c.id).collect(), w.next.clone()));
        match w.next {
            Some(next) => from = next,
            None => return calls,
        }
    }
}

/// The cards a pass found, in the order found.
fn found(calls: &[(Vec<String>, Option<String>)]) -> Vec<String> {
    calls.iter().flat_map(|(c, _)| c.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pass_over_old_cards_reads_a_window_at_a_time() {
    let b = backends("old_cards").await;
    for (name, store, p) in b.with_programs().await {
        let mut ids = Vec::new();
        for _ in 0..7 {
            let c = card(&p.id);
            store
                .create_card(c.clone(), None, Effects::default())
                .await
                .unwrap();
            ids.push(c.id);
        }
        ids.sort();
        // Every card is under version 1 of each kind. With the PIN key at 2,
        // a pass finds each card once, in id order, at most 2 a call.
        let calls = pass(store, (2, 1, 1), 2, 3).await;
        assert_eq!(found(&calls), ids, "{name}: {calls:?}");
        assert!(calls.iter().all(|(c, _)| c.len() <= 2), "{name}: {calls:?}");
        // A full batch goes on after its last card, within the window.
        assert_eq!(calls[0].1.as_ref(), Some(&ids[1]), "{name}: {calls:?}");
        // So does an old PAN key or lookup key alone.
        assert_eq!(found(&pass(store, (1, 2, 1), 7, 3).await), ids, "{name}");
        assert_eq!(found(&pass(store, (1, 1, 2), 7, 3).await), ids, "{name}");
        // None old: the pass still ends, a window of 3 cards a call (7
        // cards: 3 calls), each finding none.
        let calls = pass(store, (1, 1, 1), 2, 3).await;
        assert_eq!(calls.len(), 3, "{name}: {calls:?}");
        assert!(calls.iter().all(|(c, _)| c.is_empty()), "{name}: {calls:?}");
        assert_eq!(calls[0].1.as_ref(), Some(&ids[2]), "{name}: {calls:?}");
        // The progress total: SQLite counts; PostgreSQL estimates, and
        // counts a table this small (never analyzed, statistics not flushed).
        assert_eq!(store.cards_estimate().await.unwrap(), 7, "{name}");
    }
}
