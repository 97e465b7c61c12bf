//! The hosted widgets' own calls (the token is the credential): the set
//! page's encrypted PIN and the reveal page's device key, each onto the same
//! use case as its v1 route.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::JsonBody;
use super::pin::{RevealPin, SetPin, reveal_of, set_pin_of};
use super::responses::InvalidPinSet;
use super::shapes::Answer;
use super::views::{EncryptedPin, Problem};
use super::widgets::Unkeyed;
use crate::app::{App, Caller};
use crate::domain::sensitive::Sensitive;
use crate::domain::token::TokenType;
use crate::store::{CardRow, Store};

/// A widget page's call: its JSON body, the card of the control token the
/// body carries, and the request as the widget acting for that card's
/// program ([`Unkeyed::widget`]).
pub struct WidgetCall<T> {
    body: T,
    card: CardRow,
    caller: Caller,
}

/// The body of a widget page's call: the control token it carries, of type
/// [`WidgetBody::TOKEN`].
pub trait WidgetBody {
    const TOKEN: TokenType;
    fn control_token(&self) -> &str;
}

impl<S: Store, T: WidgetBody + DeserializeOwned + Send> FromRequest<Arc<App<S>>> for WidgetCall<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let unkeyed = Unkeyed::from_request_parts(&mut parts, app).await?;
        let JsonBody(body) =
            JsonBody::<T>::from_request(Request::from_parts(parts, body), app).await?;
        let (card, caller) = unkeyed.widget(app, body.control_token(), T::TOKEN).await?;
        Ok(WidgetCall { body, card, caller })
    }
}

impl WidgetBody for WidgetSetPin {
    const TOKEN: TokenType = TokenType::SetPin;
    fn control_token(&self) -> &str {
        self.control_token.expose()
    }
}

impl WidgetBody for WidgetRevealPin {
    const TOKEN: TokenType = TokenType::RevealPin;
    fn control_token(&self) -> &str {
        self.control_token.expose()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetSetPin {
    /// The `set_pin` token the page was opened with.
    #[schema(value_type = String)]
    control_token: Sensitive<String>,
    /// A compact JWE (`RSA-OAEP-256`, `A256GCM`) to a key of
    /// `GET /v1/pin-encryption-keys`; plaintext `{"pin","card_id"?,"iat"?}` or the digits.
    #[schema(max_length = 8192)]
    encrypted_pin: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetRevealPin {
    /// The `reveal_pin` token the page was opened with.
    #[schema(value_type = String)]
    control_token: Sensitive<String>,
    /// The page's public EC P-256 key (JWK, no `d`).
    #[schema(value_type = super::views::DeviceJwk)]
    device_key: Value,
}

/// The set widget's call: `PUT /v1/cards/{id}/pin` for the token's card, with
/// the token as the credential. 204, or 202 `{"status":"staged"}` where the
/// program stages PINs.
#[utoipa::path(post, path = "/widgets/api/pin-set", operation_id = "widgetSetPin", tag = "widgets", request_body = WidgetSetPin,
    responses((status = 204, description = "The PIN is set"),
        (status = 202, description = "The PIN is staged: `{\"status\":\"staged\"}` (`pin_set_mode` `staged`)"),
        (status = 403, description = "`token_invalid`, `token_expired`, `token_used`, `token_superseded`, `token_exhausted`", body = Problem, content_type = "application/problem+json"),
        InvalidPinSet))]
pub async fn api_set_pin<S: Store>(
    State(app): State<Arc<App<S>>>,
    WidgetCall { body, card, caller }: WidgetCall<WidgetSetPin>,
) -> Answer {
    let body = SetPin {
        control_token: body.control_token,
        pin: None,
        encrypted_pin: Some(body.encrypted_pin),
    };
    set_pin_of(&app, &caller, card, body).await
}

/// The reveal widget's call: `POST /v1/cards/{id}/pin/reveal` for the token's
/// card with the page's key, the token as the credential.
#[utoipa::path(post, path = "/widgets/api/pin-reveal", operation_id = "widgetRevealPin", tag = "widgets", request_body = WidgetRevealPin,
    responses((status = 200, description = "`{\"encrypted_pin\"}`: a compact JWE (`ECDH-ES`, `A256GCM`) to `device_key`, plaintext `{\"pin\",\"card_id\"}`", body = EncryptedPin),
        (status = 403, description = "`reveal_disabled`, token errors", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_request`: `device_key` is not a public P-256 key", body = Problem, content_type = "application/problem+json")))]
pub async fn api_reveal_pin<S: Store>(
    State(app): State<Arc<App<S>>>,
    WidgetCall { body, card, caller }: WidgetCall<WidgetRevealPin>,
) -> Answer {
    // The card's reveal limit holds here too (the API key's does not: there is none).
    app.limiter.check(
        crate::limits::Scope::CardReveal,
        &[&caller.program.id, &card.id],
    )?;
    let body = RevealPin {
        control_token: body.control_token,
        device_key: Some(body.device_key),
    };
    reveal_of(&app, &caller, card, body).await
}
