//! The calling program (API.md "Programs": `GET` and `PATCH /v1/program`).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::extract::{Auth, JsonBody};
use crate::domain::time::{now, rfc3339};
use crate::service::App;
use crate::store::{ProgramRow, Store};

pub fn program_json(p: &ProgramRow) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "mode": p.mode.as_str(),
        "settings": p.settings,
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    })
}

#[allow(clippy::extra_unused_type_parameters)] // names the router's state type for `Auth`
pub async fn get<S: Store>(auth: Auth) -> Result<Response, ApiError> {
    Ok(axum::Json(program_json(&auth.program)).into_response())
}

/// Changes settings that are not privileged; the body is an object of settings,
/// either flat or under `settings`.
pub async fn update<S: Store>(
    State(app): State<Arc<App<S>>>,
    auth: Auth,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let changes = match body.get("settings") {
        Some(Value::Object(inner)) if body.len() == 1 => inner.clone(),
        Some(_) => {
            return Err(ApiError::invalid(
                "`settings` must be the only field, and an object",
            ));
        }
        None => body,
    };
    let settings = auth.program.settings.apply(&changes, false)?;
    let t = now();
    if !app
        .store
        .update_program(&auth.program.id, settings.clone(), auth.program.mode, t)
        .await?
    {
        return Err(ApiError::not_found("program"));
    }
    tracing::info!(program_id = %auth.program.id, "program settings changed");
    let program = ProgramRow {
        settings,
        updated_at: t,
        ..auth.program
    };
    Ok(axum::Json(program_json(&program)).into_response())
}
