//! The answer of every list operation: one page of at most `limit` rows
//! (1 to 100, default 20; [`ApiError::page_limit`]) after `starting_after`,
//! newest first, as `{"data": […], "has_more": …}`.

use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;

/// Answers the page the store read, made into the list's type by `list`. No
/// page (the store found no `starting_after` in this list) is 400: the query
/// names no `what`.
pub(super) fn answer<R, L: Serialize>(
    page: Option<(Vec<R>, bool)>,
    what: &str,
    list: impl FnOnce(Vec<R>, bool) -> Result<L, ApiError>,
) -> Result<Response, ApiError> {
    let Some((rows, has_more)) = page else {
        return Err(ApiError::bad_request(format!(
            "`starting_after` names no {what}"
        )));
    };
    Ok(axum::Json(list(rows, has_more)?).into_response())
}
