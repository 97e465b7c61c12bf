//! Control tokens, PIN set, reveal and unblock (API.md "Control tokens", "Set or
//! change the PIN", "Reveal the PIN", "Unblock").

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{JsonBody, NoFields, OptionalJsonBody, from_value};
use super::idempotency::{self, Idempotency};
use super::limits::Operation;
use super::responses::{
    CardNotFound, IdempotencyConflict, InvalidBody, InvalidPinSet, UnsupportedMediaType,
};
use super::shapes::{Answer, Api, AuthId, Idempotent, OnCard, OnId};
use super::views::{EncryptedPin, Problem, RevealResponse, RevealedPin, TokenView};
use crate::app::pin::{PinText, RevealTo, Revealed, SetOutcome, UnblockNote};
use crate::app::{App, Caller};
use crate::domain::sensitive::Sensitive;
use crate::domain::time::rfc3339;
use crate::domain::token::TokenType;
use crate::store::{CardRow, Store};

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
    pub(super) control_token: Sensitive<String>,
    /// The PIN in clear: only where the program has `allow_plaintext_pin`.
    #[schema(value_type = Option<String>)]
    pub(super) pin: Option<Sensitive<String>>,
    /// A compact JWE (`RSA-OAEP-256` or `RSA-OAEP`, `A256GCM` or
    /// `A128CBC-HS256`) to a key of `GET /v1/pin-encryption-keys`, named by its
    /// `kid`. Plaintext: the PIN's digits, or `{"pin","card_id"?,"iat"?}`.
    #[schema(max_length = 8192)]
    pub(super) encrypted_pin: Option<String>,
}

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
    pub(super) control_token: Sensitive<String>,
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

/// Issue a single-use control token for one PIN operation on one card; older
/// unused tokens of the same type for the card stop working.
#[utoipa::path(post, path = "/v1/cards/{id}/control-tokens", operation_id = "createControlToken", tag = "pin", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[\\x21-\\x7E]{1,255}$", description = "Replays the first response for 24 h")),
    request_body = CreateToken,
    responses((status = 201, description = "Created", body = TokenView),
        IdempotencyConflict,
        (status = 403, description = "`reveal_disabled`", body = Problem, content_type = "application/problem+json"),
        CardNotFound,
        InvalidBody))]
pub async fn create_token<S: Store>(
    Api(app, mut found, Idempotent(headers, raw)): OnCard<S, Idempotent>,
) -> Answer {
    let (auth, card_id) = (&found.auth, &found.card_id);
    super::limits::check(&app, Operation::CreateToken, auth, card_id)?;
    let route = format!("POST /v1/cards/{card_id}/control-tokens");
    let idem = Idempotency::from_headers(&headers, &auth.program.id, &route, &raw)?;
    let card = found.card()?;
    let auth = found.auth;
    if let Some(replay) = idempotency::replay(&app, idem.as_ref()).await? {
        return Ok(replay);
    }
    let body: CreateToken = from_value(raw)?;
    let kind = TokenType::parse(&body.kind)
        .ok_or_else(|| ApiError::invalid("`type` must be \"set_pin\" or \"reveal_pin\""))?;
    let caller: &crate::app::Caller = &auth;
    let token = app.new_token(caller, &card, kind, body.cardholder_verification_method)?;
    let view = TokenView {
        token: Sensitive::new(token.secret.expose().to_owned()),
        kind: kind.as_str().to_owned(),
        card_id: card.id.clone(),
        expires_at: rfc3339(token.row.expires_at),
        attempts_remaining: token.row.attempts_remaining,
        widget_url: Sensitive::new(format!(
            "{}{}",
            app.settings.public_url,
            token.widget_path()
        )),
    };
    idempotency::create(&app, idem, &view, |idem_row| {
        app.save_token(caller, token, idem_row)
    })
    .await
}

/// Set or change the PIN with a `set_pin` token. A refused PIN uses one of the
/// token's attempts. In a program with `pin_set_mode` `staged` the PIN is
/// staged instead (202), and becomes the card's PIN at
/// `POST /v1/cards/{id}/pin/commit`.
#[utoipa::path(put, path = "/v1/cards/{id}/pin", operation_id = "setPin", tag = "pin", params(("id" = String, Path)), request_body = SetPin,
    responses((status = 204, description = "The PIN is set; the fail count is reset and the PIN unblocked (and anything staged is discarded)"),
        (status = 202, description = "Staged mode: the PIN is staged (replacing any staged before) until the token's `expires_at`; commit it with `POST /v1/cards/{id}/pin/commit`", body = StagedView),
        (status = 403, description = "`token_invalid`, `token_expired`, `token_used`, `token_superseded`, `token_exhausted`, `plaintext_not_allowed`", body = Problem, content_type = "application/problem+json"),
        CardNotFound,
        InvalidPinSet))]
pub async fn set_pin<S: Store>(
    Api(app, mut found, JsonBody(body)): OnCard<S, JsonBody<SetPin>>,
) -> Answer {
    let card = found.card()?;
    set_pin_of(&app, &found.auth, card, body).await
}

/// Set or change the PIN of `card` (found for the caller's program, or through
/// a widget's token): shared by the API and the hosted set widget.
pub(super) async fn set_pin_of<S: Store>(
    app: &App<S>,
    caller: &Caller,
    card: CardRow,
    body: SetPin,
) -> Answer {
    let pin = match (body.pin, body.encrypted_pin) {
        (Some(text), None) => PinText::Clear(text.into_inner()),
        (None, Some(jwe)) => PinText::Encrypted(jwe),
        _ => {
            // The token is checked first: a bad token and a bad body answer the token.
            app.usable_token(&card, body.control_token.expose(), TokenType::SetPin)
                .await?;
            return Err(ApiError::invalid(
                "give exactly one of `pin` and `encrypted_pin`",
            ));
        }
    };
    match app
        .set_pin(caller, &card, body.control_token.expose(), pin)
        .await?
    {
        SetOutcome::Set => Ok(StatusCode::NO_CONTENT.into_response()),
        SetOutcome::Staged => Ok((
            StatusCode::ACCEPTED,
            axum::Json(StagedView {
                status: "staged".to_owned(),
            }),
        )
            .into_response()),
    }
}

/// Staged mode: make the staged PIN the card's PIN.
#[utoipa::path(post, path = "/v1/cards/{id}/pin/commit", operation_id = "commitPin", tag = "pin", params(("id" = String, Path)),
    request_body(content = Option<NoFields>, description = "Optional: no body, or an empty JSON object (`Content-Type: application/json`)"),
    responses((status = 204, description = "The staged PIN is now the card's PIN: set by the cardholder, the fail count reset, the PIN unblocked; nothing is staged any more"),
        CardNotFound,
        (status = 409, description = "`nothing_staged`: no staged PIN, or it expired (with its token), or another commit took it", body = Problem, content_type = "application/problem+json")))]
pub async fn commit<S: Store>(Api(app, AuthId(auth, card_id), _): OnId<S>) -> Answer {
    app.commit_staged_pin(&auth, &card_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Reveal the PIN with a `reveal_pin` token.
#[utoipa::path(post, path = "/v1/cards/{id}/pin/reveal", operation_id = "revealPin", tag = "pin", params(("id" = String, Path)), request_body = RevealPin,
    responses((status = 200, description = "With `device_key`: `{\"encrypted_pin\"}`, a compact JWE (`ECDH-ES`, `A256GCM`) to that key whose plaintext is `{\"pin\",\"card_id\"}`. Without: `{\"pin\"}` in clear, only where the program allows it", body = RevealResponse),
        (status = 403, description = "`reveal_disabled`, `plaintext_not_allowed`, token errors", body = Problem, content_type = "application/problem+json"),
        CardNotFound,
        (status = 409, description = "`pin_not_available`: a card migrated with legacy data whose PIN no verification has captured yet (the token is not spent)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_request`: `device_key` is not a public P-256 key (wrong `kty` or curve, not on the curve, private part present)", body = Problem, content_type = "application/problem+json")))]
pub async fn reveal<S: Store>(
    Api(app, mut found, JsonBody(body)): OnCard<S, JsonBody<RevealPin>>,
) -> Answer {
    let card = found.limited_card(&app, Operation::Reveal)?;
    reveal_of(&app, &found.auth, card, body).await
}

/// Reveal the PIN of `card` (found for the caller's program, or through a
/// widget's token): shared by the API and the hosted reveal widget.
pub(super) async fn reveal_of<S: Store>(
    app: &App<S>,
    caller: &Caller,
    card: CardRow,
    body: RevealPin,
) -> Answer {
    let to = match body.device_key {
        Some(jwk) => RevealTo::Device(jwk),
        None => RevealTo::Clear,
    };
    Ok(
        match app
            .reveal_pin(caller, &card, body.control_token.expose(), to)
            .await?
        {
            Revealed::Encrypted(jwe) => axum::Json(RevealResponse::Encrypted(EncryptedPin {
                encrypted_pin: jwe,
            }))
            .into_response(),
            Revealed::Clear(pin) => {
                axum::Json(RevealResponse::Clear(RevealedPin { pin })).into_response()
            }
        },
    )
}

/// Unblock the PIN: reset the fail count and reactivate a card PIN blocking made inactive.
#[utoipa::path(post, path = "/v1/cards/{id}/pin/unblock", operation_id = "unblockPin", tag = "pin", params(("id" = String, Path)), request_body = Unblock,
    responses((status = 204, description = "Unblocked"),
        CardNotFound,
        UnsupportedMediaType))]
pub async fn unblock<S: Store>(
    Api(app, mut found, OptionalJsonBody(body)): OnCard<S, OptionalJsonBody<Unblock>>,
) -> Answer {
    let note = UnblockNote {
        description: body.description,
        updated_by: body.updated_by,
    };
    found.card()?;
    app.unblock_pin(&found.auth, &found.card_id, note).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
