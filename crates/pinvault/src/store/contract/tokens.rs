//! Tokens and staged PINs: one winner, newest only, exact attempts.

use super::*;

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
