//! The hosted widgets' routes (API.md "Hosted widgets"): the pages, their script
//! and style, the SDK, and the two calls the pages make. No API key here: the
//! control token is the credential, and it reaches only the card it was issued for.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::ToSchema;
use zeroize::Zeroize;

use super::error::{ApiError, Code};
use super::extract::{ClientAddr, JsonBody, RequestId};
use super::pin::{RevealPin, SetPin, reveal_of, set_pin_of};
use super::responses::InvalidPinSet;
use super::views::{EncryptedPin, Problem};
use crate::app::{App, Caller, CallerKind};
use crate::domain::ids::Secret;
use crate::domain::sensitive::Sensitive;
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
    async fn widget<S: Store>(
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

fn form_body(headers: &HeaderMap, body: &Bytes) -> Result<Fields, ApiError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| {
            ct.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
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
    ($widget:expr, $get:ident, $post:ident, $path:tt, $get_op:tt, $post_op:tt, $codes:tt,
     $(#[doc = $doc:tt])*) => {
        $(#[doc = $doc])*
        #[utoipa::path(get, path = $path, operation_id = $get_op, tag = "widgets", params(PageQuery),
            responses((status = 200, description = "The widget page", content_type = "text/html"),
                (status = 403, description = $codes, content_type = "text/html"),
                (status = 400, description = "`invalid_request`: no token, or an appearance value that is not allowed", body = Problem, content_type = "application/problem+json")))]
        pub async fn $get<S: Store>(
            State(app): State<Arc<App<S>>>,
            uri: axum::http::Uri,
        ) -> Result<Response, ApiError> {
            page(&app, $widget, parse_fields(query_bytes(&uri))?, "token").await
        }

        /// The same page, with the token in a form field (what the SDK does).
        #[utoipa::path(post, path = $path, operation_id = $post_op, tag = "widgets",
            request_body(content = PageForm, content_type = "application/x-www-form-urlencoded"),
            responses((status = 200, description = "The widget page", content_type = "text/html"),
                (status = 403, description = $codes, content_type = "text/html"),
                (status = 400, description = "`invalid_request`: no `controlId`, or an appearance value that is not allowed", body = Problem, content_type = "application/problem+json")))]
        pub async fn $post<S: Store>(
            State(app): State<Arc<App<S>>>,
            headers: HeaderMap,
            body: Result<Bytes, BytesRejection>,
        ) -> Result<Response, ApiError> {
            let body = body.map_err(form_unreadable)?;
            page(&app, $widget, form_body(&headers, &body)?, "controlId").await
        }
    };
}

widget_page!(
    Widget::PinSet, pin_set_get, pin_set_post, "/widgets/pin-set", "pinSetWidget",
    "pinSetWidgetForm", "The page, showing the token's status code (-10, -11, -12) at once",
    /// The set widget: a form for the PIN and its confirmation, encrypted in the
    /// page to the published key.
);

widget_page!(
    Widget::PinReveal, pin_reveal_get, pin_reveal_post, "/widgets/pin-reveal",
    "pinRevealWidget", "pinRevealWidgetForm",
    "The page, showing its status code (-10, -11, -12, -30) at once",
    /// The reveal widget: makes a key pair in the page, shows the PIN decrypted
    /// there for `reveal_display_s`, then clears it.
);

/// Renders a widget page. The token is checked, not redeemed: one that can no
/// longer be used shows its code at once.
async fn page<S: Store>(
    app: &App<S>,
    widget: Widget,
    fields: Fields,
    token_field: &str,
) -> Result<Response, ApiError> {
    let presented = fields
        .get(token_field)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("`{token_field}` (the control token) is required"))
        })?;
    let appearance = Appearance::parse(fields.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(ApiError::bad_request)?;
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

/// A widget page's call: its JSON body, the card of the control token the
/// body carries, and the request as the widget acting for that card's
/// program ([`Unkeyed::widget`]).
pub struct WidgetCall<T> {
    body: T,
    card: CardRow,
    caller: Caller,
}

/// The body of a widget page's call: the control token it carries, of type
/// [`WidgetBody::TOKEN`].
pub trait WidgetBody {
    const TOKEN: TokenType;
    fn control_token(&self) -> &str;
}

impl<S: Store, T: WidgetBody + DeserializeOwned + Send> FromRequest<Arc<App<S>>> for WidgetCall<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let unkeyed = Unkeyed::from_request_parts(&mut parts, app).await?;
        let JsonBody(body) =
            JsonBody::<T>::from_request(Request::from_parts(parts, body), app).await?;
        let (card, caller) = unkeyed.widget(app, body.control_token(), T::TOKEN).await?;
        Ok(WidgetCall { body, card, caller })
    }
}

impl WidgetBody for WidgetSetPin {
    const TOKEN: TokenType = TokenType::SetPin;
    fn control_token(&self) -> &str {
        self.control_token.expose()
    }
}

impl WidgetBody for WidgetRevealPin {
    const TOKEN: TokenType = TokenType::RevealPin;
    fn control_token(&self) -> &str {
        self.control_token.expose()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetSetPin {
    /// The `set_pin` token the page was opened with.
    #[schema(value_type = String)]
    control_token: Sensitive<String>,
    /// A compact JWE (`RSA-OAEP-256`, `A256GCM`) to a key of
    /// `GET /v1/pin-encryption-keys`; plaintext `{"pin","card_id"?,"iat"?}` or the digits.
    #[schema(max_length = 8192)]
    encrypted_pin: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetRevealPin {
    /// The `reveal_pin` token the page was opened with.
    #[schema(value_type = String)]
    control_token: Sensitive<String>,
    /// The page's public EC P-256 key (JWK, no `d`).
    #[schema(value_type = super::views::DeviceJwk)]
    device_key: Value,
}

/// The set widget's call: `PUT /v1/cards/{id}/pin` for the token's card, with
/// the token as the credential. 204, or 202 `{"status":"staged"}` where the
/// program stages PINs.
#[utoipa::path(post, path = "/widgets/api/pin-set", operation_id = "widgetSetPin", tag = "widgets", request_body = WidgetSetPin,
    responses((status = 204, description = "The PIN is set"),
        (status = 202, description = "The PIN is staged: `{\"status\":\"staged\"}` (`pin_set_mode` `staged`)"),
        (status = 403, description = "`token_invalid`, `token_expired`, `token_used`, `token_superseded`, `token_exhausted`", body = Problem, content_type = "application/problem+json"),
        InvalidPinSet))]
pub async fn api_set_pin<S: Store>(
    State(app): State<Arc<App<S>>>,
    WidgetCall { body, card, caller }: WidgetCall<WidgetSetPin>,
) -> Result<Response, ApiError> {
    let body = SetPin {
        control_token: body.control_token,
        pin: None,
        encrypted_pin: Some(body.encrypted_pin),
    };
    set_pin_of(&app, &caller, card, body).await
}

/// The reveal widget's call: `POST /v1/cards/{id}/pin/reveal` for the token's
/// card with the page's key, the token as the credential.
#[utoipa::path(post, path = "/widgets/api/pin-reveal", operation_id = "widgetRevealPin", tag = "widgets", request_body = WidgetRevealPin,
    responses((status = 200, description = "`{\"encrypted_pin\"}`: a compact JWE (`ECDH-ES`, `A256GCM`) to `device_key`, plaintext `{\"pin\",\"card_id\"}`", body = EncryptedPin),
        (status = 403, description = "`reveal_disabled`, token errors", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_request`: `device_key` is not a public P-256 key", body = Problem, content_type = "application/problem+json")))]
pub async fn api_reveal_pin<S: Store>(
    State(app): State<Arc<App<S>>>,
    WidgetCall { body, card, caller }: WidgetCall<WidgetRevealPin>,
) -> Result<Response, ApiError> {
    // The card's reveal limit holds here too (the API key's does not: there is none).
    app.limiter.check(
        crate::limits::Scope::CardReveal,
        &[&caller.program.id, &card.id],
    )?;
    let body = RevealPin {
        control_token: body.control_token,
        device_key: Some(body.device_key),
    };
    reveal_of(&app, &caller, card, body).await
}
