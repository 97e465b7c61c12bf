//! `/demo` (only with `serve --dev`): a page where a newcomer makes a demo card,
//! sets its PIN in the set widget, sees it in the reveal widget and watches the
//! events. Its small back end (`/demo/api/…`) acts as the dev program, as a
//! program's own server would: it is never served without `--dev`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Auth, AuthCard, JsonBody, OptionalJsonBody, PathId, QueryParams};
use super::shapes::{Answer, Api, Idempotent, Listing};
use super::widgets::Unkeyed;
use super::{cards, pin, verify, webhooks};
use crate::app::App;
use crate::app::CallerKind;
use crate::store::Store;
use crate::widgets;

/// The dev program the demo acts as.
#[derive(Debug, Clone)]
pub struct DemoProgram(pub String);

/// The demo's back end acts as the dev program.
async fn dev_auth<S: Store>(
    app: &App<S>,
    demo: &DemoProgram,
    unkeyed: Unkeyed,
) -> Result<Auth, ApiError> {
    let program = app
        .store
        .get_program(&demo.0)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(Auth::acting(unkeyed.caller(program, CallerKind::Demo)))
}

/// One of the dev program's cards, as the demo's back end sees it.
async fn dev_card<S: Store>(
    app: &App<S>,
    demo: &DemoProgram,
    unkeyed: Unkeyed,
    id: PathId,
) -> Result<AuthCard, ApiError> {
    let auth = dev_auth(app, demo, unkeyed).await?;
    AuthCard::lookup(app, auth, id.0).await
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    res
}

pub async fn html() -> Response {
    page(widgets::DEMO_HTML, "text/html; charset=utf-8")
}

pub async fn js() -> Response {
    page(widgets::DEMO_JS, "text/javascript; charset=utf-8")
}

pub async fn css() -> Response {
    page(widgets::DEMO_CSS, "text/css; charset=utf-8")
}

/// A demo card (a test PAN; in a test-mode program its first PIN is `0000`).
pub async fn create_card<S: Store>(
    State((app, demo)): State<(Arc<App<S>>, DemoProgram)>,
    unkeyed: Unkeyed,
) -> Answer {
    let auth = dev_auth(&app, &demo, unkeyed).await?;
    let body = json!({"pan": "4111111111111111", "external_id": "demo", "expiry": "2030-12"});
    cards::create(Api(app, auth, Idempotent(HeaderMap::new(), body))).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoToken {
    #[serde(rename = "type")]
    kind: String,
}

/// A control token for the demo card (`set_pin` or `reveal_pin`, the latter
/// with `cardholder_verification_method` `OTHER`).
pub async fn create_token<S: Store>(
    State((app, demo)): State<(Arc<App<S>>, DemoProgram)>,
    unkeyed: Unkeyed,
    id: PathId,
    JsonBody(body): JsonBody<DemoToken>,
) -> Answer {
    let body: Value = match body.kind.as_str() {
        "reveal_pin" => json!({"type": "reveal_pin", "cardholder_verification_method": "OTHER"}),
        other => json!({ "type": other }),
    };
    let found = dev_card(&app, &demo, unkeyed, id).await?;
    pin::create_token(Api(app, found, Idempotent(HeaderMap::new(), body))).await
}

pub async fn card<S: Store>(
    State((app, demo)): State<(Arc<App<S>>, DemoProgram)>,
    unkeyed: Unkeyed,
    id: PathId,
) -> Answer {
    cards::get(dev_card(&app, &demo, unkeyed, id).await?).await
}

/// The support desk's unblock (`POST /v1/cards/{id}/pin/unblock`), after the
/// sandbox terminal blocked the PIN.
pub async fn unblock<S: Store>(
    State((app, demo)): State<(Arc<App<S>>, DemoProgram)>,
    unkeyed: Unkeyed,
    id: PathId,
) -> Answer {
    let found = dev_card(&app, &demo, unkeyed, id).await?;
    pin::unblock(Api(app, found, OptionalJsonBody(pin::Unblock::default()))).await
}

pub async fn events<S: Store>(
    State((app, demo)): State<(Arc<App<S>>, DemoProgram)>,
    unkeyed: Unkeyed,
    q: QueryParams<webhooks::ListEvents>,
) -> Answer {
    let auth = dev_auth(&app, &demo, unkeyed).await?;
    webhooks::list_events(Listing::new(app, auth, q.0)?).await
}

/// The sandbox's terminal: `POST /v1/test/cards/{id}/pin/verify`.
pub async fn sandbox_verify<S: Store>(
    State((app, demo)): State<(Arc<App<S>>, DemoProgram)>,
    unkeyed: Unkeyed,
    id: PathId,
    body: JsonBody<verify::SandboxVerify>,
) -> Answer {
    let found = dev_card(&app, &demo, unkeyed, id).await?;
    verify::sandbox_verify(Api(app, found, body)).await
}
