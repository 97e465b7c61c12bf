//! PIN verification at authorization time, its sandbox, and the zone keys it
//! uses (API.md "PIN verification", "Sandbox").

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pinblock::{Format, Pin};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use super::error::{ApiError, Code};
use super::extract::{Auth, JsonBody};
use super::limits::Operation;
use super::responses::{InvalidQuery, UnderZoneKey};
use super::shapes::{Answer, Api, Listing, OnCard};
use super::views::Problem;
use crate::app::App;
use crate::app::verify::{Entered, Verdict, VerifyError};
use crate::domain::program::Mode;
use crate::domain::sensitive::Sensitive;
use crate::store::{CardRow, Store, ZoneKeyRow};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyPin {
    /// The enciphered ISO 9564 PIN block in hex: 16 digits for formats 0, 1 and 3
    /// under TDES, 32 under AES (format 4 is AES only).
    #[schema(value_type = String, max_length = 64)]
    pin_block: Sensitive<String>,
    /// `iso_0`, `iso_1`, `iso_3` or `iso_4`.
    #[schema(pattern = "^iso_[0134]$")]
    format: String,
    /// The zone key the block is enciphered under (`zpk_…`).
    zone_key_id: String,
    /// The authorization's chip data (DE 55) in hex: a chip card's issuer
    /// script comes back in `icc_response_data`, so an online-PIN chip
    /// authorization is one call.
    #[schema(value_type = Option<String>, pattern = "^([0-9A-Fa-f]{2})*$", max_length = 1024)]
    icc_data: Option<Sensitive<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxVerify {
    /// The PIN as a cardholder would type it at a terminal (4 to 12 digits).
    #[schema(value_type = String, pattern = "^[0-9]{4,12}$")]
    pin: Zeroizing<String>,
}

impl std::fmt::Debug for SandboxVerify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SandboxVerify")
    }
}

/// The outcome of a PIN verification.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResult {
    /// `match`, `mismatch`, `blocked` or `card_inactive`.
    #[schema(pattern = "^(match|mismatch|blocked|card_inactive)$")]
    pub result: &'static str,
    /// Tries left before the PIN is blocked (0 once blocked).
    pub remaining_tries: u32,
    /// Only when `icc_data` was sent: the issuer script for the response's
    /// DE 55 (hex), or null (nothing pending, or a card without chip data).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub icc_response_data: Option<Option<String>>,
}

/// A zone PIN key: its facts, never its material.
#[derive(Debug, Serialize, ToSchema)]
pub struct ZoneKeyView {
    /// `zpk_…`
    pub id: String,
    pub name: String,
    /// `tdes`, `aes128`, `aes192` or `aes256`.
    pub algorithm: &'static str,
    /// Key check value: 6 upper-case hex digits.
    pub kcv: String,
    /// `verify` (PIN blocks come in) or `export` (PIN blocks go out).
    #[schema(pattern = "^(verify|export)$")]
    pub usage: &'static str,
    /// The TR-31 key block the key arrived in (`version`, `key_usage`,
    /// `mode_of_use`, `exportability`, `key_version`); `null` for a key
    /// loaded from components.
    #[schema(value_type = Option<Object>)]
    pub tr31: Option<serde_json::Value>,
    pub created_at: String,
}

impl ZoneKeyView {
    pub fn new(k: &ZoneKeyRow) -> Self {
        ZoneKeyView {
            id: k.key.id.clone(),
            name: k.key.name.clone(),
            algorithm: k.key.algorithm.as_str(),
            kcv: k.key.kcv.clone(),
            usage: k.usage.as_str(),
            tr31: k.tr31.as_ref().map(|o| o.public_json()),
            created_at: crate::domain::time::rfc3339(k.key.created_at),
        }
    }
}

/// A page of zone keys, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ZoneKeyList {
    pub data: Vec<ZoneKeyView>,
    pub has_more: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListZoneKeys {
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The id of the last zone key of the previous page.
    starting_after: Option<String>,
}

super::shapes::paged!(ListZoneKeys);

/// A PIN block's bytes from its hex, zeroed on drop. Not hex, or longer than
/// an AES block: no bytes, refused as undecryptable (no try counted).
pub(super) struct BlockBytes {
    bytes: Zeroizing<[u8; 16]>,
    len: usize,
}

impl BlockBytes {
    pub(super) fn decode(hex: &str) -> Self {
        let mut bytes = Zeroizing::new([0u8; 16]);
        let len = if hex.len() > 32 {
            None
        } else {
            pinblock::hex::decode_into(hex, bytes.as_mut_slice()).ok()
        };
        BlockBytes {
            bytes,
            len: len.unwrap_or(0),
        }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// What a request with PIN blocks names besides them, checked before anything
/// is counted: the blocks' `format` (`iso_0`, `iso_1`, `iso_3` or `iso_4`),
/// a well-formed zone key id (else the 404 of a key not granted), and the
/// chip data, read.
pub(super) fn block_request(
    format: &str,
    zone_key_id: &str,
    icc_data: Option<&Sensitive<String>>,
) -> Result<(Format, Option<emv::IccData>), ApiError> {
    let format = format
        .parse()
        .map_err(|_| ApiError::invalid("`format` must be iso_0, iso_1, iso_3 or iso_4"))?;
    if !crate::domain::ids::is_id(zone_key_id, "zpk_") {
        return Err(ApiError::not_found("zone key for this program"));
    }
    let icc = match icc_data {
        Some(hex) => Some(crate::app::scripts::parse_icc_hex(hex.expose())?),
        None => None,
    };
    Ok((format, icc))
}

fn decryption_failed() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        Code::DecryptionFailed,
        "the PIN block cannot be deciphered under this zone key, or is not a valid block of this format for this card",
    )
}

fn answer<S: Store>(
    app: &App<S>,
    card_id: &str,
    verdict: Verdict,
    icc_response_data: Option<Option<String>>,
) -> Response {
    let result = verdict.outcome.as_str();
    app.metrics.verification(result);
    if verdict.blocked_now {
        tracing::info!(card_id = %card_id, "PIN blocked: max_tries reached; the card is inactive if it was active");
    } else if verdict.outcome == crate::app::verify::Outcome::Match {
        tracing::debug!(card_id = %card_id, result, "PIN verified");
    } else {
        tracing::info!(card_id = %card_id, result, remaining_tries = verdict.remaining_tries, "PIN verified");
    }
    axum::Json(VerifyResult {
        result,
        remaining_tries: verdict.remaining_tries,
        icc_response_data,
    })
    .into_response()
}

/// With chip data: the issuer script of a chip card (`Some(None)`: nothing
/// to script, or a card without chip data); without: `None`.
pub(super) async fn chip_answer<S: Store>(
    app: &App<S>,
    caller: &crate::app::Caller,
    card: &CardRow,
    icc: Option<&emv::IccData>,
) -> Result<Option<Option<String>>, ApiError> {
    let Some(icc) = icc else { return Ok(None) };
    if card.chip.is_none() {
        return Ok(Some(None));
    }
    let answer = app.chip_scripts(caller, card.clone(), icc, false).await?;
    Ok(Some(answer.icc_response_data))
}

/// Verifies the PIN `entered` for `card` as the caller's program sets it: its
/// `max_tries`, and `migrate_legacy_pins` for a legacy card's match. The outer
/// error is the card's PAN failing to open; the inner, the verification's refusal.
async fn verify_as<S: Store>(
    app: &App<S>,
    auth: &Auth,
    card: &CardRow,
    entered: Entered<'_>,
) -> Result<Result<Verdict, VerifyError>, ApiError> {
    let pan = app.card_pan(card).await?;
    let settings = &auth.program.settings;
    Ok(app
        .verify_pin(
            card,
            &pan,
            u32::from(settings.max_tries),
            entered,
            settings.migrate_legacy_pins,
            || auth.actor(),
        )
        .await)
}

pub(super) fn refused<S: Store>(app: &App<S>, e: VerifyError) -> ApiError {
    match e {
        VerifyError::UnknownZoneKey => ApiError::not_found("zone key for this program"),
        VerifyError::ZoneKeyUsage => ApiError::forbidden(
            Code::Forbidden,
            "this zone key is of usage `export`: PIN blocks under it go out, none come in",
        ),
        VerifyError::FormatNeedsAes => {
            ApiError::invalid("format iso_4 is enciphered under AES only: this zone key is TDES")
        }
        VerifyError::Decryption => {
            app.metrics.verification("decryption_failed");
            decryption_failed()
        }
        VerifyError::Service(e) => e.into(),
    }
}

/// Verify a PIN entered at a terminal or ATM, sent as an ISO 9564 PIN block
/// enciphered under a zone key. A mismatch counts a try; at `max_tries` the PIN
/// is blocked and an active card becomes inactive.
#[utoipa::path(post, path = "/v1/cards/{id}/pin/verify", operation_id = "verifyPin", tag = "verification", params(("id" = String, Path)), request_body = VerifyPin,
    responses((status = 200, description = "`match`, `mismatch` (one try counted), `blocked` (not checked) or `card_inactive` (the card is suspended or was made inactive other than by PIN blocking: not checked, nothing counted)", body = VerifyResult),
        UnderZoneKey,
        (status = 422, description = "`decryption_failed` (no try counted), `invalid_request`", body = Problem, content_type = "application/problem+json")))]
pub async fn verify<S: Store>(
    Api(app, mut found, JsonBody(body)): OnCard<S, JsonBody<VerifyPin>>,
) -> Answer {
    let card = found.limited_card(&app, Operation::Verify)?;
    let auth = found.auth;
    super::limits::check_decrypt_failures(&app, &auth, &card.id)?;
    let (format, icc) = block_request(&body.format, &body.zone_key_id, body.icc_data.as_ref())?;
    let block = BlockBytes::decode(body.pin_block.expose());
    let entered = Entered::Block {
        format,
        block: block.bytes(),
        zone_key_id: &body.zone_key_id,
    };
    let verdict = verify_as(&app, &auth, &card, entered).await?.map_err(|e| {
        if matches!(e, VerifyError::Decryption) {
            super::limits::decrypt_failed(&app, &auth, &card.id, &body.zone_key_id);
        }
        refused(&app, e)
    })?;
    let scripts = chip_answer(&app, &auth, &card, icc.as_ref()).await?;
    Ok(answer(&app, &card.id, verdict, scripts))
}

/// Test-mode programs only: simulate a PIN typed at a terminal, counted exactly
/// as a real verification is. A live program gets 404.
#[utoipa::path(post, path = "/v1/test/cards/{id}/pin/verify", operation_id = "sandboxVerifyPin", tag = "verification", params(("id" = String, Path)), request_body = SandboxVerify,
    responses((status = 200, description = "`match`, `mismatch` (one try counted), `blocked` (not checked) or `card_inactive` (the card is suspended or was made inactive other than by PIN blocking: not checked, nothing counted)", body = VerifyResult),
        (status = 404, description = "`not_found`: no such card, or a live program", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_pin` (4 to 12 digits; no try counted)", body = Problem, content_type = "application/problem+json")))]
pub async fn sandbox_verify<S: Store>(
    Api(app, mut found, JsonBody(body)): OnCard<S, JsonBody<SandboxVerify>>,
) -> Answer {
    let auth = &found.auth;
    if auth.program.mode != Mode::Test {
        // As if the route did not exist (the router's own 404).
        return Err(ApiError::not_found("resource"));
    }
    let card = found.limited_card(&app, Operation::Verify)?;
    let auth = found.auth;
    let pin = Pin::new(&body.pin).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            Code::InvalidPin,
            "a PIN typed at a terminal is 4 to 12 digits",
        )
    })?;
    drop(body);
    let verdict = verify_as(&app, &auth, &card, Entered::Clear(pin))
        .await?
        .map_err(|e| refused(&app, e))?;
    Ok(answer(&app, &card.id, verdict, None))
}

/// The zone keys this program may use (loaded by the operator with
/// `pinvault zone-keys import` and granted to it), newest first.
#[utoipa::path(get, path = "/v1/zone-keys", operation_id = "listZoneKeys", tag = "verification", params(ListZoneKeys),
    responses((status = 200, description = "OK", body = ZoneKeyList), InvalidQuery))]
pub async fn list_zone_keys<S: Store>(l: Listing<S, ListZoneKeys>) -> Answer {
    let program = &l.auth.program.id;
    let page = l
        .app
        .store
        .list_program_zone_keys(program, l.limit, l.after())
        .await?;
    super::page::answer(page, "zone key", |keys, has_more| {
        let data = keys.iter().map(ZoneKeyView::new).collect();
        Ok(ZoneKeyList { data, has_more })
    })
}
