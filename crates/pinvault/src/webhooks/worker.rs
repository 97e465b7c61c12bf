//! The delivery worker: claims due deliveries from the outbox, signs and sends
//! each (one attempt each, under a lease), and records the outcome and the
//! next attempt.

use std::sync::Arc;

use crate::app::App;
use crate::domain::ids::new_id;
use crate::domain::time::now;
use crate::store::{AttemptNext, AttemptResult, ClaimedDelivery, Store};

use super::client::attempt;
use super::settings::WebhookSettings;
use super::signing::{secret_aad, signature};
use super::target::parse_url;

/// A running delivery worker: its task, and the owner name its claims carry.
#[derive(Debug)]
pub struct Worker {
    pub handle: tokio::task::JoinHandle<()>,
    pub owner: String,
}

/// Runs the delivery worker until `stop` turns true; the attempts under way
/// then finish (each within the attempt timeout) and are recorded, so a
/// clean shutdown leaves no claim to expire. (One stopped at a deadline
/// instead gives its claims back with [`WebhookStore::release_deliveries`](crate::store::prelude::WebhookStore::release_deliveries).)
pub fn spawn_worker<S: Store>(
    app: Arc<App<S>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Worker {
    let settings = app.settings.webhooks.clone();
    let owner = new_id("wrk_");
    let name = owner.clone();
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(settings.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let t = now();
            // The lease outlasts an attempt: only a dead worker's claim expires.
            let lease = t + settings.attempt_timeout.as_secs() as i64 * 2 + 30;
            let claimed = match app.store.claim_deliveries(&owner, t, lease, 32).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim webhook deliveries");
                    continue;
                }
            };
            let mut set = tokio::task::JoinSet::new();
            for d in claimed {
                let (app, owner, settings) = (app.clone(), owner.clone(), settings.clone());
                set.spawn(async move { deliver(&app, &owner, &settings, d).await });
            }
            while set.join_next().await.is_some() {}
        }
    });
    Worker {
        handle,
        owner: name,
    }
}

async fn deliver<S: Store>(
    app: &App<S>,
    owner: &str,
    settings: &WebhookSettings,
    d: ClaimedDelivery,
) {
    let outcome = match open_secret(app, &d).await {
        Err(e) => Err(e),
        Ok(secret) => {
            let t = now();
            let sig = signature(secret.as_bytes(), t, d.event_body.as_bytes());
            drop(secret);
            match parse_url(&d.url) {
                Err(e) => Err(e),
                Ok(target) => tokio::time::timeout(
                    settings.attempt_timeout,
                    attempt(&target, settings.allow_private_targets, &d.event_body, &sig),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "no answer within {} s",
                        settings.attempt_timeout.as_secs()
                    ))
                }),
            }
        }
    };
    let at = now();
    let attempts = d.attempts + 1;
    let (code, error, next) = match outcome {
        Ok(code) if (200..300).contains(&code) => (Some(code), None, AttemptNext::Delivered),
        other => {
            let (code, error) = match other {
                Ok(code) if (300..400).contains(&code) => {
                    (Some(code), Some("redirect not followed".to_owned()))
                }
                Ok(code) => (Some(code), None),
                Err(e) => (None, Some(e)),
            };
            let next = settings
                .schedule
                .next_after(attempts, at)
                .map_or(AttemptNext::GiveUp, AttemptNext::RetryAt);
            (code, error, next)
        }
    };
    let outcome = match next {
        AttemptNext::Delivered => "delivered",
        AttemptNext::RetryAt(_) => "retry",
        AttemptNext::GiveUp => "gave_up",
    };
    app.metrics.webhook_attempt(outcome);
    tracing::info!(
        delivery_id = %d.id,
        endpoint_id = %d.endpoint_id,
        attempt = attempts,
        status = code.unwrap_or(0),
        error = error.as_deref().unwrap_or("-"),
        outcome,
        "webhook attempt"
    );
    let result = AttemptResult {
        at,
        response_code: code,
        error,
        next,
    };
    match app.store.finish_delivery(&d.id, owner, result).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(delivery_id = %d.id, "webhook delivery lease lost; another worker retries it")
        }
        Err(e) => {
            tracing::warn!(delivery_id = %d.id, error = %e, "cannot record a webhook attempt")
        }
    }
}

async fn open_secret<S: Store>(
    app: &App<S>,
    d: &ClaimedDelivery,
) -> Result<zeroize::Zeroizing<String>, String> {
    app.ensure_key(d.secret_key_kind, d.secret_key_version)
        .await
        .map_err(|e| format!("cannot load the key of the endpoint's secret: {e}"))?;
    let bytes = app
        .keys
        .open(
            d.secret_key_kind,
            d.secret_key_version,
            &d.secret_sealed,
            &secret_aad(&d.endpoint_id),
        )
        .map_err(|e| format!("cannot open the endpoint's secret: {e}"))?;
    String::from_utf8(bytes.to_vec())
        .map(zeroize::Zeroizing::new)
        .map_err(|_| "the endpoint's secret is not text".into())
}
