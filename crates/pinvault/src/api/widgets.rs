//! The hosted widgets' routes (API.md "Hosted widgets"): the pages, their script
//! and style, the SDK (the two calls the pages make are in `widget_api`). No API key here: the
//! control token is the credential, and it reaches only the card it was issued for.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroize;

use super::error::{ApiError, Code};
use super::extract::{ClientAddr, RequestId};
use super::shapes::Answer;
use super::views::Problem;
use crate::app::{App, Caller, CallerKind};
use crate::domain::ids::Secret;
use crate::domain::time::now;
use crate::domain::token::{self, TOKEN_PREFIX, TokenError, TokenType};
use crate::store::{CardRow, ProgramRow, Store, TokenRow};
use crate::widgets::{self, Appearance, Page, Widget, code};

/// A request without an API key (a widget's, the demo page's): its id and
/// peer, for the audit trail.
pub struct Unkeyed {
    request_id: Option<String>,
    source: Option<std::net::IpAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Unkeyed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Unkeyed {
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
            source: parts.extensions.get::<ClientAddr>().map(|c| c.0),
        })
    }
}

impl Unkeyed {
    /// The request as a caller of kind `kind` acting for `program`: a widget
    /// (the cardholder, holding a token of one of the program's cards) or the
    /// demo page.
    pub(super) fn caller(self, program: ProgramRow, kind: CallerKind) -> Caller {
        Caller {
            program,
            kind,
            request_id: self.request_id,
            source: self.source,
        }
    }

    /// A widget's call with a token of `kind`: the token's card, and the
    /// request as the widget acting for the card's program. A token that does
    /// not exist is 403 `token_invalid`; the shared logic checks its state.
    pub(super) async fn widget<S: Store>(
        self,
        app: &App<S>,
        presented: &str,
        kind: TokenType,
    ) -> Result<(CardRow, Caller), ApiError> {
        let (_, card, program) = resolve(app, presented, kind).await??;
        Ok((card, self.caller(program, CallerKind::Widget)))
    }
}

/// The token's card and program, for a token of `kind` that exists (its state
/// is checked by the shared logic, or by the page). A database failure is an
/// error, never "no such token".
async fn resolve<S: Store>(
    app: &App<S>,
    presented: &str,
    kind: TokenType,
) -> Result<Result<(TokenRow, CardRow, ProgramRow), TokenError>, ApiError> {
    if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 200 {
        return Ok(Err(TokenError::Invalid));
    }
    let Some(token) = app
        .store
        .find_token(Secret::from_presented(presented).hash())
        .await?
        .filter(|t| t.kind == kind)
    else {
        return Ok(Err(TokenError::Invalid));
    };
    let Some(card) = app.store.card_of_token(&token.card_id).await? else {
        return Ok(Err(TokenError::Invalid));
    };
    Ok(app
        .store
        .get_program(&card.program_id)
        .await?
        .map(|p| (token, card, p))
        .ok_or(TokenError::Invalid))
}

/// Form or query fields, zeroed when dropped (one of them is a token).
struct Fields(Vec<(String, String)>);

impl Drop for Fields {
    fn drop(&mut self) {
        for (_, v) in &mut self.0 {
            v.zeroize();
        }
    }
}

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A form body that cannot be read (over the 64 KiB limit, or not received
/// in time): problem+json like every other refusal, not the framework's text.
fn form_unreadable(e: BytesRejection) -> ApiError {
    super::extract::unreadable(e)
}

fn parse_fields(bytes: &[u8]) -> Result<Fields, ApiError> {
    let pairs = form_pairs(bytes)
        .ok_or_else(|| ApiError::bad_request("the form or query string cannot be read"))?;
    if pairs.len() > 20 || pairs.iter().any(|(k, v)| k.len() > 64 || v.len() > 512) {
        return Err(ApiError::bad_request(
            "too many or too long fields in the form or query string",
        ));
    }
    // As for JSON: a field given twice would be read as its first by this
    // page and perhaps as its last by what stands in front.
    for (i, (k, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(seen, _)| seen == k) {
            return Err(ApiError::bad_request(
                "a field appears more than once in the form or query string",
            ));
        }
    }
    Ok(Fields(pairs))
}

fn form_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(bytes).ok()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; the handler reads it as a list of pairs
pub struct PageQuery {
    /// The control token (`set_pin` for the set widget, `reveal_pin` for the reveal widget).
    token: String,
    /// The origin of the page that frames the widget; the widget posts its
    /// events there only when it is one of the program's `widget_allowed_origins`.
    parent_origin: Option<String>,
    /// Font family names (letters, digits, spaces, hyphens, commas).
    #[param(pattern = "^[A-Za-z0-9 ,-]{1,100}$")]
    font_family: Option<String>,
    #[param(pattern = "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]
    color_text: Option<String>,
    #[param(pattern = "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]
    color_background: Option<String>,
    #[param(pattern = "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]
    color_accent: Option<String>,
    #[param(pattern = "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]
    color_error: Option<String>,
    /// Corner radius, `0px` to `99px`.
    #[param(pattern = "^[0-9]{1,2}px$")]
    radius: Option<String>,
}

/// The form the SDK posts into its iframe (the token stays out of every URL).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // documents the form; the handler reads it as a list of pairs
pub struct PageForm {
    /// The control token.
    #[serde(rename = "controlId")]
    control_id: String,
    parent_origin: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9 ,-]{1,100}$")]
    font_family: Option<String>,
    #[schema(pattern = "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]
    color_text: Option<String>,
    #[schema(pattern = "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]
    color_background: Option<String>,
    #[schema(pattern = "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]
    color_accent: Option<String>,
    #[schema(pattern = "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]
    color_error: Option<String>,
    #[schema(pattern = "^[0-9]{1,2}px$")]
    radius: Option<String>,
}

fn query_bytes(uri: &axum::http::Uri) -> &[u8] {
    uri.query().unwrap_or("").as_bytes()
}

/// Whether the request says its body is a form.
pub(super) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| {
            ct.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn form_body(headers: &HeaderMap, body: &Bytes) -> Result<Fields, ApiError> {
    if !is_form(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::UnsupportedMediaType,
            "post the widget's form: Content-Type: application/x-www-form-urlencoded",
        ));
    }
    parse_fields(body)
}

/// The two handlers of a widget page: the token in the query (`token`), or in
/// a form field (`controlId`, what the SDK posts).
macro_rules! widget_page {
    ($widget:expr, $get:ident, $post:ident, $path:tt, $get_op:tt, $post_op:tt, $codes:tt, $bad:tt, $bad_form:tt,
     $(#[doc = $doc:tt])*) => {
        $(#[doc = $doc])*
        #[utoipa::path(get, path = $path, operation_id = $get_op, tag = "widgets", params(PageQuery),
            responses((status = 200, description = "The widget page", content_type = "text/html"),
                (status = 403, description = $codes, content_type = "text/html"),
                $bad))]
        pub async fn $get<S: Store>(
            State(app): State<Arc<App<S>>>,
            uri: axum::http::Uri,
        ) -> Answer {
            page(&app, $widget, parse_fields(query_bytes(&uri))?, "token").await
        }

        /// The same page, with the token in a form field (what the SDK does;
        /// with no body, the field may come in the query string instead, as
        /// Enfuce's document writes it: `pinURL?controlId=…`).
        #[utoipa::path(post, path = $path, operation_id = $post_op, tag = "widgets",
            request_body(content = PageForm, content_type = "application/x-www-form-urlencoded"),
            responses((status = 200, description = "The widget page", content_type = "text/html"),
                (status = 403, description = $codes, content_type = "text/html"),
                $bad_form))]
        pub async fn $post<S: Store>(
            State(app): State<Arc<App<S>>>,
            uri: axum::http::Uri,
            headers: HeaderMap,
            body: Result<Bytes, BytesRejection>,
        ) -> Answer {
            let body = body.map_err(form_unreadable)?;
            let fields = if body.is_empty() && uri.query().is_some_and(|q| !q.is_empty()) {
                parse_fields(query_bytes(&uri))?
            } else {
                form_body(&headers, &body)?
            };
            page(&app, $widget, fields, "controlId").await
        }
    };
}

widget_page!(
    Widget::PinSet, pin_set_get, pin_set_post, "/widgets/pin-set", "pinSetWidget",
    "pinSetWidgetForm", "The page, showing the token's status code (-10, -11, -12) at once",
    (status = 400, description = "No token: the page, showing status -1 (text/html). An appearance value that is not allowed: `invalid_request` (problem+json)",
        content((String = "text/html"), (Problem = "application/problem+json"))),
    (status = 400, description = "No `controlId`: the page, showing status -1 (text/html). An appearance value that is not allowed: `invalid_request` (problem+json)",
        content((String = "text/html"), (Problem = "application/problem+json"))),
    /// The set widget: a form for the PIN and its confirmation, encrypted in the
    /// page to the published key.
);

widget_page!(
    Widget::PinReveal, pin_reveal_get, pin_reveal_post, "/widgets/pin-reveal",
    "pinRevealWidget", "pinRevealWidgetForm",
    "The page, showing its status code (-10, -11, -12, -30) at once",
    (status = 400, description = "`invalid_request`: no token, or an appearance value that is not allowed", body = Problem, content_type = "application/problem+json"),
    (status = 400, description = "`invalid_request`: no `controlId`, or an appearance value that is not allowed", body = Problem, content_type = "application/problem+json"),
    /// The reveal widget: makes a key pair in the page, shows the PIN decrypted
    /// there for `reveal_display_s`, then clears it.
);

/// Renders a widget page. The token is checked, not redeemed: one that can no
/// longer be used shows its code at once.
async fn page<S: Store>(app: &App<S>, widget: Widget, fields: Fields, token_field: &str) -> Answer {
    let appearance = Appearance::parse(fields.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(ApiError::bad_request)?;
    let Some(presented) = fields.get(token_field).filter(|t| !t.is_empty()) else {
        return match widget {
            // The set page reports Spidr's -1 to its host (COMPAT.md).
            Widget::PinSet => Ok(no_token_page(widget, &appearance)),
            Widget::PinReveal => Err(ApiError::bad_request(format!(
                "`{token_field}` (the control token) is required"
            ))),
        };
    };
    let kind = match widget {
        Widget::PinSet => TokenType::SetPin,
        Widget::PinReveal => TokenType::RevealPin,
    };
    let found = resolve(app, presented, kind).await?;
    let (status, program, card_id) = match &found {
        Err(e) => (Some(widgets::token_code(*e)), None, None),
        Ok((t, card, program)) => {
            let state = token::state(
                t.used_at,
                t.superseded_at,
                t.expires_at,
                t.attempts_remaining,
                now(),
            );
            let status = match state {
                Err(e) => Some(widgets::token_code(e)),
                Ok(()) if widget == Widget::PinReveal && !program.settings.reveal_enabled => {
                    Some(code::REVEAL_DISABLED)
                }
                Ok(()) => None,
            };
            (status, Some(program), Some(card.id.as_str()))
        }
    };
    let settings = program.map(|p| &p.settings);
    let allowed: &[String] = settings.map_or(&[], |s| &s.widget_allowed_origins);
    let parent_origin = fields
        .get("parent_origin")
        .filter(|o| allowed.iter().any(|a| a == o));
    let defaults = crate::domain::program::Settings::default();
    let settings = settings.unwrap_or(&defaults);
    let html = Page {
        widget,
        token: status.is_none().then_some(presented),
        card_id: status.is_none().then_some(card_id).flatten(),
        status,
        pin_length_min: settings.pin_length_min,
        pin_length_max: settings.pin_length_max,
        reveal_display_s: settings.reveal_display_s,
        now: now(),
        parent_origin,
        appearance: &appearance,
    }
    .render();
    let http_status = if status.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    Ok(with_widget_headers(
        (http_status, html).into_response(),
        "text/html; charset=utf-8",
        allowed,
    ))
}

/// A page opened without a token: status `-1`, nothing to enter, 400.
fn no_token_page(widget: Widget, appearance: &Appearance) -> Response {
    let defaults = crate::domain::program::Settings::default();
    let html = Page {
        widget,
        token: None,
        card_id: None,
        status: Some(code::NO_TOKEN),
        pin_length_min: defaults.pin_length_min,
        pin_length_max: defaults.pin_length_max,
        reveal_display_s: defaults.reveal_display_s,
        now: now(),
        parent_origin: None,
        appearance,
    }
    .render();
    with_widget_headers(
        (StatusCode::BAD_REQUEST, html).into_response(),
        "text/html; charset=utf-8",
        &[],
    )
}

/// The headers of every widget response (the middleware adds `no-store` and `nosniff`).
fn with_widget_headers(
    mut res: Response,
    content_type: &'static str,
    frame: &[String],
) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(v) = HeaderValue::from_str(&widgets::csp(frame)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    with_widget_headers(body.into_response(), content_type, &[])
}

pub async fn widget_js() -> Response {
    asset(widgets::WIDGET_JS, "text/javascript; charset=utf-8")
}

pub async fn widget_css() -> Response {
    asset(widgets::WIDGET_CSS, "text/css; charset=utf-8")
}

/// The browser SDK: `Pinvault.mount(element, {widget, token, onEvent, appearance})`.
#[utoipa::path(get, path = "/sdk/pinvault.js", operation_id = "sdk", tag = "widgets",
    responses((status = 200, description = "The SDK script", content_type = "text/javascript")))]
pub async fn sdk_js() -> Response {
    let mut res = asset(widgets::SDK_JS, "text/javascript; charset=utf-8");
    // Any page may load the SDK; its own requests go only to this server.
    res.headers_mut().insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    res
}
