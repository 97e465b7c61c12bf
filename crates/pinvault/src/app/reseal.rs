//! Secrets sealed for one purpose (webhook signing secrets, stored idempotent
//! responses), moved under their purpose's current key by a rotation, and off
//! the `pan` key they shared before per-purpose keys.

use super::{App, ServiceError};
use crate::keys::{KeyKind, aad};
use crate::store::{Resealable, Store};

/// Rows resealed per pass.
const BATCH: u32 = 500;

impl<S: Store> App<S> {
    /// Reseals every webhook secret and idempotency response that is not under
    /// its purpose's current key; how many were resealed. A row changed while
    /// it was resealed is read again by the next pass.
    pub async fn reseal_secrets(&self) -> Result<u64, ServiceError> {
        let mut done = 0;
        for kind in [KeyKind::Webhook, KeyKind::Idempotency] {
            let current = self
                .keys
                .current_version(kind)
                .ok_or(crate::keys::KeyError::UnknownVersion { kind, version: 0 })?;
            loop {
                let batch = self.store.to_reseal(kind, current, BATCH).await?;
                if batch.is_empty() {
                    break;
                }
                let mut moved = 0;
                for row in &batch {
                    if self.reseal_one(kind, row).await? {
                        moved += 1;
                    }
                }
                done += moved;
                if moved == 0 {
                    // Every row of the batch changed under us: read again
                    // after a moment rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        Ok(done)
    }

    async fn reseal_one(&self, kind: KeyKind, row: &Resealable) -> Result<bool, ServiceError> {
        let bound = match &row.id {
            (endpoint, None) => aad::webhook_secret(endpoint),
            (program, Some(key)) => aad::idempotency_response(program, key),
        };
        self.ensure_key(row.kind, row.version).await?;
        let clear = self.keys.open(row.kind, row.version, &row.sealed, &bound)?;
        let (version, sealed) = self.keys.seal(kind, &clear, &bound)?;
        drop(clear);
        Ok(self.store.reseal(row, sealed, version).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::audit::Actor;
    use crate::domain::ids::new_id;
    use crate::domain::time::now;
    use crate::store::prelude::*;
    use crate::store::{Created, Effects, IdemRow, SqliteStore, WebhookEndpointRow};

    /// What an upgrade finds: a webhook secret and an idempotency response
    /// sealed under the `pan` key (as before per-purpose keys). Resealing
    /// moves both under their own keys, they open there to the same bytes,
    /// and a second pass has nothing to do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_sealed_under_the_pan_key_move_to_their_own() {
        let dir = std::env::temp_dir().join(format!("pinvault-reseal-{}", new_id("")));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir.join("pinvault.db")).unwrap();
        let provider = Arc::new(crate::keys::KeyFile::open_or_create(&dir).unwrap());
        let app = App::open(store, provider, Default::default())
            .await
            .unwrap();
        let t = now();
        let (program, api_key) = crate::store::contract::program();
        app.store
            .create_program(program.clone(), api_key, Vec::new())
            .await
            .unwrap();

        let endpoint_id = new_id("we_");
        let secret = b"whsec_the_secret".to_vec();
        let (v, sealed) = app
            .keys
            .seal(KeyKind::Pan, &secret, &aad::webhook_secret(&endpoint_id))
            .unwrap();
        let endpoint = WebhookEndpointRow {
            id: endpoint_id.clone(),
            program_id: program.id.clone(),
            url: "https://example.test/hook".into(),
            events: vec!["card.created".into()],
            secret_sealed: sealed,
            secret_key_kind: KeyKind::Pan,
            secret_key_version: v,
            created_at: t,
            format: Default::default(),
        };
        let audit = Actor::operator().record(
            "webhook_endpoint.created",
            None,
            None,
            serde_json::json!({}),
        );
        app.store
            .create_webhook_endpoint(endpoint, None, audit)
            .await
            .unwrap();

        let response = br#"{"id":"card_x"}"#.to_vec();
        let bound = aad::idempotency_response(&program.id, "k1");
        let (v, sealed) = app.keys.seal(KeyKind::Pan, &response, &bound).unwrap();
        let idem = IdemRow {
            program_id: program.id.clone(),
            key: "k1".into(),
            request_hash: vec![1; 32],
            status: 201,
            response_sealed: sealed,
            key_kind: KeyKind::Pan,
            key_version: v,
            created_at: t,
        };
        let card = crate::store::contract::card(&program.id);
        let made = app
            .store
            .create_card(card, Some(idem), Effects::default())
            .await
            .unwrap();
        assert!(matches!(made, Created::Created));

        assert_eq!(app.reseal_secrets().await.unwrap(), 2);
        assert_eq!(
            app.reseal_secrets().await.unwrap(),
            0,
            "nothing left to move"
        );
        let usage = app.store.key_usage().await.unwrap();
        let of = |kind| {
            usage
                .iter()
                .filter(|(k, _, _)| *k == kind)
                .map(|(_, _, n)| n)
                .sum::<u64>()
        };
        assert_eq!(of(KeyKind::Webhook), 1);
        assert_eq!(of(KeyKind::Idempotency), 1);
        assert_eq!(of(KeyKind::Pan), 1, "the card's PAN only");
        let row = app
            .store
            .get_idempotency(&program.id, "k1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.key_kind, KeyKind::Idempotency);
        let opened = app
            .keys
            .open(row.key_kind, row.key_version, &row.response_sealed, &bound)
            .unwrap();
        assert_eq!(opened.as_slice(), response.as_slice());
        assert!(
            app.keys
                .open(KeyKind::Pan, row.key_version, &row.response_sealed, &bound)
                .is_err(),
            "the pan key no longer opens it"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
