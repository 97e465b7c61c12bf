//! Spidr (`/compat/spidr/v1`): the PIN change token (a `set_pin` token whose
//! PIN is always staged, Spidr's flow), the commit, the fail count reset and
//! the card's PIN data. Webhook endpoints with `"format":"spidr"` get Spidr's
//! names (`domain::webhook_format`). Errors in problem+json, as v1.

use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{CardErrors, Named, NamedCard, answer};
use crate::api::extract::{NoBodyOrJson, NoFields};
use crate::api::limits::{self, Operation};
use crate::api::shapes::{Answer, Api, Unread};
use crate::api::views::Problem;
use crate::app::pin::UnblockNote;
use crate::app::tokens::TokenOptions;
use crate::domain::sensitive::Sensitive;
use crate::domain::time::rfc3339;
use crate::domain::token::TokenType;
use crate::store::Store;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpidrToken {
    /// `pct_…`
    #[schema(value_type = String)]
    token: Sensitive<String>,
    /// The hosted set widget with the token.
    #[schema(value_type = String)]
    url: Sensitive<String>,
    /// When the token stops working (the program's `set_token_ttl_s`).
    expires_at: String,
    /// Attempts left (the program's `set_token_attempts`).
    attempts_remaining: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SpidrCommitted {
    /// `committed`
    status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpidrReset {
    /// The fail count after the reset: 0.
    pin_fail_count: u32,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpidrCard {
    /// `card_…`
    card_id: String,
    /// The PAN's last four digits.
    last4: String,
    /// `active`, `inactive` or `suspended`.
    status: &'static str,
    /// Wrong PINs since the last reset or new PIN.
    pin_fail_count: u32,
    /// The last failed verification, if any since the last reset.
    pin_fail_date: Option<String>,
}

/// Spidr's Get PIN Change Token: a `set_pin` token and the set widget's URL;
/// the PIN set with it is staged until `commitPinChange`, whatever the
/// program's `pin_set_mode`.
#[utoipa::path(get, path = "/compat/spidr/v1/card/{id}/pinChangeToken", operation_id = "spidrPinChangeToken", tag = "spidr",
    params(("id" = String, Path, description = "The card's id or `external_id`")),
    responses((status = 200, description = "A new token (older unused ones stop working)", body = SpidrToken),
        CardErrors))]
pub async fn pin_change_token<S: Store>(
    Api(app, NamedCard { auth, card }, Unread): Named<S, Unread>,
) -> Answer {
    limits::check(&app, Operation::CreateToken, &auth, &card.id)?;
    let options = TokenOptions {
        always_staged: true,
        ..TokenOptions::default()
    };
    let token = app.new_token_with(&auth, &card, TokenType::SetPin, None, options)?;
    let view = SpidrToken {
        token: Sensitive::new(token.secret.expose().to_owned()),
        url: Sensitive::new(format!(
            "{}{}",
            app.settings.public_url,
            token.widget_path()
        )),
        expires_at: rfc3339(token.row.expires_at),
        attempts_remaining: token.row.attempts_remaining,
    };
    app.save_token(&auth, token, None).await?;
    Ok(answer(StatusCode::OK, &view))
}

/// Spidr's Commit PIN Change: the staged PIN becomes the card's PIN.
#[utoipa::path(post, path = "/compat/spidr/v1/card/{id}/commitPinChange", operation_id = "spidrCommitPinChange", tag = "spidr",
    params(("id" = String, Path, description = "The card's id or `external_id`")),
    request_body(content = Option<NoFields>, description = "Optional: no body, or an empty JSON object"),
    responses((status = 200, description = "Committed", body = SpidrCommitted),
        CardErrors,
        (status = 409, description = "`nothing_staged`: no staged PIN, or it expired (with its token), or another commit took it; `card_ambiguous`: several of the program's cards carry this `external_id`", body = Problem, content_type = "application/problem+json")))]
pub async fn commit<S: Store>(
    Api(app, NamedCard { auth, card }, NoBodyOrJson(_)): Named<S, NoBodyOrJson<NoFields>>,
) -> Answer {
    app.commit_staged_pin(&auth, &card.id).await?;
    Ok(answer(
        StatusCode::OK,
        &SpidrCommitted {
            status: "committed",
        },
    ))
}

/// Spidr's Reset Card PIN Fail Count: the count to 0, the PIN unblocked and a
/// card PIN blocking made inactive reactivated.
#[utoipa::path(post, path = "/compat/spidr/v1/card/{id}/resetPinFailCount", operation_id = "spidrResetPinFailCount", tag = "spidr",
    params(("id" = String, Path, description = "The card's id or `external_id`")),
    request_body(content = Option<NoFields>, description = "Optional: no body, or an empty JSON object"),
    responses((status = 200, description = "Reset", body = SpidrReset),
        CardErrors))]
pub async fn reset<S: Store>(
    Api(app, NamedCard { auth, card }, NoBodyOrJson(_)): Named<S, NoBodyOrJson<NoFields>>,
) -> Answer {
    let after = app
        .unblock_pin(&auth, &card.id, UnblockNote::default())
        .await?;
    Ok(answer(
        StatusCode::OK,
        &SpidrReset {
            pin_fail_count: after.fail_count,
        },
    ))
}

/// Spidr's Get Card Info: the card with its PIN fail data.
#[utoipa::path(get, path = "/compat/spidr/v1/card/{id}", operation_id = "spidrCard", tag = "spidr",
    params(("id" = String, Path, description = "The card's id or `external_id`")),
    responses((status = 200, description = "The card", body = SpidrCard),
        CardErrors))]
pub async fn card(NamedCard { card, .. }: NamedCard) -> Answer {
    Ok(answer(
        StatusCode::OK,
        &SpidrCard {
            card_id: card.id.clone(),
            last4: card.last4.clone(),
            status: card.status.as_str(),
            pin_fail_count: card.fail_count,
            pin_fail_date: card.last_failed_at.map(rfc3339),
        },
    ))
}
