//! Control tokens, PIN set, reveal and unblock (API.md "Control tokens", "Set or
//! change the PIN", "Reveal the PIN", "Unblock").

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::cards::find;
use super::error::ApiError;
use super::extract::{Auth, AuthCard, JsonBody, NoBodyOrJson, OptionalJsonBody, PathId};
use super::idempotency::{self, Idempotency};
use super::limits::Operation;
use super::views::{EncryptedPin, Problem, RevealResponse, RevealedPin, TokenView};
use crate::domain::DomainError;
use crate::domain::ids::{Secret, new_id};
use crate::domain::policy::{self, PinRejection};
use crate::domain::program::PinSetMode;
use crate::domain::time::{now, rfc3339};
use crate::domain::token::{
    self, CARDHOLDER_VERIFICATION_METHODS, TOKEN_PREFIX, TokenError, TokenType,
};
use crate::events::{EventType, event};
use crate::jose::DeviceKey;
use crate::keys::KeyKind;
use crate::service::{App, after};
use crate::store::{CardRow, Effects, PinChange, PinWrite, SetBy, Store, TokenRow};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// `set_pin` or `reveal_pin`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(set_pin|reveal_pin)$")]
    kind: String,
    /// Required for `reveal_pin`: `BIOMETRIC_FACE`, `BIOMETRIC_FINGERPRINT`,
    /// `LOGIN`, `EXP_CVV`, `OTP_CVV`, `OTP` or `OTHER`.
    #[schema(pattern = "^(BIOMETRIC_FACE|BIOMETRIC_FINGERPRINT|LOGIN|EXP_CVV|OTP_CVV|OTP|OTHER)$")]
    cardholder_verification_method: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPin {
    /// A `set_pin` token for this card.
    #[schema(value_type = String)]
    pub(super) control_token: Zeroizing<String>,
    /// The PIN in clear: only where the program has `allow_plaintext_pin`.
    #[schema(value_type = Option<String>)]
    pub(super) pin: Option<Zeroizing<String>>,
    /// A compact JWE (`RSA-OAEP-256` or `RSA-OAEP`, `A256GCM` or
    /// `A128CBC-HS256`) to a key of `GET /v1/pin-encryption-keys`, named by its
    /// `kid`. Plaintext: the PIN's digits, or `{"pin","card_id"?,"iat"?}`.
    #[schema(max_length = 8192)]
    pub(super) encrypted_pin: Option<String>,
}

/// The body of a commit, if one is sent: an empty JSON object.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitPin {}

/// The answer to a set in staged mode.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct StagedView {
    /// `staged`
    pub status: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealPin {
    /// A `reveal_pin` token for this card.
    #[schema(value_type = String)]
    pub(super) control_token: Zeroizing<String>,
    /// The device's public EC P-256 key (JWK: `kty` `EC`, `crv` `P-256`, `x`,
    /// `y`, optional `kid`, no `d`) to encrypt the PIN to.
    #[schema(value_type = Option<super::views::DeviceJwk>)]
    pub(super) device_key: Option<Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Unblock {
    #[schema(max_length = 500)]
    description: Option<String>,
    #[schema(max_length = 500)]
    updated_by: Option<String>,
}

fn reveal_disabled() -> ApiError {
    ApiError::forbidden(
        "reveal_disabled",
        "PIN reveal is turned off for this program",
    )
}

/// Issue a single-use control token for one PIN operation on one card; older
/// unused tokens of the same type for the card stop working.
#[utoipa::path(post, path = "/v1/cards/{id}/control-tokens", operation_id = "createControlToken", tag = "pin", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[\\x21-\\x7E]{1,255}$", description = "Replays the first response for 24 h")),
    request_body = CreateToken,
    responses((status = 201, description = "Created", body = TokenView),
        (status = 409, description = "`idempotency_conflict`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`reveal_disabled`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such card for this program", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_request`", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn create_token<S: Store>(
    State(app): State<Arc<App<S>>>,
    mut found: AuthCard,
    headers: HeaderMap,
    JsonBody(raw): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let (auth, card_id) = (&found.auth, &found.card_id);
    super::limits::check(&app, Operation::CreateToken, auth, card_id)?;
    let route = format!("POST /v1/cards/{card_id}/control-tokens");
    let idem = Idempotency::from_headers(&headers, &auth.program.id, &route, &raw)?;
    let card = found.card()?;
    let auth = found.auth;
    if let Some(idem) = &idem {
        if let Some(replay) = idempotency::replay(&app, idem).await? {
            return Ok(replay);
        }
    }
    let body: CreateToken =
        serde_json::from_value(raw).map_err(|e| ApiError::invalid(super::safe_message(&e)))?;
    let kind = TokenType::parse(&body.kind)
        .ok_or_else(|| ApiError::invalid("`type` must be \"set_pin\" or \"reveal_pin\""))?;
    let cvm = body.cardholder_verification_method;
    if let Some(m) = &cvm {
        if !CARDHOLDER_VERIFICATION_METHODS.contains(&m.as_str()) {
            return Err(ApiError::invalid(format!(
                "`cardholder_verification_method` must be one of {}",
                CARDHOLDER_VERIFICATION_METHODS.join(", ")
            )));
        }
    }
    let settings = &auth.program.settings;
    let ttl = match kind {
        TokenType::SetPin => settings.set_token_ttl_s,
        TokenType::RevealPin => {
            if cvm.is_none() {
                return Err(ApiError::invalid(
                    "`cardholder_verification_method` is required for a reveal_pin token",
                ));
            }
            if !settings.reveal_enabled {
                return Err(reveal_disabled());
            }
            settings.reveal_token_ttl_s
        }
    };
    let secret = Secret::generate(TOKEN_PREFIX);
    let t = now();
    let row = TokenRow {
        id: new_id("pctid_"),
        token_hash: secret.hash(),
        card_id: card.id.clone(),
        kind,
        cvm: cvm.clone(),
        created_at: t,
        expires_at: after(ttl),
        attempts_remaining: u32::from(settings.set_token_attempts),
        used_at: None,
        superseded_at: None,
    };
    let widget = match kind {
        TokenType::SetPin => "pin-set",
        TokenType::RevealPin => "pin-reveal",
    };
    let view = TokenView {
        token: Zeroizing::new(secret.expose().to_owned()),
        kind: kind.as_str().to_owned(),
        card_id: card.id.clone(),
        expires_at: rfc3339(row.expires_at),
        attempts_remaining: row.attempts_remaining,
        widget_url: Zeroizing::new(format!(
            "{}/widgets/{widget}?token={}",
            app.settings.public_url,
            secret.expose()
        )),
    };
    let response = serde_json::to_value(&view).map_err(|_| ApiError::internal())?;
    let effects = Effects {
        events: vec![event(
            &card.program_id,
            &card.id,
            EventType::PinTokenCreated,
            json!({
                "token_type": kind.as_str(),
                "cardholder_verification_method": cvm,
                "expires_at": view.expires_at,
            }),
        )],
        audit: Some(auth.actor().record(
            "pin.token_created",
            Some(&card.program_id),
            Some(&card.id),
            json!({
                "token_id": row.id,
                "token_type": kind.as_str(),
                "cardholder_verification_method": cvm,
                "expires_at": view.expires_at,
            }),
        )),
    };
    tracing::info!(card_id = %card.id, actor = %auth.api_key_id, r#type = kind.as_str(), cvm = cvm.as_deref().unwrap_or("-"), "control token created");
    idempotency::create(&app, idem, StatusCode::CREATED, response, |idem_row| {
        app.store.create_token(row, idem_row, effects)
    })
    .await
}

/// The token presented for `card` and `kind`, if it may be redeemed now.
async fn usable_token<S: Store>(
    app: &App<S>,
    card: &CardRow,
    presented: &str,
    kind: TokenType,
) -> Result<TokenRow, ApiError> {
    if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 200 {
        return Err(TokenError::Invalid.into());
    }
    let row = app
        .store
        .find_token(Secret::from_presented(presented).hash())
        .await?
        .filter(|t| t.card_id == card.id && t.kind == kind)
        .ok_or(TokenError::Invalid)?;
    token::state(
        row.used_at,
        row.superseded_at,
        row.expires_at,
        row.attempts_remaining,
        now(),
    )?;
    Ok(row)
}

pub(super) async fn card_pan<S: Store>(
    app: &App<S>,
    card: &CardRow,
) -> Result<pinblock::Pan, ApiError> {
    app.ensure_key(KeyKind::Pan, card.pan_key_version).await?;
    Ok(app
        .keys
        .open_pan(&card.id, card.pan_key_version, &card.pan_sealed)?)
}

/// Set or change the PIN with a `set_pin` token. A refused PIN uses one of the
/// token's attempts. In a program with `pin_set_mode` `staged` the PIN is
/// staged instead (202), and becomes the card's PIN at
/// `POST /v1/cards/{id}/pin/commit`.
#[utoipa::path(put, path = "/v1/cards/{id}/pin", operation_id = "setPin", tag = "pin", params(("id" = String, Path)), request_body = SetPin,
    responses((status = 204, description = "The PIN is set; the fail count is reset and the PIN unblocked (and anything staged is discarded)"),
        (status = 202, description = "Staged mode: the PIN is staged (replacing any staged before) until the token's `expires_at`; commit it with `POST /v1/cards/{id}/pin/commit`", body = StagedView),
        (status = 403, description = "`token_invalid`, `token_expired`, `token_used`, `token_superseded`, `token_exhausted`, `plaintext_not_allowed`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such card for this program", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_pin`, `weak_pin`, `decryption_failed`, `invalid_request`", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn set_pin<S: Store>(
    State(app): State<Arc<App<S>>>,
    mut found: AuthCard,
    JsonBody(body): JsonBody<SetPin>,
) -> Result<Response, ApiError> {
    let card = found.card()?;
    let auth = found.auth;
    set_pin_of(&app, &auth, card, body).await
}

/// Set or change the PIN of `card` (found for `auth`'s program, or through a
/// widget's token): shared by the API and the hosted set widget.
pub(super) async fn set_pin_of<S: Store>(
    app: &App<S>,
    auth: &Auth,
    card: CardRow,
    body: SetPin,
) -> Result<Response, ApiError> {
    let settings = &auth.program.settings;
    let staged = settings.pin_set_mode == PinSetMode::Staged;
    let token = usable_token(app, &card, &body.control_token, TokenType::SetPin).await?;
    let text = match (body.pin, body.encrypted_pin) {
        (Some(text), None) => {
            if !settings.allow_plaintext_pin {
                return Err(ApiError::forbidden(
                    "plaintext_not_allowed",
                    "this program does not accept PINs in clear: send `encrypted_pin`",
                ));
            }
            text
        }
        (None, Some(jwe)) => match app.decrypt_pin(&jwe, Some(&card.id)).await? {
            Ok(text) => text,
            Err(e) => {
                // Whatever failed, one answer, and it uses one of the token's attempts.
                app.store
                    .use_token_attempt(
                        &token.id,
                        now(),
                        stage_failed(staged, &card, "decryption_failed"),
                    )
                    .await??;
                tracing::info!(card_id = %card.id, reason = e.0, "encrypted PIN refused");
                return Err(ApiError::decryption_failed());
            }
        },
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of `pin` and `encrypted_pin`",
            ));
        }
    };
    let pan = card_pan(app, &card).await?;
    let pin = match policy::check_text(&text, settings, &pan) {
        Ok(pin) => pin,
        Err(rejection) => {
            // A refused PIN uses one of the token's attempts.
            let reason = match rejection {
                PinRejection::Invalid => "invalid_pin",
                PinRejection::Weak => "weak_pin",
            };
            app.store
                .use_token_attempt(&token.id, now(), stage_failed(staged, &card, reason))
                .await??;
            tracing::info!(card_id = %card.id, "PIN refused by policy");
            return Err(DomainError::from(rejection).into());
        }
    };
    let (key_version, block) = app.keys.encipher_pin(&pin, &pan)?;
    drop(pin);
    let write = PinWrite {
        block,
        key_version,
        set_by: SetBy::Cardholder,
    };
    if staged {
        return stage(app, auth, &card, &token, write).await;
    }
    let effects = Effects {
        events: vec![event(
            &card.program_id,
            &card.id,
            EventType::PinChanged,
            json!({ "set_by": SetBy::Cardholder.as_str() }),
        )],
        audit: Some(auth.actor().record(
            "pin.changed",
            Some(&card.program_id),
            Some(&card.id),
            json!({
                "set_by": SetBy::Cardholder.as_str(),
                "token_id": token.id,
                "was_blocked": card.pin_blocked,
            }),
        )),
    };
    app.store
        .redeem_token(&token.id, Some(PinChange::Set(write)), now(), effects)
        .await??;
    tracing::info!(card_id = %card.id, actor = %auth.api_key_id, "PIN changed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Staged mode: what a refused set attempt writes besides using one of the
/// token's attempts (`pin.stage_failed`, with the reason's error code). In
/// direct mode a refusal has no event.
fn stage_failed(staged: bool, card: &CardRow, reason: &str) -> Effects {
    if !staged {
        return Effects::default();
    }
    Effects {
        events: vec![event(
            &card.program_id,
            &card.id,
            EventType::PinStageFailed,
            json!({ "reason": reason }),
        )],
        audit: None,
    }
}

/// Staged mode: redeems the token and stages the PIN until the token's
/// expiry, replacing whatever was staged before.
async fn stage<S: Store>(
    app: &App<S>,
    auth: &Auth,
    card: &CardRow,
    token: &TokenRow,
    write: PinWrite,
) -> Result<Response, ApiError> {
    let expires_at = rfc3339(token.expires_at);
    let effects = Effects {
        events: vec![event(
            &card.program_id,
            &card.id,
            EventType::PinStaged,
            json!({ "expires_at": expires_at }),
        )],
        audit: Some(auth.actor().record(
            "pin.staged",
            Some(&card.program_id),
            Some(&card.id),
            json!({
                "token_id": token.id,
                "expires_at": expires_at,
                "replaced": card.has_staged_pin(now()),
            }),
        )),
    };
    let change = PinChange::Stage {
        pin: write,
        expires_at: token.expires_at,
    };
    app.store
        .redeem_token(&token.id, Some(change), now(), effects)
        .await??;
    tracing::info!(card_id = %card.id, actor = %auth.api_key_id, "PIN staged");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(StagedView {
            status: "staged".to_owned(),
        }),
    )
        .into_response())
}

/// Staged mode: make the staged PIN the card's PIN.
#[utoipa::path(post, path = "/v1/cards/{id}/pin/commit", operation_id = "commitPin", tag = "pin", params(("id" = String, Path)),
    request_body(content = Option<CommitPin>, description = "Optional: no body, or an empty JSON object (`Content-Type: application/json`)"),
    responses((status = 204, description = "The staged PIN is now the card's PIN: set by the cardholder, the fail count reset, the PIN unblocked; nothing is staged any more"),
        (status = 404, description = "`not_found`: no such card for this program", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`nothing_staged`: no staged PIN, or it expired (with its token), or another commit took it", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn commit<S: Store>(
    State(app): State<Arc<App<S>>>,
    auth: Auth,
    PathId(card_id): PathId,
    NoBodyOrJson(_): NoBodyOrJson<CommitPin>,
) -> Result<Response, ApiError> {
    find(&app, &auth, &card_id).await?;
    let actor = auth.actor();
    let committed = app
        .store
        .commit_staged_pin(&auth.program.id, &card_id, now(), move |before| Effects {
            events: vec![event(
                &before.program_id,
                &before.id,
                EventType::PinChanged,
                json!({ "set_by": SetBy::Cardholder.as_str() }),
            )],
            audit: Some(actor.record(
                "pin.changed",
                Some(&before.program_id),
                Some(&before.id),
                json!({
                    "set_by": SetBy::Cardholder.as_str(),
                    "token_id": before.staged_token_id,
                    "staged": true,
                    "was_blocked": before.pin_blocked,
                }),
            )),
        })
        .await?;
    if !committed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "nothing_staged",
            "this card has no staged PIN to commit (none was staged, it expired with its token, or it was committed already)",
        ));
    }
    tracing::info!(card_id = %card_id, actor = %auth.api_key_id, "staged PIN committed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Reveal the PIN with a `reveal_pin` token.
#[utoipa::path(post, path = "/v1/cards/{id}/pin/reveal", operation_id = "revealPin", tag = "pin", params(("id" = String, Path)), request_body = RevealPin,
    responses((status = 200, description = "With `device_key`: `{\"encrypted_pin\"}`, a compact JWE (`ECDH-ES`, `A256GCM`) to that key whose plaintext is `{\"pin\",\"card_id\"}`. Without: `{\"pin\"}` in clear, only where the program allows it", body = RevealResponse),
        (status = 403, description = "`reveal_disabled`, `plaintext_not_allowed`, token errors", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such card for this program", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_request`: `device_key` is not a public P-256 key (wrong `kty` or curve, not on the curve, private part present)", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn reveal<S: Store>(
    State(app): State<Arc<App<S>>>,
    mut found: AuthCard,
    JsonBody(body): JsonBody<RevealPin>,
) -> Result<Response, ApiError> {
    super::limits::check(&app, Operation::Reveal, &found.auth, &found.card_id)?;
    let card = found.card()?;
    let auth = found.auth;
    reveal_of(&app, &auth, card, body).await
}

/// Reveal the PIN of `card` (found for `auth`'s program, or through a widget's
/// token): shared by the API and the hosted reveal widget.
pub(super) async fn reveal_of<S: Store>(
    app: &App<S>,
    auth: &Auth,
    card: CardRow,
    body: RevealPin,
) -> Result<Response, ApiError> {
    let settings = &auth.program.settings;
    if !settings.reveal_enabled {
        return Err(reveal_disabled());
    }
    let token = usable_token(app, &card, &body.control_token, TokenType::RevealPin).await?;
    if let Some(jwk) = &body.device_key {
        let device = DeviceKey::from_jwk(jwk).map_err(ApiError::invalid)?;
        // Read the PIN and encrypt it before spending the token, so a failure
        // cannot waste it.
        let pan = card_pan(app, &card).await?;
        app.ensure_key(KeyKind::Pin, card.pin_key_version).await?;
        let pin = app
            .keys
            .decipher_pin(card.pin_key_version, &card.pin_block, &pan)?;
        let jwe = app.encrypt_for_device(&device, pin.expose(), &card.id)?;
        drop(pin);
        app.store
            .redeem_token(
                &token.id,
                None,
                now(),
                revealed(auth, &card, &token, "device_key"),
            )
            .await??;
        tracing::info!(card_id = %card.id, actor = %auth.api_key_id, cvm = token.cvm.as_deref().unwrap_or("-"), "PIN revealed to a device key");
        return Ok(axum::Json(RevealResponse::Encrypted(EncryptedPin {
            encrypted_pin: jwe,
        }))
        .into_response());
    }
    if !settings.allow_plaintext_reveal {
        return Err(ApiError::forbidden(
            "plaintext_not_allowed",
            "this program reveals PINs only encrypted to a `device_key`",
        ));
    }
    // Read the PIN before spending the token, so a failure cannot waste it.
    let pan = card_pan(app, &card).await?;
    app.ensure_key(KeyKind::Pin, card.pin_key_version).await?;
    let pin = app
        .keys
        .decipher_pin(card.pin_key_version, &card.pin_block, &pan)?;
    app.store
        .redeem_token(
            &token.id,
            None,
            now(),
            revealed(auth, &card, &token, "clear"),
        )
        .await??;
    tracing::info!(card_id = %card.id, actor = %auth.api_key_id, cvm = token.cvm.as_deref().unwrap_or("-"), "PIN revealed in clear");
    Ok(axum::Json(RevealResponse::Clear(RevealedPin { pin: pin.expose() })).into_response())
}

/// The event and audit record of a reveal; `to` is `device_key` (encrypted to
/// the cardholder's device) or `clear` (to the caller).
fn revealed(auth: &Auth, card: &CardRow, token: &TokenRow, to: &str) -> Effects {
    Effects {
        events: vec![event(
            &card.program_id,
            &card.id,
            EventType::PinRevealed,
            json!({ "cardholder_verification_method": token.cvm, "to": to }),
        )],
        audit: Some(auth.actor().record(
            "pin.revealed",
            Some(&card.program_id),
            Some(&card.id),
            json!({
                "token_id": token.id,
                "cardholder_verification_method": token.cvm,
                "to": to,
            }),
        )),
    }
}

/// Unblock the PIN: reset the fail count and reactivate a card PIN blocking made inactive.
#[utoipa::path(post, path = "/v1/cards/{id}/pin/unblock", operation_id = "unblockPin", tag = "pin", params(("id" = String, Path)), request_body = Unblock,
    responses((status = 204, description = "Unblocked"),
        (status = 404, description = "`not_found`: no such card for this program", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = [])))]
pub async fn unblock<S: Store>(
    State(app): State<Arc<App<S>>>,
    mut found: AuthCard,
    OptionalJsonBody(body): OptionalJsonBody<Unblock>,
) -> Result<Response, ApiError> {
    for (name, value) in [
        ("description", &body.description),
        ("updated_by", &body.updated_by),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > 500) {
            return Err(ApiError::invalid(format!(
                "`{name}` must be at most 500 characters"
            )));
        }
        // The text goes to the audit trail, where a card number must never be.
        if value.as_deref().is_some_and(crate::domain::looks_like_pan) {
            return Err(ApiError::invalid(format!(
                "`{name}` must not contain a card number"
            )));
        }
    }
    found.card()?;
    let (auth, card_id) = (found.auth, found.card_id);
    let actor = auth.actor();
    app.store
        .unblock_pin(&auth.program.id, &card_id, now(), move |before, after| {
            let mut events = Vec::new();
            if before.pin_blocked {
                events.push(event(
                    &after.program_id,
                    &after.id,
                    EventType::PinUnblocked,
                    json!({ "reason": "unblock" }),
                ));
            }
            Effects {
                events,
                audit: Some(actor.record(
                    "pin.unblocked",
                    Some(&after.program_id),
                    Some(&after.id),
                    json!({
                        "was_blocked": before.pin_blocked,
                        "fail_count_before": before.fail_count,
                        "card_reactivated": before.inactive_by_block,
                        "description": body.description.clone(),
                        "updated_by": body.updated_by.clone(),
                    }),
                )),
            }
        })
        .await?
        .ok_or_else(|| ApiError::not_found("card"))?;
    tracing::info!(
        card_id = %card_id,
        actor = %auth.api_key_id,
        // The free text stays out of the log; the audit trail records it.
        "PIN unblocked"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}
