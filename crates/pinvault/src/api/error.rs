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

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: Authorization: Bearer <api key>",
        )
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    /// One answer for every way an encrypted PIN can fail (malformed, tampered,
    /// unknown key, another card, stale, unsupported algorithm): no oracle.
    pub fn decryption_failed() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "decryption_failed",
            "the encrypted PIN cannot be used: it must be a compact JWE (alg RSA-OAEP-256 or RSA-OAEP, enc A256GCM or A128CBC-HS256) to a key published at /v1/pin-encryption-keys named by its kid, unaltered, and where its plaintext has card_id or iat, for this card and at most 5 minutes old",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    fn title(&self) -> &'static str {
        match self.code {
            "invalid_request" => "Invalid request",
            "unauthorized" => "Unauthorized",
            "forbidden" => "Forbidden",
            "not_found" => "Not found",
            "unsupported_media_type" => "Unsupported media type",
            "rate_limited" => "Too many requests",
            "idempotency_conflict" => "Idempotency key reused",
            "invalid_pan" => "Invalid PAN",
            "invalid_pin" => "Invalid PIN",
            "weak_pin" => "Weak PIN",
            "decryption_failed" => "Decryption failed",
            "token_invalid" => "Invalid control token",
            "token_expired" => "Control token expired",
            "token_used" => "Control token already used",
            "token_superseded" => "Control token superseded",
            "token_exhausted" => "Control token attempts used up",
            "reveal_disabled" => "PIN reveal disabled",
            "plaintext_not_allowed" => "Plaintext PIN not allowed",
            "pin_blocked" => "PIN blocked",
            "nothing_staged" => "Nothing staged",
            _ => "Internal error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, detail = %self.detail, "request failed");
        } else {
            tracing::debug!(code = self.code, detail = %self.detail, "request refused");
        }
        let body = json!({
            "type": format!("urn:pinvault:problem:{}", self.code),
            "title": self.title(),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
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
        ApiError::forbidden(e.code(), e.detail())
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(d) => ApiError::invalid(d),
            DomainError::Forbidden(d) => ApiError::forbidden("forbidden", d),
            DomainError::InvalidPin => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_pin",
                "the PIN must be digits only, with a length in the program's range",
            ),
            DomainError::WeakPin => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "weak_pin",
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
                "invalid_pan",
                "`pan` must be 12 to 19 digits with a valid Luhn check digit",
            ),
            AppError::PlaintextNotAllowed(detail) => {
                ApiError::forbidden("plaintext_not_allowed", detail)
            }
            AppError::RevealDisabled => ApiError::forbidden(
                "reveal_disabled",
                "PIN reveal is turned off for this program",
            ),
            AppError::DecryptionFailed => ApiError::decryption_failed(),
            AppError::NothingStaged => ApiError::new(
                StatusCode::CONFLICT,
                "nothing_staged",
                "this card has no staged PIN to commit (none was staged, it expired with its token, or it was committed already)",
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
