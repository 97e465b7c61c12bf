//! The seed platforms' own PIN calls (COMPAT.md), under `/compat/<vendor>/…`:
//! each route a thin translation onto the `app` use cases the v1 routes call,
//! with the same programs, keys, cards, tokens, policy, limits, events and
//! audit. Every route takes the API key as `Bearer` or as HTTP Basic (the key
//! as the user name, an empty password); a card is named by its id or its
//! `external_id`. Marqeta's and Stripe's routes answer errors in their
//! vendor's shape (with pinvault's stable `code` inside); the others in
//! problem+json, as v1 does.

pub mod enfuce;
pub mod marqeta;
pub mod spidr;
pub mod stripe;
pub mod thredd;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Auth, NoBodyOrJson, NoFields, PathId};
use crate::api::shapes::Api;
use crate::app::App;
use crate::store::{CardRow, Store};

/// Marqeta's error body, with pinvault's stable code.
fn marqeta_error(_: StatusCode, code: &str, message: &str) -> Value {
    json!({ "error_message": message, "error_code": code })
}

/// Stripe's error body, with pinvault's stable code.
fn stripe_error(status: StatusCode, code: &str, message: &str) -> Value {
    let kind = if status.is_server_error() {
        "api_error"
    } else {
        "invalid_request_error"
    };
    json!({ "error": { "type": kind, "code": code, "message": message } })
}

/// For every request: an error answered under Marqeta's or Stripe's prefix
/// (by a handler, an extractor, or the router itself: an unknown path, a
/// method not allowed) goes out in that vendor's shape.
pub async fn vendor_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let shape: Option<Shape> = if path.starts_with("/compat/marqeta/") {
        Some(marqeta_error)
    } else if path.starts_with("/compat/stripe/") {
        Some(stripe_error)
    } else {
        None
    };
    let res = next.run(req).await;
    match shape {
        Some(shape) => in_shape(shape, res).await,
        None => res,
    }
}

/// A vendor's error body, from the status, pinvault's code and the detail.
type Shape = fn(StatusCode, &str, &str) -> Value;

/// Turns a problem+json answer into the vendor's error shape, keeping its
/// status and headers.
async fn in_shape(shape: Shape, res: Response) -> Response {
    let problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes() == b"application/problem+json");
    if !problem {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let p: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let code = p["code"].as_str().unwrap_or("internal");
    let message = p["detail"].as_str().unwrap_or("");
    let body = shape(parts.status, code, message).to_string();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The caller and the card the path names, by its id or its `external_id`:
/// what every card route here starts with (401, then 404 or 409, before the
/// body is read).
pub struct NamedCard {
    pub auth: Auth,
    pub card: CardRow,
}

/// A route on the card its path names by id or `external_id`.
pub type Named<S, B = NoBodyOrJson<NoFields>> = Api<S, NamedCard, B>;

impl<S: Store> FromRequestParts<Arc<App<S>>> for NamedCard {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, app).await?;
        let PathId(name) = PathId::from_request_parts(parts, app).await?;
        let card = app.find_card_named(&auth, &name).await?;
        Ok(NamedCard { auth, card })
    }
}

/// The answers of a card named by id or `external_id` that is not found, or
/// not alone, in the given error shape (documentation only).
macro_rules! named_card_errors {
    ($($name:ident: $body:ty, $content_type:tt;)*) => {$(
        #[derive(utoipa::IntoResponses)]
        #[allow(dead_code)] // documentation only: never built
        pub enum $name {
            #[response(status = 404, description = "`not_found`: no such card (by id or `external_id`) for this program", content_type = $content_type)]
            NotFound($body),
            #[response(status = 409, description = "`card_ambiguous`: several of the program's cards carry this `external_id`", content_type = $content_type)]
            Ambiguous($body),
        }
    )*};
}

named_card_errors! {
    CardErrors: crate::api::views::Problem, "application/problem+json";
    StripeCardErrors: stripe::StripeError, "application/json";
}

/// A JSON answer with a status.
fn answer<T: Serialize>(status: StatusCode, body: &T) -> Response {
    use axum::response::IntoResponse;
    (status, axum::Json(body)).into_response()
}
