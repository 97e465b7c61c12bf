//! Finding a card at authorization time (API.md "Finding a card at
//! authorization time").

use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::JsonBody;
use super::shapes::{Answer, Api, Call};
use super::views::Problem;
use crate::app::lookup::Lookup;
use crate::domain::sensitive::Sensitive;
use crate::limits::Scope;
use crate::store::Store;

/// What an authorization host read from the card.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardLookup {
    /// The PAN (DE 2): 12 to 19 digits, Luhn-valid. Never logged or stored.
    #[schema(value_type = String, example = "4111111111111111", pattern = "^[0-9]{12,19}$")]
    pan: Sensitive<String>,
    /// The PAN sequence number (DE 23), two digits: narrows chip cards that share the PAN.
    #[schema(example = "01", pattern = "^[0-9]{2}$")]
    pan_sequence_number: Option<String>,
    /// The expiry (DE 14) as `YYYY-MM`: narrows re-issues that share the PAN.
    #[schema(example = "2029-12", pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    expiry: Option<String>,
}

/// The card the host means.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardFound {
    /// `card_…`
    pub card_id: String,
    /// `active`, `inactive` or `suspended`.
    #[schema(pattern = "^(active|inactive|suspended)$")]
    pub status: &'static str,
}

/// Find the caller's card by its PAN, through the keyed PAN hash (the PAN is
/// never logged). Hosts are expected to cache the answer.
#[utoipa::path(post, path = "/v1/card-lookups", operation_id = "lookupCard", tag = "cards", request_body = CardLookup,
    responses((status = 200, description = "The one card of this program with this PAN (narrowed by `pan_sequence_number` and `expiry` where given)", body = CardFound),
        (status = 404, description = "`not_found`: no card of this program has this PAN", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`card_ambiguous`: several cards are left after the optional fields narrowed them", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_pan`, `invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: per API key", body = Problem, content_type = "application/problem+json")))]
pub async fn lookup<S: Store>(
    Api(app, auth, JsonBody(body)): Call<S, JsonBody<CardLookup>>,
) -> Answer {
    app.limiter.check(Scope::KeyLookups, &[auth.name()])?;
    let q = Lookup {
        pan: body.pan.expose(),
        pan_sequence_number: body.pan_sequence_number.as_deref(),
        expiry: body.expiry.as_deref(),
    };
    let card = app.look_up_card(&auth, q).await?;
    drop(body);
    Ok(axum::Json(CardFound {
        card_id: card.id,
        status: card.status.as_str(),
    })
    .into_response())
}
