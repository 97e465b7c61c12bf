//! `Idempotency-Key` on creates: the same key with the same body within 24 h
//! answers the first response again; with another body, 409
//! `idempotency_conflict`. The first response is stored sealed (AES-256-GCM
//! under the `idempotency` data key): a control token's response holds the token, and
//! no secret is stored in clear. The request is recognised by a keyed hash
//! (HMAC-SHA256 under the `lookup` key, its version stored with it), never a
//! plain hash: the body holds a PAN or a PIN, and a plain SHA-256 of a body
//! with a known BIN can be brute-forced.

use std::future::Future;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::error::{ApiError, Code};
use crate::app::App;
use zeroize::Zeroizing;

use crate::domain::ids::secret_hash;
use crate::domain::time::now;
use crate::keys::KeyKind;
use crate::store::{Created, IdemRow, Store, StoreResult};

#[derive(Clone)]
pub struct Idempotency {
    program_id: String,
    /// SHA-256 of the key, in hex.
    key: String,
    /// Route and canonical body: it may hold a PAN or a PIN (zeroed, never printed).
    canonical: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("program_id", &self.program_id)
            .finish_non_exhaustive()
    }
}

/// What a stored fingerprint starts with: this format, then the `lookup` key
/// version (4 bytes, big-endian), then the HMAC.
const FINGERPRINT_V1: &[u8] = b"h1";
const PURPOSE: &str = "idempotency request";

impl Idempotency {
    /// Reads the header; the request is identified by route and canonical JSON
    /// body (keys sorted), so whitespace and key order do not matter.
    pub fn from_headers(
        headers: &HeaderMap,
        program_id: &str,
        route: &str,
        body: &Value,
    ) -> Result<Option<Self>, ApiError> {
        let Some(value) = headers.get("idempotency-key") else {
            return Ok(None);
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::bad_request("`Idempotency-Key` must be 1 to 255 visible ASCII characters")
            })?;
        let mut canonical = Zeroizing::new(route.as_bytes().to_vec());
        canonical.push(b'\n');
        let body = Zeroizing::new(serde_json::to_vec(body).map_err(|_| ApiError::internal())?);
        canonical.extend_from_slice(&body);
        // Only a hash of the key is stored: clients put all sorts of things in it.
        let key_hash: String = secret_hash(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Some(Idempotency {
            program_id: program_id.to_owned(),
            key: key_hash,
            canonical,
        }))
    }

    /// The fingerprint to store: the keyed hash under the current `lookup` key.
    fn fingerprint<S: Store>(&self, app: &App<S>) -> Result<Vec<u8>, ApiError> {
        let (version, mac) = app.keys.keyed_hash(PURPOSE, &self.canonical)?;
        let mut out = FINGERPRINT_V1.to_vec();
        out.extend(version.to_be_bytes());
        out.extend(mac);
        Ok(out)
    }

    /// Whether `stored` is this request's fingerprint (under the key version it names).
    async fn matches<S: Store>(&self, app: &App<S>, stored: &[u8]) -> Result<bool, ApiError> {
        let Some(rest) = stored.strip_prefix(FINGERPRINT_V1) else {
            return Ok(false);
        };
        let Some((version, mac)) = rest.split_first_chunk::<4>() else {
            return Ok(false);
        };
        let version = u32::from_be_bytes(*version);
        app.ensure_key(KeyKind::Lookup, version).await?;
        let expected = app
            .keys
            .keyed_hash_with(version, PURPOSE, &self.canonical)?;
        Ok(bool::from(subtle::ConstantTimeEq::ct_eq(
            &expected[..],
            mac,
        )))
    }

    fn aad(&self) -> Vec<u8> {
        crate::keys::aad::idempotency_response(&self.program_id, &self.key)
    }
}

/// The stored first response for this key, if the request has one and there
/// is one (409 if it was for another request).
pub async fn replay<S: Store>(
    app: &App<S>,
    idem: Option<&Idempotency>,
) -> Result<Option<Response>, ApiError> {
    let Some(idem) = idem else {
        return Ok(None);
    };
    let Some(row) = app
        .store
        .get_idempotency(&idem.program_id, &idem.key)
        .await?
    else {
        return Ok(None);
    };
    if !idem.matches(app, &row.request_hash).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Code::IdempotencyConflict,
            "this Idempotency-Key was used with a different request in the last 24 hours",
        ));
    }
    app.ensure_key(row.key_kind, row.key_version).await?;
    let body = app.keys.open(
        row.key_kind,
        row.key_version,
        &row.response_sealed,
        &idem.aad(),
    )?;
    let status = StatusCode::from_u16(row.status).map_err(|_| ApiError::internal())?;
    let mut res = (status, body.to_vec()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(Some(res))
}

/// Writes a created object with its idempotency record in one transaction, and
/// answers 201 with `view`; if a concurrent request with the same key won,
/// answers what it stored instead.
pub async fn create<S, F, Fut>(
    app: &App<S>,
    idem: Option<Idempotency>,
    view: &impl Serialize,
    write: F,
) -> Result<Response, ApiError>
where
    S: Store,
    F: FnOnce(Option<IdemRow>) -> Fut,
    Fut: Future<Output = StoreResult<Created>>,
{
    let status = StatusCode::CREATED;
    let response = serde_json::to_value(view).map_err(|_| ApiError::internal())?;
    let row = match &idem {
        None => None,
        Some(i) => {
            let body = zeroize::Zeroizing::new(
                serde_json::to_vec(&response).map_err(|_| ApiError::internal())?,
            );
            let key_kind = KeyKind::Idempotency;
            let (key_version, response_sealed) = app.keys.seal(key_kind, &body, &i.aad())?;
            Some(IdemRow {
                program_id: i.program_id.clone(),
                key: i.key.clone(),
                request_hash: i.fingerprint(app)?,
                status: status.as_u16(),
                response_sealed,
                key_kind,
                key_version,
                created_at: now(),
            })
        }
    };
    match write(row).await? {
        Created::Created => Ok((status, axum::Json(response)).into_response()),
        Created::IdempotencyKeyTaken => {
            let Some(idem) = idem else {
                return Err(ApiError::internal());
            };
            replay(app, Some(&idem)).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    Code::IdempotencyConflict,
                    "a request with this Idempotency-Key is in progress",
                )
            })
        }
    }
}
