//! PIN change at an ATM, and its reversal (API.md "PIN change at an ATM").

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::JsonBody;
use super::limits::Operation;
use super::responses::UnderZoneKey;
use super::shapes::{Answer, Api, AuthId, OnId, Unread};
use super::verify::{BlockBytes, block_request, refused};
use super::views::Problem;
use crate::app::pin_change::{AtmChange, ChangeError};
use crate::app::verify::{Outcome, VerifyError};
use crate::domain::sensitive::Sensitive;
use crate::store::Store;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePin {
    /// The current PIN's block in hex, as for verification.
    #[schema(value_type = String, max_length = 64)]
    pin_block: Sensitive<String>,
    /// The new PIN's block in hex: same format and zone key.
    #[schema(value_type = String, max_length = 64)]
    new_pin_block: Sensitive<String>,
    /// `iso_0`, `iso_1`, `iso_3` or `iso_4`.
    #[schema(pattern = "^iso_[0134]$")]
    format: String,
    /// The zone key both blocks are enciphered under (`zpk_…`, usage `verify`).
    zone_key_id: String,
    /// The authorization's chip data (DE 55) in hex, for a chip card's PIN
    /// CHANGE script in the same answer.
    #[schema(value_type = Option<String>, pattern = "^([0-9A-Fa-f]{2})*$", max_length = 1024)]
    icc_data: Option<Sensitive<String>>,
}

/// What an ATM PIN change did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeResult {
    /// `changed`, `mismatch`, `blocked` or `card_inactive`.
    #[schema(pattern = "^(changed|mismatch|blocked|card_inactive)$")]
    pub result: &'static str,
    pub remaining_tries: u32,
    /// `pch_…` when `changed`: what `POST /v1/pin-changes/{id}/reverse` takes.
    pub change_id: Option<String>,
    /// The chip's script for the response's DE 55, for a chip card given
    /// `icc_data`; else null.
    pub icc_response_data: Option<String>,
}

/// Change the PIN at an ATM: the current PIN checked exactly as verification
/// checks it (a mismatch counts a try), then the new one put under the
/// program's PIN policy and stored.
#[utoipa::path(post, path = "/v1/cards/{id}/pin/change", operation_id = "changePinAtAtm", tag = "verification", params(("id" = String, Path)), request_body = ChangePin,
    responses((status = 200, description = "`changed` (with `change_id`), `mismatch` (one try counted), `blocked` or `card_inactive` (not checked, nothing counted)", body = ChangeResult),
        UnderZoneKey,
        (status = 422, description = "`decryption_failed` (either block; no try counted), `invalid_pin` / `weak_pin` (the new PIN; nothing changed but the reset fail count), `invalid_request`", body = Problem, content_type = "application/problem+json")))]
pub async fn change<S: Store>(
    Api(app, AuthId(auth, card_id), JsonBody(body)): OnId<S, JsonBody<ChangePin>>,
) -> Answer {
    super::limits::check(&app, Operation::Verify, &auth, &card_id)?;
    super::limits::check_decrypt_failures(&app, &auth, &card_id)?;
    let (format, icc) = block_request(&body.format, &body.zone_key_id, body.icc_data.as_ref())?;
    let (current, new) = (
        BlockBytes::decode(body.pin_block.expose()),
        BlockBytes::decode(body.new_pin_block.expose()),
    );
    let sent = AtmChange {
        format,
        current: current.bytes(),
        new: new.bytes(),
        zone_key_id: &body.zone_key_id,
    };
    let answer = match app.change_pin_at_atm(&auth, &card_id, sent).await {
        Ok(answer) => answer,
        Err(ChangeError::Verify(e)) => {
            if matches!(e, VerifyError::Decryption) {
                super::limits::decrypt_failed(&app, &auth, &card_id, &body.zone_key_id);
            }
            return Err(refused(&app, e));
        }
        Err(ChangeError::Refused(e)) => return Err(e.into()),
    };
    let result = match (answer.verdict.outcome, &answer.change_id) {
        (Outcome::Match, Some(_)) => "changed",
        (outcome, _) => outcome.as_str(),
    };
    app.metrics.verification(answer.verdict.outcome.as_str());
    // With chip data on a chip card: the script for what is pending (after a
    // change, the new PIN), so the chip changes at the same moment.
    let icc_response_data = match &icc {
        None => None,
        Some(icc) => {
            let card = app.find_card(&auth, &card_id).await?;
            super::verify::chip_answer(&app, &auth, &card, Some(icc))
                .await?
                .flatten()
        }
    };
    Ok(axum::Json(ChangeResult {
        result,
        remaining_tries: answer.verdict.remaining_tries,
        change_id: answer.change_id,
        icc_response_data,
    })
    .into_response())
}

/// Put back the PIN before an ATM change whose answer never reached the ATM:
/// within 24 hours, and only while nothing has changed the PIN since.
#[utoipa::path(post, path = "/v1/pin-changes/{id}/reverse", operation_id = "reversePinChange", tag = "verification", params(("id" = String, Path)),
    responses((status = 204, description = "The PIN before the change is the card's PIN again"),
        (status = 404, description = "`not_found`: no such PIN change for this program", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`reversal_not_possible`: more than 24 hours old, reversed already, or the PIN changed since", body = Problem, content_type = "application/problem+json")))]
pub async fn reverse<S: Store>(
    Api(app, AuthId(auth, change_id), Unread): OnId<S, Unread>,
) -> Answer {
    app.reverse_pin_change(&auth, &change_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
