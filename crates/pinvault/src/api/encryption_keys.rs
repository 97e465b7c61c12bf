//! The published PIN encryption keys (API.md "PIN encryption (inbound)"): a
//! JWKS, and each key as PEM. No authentication: they are public keys.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::ApiError;
use super::shapes::Answer;
use super::views::{PinEncryptionKey, PinEncryptionKeys, Problem};
use crate::app::App;
use crate::store::Store;

/// The PIN encryption keys in service, newest first (JWKS). Encrypt to the
/// first; an older one is listed while it still decrypts (the grace period
/// after a rotation).
#[utoipa::path(get, path = "/v1/pin-encryption-keys", operation_id = "listPinEncryptionKeys", tag = "pin-encryption",
    responses((status = 200, description = "JWKS (RFC 7517)", body = PinEncryptionKeys)))]
pub async fn list<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
    let keys = app
        .transport_keys_in_service()
        .iter()
        .map(|k| PinEncryptionKey {
            kty: "RSA".into(),
            kid: k.kid.clone(),
            use_: "enc".into(),
            alg: "RSA-OAEP-256".into(),
            n: URL_SAFE_NO_PAD.encode(&k.n),
            e: URL_SAFE_NO_PAD.encode(&k.e),
        })
        .collect();
    axum::Json(PinEncryptionKeys { keys }).into_response()
}

/// One PIN encryption key in service as SubjectPublicKeyInfo PEM.
#[utoipa::path(get, path = "/v1/pin-encryption-keys/{kid}.pem", operation_id = "getPinEncryptionKeyPem", tag = "pin-encryption",
    params(("kid" = String, Path, description = "The key's `kid`")),
    responses((status = 200, description = "`-----BEGIN PUBLIC KEY-----…`", content_type = "application/x-pem-file", body = String),
        (status = 404, description = "`not_found`: no key in service has this kid", body = Problem, content_type = "application/problem+json")))]
pub async fn pem<S: Store>(State(app): State<Arc<App<S>>>, Path(file): Path<String>) -> Answer {
    let kid = file
        .strip_suffix(".pem")
        .ok_or_else(|| ApiError::not_found("PIN encryption key"))?;
    let key = app
        .transport_keys_in_service()
        .into_iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| ApiError::not_found("PIN encryption key"))?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        key.pem(),
    )
        .into_response())
}
