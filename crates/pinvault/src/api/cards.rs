//! Cards and PIN status (API.md "Cards", "PIN status").

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use pinblock::{Pan, Pin};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use super::error::ApiError;
use super::extract::{Auth, JsonBody, PathId, QueryParams};
use super::idempotency::{self, Idempotency};
use super::views::{CardList, CardView, PinStatusView, Problem};
use crate::domain::ids::{is_id, new_id};
use crate::domain::policy;
use crate::domain::program::{Mode, Settings};
use crate::domain::time::now;
use crate::events::{EventType, event};
use crate::service::App;
use crate::store::{CardRow, CardStatus, Effects, SetBy, Store};

pub const CARD_PREFIX: &str = "card_";

/// A new card.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCard {
    /// 12 to 19 digits, Luhn-valid.
    #[schema(value_type = String, example = "4111111111111111", pattern = "^[0-9]{12,19}$")]
    pan: Zeroizing<String>,
    /// `YYYY-MM`
    #[schema(example = "2029-12", pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    expiry: Option<String>,
    #[schema(min_length = 1, max_length = 255)]
    external_id: Option<String>,
    pin: Option<PinInput>,
}

/// A PIN given at card creation: in clear (`allow_plaintext_pin` only) or as a
/// JWE encrypted to the service's published key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinInput {
    /// The PIN in clear: only where the program has `allow_plaintext_pin`.
    #[schema(value_type = Option<String>)]
    pin: Option<Zeroizing<String>>,
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
    status: String,
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

fn invalid_pan() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_pan",
        "`pan` must be 12 to 19 digits with a valid Luhn check digit",
    )
}

/// A card number: 12 to 19 digits, Luhn-valid.
pub fn parse_pan(text: &str) -> Result<Pan, ApiError> {
    if !(12..=19).contains(&text.len()) {
        return Err(invalid_pan());
    }
    let pan = Pan::new(text).map_err(|_| invalid_pan())?;
    if !pan.luhn_valid() {
        return Err(invalid_pan());
    }
    Ok(pan)
}

fn parse_expiry(text: &str) -> Result<String, ApiError> {
    let bad = || ApiError::invalid("`expiry` must be a year and month: \"2029-12\"");
    let (y, m) = text.split_once('-').ok_or_else(bad)?;
    let ok = y.len() == 4
        && m.len() == 2
        && y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())
        && m.parse::<u8>().is_ok_and(|m| (1..=12).contains(&m));
    if ok { Ok(text.to_owned()) } else { Err(bad()) }
}

pub fn check_external_id(text: &str) -> Result<(), ApiError> {
    if text.is_empty() || text.chars().count() > 255 || text.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "`external_id` must be 1 to 255 characters, without control characters",
        ));
    }
    Ok(())
}

/// A random PIN for a new card: never weak, whatever the program's policy;
/// `0000` in test mode, as integrators expect from a sandbox.
fn random_pin(settings: &Settings, mode: Mode, pan: &Pan) -> Result<Pin, ApiError> {
    if mode == Mode::Test {
        return Pin::new("0000").map_err(|_| ApiError::internal());
    }
    let len = usize::from(settings.pin_length_min);
    loop {
        let pin = Pin::random(len, &mut rand::rng()).map_err(|_| ApiError::internal())?;
        if !policy::is_weak(&pin, pan) {
            return Ok(pin);
        }
    }
}

/// Create a card, with a random PIN or a preset one.
#[utoipa::path(post, path = "/v1/cards", operation_id = "createCard", tag = "cards", request_body = CreateCard,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[\\x21-\\x7E]{1,255}$", description = "Replays the first response for 24 h")),
    responses(
        (status = 201, description = "Created", body = CardView),
        (status = 403, description = "`plaintext_not_allowed`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_conflict`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_pan`, `invalid_pin`, `weak_pin`, `decryption_failed` (`pin.encrypted` cannot be used), `invalid_request`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn create<S: Store>(
    State(app): State<Arc<App<S>>>,
    auth: Auth,
    headers: HeaderMap,
    JsonBody(raw): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let idem = Idempotency::from_headers(&headers, &auth.program.id, "POST /v1/cards", &raw)?;
    if let Some(idem) = &idem {
        if let Some(replay) = idempotency::replay(&app, idem).await? {
            return Ok(replay);
        }
    }
    let body: CreateCard =
        serde_json::from_value(raw).map_err(|e| ApiError::invalid(super::safe_message(&e)))?;
    let settings = &auth.program.settings;
    let pan = parse_pan(&body.pan)?;
    let expiry = body.expiry.as_deref().map(parse_expiry).transpose()?;
    if let Some(x) = &body.external_id {
        check_external_id(x)?;
    }
    let (pin, set_by) = match body.pin {
        None => (
            random_pin(settings, auth.program.mode, &pan)?,
            SetBy::Random,
        ),
        Some(PinInput {
            pin: Some(text),
            encrypted: None,
        }) => {
            if !settings.allow_plaintext_pin {
                return Err(ApiError::forbidden(
                    "plaintext_not_allowed",
                    "this program does not accept PINs in clear: send `pin.encrypted`",
                ));
            }
            (
                policy::check_text(&text, settings, &pan)
                    .map_err(crate::domain::DomainError::from)?,
                SetBy::Issuer,
            )
        }
        Some(PinInput {
            pin: None,
            encrypted: Some(jwe),
        }) => {
            // The card has no id yet: a plaintext naming a `card_id` cannot match.
            let text = app.decrypt_pin(&jwe, None).await?.map_err(|e| {
                tracing::debug!(reason = e.0, "encrypted PIN refused");
                ApiError::decryption_failed()
            })?;
            (
                policy::check_text(&text, settings, &pan)
                    .map_err(crate::domain::DomainError::from)?,
                SetBy::Issuer,
            )
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "`pin` must have exactly one of `pin` and `encrypted`",
            ));
        }
    };

    let card_id = new_id(CARD_PREFIX);
    let t = now();
    let (pan_key_version, pan_sealed) = app.keys.seal_pan(&card_id, &pan)?;
    let (lookup_key_version, pan_hash) = app.keys.pan_hash(&pan)?;
    let (pin_key_version, pin_block) = app.keys.encipher_pin(&pin, &pan)?;
    drop(pin);
    let card = CardRow {
        id: card_id,
        program_id: auth.program.id.clone(),
        pan_hash,
        lookup_key_version,
        pan_sealed,
        pan_key_version,
        last4: pan.last4(),
        expiry,
        external_id: body.external_id,
        status: CardStatus::Active,
        inactive_by_block: false,
        pin_block,
        pin_key_version,
        pin_set_by: set_by,
        pin_updated_at: t,
        fail_count: 0,
        last_failed_at: None,
        pin_blocked: false,
        created_at: t,
        updated_at: t,
        staged_expires_at: None,
        staged_token_id: None,
        staged_pin_block: None,
        staged_pin_key_version: None,
    };
    let response =
        serde_json::to_value(CardView::new(&card, settings)).map_err(|_| ApiError::internal())?;
    let effects = Effects {
        events: vec![event(
            &card.program_id,
            &card.id,
            EventType::CardCreated,
            json!({
                "last4": card.last4,
                "expiry": card.expiry,
                "external_id": card.external_id,
                "status": card.status.as_str(),
                "pin_set_by": set_by.as_str(),
            }),
        )],
        audit: Some(auth.actor().record(
            "card.created",
            Some(&card.program_id),
            Some(&card.id),
            json!({ "last4": card.last4, "pin_set_by": set_by.as_str() }),
        )),
    };
    tracing::info!(card_id = %card.id, actor = %auth.api_key_id, set_by = set_by.as_str(), "card created");
    idempotency::create(&app, idem, StatusCode::CREATED, response, |idem_row| {
        app.store.create_card(card, idem_row, effects)
    })
    .await
}

/// A card of the calling program.
#[utoipa::path(get, path = "/v1/cards/{id}", operation_id = "getCard", tag = "cards", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = CardView), (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn get<S: Store>(
    State(app): State<Arc<App<S>>>,
    auth: Auth,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let card = find(&app, &auth, &id).await?;
    Ok(axum::Json(CardView::new(&card, &auth.program.settings)).into_response())
}

/// The program's cards, newest first.
#[utoipa::path(get, path = "/v1/cards", operation_id = "listCards", tag = "cards", params(ListCards),
    responses((status = 200, description = "OK", body = CardList), (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn list<S: Store>(
    State(app): State<Arc<App<S>>>,
    auth: Auth,
    QueryParams(q): QueryParams<ListCards>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be from 1 to 100"));
    }
    if let Some(x) = &q.external_id {
        check_external_id(x).map_err(|e| ApiError::bad_request(e.detail))?;
    }
    let page = app
        .store
        .list_cards(
            &auth.program.id,
            q.external_id.as_deref(),
            limit,
            q.starting_after.as_deref(),
        )
        .await?;
    let Some((cards, has_more)) = page else {
        return Err(ApiError::bad_request(
            "`starting_after` names no card of this program",
        ));
    };
    let data = cards
        .iter()
        .map(|c| CardView::new(c, &auth.program.settings))
        .collect();
    Ok(axum::Json(CardList { data, has_more }).into_response())
}

/// Change a card's status; reactivating a card PIN blocking made inactive also unblocks its PIN.
#[utoipa::path(patch, path = "/v1/cards/{id}", operation_id = "updateCard", tag = "cards", params(("id" = String, Path)), request_body = UpdateCard,
    responses((status = 200, description = "OK", body = CardView), (status = 404, description = "`not_found`: no such card for this program", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_request`", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn update<S: Store>(
    State(app): State<Arc<App<S>>>,
    auth: Auth,
    PathId(id): PathId,
    JsonBody(body): JsonBody<UpdateCard>,
) -> Result<Response, ApiError> {
    let status = CardStatus::parse(&body.status).ok_or_else(|| {
        ApiError::invalid("`status` must be \"active\", \"inactive\" or \"suspended\"")
    })?;
    find(&app, &auth, &id).await?;
    let actor = auth.actor();
    let card = app
        .store
        .set_card_status(
            &auth.program.id,
            &id,
            status,
            now(),
            move |before, after| {
                let unblocked = before.pin_blocked && !after.pin_blocked;
                let mut events = Vec::new();
                if unblocked {
                    events.push(event(
                        &after.program_id,
                        &after.id,
                        EventType::PinUnblocked,
                        json!({ "reason": "card_reactivated" }),
                    ));
                }
                Effects {
                    events,
                    audit: Some(actor.record(
                        "card.status_changed",
                        Some(&after.program_id),
                        Some(&after.id),
                        json!({
                            "from": before.status.as_str(),
                            "to": after.status.as_str(),
                            "pin_unblocked": unblocked,
                        }),
                    )),
                }
            },
        )
        .await?
        .ok_or_else(|| ApiError::not_found("card"))?;
    tracing::info!(card_id = %card.id, actor = %auth.api_key_id, status = status.as_str(), "card status changed");
    Ok(axum::Json(CardView::new(&card, &auth.program.settings)).into_response())
}

/// The state of a card's PIN.
#[utoipa::path(get, path = "/v1/cards/{id}/pin/status", operation_id = "getPinStatus", tag = "pin", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = PinStatusView), (status = 404, description = "`not_found`: no such card for this program", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn pin_status<S: Store>(
    State(app): State<Arc<App<S>>>,
    auth: Auth,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let card = find(&app, &auth, &id).await?;
    Ok(axum::Json(PinStatusView::new(&card, &auth.program.settings)).into_response())
}

/// The program's card with this id; any other card (another program's, or none)
/// is the same 404.
pub async fn find<S: Store>(app: &App<S>, auth: &Auth, id: &str) -> Result<CardRow, ApiError> {
    if !is_id(id, CARD_PREFIX) {
        return Err(ApiError::not_found("card"));
    }
    app.store
        .get_card(&auth.program.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("card"))
}
