//! The background tasks every `serve` runs beside the HTTP server: picking up
//! key changes made by other processes, removing expired staged PINs, and
//! sealing the audit trail.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::app::keys::KEY_REFRESH;
use crate::domain::time::now;
use crate::keys::config as key_config;
use crate::store::prelude::*;
use crate::store::{AnyStore, SealFrom};

/// How often a server's sealer looks for queued audit records (at once
/// again after a full batch).
const SEAL_EVERY: Duration = Duration::from_millis(250);

/// How often a server removes expired staged PINs.
const STAGED_SWEEP: Duration = Duration::from_secs(60);

/// Picks up key rotations and provider migrations made by other processes:
/// every [`KEY_REFRESH`], re-reads the data directory's `keys.json` (switching
/// provider when it changed) and reloads the data keys.
pub(super) fn spawn_key_refresher(refresher: Arc<App<AnyStore>>, dir: PathBuf) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEY_REFRESH);
        let mut config = key_config::read(&dir).ok();
        loop {
            tick.tick().await;
            let now = key_config::read(&dir).ok();
            if now.is_some() && now != config {
                match key_config::open(&dir) {
                    Ok(provider) => {
                        tracing::info!(
                            provider = provider.name(),
                            "key provider configuration changed"
                        );
                        refresher.keys.set_provider(provider);
                        config = now;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open the newly configured key provider")
                    }
                }
            }
            if let Err(e) = refresher.reload_keys().await {
                tracing::warn!(error = %e, "could not refresh data keys");
            }
        }
    });
}

/// Removes expired staged PINs every [`STAGED_SWEEP`] (a commit already
/// treats them as absent).
pub(super) fn spawn_staged_sweeper(sweeper: Arc<App<AnyStore>>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(STAGED_SWEEP);
        loop {
            tick.tick().await;
            match sweeper.store.clear_expired_staged_pins(now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired staged PINs removed"),
                Err(e) => tracing::warn!(error = %e, "could not remove expired staged PINs"),
            }
            // ATM PIN changes past their reversal window, with the PIN before them.
            let before = now() - crate::store::REVERSIBLE_S;
            match sweeper.store.purge_pin_changes(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    removed = n,
                    "PIN changes past their reversal window removed"
                ),
                Err(e) => tracing::warn!(error = %e, "could not remove old PIN changes"),
            }
        }
    });
}

/// Seals the audit trail (`store::AuditSealStore`): every [`SEAL_EVERY`], the
/// queued records, a batch after another while full batches come (each from
/// where the one before ended); on PostgreSQL a turn is skipped while another
/// node's sealer is at work. A read first: with nothing queued no write
/// transaction is begun.
pub(super) fn spawn_audit_sealer(sealer: Arc<App<AnyStore>>) {
    tokio::spawn(async move {
        let mut from = SealFrom::Oldest;
        loop {
            let sealed = match from {
                // A backlog: the next batch, with no look first.
                SealFrom::After(_) => sealer.store.seal_audit(false, from).await,
                SealFrom::Oldest => match sealer.store.audit_queued().await {
                    Ok(false) => Ok(None),
                    Ok(true) => sealer.store.seal_audit(false, from).await,
                    Err(e) => Err(e),
                },
            };
            from = match sealed {
                Ok(Some(sealed)) => sealed.next(),
                Ok(None) => SealFrom::Oldest,
                Err(e) => {
                    tracing::warn!(error = %e, "could not seal the audit trail");
                    SealFrom::Oldest
                }
            };
            if from == SealFrom::Oldest {
                tokio::time::sleep(SEAL_EVERY).await;
            }
        }
    });
}
