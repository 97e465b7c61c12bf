//! Cards and PIN status (API.md "Cards", "PIN status").

use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{AuthCard, JsonBody, from_value};
use super::idempotency::{self, Idempotency};
use super::responses::{
    CardNotFound, IdempotencyConflict, InvalidBody, InvalidQuery, NotFound, UnsupportedMediaType,
};
use super::shapes::{Answer, Api, AuthId, Call, Idempotent, Listing, OnId};
use super::views::{CardList, CardView, PinStatusView, Problem};
use crate::app::cards::InitialPin;
use crate::app::cards::{CardInput, ChipInput, check_external_id};
use crate::app::pin::PinText;
use crate::domain::program::Settings;
use crate::domain::sensitive::Sensitive;
use crate::store::{CardRow, CardStatus, Store};

/// A new card.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCard {
    /// 12 to 19 digits, Luhn-valid.
    #[schema(value_type = String, example = "4111111111111111", pattern = "^[0-9]{12,19}$")]
    pan: Sensitive<String>,
    /// `YYYY-MM`
    #[schema(example = "2029-12", pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    expiry: Option<String>,
    #[schema(min_length = 1, max_length = 255)]
    external_id: Option<String>,
    pin: Option<PinInput>,
    /// Chip data: the card's PIN is also the chip's offline PIN.
    chip: Option<ChipBody>,
}

/// A chip card's chip data.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChipBody {
    /// `iks_…`; default: the program's `chip_issuer_key_set_id`.
    issuer_key_set_id: Option<String>,
    /// Two digits (tag 5F34, DE 23); default `"00"`.
    #[schema(pattern = "^[0-9]{2}$")]
    pan_sequence_number: Option<String>,
}

impl From<&ChipBody> for ChipInput {
    fn from(b: &ChipBody) -> Self {
        ChipInput {
            issuer_key_set_id: b.issuer_key_set_id.clone(),
            pan_sequence_number: b.pan_sequence_number.clone(),
        }
    }
}

/// A PIN given at card creation: in clear (`allow_plaintext_pin` only), as a
/// JWE encrypted to the service's published key, or an existing card's PIN as
/// an ISO 9564 PIN block under a zone key of usage `verify` (portfolio
/// migration), or legacy verification data: a Visa PVV (`pvv`, `pvki`) or an
/// IBM 3624 offset (`ibm3624_offset`) under a PIN verification key
/// (`pin_verification_key_id`). Exactly one of these forms.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinInput {
    /// The enciphered PIN block in hex (with `format` and `zone_key_id`).
    #[schema(value_type = Option<String>, max_length = 64)]
    pin_block: Option<Sensitive<String>>,
    /// With `pin_block`: `iso_0`, `iso_1`, `iso_3` or `iso_4`.
    #[schema(pattern = "^iso_[0134]$")]
    format: Option<String>,
    /// With `pin_block`: the zone key it is enciphered under (`zpk_…`).
    zone_key_id: Option<String>,
    /// Legacy data: the card's Visa PVV (4 digits), with `pvki` and
    /// `pin_verification_key_id`.
    #[schema(value_type = Option<String>, pattern = "^[0-9]{4}$")]
    pvv: Option<Sensitive<String>>,
    /// With `pvv`: the PVK index (one digit).
    #[schema(pattern = "^[0-9]$")]
    pvki: Option<String>,
    /// Legacy data: the card's IBM 3624 offset (as many digits as the key's
    /// PIN check length), with `pin_verification_key_id`.
    #[schema(value_type = Option<String>, pattern = "^[0-9]{4,12}$")]
    ibm3624_offset: Option<Sensitive<String>>,
    /// With `pvv` or `ibm3624_offset`: the program's PIN verification key (`pvk_…`).
    pin_verification_key_id: Option<String>,
    /// The PIN in clear: only where the program has `allow_plaintext_pin`.
    #[schema(value_type = Option<String>)]
    pin: Option<Sensitive<String>>,
    /// A compact JWE (`RSA-OAEP-256` or `RSA-OAEP`, `A256GCM` or
    /// `A128CBC-HS256`) to a key of `GET /v1/pin-encryption-keys`, named by its
    /// `kid`. Plaintext: the PIN's digits, or `{"pin","iat"?}` (no `card_id`:
    /// the card has no id yet).
    #[schema(max_length = 8192)]
    encrypted: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCard {
    /// `active`, `inactive` or `suspended`.
    #[schema(pattern = "^(active|inactive|suspended)$")]
    status: Option<String>,
    /// Adds or changes the card's chip data (its offline-PIN state is kept).
    chip: Option<ChipBody>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListCards {
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The id of the last card of the previous page.
    starting_after: Option<String>,
    /// Only cards with this external id.
    #[param(min_length = 1, max_length = 255)]
    external_id: Option<String>,
}

super::shapes::paged!(ListCards);

/// Create a card, with a random PIN or a preset one.
#[utoipa::path(post, path = "/v1/cards", operation_id = "createCard", tag = "cards", request_body = CreateCard,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[\\x21-\\x7E]{1,255}$", description = "Replays the first response for 24 h")),
    responses(
        (status = 201, description = "Created", body = CardView),
        (status = 403, description = "`plaintext_not_allowed`; `forbidden`: `pin.zone_key_id` is of usage `export`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: `pin.zone_key_id` names no zone key granted to this program, or `pin.pin_verification_key_id` no PIN verification key of it", body = Problem, content_type = "application/problem+json"),
        IdempotencyConflict,
        UnsupportedMediaType,
        (status = 422, description = "`invalid_pan`, `invalid_pin`, `weak_pin`, `decryption_failed` (`pin.encrypted` or `pin.pin_block` cannot be used), `invalid_request`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create<S: Store>(
    Api(app, auth, Idempotent(headers, raw)): Call<S, Idempotent>,
) -> Answer {
    let idem = Idempotency::from_headers(&headers, &auth.program.id, "POST /v1/cards", &raw)?;
    if let Some(replay) = idempotency::replay(&app, idem.as_ref()).await? {
        return Ok(replay);
    }
    let input = card_input(raw)?;
    let caller: &crate::app::Caller = &auth;
    let card = app.new_card(caller, input).await?;
    let view = CardView::new(&card.row, &auth.program.settings);
    idempotency::create(&app, idem, &view, |idem_row| {
        app.save_card(caller, card, idem_row)
    })
    .await
}

/// A `POST /v1/cards` body read (the same for `pinvault cards import`'s
/// lines); refusals never quote a value.
pub(crate) fn card_input(raw: Value) -> Result<CardInput, ApiError> {
    let body: CreateCard = from_value(raw)?;
    let pin = match body.pin {
        None => None,
        Some(p) => Some(initial_pin(p)?),
    };
    Ok(CardInput {
        pan: body.pan,
        expiry: body.expiry,
        external_id: body.external_id,
        pin,
        chip: body.chip.as_ref().map(ChipInput::from),
    })
}

/// The one PIN a `pin` object gives.
fn initial_pin(p: PinInput) -> Result<InitialPin, ApiError> {
    use crate::domain::legacy::Method;
    let legacy = p.pvv.is_some()
        || p.ibm3624_offset.is_some()
        || p.pvki.is_some()
        || p.pin_verification_key_id.is_some();
    if legacy {
        let others = p.pin.is_some()
            || p.encrypted.is_some()
            || p.pin_block.is_some()
            || p.format.is_some()
            || p.zone_key_id.is_some();
        let refused = || {
            ApiError::invalid(
                "legacy `pin` data is `pvv` with `pvki`, or `ibm3624_offset`, and `pin_verification_key_id`, and nothing else",
            )
        };
        return match (p.pvv, p.pvki, p.ibm3624_offset, p.pin_verification_key_id) {
            (Some(pvv), Some(pvki), None, Some(pvk_id)) if !others => Ok(InitialPin::Legacy {
                method: Method::VisaPvv,
                value: pvv.into_inner(),
                pvki: Some(pvki),
                pvk_id,
            }),
            (None, None, Some(offset), Some(pvk_id)) if !others => Ok(InitialPin::Legacy {
                method: Method::Ibm3624,
                value: offset.into_inner(),
                pvki: None,
                pvk_id,
            }),
            _ => Err(refused()),
        };
    }
    match p {
        PinInput {
            pin: Some(text),
            encrypted: None,
            pin_block: None,
            format: None,
            zone_key_id: None,
            ..
        } => Ok(InitialPin::Text(PinText::Clear(text.into_inner()))),
        PinInput {
            pin: None,
            encrypted: Some(jwe),
            pin_block: None,
            format: None,
            zone_key_id: None,
            ..
        } => Ok(InitialPin::Text(PinText::Encrypted(jwe))),
        PinInput {
            pin: None,
            encrypted: None,
            pin_block: Some(block),
            format: Some(format),
            zone_key_id: Some(zone_key_id),
            ..
        } => {
            let (format, _) = super::verify::block_request(&format, &zone_key_id, None)?;
            let decoded = super::verify::BlockBytes::decode(block.expose());
            Ok(InitialPin::Block {
                format,
                block: zeroize::Zeroizing::new(decoded.bytes().to_vec()),
                zone_key_id,
            })
        }
        PinInput {
            pin_block: Some(_), ..
        } => Err(ApiError::invalid(
            "`pin.pin_block` needs `format` and `zone_key_id`, and nothing else",
        )),
        _ => Err(ApiError::invalid(
            "`pin` must have exactly one of `pin`, `encrypted` and `pin_block` (with `format` and `zone_key_id`)",
        )),
    }
}

/// A card of the calling program.
#[utoipa::path(get, path = "/v1/cards/{id}", operation_id = "getCard", tag = "cards", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = CardView), NotFound))]
pub async fn get(found: AuthCard) -> Answer {
    card_answer(found, CardView::new)
}

/// 200 with `view` of the card the path names (under its program's
/// settings), or 404 `not_found`.
fn card_answer<V: Serialize>(
    mut found: AuthCard,
    view: impl FnOnce(&CardRow, &Settings) -> V,
) -> Answer {
    let card = found.card()?;
    Ok(axum::Json(view(&card, &found.auth.program.settings)).into_response())
}

/// The program's cards, newest first.
#[utoipa::path(get, path = "/v1/cards", operation_id = "listCards", tag = "cards", params(ListCards),
    responses((status = 200, description = "OK", body = CardList), InvalidQuery))]
pub async fn list<S: Store>(l: Listing<S, ListCards>) -> Answer {
    let external_id = l.query.external_id.as_deref();
    if let Some(x) = external_id {
        check_external_id(x).map_err(|e| ApiError::bad_request(ApiError::from(e).detail))?;
    }
    let program = &l.auth.program;
    let page = l
        .app
        .store
        .list_cards(&program.id, external_id, l.limit, l.after())
        .await?;
    super::page::answer(page, "card of this program", |cards, has_more| {
        let data = cards
            .iter()
            .map(|c| CardView::new(c, &program.settings))
            .collect();
        Ok(CardList { data, has_more })
    })
}

/// Change a card's status; reactivating a card PIN blocking made inactive also unblocks its PIN.
#[utoipa::path(patch, path = "/v1/cards/{id}", operation_id = "updateCard", tag = "cards", params(("id" = String, Path)), request_body = UpdateCard,
    responses((status = 200, description = "OK", body = CardView), CardNotFound,
        InvalidBody))]
pub async fn update<S: Store>(
    Api(app, AuthId(auth, id), JsonBody(body)): OnId<S, JsonBody<UpdateCard>>,
) -> Answer {
    let status = match &body.status {
        None => None,
        Some(s) => Some(CardStatus::parse(s).ok_or_else(|| {
            ApiError::invalid("`status` must be \"active\", \"inactive\" or \"suspended\"")
        })?),
    };
    let mut card = match (&body.chip, status) {
        (None, None) => return Err(ApiError::invalid("give `status`, `chip` or both")),
        (Some(chip), _) => Some(app.set_chip(&auth, &id, &ChipInput::from(chip)).await?),
        (None, Some(_)) => None,
    };
    if let Some(status) = status {
        card = Some(app.set_card_status(&auth, &id, status).await?);
    }
    let card = card.ok_or_else(ApiError::internal)?;
    Ok(axum::Json(CardView::new(&card, &auth.program.settings)).into_response())
}

/// The state of a card's PIN.
#[utoipa::path(get, path = "/v1/cards/{id}/pin/status", operation_id = "getPinStatus", tag = "pin", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = PinStatusView), CardNotFound))]
pub async fn pin_status(found: AuthCard) -> Answer {
    card_answer(found, PinStatusView::new)
}
