//! `pinvault serve`: open the application, start the background tasks and the
//! webhook worker, listen until SIGTERM or SIGINT, then stop within the deadline.

use std::sync::Arc;
use std::time::Duration;

use super::args::ServeArgs;
use super::dev::dev_program;
use super::tasks::{spawn_audit_sealer, spawn_key_refresher, spawn_staged_sweeper};
use crate::app::ServerSettings;
use crate::cli::data::open_app_with;
use crate::cli::listen;
use crate::cli::output::{CliError, print_stderr};
use crate::limits::Cidr;
use crate::store::prelude::*;
use crate::webhooks::{RetrySchedule, WebhookSettings};

pub async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let tls = match (&args.http.tls_cert, &args.http.tls_key) {
        (Some(cert), Some(key)) => Some(listen::tls_config(cert, key).map_err(CliError::Refused)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{}", args.listen));
    let limits = args.limits.settings()?;
    let trusted_proxies = Cidr::parse_list(&args.http.trusted_proxies)
        .map_err(|e| CliError::Refused(format!("--trusted-proxies: {e}")))?;
    let schedule = RetrySchedule::parse(&args.webhook_retry_schedule)
        .map_err(|e| CliError::Refused(format!("--webhook-retry-schedule: {e}")))?;
    let settings = ServerSettings {
        public_url: public_url.trim_end_matches('/').to_owned(),
        transport: args.transport.settings(),
        key_cache_ttl: (args.key_cache_ttl > 0).then(|| Duration::from_secs(args.key_cache_ttl)),
        webhooks: WebhookSettings {
            allow_private_targets: args.allow_private_webhook_targets,
            schedule,
            attempt_timeout: Duration::from_secs(args.webhook_timeout_s),
            ..WebhookSettings::default()
        },
        limits,
        trusted_proxies,
        body_timeout: Some(Duration::from_secs(args.http.body_timeout_s)),
    };
    let app = Arc::new(open_app_with(&args.data, settings).await?);
    // The first start makes the first published PIN encryption key.
    app.bootstrap_transport_key()
        .await
        .map_err(|e| CliError::Refused(format!("cannot make the PIN encryption key: {e}")))?;
    app.warn_zone_keys_for_all().await?;
    // Secrets sealed under the `pan` key before per-purpose keys move under
    // their own (a no-op once done; nodes starting together are arbitrated
    // row by row).
    let resealing = app.clone();
    tokio::spawn(async move {
        match resealing.reseal_secrets().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                resealed = n,
                "webhook secrets and idempotency responses moved under their own data keys"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot reseal webhook secrets and idempotency responses; `pinvault keys rotate` does it too")
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::Refused(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Refused(e.to_string()))?;
    let demo = if args.dev {
        Some(dev_program(&app, addr).await?)
    } else {
        None
    };

    // Pick up key rotations and provider migrations made by other processes.
    spawn_key_refresher(app.clone(), args.data.data_dir.clone());
    // Remove expired staged PINs (a commit already treats them as absent).
    spawn_staged_sweeper(app.clone());
    // Chain the audit records changes queue (one sealer at a time among nodes).
    spawn_audit_sealer(app.clone());

    // Deliver the outbox's webhooks (every node runs a worker; claims keep
    // them from delivering the same attempt twice). The stop signal reaches
    // the worker and the HTTP server at once.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let worker = crate::webhooks::spawn_worker(app.clone(), stop.clone());
    let shutdown = shutdown_signal()?;
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    tracing::info!(%addr, key_provider = app.keys.provider_name(), database = app.store.backend(), tls = tls.is_some(), "listening");
    print_stderr(&format!("pinvault listening on {scheme}://{addr}"));
    let deadline = Duration::from_secs(args.http.shutdown_timeout_s);
    let settings = listen::ListenSettings {
        header_timeout: Duration::from_secs(args.http.header_timeout_s),
        shutdown_timeout: deadline,
        tls,
    };
    let mut stopped = stop.clone();
    let signalled = Arc::new(std::sync::OnceLock::new());
    let at = signalled.clone();
    listen::run(
        listener,
        crate::api::router(app.clone(), demo),
        settings,
        async move {
            let _ = stopped.wait_for(|s| *s).await;
            let _ = at.set(tokio::time::Instant::now());
        },
    )
    .await;
    // The webhook attempts under way finish and are recorded within what is
    // left of the deadline; a worker still busy then is stopped and gives its
    // claims back, so the next start (or another node) delivers them at once.
    let mut handle = worker.handle;
    let since = signalled.get().map_or(Duration::ZERO, |t| t.elapsed());
    let left = deadline.saturating_sub(since);
    if tokio::time::timeout(left.max(Duration::from_millis(100)), &mut handle)
        .await
        .is_err()
    {
        handle.abort();
        let _ = handle.await;
        match app.store.release_deliveries(&worker.owner).await {
            Ok(n) => tracing::warn!(
                released = n,
                "webhook attempts still under way at the deadline: their claims were given back"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "cannot give back webhook claims; they are retried when their leases expire"
            ),
        }
    }
    // Seal what the last requests queued (else the next sealer, here or on
    // another node, does).
    if let Err(e) = app.store.seal_all_audit().await {
        tracing::warn!(error = %e, "could not seal the audit trail at shutdown");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT; in-flight requests then finish. The handlers
/// are registered here, before the server says it is listening, so a signal that
/// comes at once is a clean shutdown rather than the default abrupt exit.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| CliError::Refused(format!("cannot handle SIGTERM: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| CliError::Refused(format!("cannot handle SIGINT: {e}")))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down: finishing requests in flight");
    })
}
