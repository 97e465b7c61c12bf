//! Stripe Issuing (`/compat/stripe/v1`): `POST /issuing/cards/{id}` with
//! `pin[encrypted_number]` (a JWE, no control token) and `status`, form
//! encoded as Stripe's clients send it; `GET /issuing/cards/{id}`. Errors
//! `{"error":{"type","code","message"}}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::{NamedCard, StripeCardErrors, answer};
use crate::api::error::{ApiError, Code};
use crate::api::extract::unreadable;
use crate::api::shapes::Answer;
use crate::api::widgets::is_form;
use crate::app::App;
use crate::app::pin::PinText;
use crate::domain::program::Mode;
use crate::jose::MAX_JWE_LEN;
use crate::store::{CardRow, CardStatus, Store};

/// Stripe's error body; `code` is pinvault's stable code.
#[derive(Debug, Serialize, ToSchema)]
pub struct StripeError {
    /// The error.
    error: StripeErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StripeErrorDetail {
    /// `invalid_request_error`, or `api_error` for a 5xx.
    r#type: String,
    /// pinvault's stable error code (`docs/reference.md`, "Error codes").
    code: String,
    /// What went wrong, for a person.
    message: String,
}

/// The card as Stripe shapes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StripeCard {
    /// `card_…`
    id: String,
    /// `issuing.card`
    object: &'static str,
    /// The PAN's last four digits.
    last4: String,
    /// From the card's `expiry`; null where it has none.
    exp_month: Option<u32>,
    /// From the card's `expiry`; null where it has none.
    exp_year: Option<u32>,
    /// `active` or `inactive` (a suspended card shows as `inactive`).
    status: &'static str,
    /// Whether the program is a live one.
    livemode: bool,
}

/// The update's form fields.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the form; the handler reads it as pairs
pub struct StripeUpdate {
    /// A compact JWE (`RSA-OAEP` + `A128CBC-HS256`, or as in v1) to a key of
    /// `GET /v1/pin-encryption-keys`, named by its `kid`: the new PIN.
    #[schema(rename = "pin[encrypted_number]", max_length = 8192)]
    pin_encrypted_number: Option<String>,
    /// `active` reactivates the card (and unblocks a PIN blocking made it
    /// inactive for); `inactive` deactivates it.
    #[schema(pattern = "^(active|inactive)$")]
    status: Option<String>,
}

fn stripe_card(card: &CardRow, livemode: bool) -> StripeCard {
    // `expiry` is `YYYY-MM`.
    let (year, month) = card
        .expiry
        .as_deref()
        .and_then(|e| e.split_once('-'))
        .map_or((None, None), |(y, m)| (y.parse().ok(), m.parse().ok()));
    StripeCard {
        id: card.id.clone(),
        object: "issuing.card",
        last4: card.last4.clone(),
        exp_month: month,
        exp_year: year,
        status: match card.status {
            CardStatus::Active => "active",
            CardStatus::Inactive | CardStatus::Suspended => "inactive",
        },
        livemode,
    }
}

/// What the form asks: the new PIN's JWE, the new status.
type Update = (Option<String>, Option<CardStatus>);

fn read_form(bytes: &[u8]) -> Result<Update, ApiError> {
    let pairs: Vec<(String, Zeroizing<String>)> =
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
            .map_err(|_| ApiError::bad_request("the form cannot be read"))?
            .into_iter()
            .map(|(k, v)| (k, Zeroizing::new(v)))
            .collect();
    // As for JSON: a field twice would be read as its first here and perhaps
    // as its last by what stands in front.
    for (i, (k, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(seen, _)| seen == k) {
            return Err(ApiError::bad_request("a form field is given twice"));
        }
    }
    let (mut jwe, mut status) = (None, None);
    for (k, v) in &pairs {
        match k.as_str() {
            "pin[encrypted_number]" if v.len() <= MAX_JWE_LEN && !v.is_empty() => {
                jwe = Some(v.to_string());
            }
            "pin[encrypted_number]" => {
                return Err(ApiError::invalid(
                    "`pin[encrypted_number]` must be a compact JWE of at most 8192 characters",
                ));
            }
            "status" => {
                status = Some(match v.as_str() {
                    "active" => CardStatus::Active,
                    "inactive" => CardStatus::Inactive,
                    _ => {
                        return Err(ApiError::invalid(
                            "`status` must be \"active\" or \"inactive\"",
                        ));
                    }
                });
            }
            _ => {
                return Err(ApiError::bad_request(
                    "unknown form field: only `pin[encrypted_number]` and `status` are taken",
                ));
            }
        }
    }
    Ok((jwe, status))
}

/// Stripe's Update Card: a new PIN (`pin[encrypted_number]`) and/or a new
/// status. The PIN is set first: a refused PIN changes nothing.
#[utoipa::path(post, path = "/compat/stripe/v1/issuing/cards/{id}", operation_id = "stripeUpdateCard", tag = "stripe",
    params(("id" = String, Path, description = "The card's id or `external_id`")),
    request_body(content = StripeUpdate, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The card", body = StripeCard),
        (status = 400, description = "`invalid_request`: the form cannot be read, or has a field twice or an unknown one", body = StripeError),
        StripeCardErrors,
        (status = 415, description = "`unsupported_media_type`: a body that is not `application/x-www-form-urlencoded`", body = StripeError),
        (status = 422, description = "`decryption_failed`, `invalid_pin`, `weak_pin`, `invalid_request`", body = StripeError)))]
pub async fn update<S: Store>(
    State(app): State<Arc<App<S>>>,
    NamedCard { auth, mut card }: NamedCard,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = body.map_err(unreadable)?;
    if !body.is_empty() && !is_form(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::UnsupportedMediaType,
            "the body must be a form: Content-Type: application/x-www-form-urlencoded",
        ));
    }
    let (jwe, status) = read_form(&body)?;
    if let Some(jwe) = jwe {
        app.set_pin_directly(&auth, &card, PinText::Encrypted(jwe))
            .await?;
        card = app.find_card(&auth, &card.id).await?;
    }
    if let Some(status) = status {
        card = app.set_card_status(&auth, &card.id, status).await?;
    }
    Ok(answer(
        StatusCode::OK,
        &stripe_card(&card, auth.program.mode == Mode::Live),
    ))
}

/// Stripe's Retrieve Card.
#[utoipa::path(get, path = "/compat/stripe/v1/issuing/cards/{id}", operation_id = "stripeGetCard", tag = "stripe",
    params(("id" = String, Path, description = "The card's id or `external_id`")),
    responses((status = 200, description = "The card", body = StripeCard),
        StripeCardErrors))]
pub async fn get(NamedCard { auth, card }: NamedCard) -> Answer {
    Ok(answer(
        StatusCode::OK,
        &stripe_card(&card, auth.program.mode == Mode::Live),
    ))
}
