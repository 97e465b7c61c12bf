//! The calling program (API.md "Programs": `GET` and `PATCH /v1/program`).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::extract::{Auth, JsonBody};
use super::views::{Problem, ProgramView};
use crate::domain::program::Settings;
use crate::domain::time::now;
use crate::service::App;
use crate::store::{ProgramRow, Store};

pub fn program_json(p: &ProgramRow) -> Value {
    serde_json::to_value(ProgramView::new(p)).unwrap_or(Value::Null)
}

/// The calling program: id, name, mode and settings.
#[utoipa::path(get, path = "/v1/program", operation_id = "getProgram", tag = "program", responses((status = 200, description = "OK", body = ProgramView)),
    security(("api_key" = [])))]
#[allow(clippy::extra_unused_type_parameters)] // names the router's state type for `Auth`
pub async fn get<S: Store>(auth: Auth) -> Result<Response, ApiError> {
    Ok(axum::Json(ProgramView::new(&auth.program)).into_response())
}

/// Change settings that are not privileged. The body is any subset of the
/// settings, flat or under `settings`.
#[utoipa::path(patch, path = "/v1/program", operation_id = "updateProgram", tag = "program", request_body = Settings,
    responses((status = 200, description = "OK", body = ProgramView),
        (status = 403, description = "a privileged setting (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_request`", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
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
    Ok(axum::Json(ProgramView::new(&program)).into_response())
}
