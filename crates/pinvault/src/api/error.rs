//! One error type for the API, answered as `application/problem+json` with a
//! stable `code`. Details never carry a PIN, a PAN, a key or a token.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::ServiceError;
use crate::app::error::AppError;
use crate::domain::DomainError;
use crate::domain::token::TokenError;
use crate::store::StoreError;

/// `Variant = "code", "problem title";` declares each error code once (the
/// enum, [`Code::as_str`] and its title).
macro_rules! codes {
    ($($code:ident = $text:literal, $title:literal;)*) => {
        /// The stable error codes, each with its problem title (every one explained in
        /// docs/reference.md, "Error codes").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
        #[schema(rename_all = "snake_case")]
        pub enum Code {
            $($code,)*
        }

        impl Code {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$code => $text,)*
                }
            }

            fn title(self) -> &'static str {
                match self {
                    $(Code::$code => $title,)*
                }
            }
        }
    };
}

codes! {
    InvalidRequest = "invalid_request", "Invalid request";
    Unauthorized = "unauthorized", "Unauthorized";
    Forbidden = "forbidden", "Forbidden";
    NotFound = "not_found", "Not found";
    UnsupportedMediaType = "unsupported_media_type", "Unsupported media type";
    RateLimited = "rate_limited", "Too many requests";
    IdempotencyConflict = "idempotency_conflict", "Idempotency key reused";
    InvalidPan = "invalid_pan", "Invalid PAN";
    InvalidPin = "invalid_pin", "Invalid PIN";
    WeakPin = "weak_pin", "Weak PIN";
    DecryptionFailed = "decryption_failed", "Decryption failed";
    TokenInvalid = "token_invalid", "Invalid control token";
    TokenExpired = "token_expired", "Control token expired";
    TokenUsed = "token_used", "Control token already used";
    TokenSuperseded = "token_superseded", "Control token superseded";
    TokenExhausted = "token_exhausted", "Control token attempts used up";
    RevealDisabled = "reveal_disabled", "PIN reveal disabled";
    PlaintextNotAllowed = "plaintext_not_allowed", "Plaintext PIN not allowed";
    PinBlocked = "pin_blocked", "PIN blocked";
    NothingStaged = "nothing_staged", "Nothing staged";
    CardAmbiguous = "card_ambiguous", "Card ambiguous";
    ReversalNotPossible = "reversal_not_possible", "Reversal not possible";
    ExportNotAllowed = "export_not_allowed", "PIN export not allowed";
    PinNotAvailable = "pin_not_available", "PIN not available";
    PayloadTooLarge = "payload_too_large", "Payload too large";
    Internal = "internal", "Internal error";
}

impl From<TokenError> for Code {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid => Code::TokenInvalid,
            TokenError::Expired => Code::TokenExpired,
            TokenError::Used => Code::TokenUsed,
            TokenError::Superseded => Code::TokenSuperseded,
            TokenError::Exhausted => Code::TokenExhausted,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub detail: String,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Code, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Code::InvalidRequest, detail)
    }

    /// A list's `limit`: 1 to 100, default 20.
    pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
        let limit = limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::bad_request("`limit` must be from 1 to 100"));
        }
        Ok(limit)
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            Code::InvalidRequest,
            detail,
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Code::NotFound,
            format!("no such {what}"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthorized,
            "a valid API key is required: Authorization: Bearer <api key>",
        )
    }

    pub fn forbidden(code: Code, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    /// One answer for every way an encrypted PIN can fail (malformed, tampered,
    /// unknown key, another card, stale, unsupported algorithm): no oracle.
    pub fn decryption_failed() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            Code::DecryptionFailed,
            "the encrypted PIN cannot be used: it must be a compact JWE (alg RSA-OAEP-256 or RSA-OAEP, enc A256GCM or A128CBC-HS256) to a key published at /v1/pin-encryption-keys named by its kid, unaltered, and where its plaintext has card_id or iat, for this card and at most 5 minutes old",
        )
    }

    /// A body over [`super::BODY_LIMIT`], on any route.
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::PayloadTooLarge,
            format!(
                "the request body is over the limit of {} bytes (64 KiB)",
                super::BODY_LIMIT
            ),
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal,
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code.as_str(), detail = %self.detail, "request failed");
        } else {
            tracing::debug!(code = self.code.as_str(), detail = %self.detail, "request refused");
        }
        let code = self.code.as_str();
        let body = json!({
            "type": format!("urn:pinvault:problem:{code}"),
            "title": self.code.title(),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": code,
        });
        let mut res = (self.status, axum::Json(body)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        ApiError::forbidden(e.into(), e.detail())
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(d) => ApiError::invalid(d),
            DomainError::Forbidden(d) => ApiError::forbidden(Code::Forbidden, d),
            DomainError::InvalidPin => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::InvalidPin,
                "the PIN must be digits only, with a length in the program's range",
            ),
            DomainError::WeakPin => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::WeakPin,
                "the PIN is too easy to guess: not one digit repeated, a run up or down, or the card number's last digits",
            ),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        // Logged in full by `into_response`; the client sees only `internal`.
        let mut err = ApiError::internal();
        err.detail = match &e {
            ServiceError::Store(StoreError::Database { .. }) => {
                "the database is unavailable".into()
            }
            _ => "internal error".into(),
        };
        tracing::error!(error = %e, "service error");
        err
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound(what) => ApiError::not_found(what),
            AppError::Invalid(detail) => ApiError::invalid(detail),
            AppError::InvalidPan => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::InvalidPan,
                "`pan` must be 12 to 19 digits with a valid Luhn check digit",
            ),
            AppError::PlaintextNotAllowed(detail) => {
                ApiError::forbidden(Code::PlaintextNotAllowed, detail)
            }
            AppError::RevealDisabled => ApiError::forbidden(
                Code::RevealDisabled,
                "PIN reveal is turned off for this program",
            ),
            AppError::DecryptionFailed => ApiError::decryption_failed(),
            AppError::NothingStaged => ApiError::new(
                StatusCode::CONFLICT,
                Code::NothingStaged,
                "this card has no staged PIN to commit (none was staged, it expired with its token, or it was committed already)",
            ),
            AppError::CardAmbiguous => ApiError::new(
                StatusCode::CONFLICT,
                Code::CardAmbiguous,
                "several of this program's cards have this PAN: give `pan_sequence_number` or `expiry` to tell them apart",
            ),
            AppError::ExternalIdAmbiguous => ApiError::new(
                StatusCode::CONFLICT,
                Code::CardAmbiguous,
                "several of this program's cards have this `external_id`: name the card by its id",
            ),
            AppError::ReversalNotPossible => ApiError::new(
                StatusCode::CONFLICT,
                Code::ReversalNotPossible,
                "this PIN change cannot be reversed: it is more than 24 hours old, was reversed already, or the PIN has changed since",
            ),
            AppError::ExportNotAllowed => ApiError::forbidden(
                Code::ExportNotAllowed,
                "this program may not export PINs: the operator's `allow_pin_export` setting is off",
            ),
            AppError::PinNotAvailable => ApiError::new(
                StatusCode::CONFLICT,
                Code::PinNotAvailable,
                "this card's PIN is not held yet: it was migrated with legacy verification data (a PVV or an IBM 3624 offset), and no verification has matched since",
            ),
            AppError::Token(e) => e.into(),
            AppError::Domain(e) => e.into(),
            AppError::Service(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ServiceError::Store(e).into()
    }
}

impl From<crate::keys::KeyError> for ApiError {
    fn from(e: crate::keys::KeyError) -> Self {
        ServiceError::Keys(e).into()
    }
}
