//! Health, readiness and metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::keys::KeyKind;
use crate::service::App;
use crate::store::Store;

/// The process is up and answering.
pub async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// The service can do its work: the database answers and the data keys are loaded.
pub async fn readyz<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
    if let Err(e) = app.store.ping().await {
        tracing::warn!(error = %e, "not ready: database");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                json!({ "status": "unavailable", "reason": "the database does not answer" }),
            ),
        )
            .into_response();
    }
    if KeyKind::ALL
        .iter()
        .any(|&k| app.keys.current_version(k).is_none())
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "unavailable", "reason": "data keys are not loaded" })),
        )
            .into_response();
    }
    axum::Json(json!({ "status": "ready", "key_provider": app.keys.provider_name() }))
        .into_response()
}

pub async fn metrics<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}
