//! Marqeta (`/compat/marqeta/v3`): `/pins/controltoken`, `PUT /pins`,
//! `/pins/reveal`. The token names the card; the card's program must be the
//! caller's. Errors `{"error_message","error_code"}`.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::answer;
use crate::api::error::ApiError;
use crate::api::extract::JsonBody;
use crate::api::limits::{self, Operation};
use crate::api::shapes::{Answer, Api, Call};
use crate::app::pin::{PinText, RevealTo, Revealed, SetOutcome};
use crate::app::tokens::TokenOptions;
use crate::domain::sensitive::Sensitive;
use crate::domain::token::TokenType;
use crate::store::Store;

/// Marqeta's error body; `error_code` is pinvault's stable code.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarqetaError {
    /// What went wrong, for a person.
    pub error_message: String,
    /// pinvault's stable error code (`docs/reference.md`, "Error codes").
    pub error_code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarqetaTokenRequest {
    /// The card: its pinvault id or its `external_id`.
    #[schema(min_length = 1, max_length = 200)]
    card_token: String,
    /// `SET_PIN` (the default) or `REVEAL_PIN`.
    #[schema(pattern = "^(SET_PIN|REVEAL_PIN)$")]
    controltoken_type: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MarqetaToken {
    /// `pct_…`: single use; only the card's newest of its type is valid.
    #[schema(value_type = String)]
    pub control_token: Sensitive<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarqetaSetPin {
    /// A `SET_PIN` token from `/pins/controltoken`: it names the card.
    #[schema(value_type = String)]
    control_token: Sensitive<String>,
    /// The PIN in clear: the program needs `allow_plaintext_pin`.
    #[schema(value_type = String)]
    pin: Sensitive<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarqetaReveal {
    /// A `REVEAL_PIN` token from `/pins/controltoken`: it names the card.
    #[schema(value_type = String)]
    control_token: Sensitive<String>,
    /// How the cardholder was verified, recorded with the reveal.
    #[schema(pattern = "^(BIOMETRIC_FACE|BIOMETRIC_FINGERPRINT|LOGIN|EXP_CVV|OTP_CVV|OTP|OTHER)$")]
    cardholder_verification_method: String,
}

/// Marqeta's `POST /pins/controltoken`: a `set_pin` or `reveal_pin` token
/// (a reveal token's verification method is named at the reveal).
#[utoipa::path(post, path = "/compat/marqeta/v3/pins/controltoken", operation_id = "marqetaControlToken", tag = "marqeta",
    request_body = MarqetaTokenRequest,
    responses((status = 201, description = "Created", body = MarqetaToken),
        (status = 403, description = "`reveal_disabled`", body = MarqetaError),
        (status = 404, description = "`not_found`: no such card", body = MarqetaError),
        (status = 409, description = "`card_ambiguous`: several cards carry this `external_id`", body = MarqetaError)))]
pub async fn control_token<S: Store>(
    Api(app, auth, JsonBody(body)): Call<S, JsonBody<MarqetaTokenRequest>>,
) -> Answer {
    let kind = match body.controltoken_type.as_deref() {
        None | Some("SET_PIN") => TokenType::SetPin,
        Some("REVEAL_PIN") => TokenType::RevealPin,
        Some(_) => {
            return Err(ApiError::invalid(
                "`controltoken_type` must be \"SET_PIN\" or \"REVEAL_PIN\"",
            ));
        }
    };
    let card = app.find_card_named(&auth, &body.card_token).await?;
    limits::check(&app, Operation::CreateToken, &auth, &card.id)?;
    let options = TokenOptions {
        method_at_reveal: true,
        ..TokenOptions::default()
    };
    let token = app.new_token_with(&auth, &card, kind, None, options)?;
    let view = MarqetaToken {
        control_token: Sensitive::new(token.secret.expose().to_owned()),
    };
    app.save_token(&auth, token, None).await?;
    Ok(answer(StatusCode::CREATED, &view))
}

/// Marqeta's `PUT /pins`: sets the PIN of the token's card.
#[utoipa::path(put, path = "/compat/marqeta/v3/pins", operation_id = "marqetaSetPin", tag = "marqeta",
    request_body = MarqetaSetPin,
    responses((status = 204, description = "The PIN is set"),
        (status = 202, description = "The program stages PINs: staged until a commit (`POST /v1/cards/{id}/pin/commit`)"),
        (status = 403, description = "Token errors, `plaintext_not_allowed`", body = MarqetaError),
        (status = 422, description = "`invalid_pin`, `weak_pin`, `invalid_request`", body = MarqetaError)))]
pub async fn set_pin<S: Store>(
    Api(app, auth, JsonBody(body)): Call<S, JsonBody<MarqetaSetPin>>,
) -> Answer {
    let token = body.control_token.expose();
    let card = app.card_of_token(&auth, token, TokenType::SetPin).await?;
    let pin = PinText::Clear(body.pin.into_inner());
    Ok(match app.set_pin(&auth, &card, token, pin).await? {
        SetOutcome::Set => StatusCode::NO_CONTENT.into_response(),
        SetOutcome::Staged => StatusCode::ACCEPTED.into_response(),
    })
}

/// The PIN, in clear.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarqetaPin {
    /// The card's PIN.
    #[schema(value_type = String)]
    pin: zeroize::Zeroizing<String>,
}

/// Marqeta's `POST /pins/reveal`: the PIN of the token's card, in clear (the
/// program needs `allow_plaintext_reveal`).
#[utoipa::path(post, path = "/compat/marqeta/v3/pins/reveal", operation_id = "marqetaRevealPin", tag = "marqeta",
    request_body = MarqetaReveal,
    responses((status = 200, description = "The PIN", body = MarqetaPin),
        (status = 403, description = "Token errors, `reveal_disabled`, `plaintext_not_allowed`", body = MarqetaError),
        (status = 409, description = "`pin_not_available`", body = MarqetaError)))]
pub async fn reveal<S: Store>(
    Api(app, auth, JsonBody(body)): Call<S, JsonBody<MarqetaReveal>>,
) -> Answer {
    let token = body.control_token.expose();
    let card = app
        .card_of_token(&auth, token, TokenType::RevealPin)
        .await?;
    limits::check(&app, Operation::Reveal, &auth, &card.id)?;
    let method = Some(body.cardholder_verification_method);
    match app
        .reveal_pin_verified_by(&auth, &card, token, RevealTo::Clear, method)
        .await?
    {
        Revealed::Clear(pin) => Ok(answer(StatusCode::OK, &MarqetaPin { pin })),
        Revealed::Encrypted(_) => Err(ApiError::internal()),
    }
}
