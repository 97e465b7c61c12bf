//! Zone key grants: a program sees only the keys granted to it, and grants
//! changed from many tasks at once end as the set of changes made.

use super::*;
use crate::audit::Actor;
use crate::domain::zone_key::{Grants, Usage};
use crate::keys::ZoneAlgorithm;

fn zone_key(programs: &[&str]) -> ZoneKeyRow {
    ZoneKeyRow {
        key: WrappedKey {
            id: new_id("zpk_"),
            name: "contract".into(),
            algorithm: ZoneAlgorithm::Aes128,
            kcv: "BE7ED6".into(),
            wrapped: vec![7; 40],
            created_at: now(),
        },
        usage: Usage::Verify,
        grants: Grants::to(programs.iter().map(|p| (*p).to_owned())),
        tr31: None,
    }
}

fn audit(action: &str) -> AuditEntry {
    Actor::operator().record(action, None, None, serde_json::json!({}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grants_scope_keys_and_concurrent_changes_all_apply() {
    let b = backends("zpk").await;
    for (name, store) in &b.stores {
        let owner = with_program(store).await;
        let mut others = Vec::new();
        for _ in 0..6 {
            others.push(with_program(store).await.id);
        }
        let key = zone_key(&[&owner.id]);
        store
            .insert_zone_key(key.clone(), audit("zone_key.imported"))
            .await
            .unwrap();
        let got = store.get_zone_key(&key.key.id).await.unwrap().unwrap();
        assert_eq!(got.grants, Grants::to([owner.id.clone()]), "{name}");
        assert_eq!(got.usage, Usage::Verify, "{name}");
        let mine = listed(store.list_program_zone_keys(&owner.id, 10, None)).await;
        assert_eq!(mine.len(), 1, "{name}");
        let theirs = listed(store.list_program_zone_keys(&others[0], 10, None)).await;
        assert!(theirs.is_empty(), "{name}");
        assert!(
            store
                .list_program_zone_keys(&others[0], 10, Some(&key.key.id))
                .await
                .unwrap()
                .is_none(),
            "{name}: another program's key is no cursor"
        );

        // Six grants and the owner's revoke at once: none is lost.
        let mut tasks = Vec::new();
        for (i, p) in others.iter().chain([&owner.id]).enumerate() {
            let (store, id, p) = (store.clone(), key.key.id.clone(), p.clone());
            let grant = i < others.len();
            tasks.push(tokio::spawn(async move {
                store
                    .change_zone_key_grant(&id, &p, grant, now(), move |_| {
                        audit("zone_key.changed")
                    })
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            assert!(matches!(t.await.unwrap(), GrantChange::Done(_)), "{name}");
        }
        let got = store.get_zone_key(&key.key.id).await.unwrap().unwrap();
        assert_eq!(got.grants, Grants::to(others.clone()), "{name}");
        let none = store
            .change_zone_key_grant(&key.key.id, &owner.id, false, now(), |_| audit("x"))
            .await
            .unwrap();
        assert!(matches!(none, GrantChange::Refused(_)), "{name}");
        let missing = store
            .change_zone_key_grant("zpk_nope", &owner.id, true, now(), |_| audit("x"))
            .await
            .unwrap();
        assert_eq!(missing, GrantChange::NoKey, "{name}");
        // Every change that changed something is in the audit trail.
        store.seal_all_audit().await.unwrap();
        let trail = store.list_audit(0, 1000).await.unwrap();
        let changed = trail
            .iter()
            .filter(|r| r.entry.action == "zone_key.changed")
            .count();
        assert_eq!(changed, 7, "{name}");
    }
}
