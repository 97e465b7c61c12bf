//! Chip cards (API.md "Chip cards: the offline PIN (EMV)"): the program's
//! issuer key sets, and unblocking a chip's offline PIN.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{JsonBody, NoFields};
use super::responses::{CardNotFound, InvalidQuery};
use super::shapes::{Answer, Api, AuthId, Listing, OnCard, OnId};
use super::views::Problem;
use crate::store::{IssuerKeySetRow, Store};

/// An issuer key set: its facts, never its keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerKeySetView {
    /// `iks_…`
    pub id: String,
    pub name: String,
    /// `visa_10`, `visa_18`, `visa_22`, `mastercard_16`, `mastercard_17`,
    /// `mastercard_20` or `mastercard_21`.
    pub cvn: &'static str,
    /// The check values of the AC, SMI and SMC keys.
    #[schema(value_type = Object)]
    pub kcv: serde_json::Value,
    /// The TR-31 key block each key (`ac`, `smi`, `smc`) arrived in
    /// (`version`, `key_usage`, `mode_of_use`, `exportability`,
    /// `key_version`), or `null` for a key loaded from components.
    #[schema(value_type = Object)]
    pub tr31: serde_json::Value,
    pub created_at: String,
}

impl IssuerKeySetView {
    fn new(k: &IssuerKeySetRow) -> Self {
        IssuerKeySetView {
            id: k.id.clone(),
            name: k.name.clone(),
            cvn: k.cvn.as_str(),
            kcv: crate::app::issuer_keys::kcv_json(&k.kcv),
            tr31: {
                let view = |i: usize| k.tr31[i].as_ref().map(|o| o.public_json());
                serde_json::json!({ "ac": view(0), "smi": view(1), "smc": view(2) })
            },
            created_at: crate::domain::time::rfc3339(k.created_at),
        }
    }
}

/// A page of issuer key sets, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuerKeySetList {
    pub data: Vec<IssuerKeySetView>,
    pub has_more: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListIssuerKeySets {
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The id of the last set of the previous page.
    starting_after: Option<String>,
}

super::shapes::paged!(ListIssuerKeySets);

/// The program's issuer key sets (loaded by the operator with `pinvault
/// issuer-keys import`), newest first.
#[utoipa::path(get, path = "/v1/issuer-key-sets", operation_id = "listIssuerKeySets", tag = "chip", params(ListIssuerKeySets),
    responses((status = 200, description = "OK", body = IssuerKeySetList), InvalidQuery))]
pub async fn list_issuer_key_sets<S: Store>(l: Listing<S, ListIssuerKeySets>) -> Answer {
    let program = Some(l.auth.program.id.as_str());
    let page = l
        .app
        .store
        .list_keys::<IssuerKeySetRow>(program, l.limit, l.after())
        .await?;
    super::page::answer(page, "issuer key set", |sets, has_more| {
        let data = sets.iter().map(IssuerKeySetView::new).collect();
        Ok(IssuerKeySetList { data, has_more })
    })
}

/// Make `unblock_pin` pending for the chip's offline PIN: the next issuer
/// script for the card carries it (nothing more if `change_pin` is pending:
/// a PIN change resets the chip's try counter).
#[utoipa::path(post, path = "/v1/cards/{id}/chip/unblock-offline-pin", operation_id = "unblockOfflinePin", tag = "chip", params(("id" = String, Path)),
    request_body(content = Option<NoFields>, description = "Optional: no body, or an empty JSON object (`Content-Type: application/json`)"),
    responses((status = 204, description = "`unblock_pin` is pending (or `change_pin` already was)"),
        CardNotFound,
        (status = 422, description = "`invalid_request`: the card has no chip data", body = Problem, content_type = "application/problem+json")))]
pub async fn unblock_offline_pin<S: Store>(Api(app, AuthId(auth, card_id), _): OnId<S>) -> Answer {
    app.unblock_offline_pin(&auth, &card_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptRequest {
    /// The authorization's chip data (DE 55) in hex: 9F26 (ARQC) and 9F36
    /// (ATC) are required, 9F5B (issuer script results) is read where present,
    /// everything else is ignored.
    #[schema(value_type = String, pattern = "^([0-9A-Fa-f]{2})*$", max_length = 1024)]
    icc_data: crate::domain::sensitive::Sensitive<String>,
    /// The host read from the chip's CVR that its PIN try counter ran out.
    #[serde(default)]
    offline_pin_blocked: bool,
}

/// The answer for the response's DE 55.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScriptResponse {
    /// One `72` template (a `9F18` script id and one `86` command) in hex, to
    /// put into the response's DE 55 as it is; `null`: nothing pending.
    pub icc_response_data: Option<String>,
    /// The command the template carries: `change_pin` or `unblock_pin`.
    pub commands: Vec<&'static str>,
}

/// At authorization: apply what the chip reported of earlier scripts, then
/// answer the issuer script for what is still pending.
#[utoipa::path(post, path = "/v1/cards/{id}/chip/scripts", operation_id = "chipScripts", tag = "chip", params(("id" = String, Path)), request_body = ScriptRequest,
    responses((status = 200, description = "The script for the pending command, or `null`", body = ScriptResponse),
        CardNotFound,
        (status = 409, description = "`pin_not_available`: a PIN CHANGE is due for a card migrated with legacy data whose PIN is not captured yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_request`: malformed `icc_data` (TLV, or 9F26/9F36 missing or of the wrong length), or a card without chip data", body = Problem, content_type = "application/problem+json")))]
pub async fn scripts<S: Store>(
    Api(app, mut found, JsonBody(body)): OnCard<S, JsonBody<ScriptRequest>>,
) -> Answer {
    let icc = crate::app::scripts::parse_icc_hex(body.icc_data.expose())?;
    let card = found.card()?;
    let answer = app
        .chip_scripts(&found.auth, card, &icc, body.offline_pin_blocked)
        .await?;
    Ok(axum::Json(ScriptResponse {
        icc_response_data: answer.icc_response_data,
        commands: answer.commands,
    })
    .into_response())
}
