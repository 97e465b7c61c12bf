//! Health, readiness, metrics and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::views::StatusView;
use crate::app::App;
use crate::keys::KeyKind;
use crate::store::Store;

fn status(status: &str, reason: Option<&str>, key_provider: Option<&str>) -> StatusView {
    StatusView {
        status: status.to_owned(),
        reason: reason.map(str::to_owned),
        key_provider: key_provider.map(str::to_owned),
    }
}

/// The process is up and answering.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations", responses((status = 200, description = "OK", body = StatusView)))]
pub async fn healthz() -> Response {
    axum::Json(status("ok", None, None)).into_response()
}

/// The service can do its work: the database answers and the data keys are loaded.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations",
    responses((status = 200, description = "OK", body = StatusView), (status = 503, description = "Not ready, with the reason", body = StatusView)))]
pub async fn readyz<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
    if let Err(e) = app.store.ping().await {
        tracing::warn!(error = %e, "not ready: database");
        let body = status("unavailable", Some("the database does not answer"), None);
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    let provider = app.keys.provider();
    let checked = tokio::task::spawn_blocking(move || provider.check()).await;
    if let Ok(Err(e)) | Err(e) = checked.map_err(|e| crate::keys::KeyError::Provider(e.to_string()))
    {
        tracing::warn!(error = %e, "not ready: key provider");
        let reason = format!(
            "the master key's provider ({}) does not answer; the server log says why",
            app.keys.provider_name()
        );
        let body = status("unavailable", Some(&reason), None);
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    if KeyKind::ALL
        .iter()
        .any(|&k| app.keys.current_version(k).is_none())
    {
        let body = status("unavailable", Some("data keys are not loaded"), None);
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    axum::Json(status("ready", None, Some(app.keys.provider_name()))).into_response()
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations", responses((status = 200, description = "OK", content_type = "text/plain", body = String)))]
pub async fn metrics<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render() + &render_limited(&app.limiter),
    )
        .into_response()
}

fn render_limited(limiter: &crate::limits::Limiter) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "# HELP pinvault_rate_limited_total Requests refused with 429 rate_limited, by limit.\n\
         # TYPE pinvault_rate_limited_total counter\n",
    );
    for (scope, n) in limiter.limited_counts() {
        let _ = writeln!(
            out,
            "pinvault_rate_limited_total{{limit=\"{}\"}} {n}",
            scope.label()
        );
    }
    out
}
