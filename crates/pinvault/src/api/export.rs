//! PIN export (API.md "PIN export").

use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::JsonBody;
use super::limits::Operation;
use super::responses::{CardOrZoneKeyNotFound, InvalidBody};
use super::shapes::{Answer, Api, OnCard};
use super::views::Problem;
use crate::store::Store;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportPin {
    /// A zone key of usage `export` granted to the program (`zpk_…`).
    zone_key_id: String,
    /// `iso_0`, `iso_1`, `iso_3` or `iso_4` (format 4 under AES keys only).
    #[schema(pattern = "^iso_[0134]$")]
    format: String,
}

/// The card's PIN, enciphered for the receiver.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportedPin {
    /// The ISO 9564 PIN block in upper-case hex, enciphered under the zone key.
    pub pin_block: String,
    pub format: String,
    pub zone_key_id: String,
    /// The zone key's check value: 6 upper-case hex digits.
    pub kcv: String,
}

/// Export the card's PIN as a PIN block under an export zone key (a card
/// bureau's chip and mailer; an issuer leaving). Needs the operator's
/// `allow_pin_export`; an event and an audit record every time.
#[utoipa::path(post, path = "/v1/cards/{id}/pin/export", operation_id = "exportPin", tag = "pin", params(("id" = String, Path)), request_body = ExportPin,
    responses((status = 200, description = "The PIN block", body = ExportedPin),
        (status = 403, description = "`export_not_allowed`: the program's `allow_pin_export` is off; `forbidden`: the zone key is of usage `verify`", body = Problem, content_type = "application/problem+json"),
        CardOrZoneKeyNotFound,
        (status = 409, description = "`pin_not_available`: a legacy card whose PIN no verification has captured yet", body = Problem, content_type = "application/problem+json"),
        InvalidBody,
        (status = 429, description = "`rate_limited`: per API key and per card", body = Problem, content_type = "application/problem+json")))]
pub async fn export<S: Store>(
    Api(app, mut found, JsonBody(body)): OnCard<S, JsonBody<ExportPin>>,
) -> Answer {
    let (format, _) = super::verify::block_request(&body.format, &body.zone_key_id, None)?;
    let card = found.limited_card(&app, Operation::Export)?;
    let out = app
        .export_pin(&found.auth, &card, &body.zone_key_id, format)
        .await?;
    Ok(axum::Json(ExportedPin {
        pin_block: out.pin_block,
        format: out.format.to_string(),
        zone_key_id: body.zone_key_id,
        kcv: out.kcv,
    })
    .into_response())
}
