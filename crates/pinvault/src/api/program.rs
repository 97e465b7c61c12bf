//! The calling program (API.md "Programs": `GET` and `PATCH /v1/program`).

use axum::response::IntoResponse;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::extract::{Auth, JsonBody};
use super::responses::InvalidBody;
use super::shapes::{Answer, Api, Call};
use super::views::{Problem, ProgramView};
use crate::domain::program::PinSetMode;
use crate::domain::time::now;
use crate::store::{ProgramRow, Store};

pub fn program_json(p: &ProgramRow) -> Value {
    serde_json::to_value(ProgramView::new(p)).unwrap_or(Value::Null)
}

/// The calling program: id, name, mode and settings.
#[utoipa::path(get, path = "/v1/program", operation_id = "getProgram", tag = "program", responses((status = 200, description = "OK", body = ProgramView)))]
#[allow(clippy::extra_unused_type_parameters)] // names the router's state type for `Auth`
pub async fn get<S: Store>(auth: Auth) -> Answer {
    Ok(axum::Json(ProgramView::new(&auth.program)).into_response())
}

/// Change settings that are not privileged. The body is any subset of the
/// settings, flat or under `settings`.
#[utoipa::path(patch, path = "/v1/program", operation_id = "updateProgram", tag = "program", request_body = SettingsChanges,
    responses((status = 200, description = "OK", body = ProgramView),
        (status = 403, description = "a privileged setting (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        InvalidBody))]
pub async fn update<S: Store>(
    Api(app, auth, JsonBody(body)): Call<S, JsonBody<Map<String, Value>>>,
) -> Answer {
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
    app.check_settings(&auth.program.id, &settings).await?;
    let t = now();
    if !app
        .store
        .update_program(
            &auth.program.id,
            settings.clone(),
            auth.program.mode,
            t,
            auth.program_audit("program.updated", serde_json::json!({ "changes": changes })),
        )
        .await?
    {
        return Err(ApiError::not_found("program"));
    }
    tracing::info!(program_id = %auth.program.id, "program settings changed");
    let program = ProgramRow {
        settings,
        updated_at: t,
        ..auth.program.clone()
    };
    Ok(axum::Json(ProgramView::new(&program)).into_response())
}

/// Any subset of the settings (the document's view of `PATCH /v1/program`;
/// `Settings::apply` checks the values). `reveal_enabled` and `allow_plaintext_*`
/// are listed because they exist, but only the operator's command line may change
/// them: here they are 403.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a schema: never built, only described
pub struct SettingsChanges {
    #[schema(minimum = 4, maximum = 12)]
    pin_length_min: Option<u8>,
    #[schema(minimum = 4, maximum = 12)]
    pin_length_max: Option<u8>,
    #[schema(minimum = 1, maximum = 10)]
    max_tries: Option<u8>,
    reject_weak_pins: Option<bool>,
    #[schema(minimum = 1, maximum = 3600)]
    set_token_ttl_s: Option<u32>,
    #[schema(minimum = 1, maximum = 10)]
    set_token_attempts: Option<u8>,
    #[schema(minimum = 1, maximum = 3600)]
    reveal_token_ttl_s: Option<u32>,
    reveal_enabled: Option<bool>,
    #[schema(minimum = 1, maximum = 3600)]
    reveal_display_s: Option<u32>,
    pin_set_mode: Option<PinSetMode>,
    allow_plaintext_pin: Option<bool>,
    allow_plaintext_reveal: Option<bool>,
    #[schema(max_items = 20)]
    widget_allowed_origins: Option<Vec<String>>,
    /// The issuer key set (`iks_…`) of chip cards created without one; null: none.
    chip_issuer_key_set_id: Option<String>,
    /// `POST /v1/cards/{id}/pin/export` allowed (operator only: 403 here).
    allow_pin_export: Option<bool>,
    /// A legacy card's first matching verification stores its PIN (default true).
    migrate_legacy_pins: Option<bool>,
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    /// The document's list of changeable settings is the list of settings.
    #[test]
    fn settings_changes_names_every_setting() {
        let names =
            |schema: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>| -> Vec<String> {
                let json = serde_json::to_value(schema).unwrap();
                let mut keys: Vec<String> = json["properties"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect();
                keys.sort();
                keys
            };
        let settings = names(crate::domain::program::Settings::schema());
        let changes = names(super::SettingsChanges::schema());
        assert_eq!(settings, changes);
        let defaults = serde_json::to_value(crate::domain::program::Settings::default()).unwrap();
        let mut serialized: Vec<String> = defaults.as_object().unwrap().keys().cloned().collect();
        serialized.sort();
        assert_eq!(settings, serialized);
    }
}
