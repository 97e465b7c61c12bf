//! Extractors: the API key, JSON bodies and query strings, each refusing bad input
//! with a problem+json error before a handler runs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::{ApiError, Code};
use crate::app::{App, Caller, CallerKind};
use crate::domain::card::CARD_PREFIX;
use crate::domain::ids::{Secret, SecretHash, is_id};
use crate::store::{ApiKeyRow, CardRow, ProgramRow, Store};

/// The calling program, from `Authorization: Bearer <api key>`, with the
/// request's id and source address for the audit trail: a [`Caller`] of kind
/// `ApiKey` (or `Demo`, for the `serve --dev` page acting for its program).
#[derive(Debug, Clone)]
pub struct Auth(Caller);

impl std::ops::Deref for Auth {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

/// The client's address: the peer's, or the one a trusted proxy forwarded
/// (`serve --trusted-proxies`); set by the middleware for every request.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::IpAddr);

/// The request id the middleware gave this request (`req_…`).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl Auth {
    /// A caller that is not an API key (the demo page) acting as one.
    pub fn acting(caller: Caller) -> Self {
        Auth(caller)
    }
}

/// Set on a request whose routes also take HTTP Basic with the API key as the
/// user name and an empty password (the seed-compatible routes, COMPAT.md:
/// how Marqeta's and Stripe's clients send a key).
#[derive(Debug, Clone, Copy)]
pub struct AcceptsBasic;

/// The API key of `Authorization: Basic base64("<key>:")`.
fn basic_key(credentials: &str) -> Option<zeroize::Zeroizing<String>> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()?;
    let text = zeroize::Zeroizing::new(String::from_utf8(raw).ok()?);
    let key = text.strip_suffix(':')?;
    (!key.contains(':')).then(|| zeroize::Zeroizing::new(key.to_owned()))
}

/// The hash of the API key the request presents; 401 without a well-formed one.
fn presented_key(parts: &Parts) -> Result<SecretHash, ApiError> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(ApiError::unauthorized)?;
    let basic = parts.extensions.get::<AcceptsBasic>().and_then(|_| {
        header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
            .and_then(basic_key)
    });
    let key = basic
        .as_deref()
        .map(String::as_str)
        .or_else(|| {
            header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|k| k.starts_with("pv_test_") || k.starts_with("pv_live_"))
        .ok_or_else(ApiError::unauthorized)?;
    // Looked up by hash: the stored value is never compared byte by byte with
    // the presented one, and a database failure fails closed (500, not 401).
    Ok(Secret::from_presented(key).hash())
}

impl Auth {
    fn new(parts: &Parts, key: ApiKeyRow, program: ProgramRow) -> Self {
        Auth(Caller {
            program,
            kind: CallerKind::ApiKey(key.id),
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
            source: parts.extensions.get::<ClientAddr>().map(|c| c.0),
        })
    }
}

impl<S: Store> FromRequestParts<Arc<App<S>>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let hash = presented_key(parts)?;
        match app.store.authenticate(hash).await? {
            Some((key, program)) => Ok(Auth::new(parts, key, program)),
            None => Err(ApiError::unauthorized()),
        }
    }
}

/// The caller and the card the path names, read from the database together
/// (one read instead of two: the path of PIN verification). `card` is `None`
/// when the caller's program has no such card; the handler answers 404 where it
/// would have looked the card up, so refusals keep their order (401, then the
/// body's 4xx, then 404).
#[derive(Debug)]
pub struct AuthCard {
    pub auth: Auth,
    pub card_id: String,
    pub card: Option<CardRow>,
}

impl AuthCard {
    /// For a caller already known (the demo page acts for its program): reads
    /// the card the same way.
    pub async fn lookup<S: Store>(
        app: &App<S>,
        auth: Auth,
        card_id: String,
    ) -> Result<Self, ApiError> {
        let card = if is_id(&card_id, CARD_PREFIX) {
            app.store.get_card(&auth.program.id, &card_id).await?
        } else {
            None
        };
        Ok(AuthCard {
            auth,
            card_id,
            card,
        })
    }

    /// The card, or 404 `not_found`.
    pub fn card(&mut self) -> Result<CardRow, ApiError> {
        self.card.take().ok_or_else(|| ApiError::not_found("card"))
    }
}

impl<S: Store> FromRequestParts<Arc<App<S>>> for AuthCard {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let hash = presented_key(parts)?;
        let PathId(card_id) = PathId::from_request_parts(parts, app).await?;
        let (key, program, card) = if is_id(&card_id, CARD_PREFIX) {
            app.store.authenticate_card(hash, &card_id).await?
        } else {
            // Not even a card id: no card to read.
            app.store
                .authenticate(hash)
                .await?
                .map(|(key, program)| (key, program, None))
        }
        .ok_or_else(ApiError::unauthorized)?;
        Ok(AuthCard {
            auth: Auth::new(parts, key, program),
            card_id,
            card,
        })
    }
}

/// A JSON request body: 415 `unsupported_media_type` without a JSON content
/// type, 400 for malformed JSON, 422 for well-formed JSON of the wrong shape.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// As [`JsonBody`], but an empty body is the type's default (for requests whose
/// fields are all optional, which still must say they are JSON).
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub T);

/// For actions that need no input: no body at all (whatever the content type
/// says), or a JSON body (`null`, or an object of the given shape). A
/// non-empty body that is not `application/json` is 415 `unsupported_media_type`.
#[derive(Debug)]
pub struct NoBodyOrJson<T>(pub T);

/// The body of an operation that takes no input, if one is sent: an empty
/// JSON object (a commit, an offline PIN unblock).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

fn is_json(parts_ct: Option<&str>) -> bool {
    let Some(ct) = parts_ct else { return false };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Code::UnsupportedMediaType,
        "the request body must be JSON: Content-Type: application/json",
    )
}

fn content_type(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_json(content_type(&req)) {
        return Err(not_json());
    }
    body_bytes(req, state).await
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(unreadable)
}

/// A body that could not be read: 413 `payload_too_large` over the limit,
/// else 400 (cut off, or not received within the body timeout).
pub(crate) fn unreadable(e: axum::extract::rejection::BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large()
    } else {
        ApiError::bad_request(
            "the request body could not be read: it was cut off or did not arrive in time",
        )
    }
}

/// Every request body of the API is a JSON object. (serde would otherwise also
/// read a struct from an array of its fields in order.)
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let syntax = |e: serde_json::Error| {
        ApiError::bad_request(format!(
            "the request body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::invalid("the request body must be a JSON object"),
                Err(e) => syntax(e),
            },
        );
    }
    if let Err(e) = unique_keys(bytes) {
        return Err(match e.classify() {
            serde_json::error::Category::Data => {
                ApiError::bad_request(format!("the request body has {e}"))
            }
            _ => syntax(e),
        });
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::invalid(super::safe_message(&e)),
        _ => syntax(e),
    })
}

/// Refuses JSON whose objects (at any depth) hold a key twice (the API's
/// bodies, `cards import`'s lines). The error names the key only when it
/// looks like a field name.
pub fn unique_keys(bytes: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<Unique>(bytes).map(|_| ())
}

/// Any JSON value, refused if an object in it (at any depth) has a key twice:
/// serde would keep the last one, and a gateway or firewall in front that
/// reads the first would see another request than the one served.
struct Unique;

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            map.next_value::<Unique>()?;
            if !seen.insert(key.clone()) {
                // Named only when it looks like a field name (a key could be
                // anything a client sends, a card number too).
                let named =
                    key.len() <= 64 && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                return Err(serde::de::Error::custom(if named {
                    format!("the key `{key}` twice in one object")
                } else {
                    "a key twice in one object".to_owned()
                }));
            }
        }
        Ok(Unique)
    }
}

/// A body taken as a JSON value first (to fingerprint it for
/// `Idempotency-Key`), read as `T`: 422 `invalid_request` for the wrong
/// shape, the message never quoting a value.
pub fn from_value<T: DeserializeOwned>(raw: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(raw).map_err(|e| ApiError::invalid(super::safe_message(&e)))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        Ok(JsonBody(parse(&bytes)?))
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        Ok(OptionalJsonBody(parse(&bytes)?))
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for NoBodyOrJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(content_type(&req));
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() {
            return Ok(NoBodyOrJson(T::default()));
        }
        if !json {
            return Err(not_json());
        }
        // Whitespace or JSON `null`: no input either.
        if bytes.trim_ascii().is_empty() || bytes.trim_ascii() == b"null" {
            return Ok(NoBodyOrJson(T::default()));
        }
        Ok(NoBodyOrJson(parse(&bytes)?))
    }
}

/// An id from the path; one that cannot even be decoded is a plain 404.
#[derive(Debug)]
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| PathId(p.0))
            .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, Code::NotFound, "no such resource"))
    }
}

/// A query string: 400 `invalid_request` when it does not parse.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(is_json(Some("application/merge-patch+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(Some("application/jsonx")));
        assert!(!is_json(None));
    }

    #[test]
    fn serde_messages_do_not_echo_values() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct P {
            pin: String,
        }
        let err = parse::<P>(br#"{"pin": 8264}"#).unwrap_err();
        assert!(!err.detail.contains("8264"), "{}", err.detail);
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        let err = parse::<P>(br#"{"pin": "8264""#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(!err.detail.contains("8264"), "{}", err.detail);
        // A struct is not read from an array of its fields.
        let err = parse::<P>(br#"["8264"]"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(parse::<P>(b" [1,").unwrap_err().status == StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_key_twice_at_any_depth_is_400_and_a_card_number_key_is_not_named() {
        for body in [
            &br#"{"pin":"1","pin":"2"}"#[..],
            br#"{"pin":"1","x":[{"a":1},{"b":{"c":1,"c":2}}]}"#,
            br#"{"pin":"1","p\u0069n":"2"}"#,
        ] {
            let err = parse::<Value>(body).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{}", err.detail);
            assert!(err.detail.contains("twice in one object"), "{}", err.detail);
        }
        let err = parse::<Value>(br#"{"4111111111111111":1,"4111111111111111":2}"#).unwrap_err();
        assert!(!err.detail.contains("4111"), "{}", err.detail);
        assert!(parse::<Value>(br#"{"a":{"b":1},"b":{"a":1}}"#).is_ok());
    }
}
