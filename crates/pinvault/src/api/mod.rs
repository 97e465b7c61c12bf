//! HTTP: routes per resource, extractors for auth and bodies, one error type.
//! A request flows one way: route, extractor, handler, store and keys.

mod body;
mod cards;
mod compat;
pub(crate) use cards::card_input;
mod chip;
mod demo;
mod encryption_keys;
pub mod error;
mod export;
mod extract;
mod idempotency;
pub mod limits;
mod lookup;
mod openapi;
mod ops;
mod page;
mod pin;
mod pin_change;
mod program;
mod responses;
mod routes;
mod shapes;
mod verify;
mod views;
mod webhooks;
mod widget_api;
mod widgets;

pub use demo::DemoProgram;
pub use extract::unique_keys;
pub use program::program_json;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use tracing::Instrument;

use crate::app::App;
use crate::domain::ids::new_id;
use crate::store::Store;
use error::{ApiError, Code};
use extract::AcceptsBasic;

/// Largest request body accepted (the largest legitimate one, a card with an
/// encrypted PIN, is under 2 KiB).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The service's routes; with `demo` (`serve --dev`), also `/demo` acting as that program.
pub fn router<S: Store>(app: Arc<App<S>>, demo: Option<DemoProgram>) -> Router {
    let mut router = routes::api::<S>()
        // The widget pages and their API (a token lookup, and crypto, each)
        // are limited per client address; their static assets are not.
        .merge(limits::per_address(app.clone(), routes::widgets::<S>()))
        .merge(routes::compat::<S>().layer(Extension(AcceptsBasic)))
        // Documented as `…/{kid}.pem`: axum takes one parameter a segment.
        .route(
            "/v1/pin-encryption-keys/{file}",
            get(encryption_keys::pem::<S>),
        )
        .route("/widgets/assets/widget.js", get(widgets::widget_js))
        .route("/widgets/assets/widget.css", get(widgets::widget_css));
    if let Some(demo) = demo {
        router = router.merge(
            Router::new()
                .route("/demo", get(demo::html))
                .route("/demo/demo.js", get(demo::js))
                .route("/demo/demo.css", get(demo::css))
                .route("/demo/api/cards", post(demo::create_card::<S>))
                .route("/demo/api/cards/{id}", get(demo::card::<S>))
                .route(
                    "/demo/api/cards/{id}/control-tokens",
                    post(demo::create_token::<S>),
                )
                .route(
                    "/demo/api/cards/{id}/verify",
                    post(demo::sandbox_verify::<S>),
                )
                .route("/demo/api/cards/{id}/pin/unblock", post(demo::unblock::<S>))
                .route("/demo/api/events", get(demo::events::<S>))
                .with_state((app.clone(), demo)),
        );
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(compat::vendor_errors))
        .layer(middleware::from_fn_with_state(app.clone(), observe::<S>))
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::not_found("resource")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::InvalidRequest,
        "this method is not allowed on this resource",
    )
}

/// Request id, one log line, metrics, and the headers every answer carries. The
/// log and the metrics name the route template, never the raw path or query
/// (a widget URL's query holds a control token).
async fn observe<S: Store>(
    State(app): State<Arc<App<S>>>,
    matched: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = matched.map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let request_id = new_id("req_");
    let span = tracing::info_span!("request", request_id = %request_id);
    req.extensions_mut()
        .insert(extract::RequestId(request_id.clone()));
    if let Some(peer) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
    {
        let ip = limits::client_ip(peer, req.headers(), &app.settings.trusted_proxies);
        req.extensions_mut().insert(extract::ClientAddr(ip));
    }
    let mut read = None;
    if !axum::body::HttpBody::is_end_stream(req.body()) {
        let (parts, inner) = req.into_parts();
        let (tracked, done) = body::Tracked::new(inner, app.settings.body_timeout);
        read = Some(done);
        req = Request::from_parts(parts, axum::body::Body::new(tracked));
    }
    let mut res = next.run(req).instrument(span.clone()).await;
    let elapsed = start.elapsed();
    let status = res.status().as_u16();
    app.metrics
        .observe(&route, &method, status, elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            route = %route,
            status,
            ms = format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0),
            "answered"
        );
    });
    let headers = res.headers_mut();
    // A request answered before its body was read (refused early: no API key,
    // a limit, too large): hyper would close the connection after the answer
    // without saying so, and a keep-alive client's next request on it would
    // fail. Saying so lets the client open a new one.
    if read.is_some_and(|done| !done.load(std::sync::atomic::Ordering::Acquire)) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// serde's messages can quote the offending value ("invalid type: integer
/// `1234`"), which may be a PIN: keep only what was expected and where.
pub(crate) fn safe_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.find(", expected") {
        Some(i)
            if msg.starts_with("invalid type")
                || msg.starts_with("invalid value")
                || msg.starts_with("invalid length") =>
        {
            format!(
                "{}{}",
                msg.split(':').next().unwrap_or("invalid"),
                &msg[i..]
            )
        }
        _ => msg,
    };
    format!("the request body does not match the expected shape: {msg}")
}

/// Every request and response type that holds a secret, formatted with `{:?}`
/// (as a log line or a panic message would): no secret appears.
#[cfg(test)]
mod redaction {
    use serde_json::{Value, json};

    const PAN: &str = "4111111111111111";
    const PIN: &str = "48291057";
    const TOKEN: &str = "pct_sEcReTtOkEnVaLuE";
    const BLOCK: &str = "2232025815475D20";

    fn parsed<T: serde::de::DeserializeOwned + std::fmt::Debug>(v: Value) -> String {
        let t: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
        format!("{t:?} {t:#?}")
    }

    #[test]
    fn secrets_never_print() {
        let printed = [
            parsed::<super::cards::CreateCard>(json!({"pan": PAN, "pin": {"pin": PIN}})),
            parsed::<super::cards::PinInput>(json!({"pin": PIN})),
            format!(
                "{:?}",
                super::cards::card_input(json!({"pan": PAN, "pin": {"pin": PIN}}))
                    .unwrap_or_else(|e| panic!("{}", e.detail))
            ),
            parsed::<super::pin::SetPin>(json!({"control_token": TOKEN, "pin": PIN})),
            parsed::<super::pin::RevealPin>(json!({"control_token": TOKEN})),
            parsed::<super::widget_api::WidgetSetPin>(
                json!({"control_token": TOKEN, "encrypted_pin": "x.y.z"}),
            ),
            parsed::<super::widget_api::WidgetRevealPin>(
                json!({"control_token": TOKEN, "device_key": {}}),
            ),
            parsed::<super::verify::SandboxVerify>(json!({"pin": PIN})),
            parsed::<super::verify::VerifyPin>(
                json!({"pin_block": BLOCK, "format": "iso_0", "zone_key_id": "zpk_x"}),
            ),
            format!(
                "{:?}",
                super::views::TokenView {
                    token: crate::domain::sensitive::Sensitive::new(TOKEN.into()),
                    kind: "set_pin".into(),
                    card_id: "card_x".into(),
                    expires_at: String::new(),
                    attempts_remaining: 3,
                    widget_url: crate::domain::sensitive::Sensitive::new(format!(
                        "/w?token={TOKEN}"
                    )),
                }
            ),
            format!(
                "{:?}",
                super::views::RevealedPin {
                    pin: zeroize::Zeroizing::new(PIN.into())
                }
            ),
        ];
        for p in &printed {
            for secret in [PAN, PIN, TOKEN, BLOCK] {
                assert!(!p.contains(secret), "{p}");
            }
        }
    }
}
