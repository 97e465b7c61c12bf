//! Enfuce (`/compat/enfuce/v1`): a PIN control token by `plasticId` (a
//! `reveal_pin` token living at most 30 seconds) and the reveal widget's URL,
//! to which the device POSTs the token as `controlId` (v1 widgets). Errors in
//! problem+json, as v1.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{CardErrors, Named, NamedCard, answer};
use crate::api::extract::NoBodyOrJson;
use crate::api::limits::{self, Operation};
use crate::api::shapes::{Answer, Api};
use crate::api::views::Problem;
use crate::app::tokens::TokenOptions;
use crate::domain::sensitive::Sensitive;
use crate::domain::token::TokenType;
use crate::store::Store;

/// Enfuce's control id lives this long at most.
const CONTROL_ID_TTL_S: u32 = 30;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinControlRequest {
    /// How the cardholder was verified (default `OTHER`).
    #[schema(pattern = "^(BIOMETRIC_FACE|BIOMETRIC_FINGERPRINT|LOGIN|EXP_CVV|OTP_CVV|OTP|OTHER)$")]
    cardholder_verification_method: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PinControl {
    /// The control id (`pct_…`): POST it as the form field `controlId` to `pinURL`.
    #[schema(value_type = String)]
    id: Sensitive<String>,
    /// The hosted reveal widget.
    #[serde(rename = "pinURL")]
    pin_url: String,
}

/// Enfuce's Request PIN Control access token by plasticId.
#[utoipa::path(post, path = "/compat/enfuce/v1/plastics/{id}/pin-control", operation_id = "enfucePinControl", tag = "enfuce",
    params(("id" = String, Path, description = "The card's id or `external_id` (Enfuce's plasticId)")),
    request_body(content = Option<PinControlRequest>, description = "Optional: no body, or `{\"cardholder_verification_method\"}`"),
    responses((status = 201, description = "Created: valid at most 30 seconds (less where the program's `reveal_token_ttl_s` is shorter)", body = PinControl),
        (status = 403, description = "`reveal_disabled`", body = Problem, content_type = "application/problem+json"),
        CardErrors))]
pub async fn pin_control<S: Store>(
    Api(app, NamedCard { auth, card }, NoBodyOrJson(body)): Named<
        S,
        NoBodyOrJson<PinControlRequest>,
    >,
) -> Answer {
    limits::check(&app, Operation::CreateToken, &auth, &card.id)?;
    let method = body
        .cardholder_verification_method
        .unwrap_or_else(|| "OTHER".to_owned());
    let options = TokenOptions {
        max_ttl_s: Some(CONTROL_ID_TTL_S),
        ..TokenOptions::default()
    };
    let token = app.new_token_with(&auth, &card, TokenType::RevealPin, Some(method), options)?;
    let view = PinControl {
        id: Sensitive::new(token.secret.expose().to_owned()),
        pin_url: format!("{}/widgets/pin-reveal", app.settings.public_url),
    };
    app.save_token(&auth, token, None).await?;
    Ok(answer(StatusCode::CREATED, &view))
}
