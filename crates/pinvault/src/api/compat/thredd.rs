//! Thredd (`/compat/thredd`): set the PIN (no control token: in clear, so the
//! program needs `allow_plaintext_pin`), get it (`allow_plaintext_reveal`),
//! its status with the remaining tries as a string, and the unblock with
//! `description` and `updatedBy`. Errors in problem+json, as v1.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::{CardErrors, Named, NamedCard, answer};
use crate::api::error::ApiError;
use crate::api::extract::{OptionalJsonBody, unreadable};
use crate::api::limits::{self, Operation};
use crate::api::shapes::{Answer, Api, Unread};
use crate::app::App;
use crate::app::pin::{PinText, UnblockNote};
use crate::store::Store;

/// Thredd's set body: `{"pin":"0000"}`, or `{"pin":0000}` as Thredd's own
/// example writes it (a bare number, leading zeros and all: its digits as
/// written are the PIN).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThreddSetPin {
    /// The new PIN: a string of digits, or a bare number whose digits as written are the PIN.
    #[schema(value_type = String, pattern = "^[0-9]{4,12}$")]
    pin: Zeroizing<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThreddPin {
    /// The card's PIN.
    #[schema(value_type = String)]
    pin: Zeroizing<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThreddStatus {
    /// `Unblocked` or `Blocked`.
    status: &'static str,
    /// Tries left before the PIN blocks, as a string (as Thredd sends it).
    #[serde(rename = "remainingTries")]
    remaining_tries: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThreddUnblock {
    /// Why the PIN is unblocked: recorded in the audit trail (never a card number).
    #[schema(max_length = 500)]
    description: Option<String>,
    /// Who unblocked it: recorded in the audit trail as `updated_by`.
    #[serde(rename = "updatedBy")]
    #[schema(max_length = 500)]
    updated_by: Option<String>,
}

/// Quotes a bare run of digits given as the value of `"pin"`, so that
/// `{"pin": 0000}` reads as the string `"0000"`; anything else is left for
/// the JSON parser to judge.
fn quote_bare_pin(text: &str) -> Option<Zeroizing<String>> {
    let key = text.find("\"pin\"")? + 5;
    let rest = &text[key..];
    let colon = key + rest.find(|c: char| !c.is_ascii_whitespace())?;
    if text.as_bytes().get(colon) != Some(&b':') {
        return None;
    }
    let after = &text[colon + 1..];
    let start = colon + 1 + after.find(|c: char| !c.is_ascii_whitespace())?;
    let len = text[start..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len() - start);
    let end = start + len;
    let next = text[end..].trim_start().chars().next();
    if len == 0 || !matches!(next, Some(',' | '}')) {
        return None;
    }
    let mut quoted = Zeroizing::new(String::with_capacity(text.len() + 2));
    quoted.push_str(&text[..start]);
    quoted.push('"');
    quoted.push_str(&text[start..end]);
    quoted.push('"');
    quoted.push_str(&text[end..]);
    Some(quoted)
}

/// The body read as every JSON body is (`extract::parse`), once a bare
/// number given as the PIN is quoted.
fn set_body(bytes: &[u8]) -> Result<ThreddSetPin, ApiError> {
    let quoted = std::str::from_utf8(bytes).ok().and_then(quote_bare_pin);
    crate::api::extract::parse(quoted.as_deref().map_or(bytes, |q| q.as_bytes()))
}

/// Thredd's Set Card PIN: the PIN in clear, no control token (the program
/// needs `allow_plaintext_pin`). Any content type: Thredd asks for JSON
/// only on the unblock.
#[utoipa::path(post, path = "/compat/thredd/cards/{id}/pin", operation_id = "threddSetPin", tag = "thredd",
    params(("id" = String, Path, description = "The card's id or `external_id` (Thredd's public token)")),
    request_body = ThreddSetPin,
    responses((status = 204, description = "The PIN is set"),
        (status = 403, description = "`plaintext_not_allowed`", body = crate::api::views::Problem, content_type = "application/problem+json"),
        CardErrors,
        (status = 422, description = "`invalid_pin`, `weak_pin`, `invalid_request`", body = crate::api::views::Problem, content_type = "application/problem+json")))]
pub async fn set_pin<S: Store>(
    State(app): State<Arc<App<S>>>,
    NamedCard { auth, card }: NamedCard,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = set_body(&body.map_err(unreadable)?)?;
    app.set_pin_directly(&auth, &card, PinText::Clear(body.pin))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Thredd's Get PIN: the PIN in clear (the program needs reveal on and
/// `allow_plaintext_reveal`).
#[utoipa::path(get, path = "/compat/thredd/cards/{id}/pin", operation_id = "threddGetPin", tag = "thredd",
    params(("id" = String, Path, description = "The card's id or `external_id`")),
    responses((status = 200, description = "The PIN", body = ThreddPin),
        (status = 403, description = "`reveal_disabled`, `plaintext_not_allowed`", body = crate::api::views::Problem, content_type = "application/problem+json"),
        CardErrors,
        (status = 409, description = "`pin_not_available`: a migrated card whose PIN no verification has captured yet; `card_ambiguous`: several of the program's cards carry this `external_id`", body = crate::api::views::Problem, content_type = "application/problem+json")))]
pub async fn get_pin<S: Store>(
    Api(app, NamedCard { auth, card }, Unread): Named<S, Unread>,
) -> Answer {
    limits::check(&app, Operation::Reveal, &auth, &card.id)?;
    let pin = app.reveal_pin_directly(&auth, &card).await?;
    Ok(answer(StatusCode::OK, &ThreddPin { pin }))
}

/// Thredd's Get PIN Status.
#[utoipa::path(get, path = "/compat/thredd/cards/{id}/pin/status", operation_id = "threddPinStatus", tag = "thredd",
    params(("id" = String, Path, description = "The card's id or `external_id`")),
    responses((status = 200, description = "The PIN's status", body = ThreddStatus),
        CardErrors))]
pub async fn status(NamedCard { auth, card }: NamedCard) -> Answer {
    let remaining = u32::from(auth.program.settings.max_tries).saturating_sub(card.fail_count);
    Ok(answer(
        StatusCode::OK,
        &ThreddStatus {
            status: if card.pin_blocked {
                "Blocked"
            } else {
                "Unblocked"
            },
            remaining_tries: remaining.to_string(),
        },
    ))
}

/// Thredd's Unblock PIN: resets the fail count (blocked or not) and
/// reactivates a card PIN blocking made inactive. Needs
/// `Content-Type: application/json` (415 otherwise), as Thredd does.
#[utoipa::path(post, path = "/compat/thredd/cards/{id}/pin/unblock", operation_id = "threddUnblockPin", tag = "thredd",
    params(("id" = String, Path, description = "The card's id or `external_id`")),
    request_body = ThreddUnblock,
    responses((status = 204, description = "Unblocked"),
        CardErrors))]
pub async fn unblock<S: Store>(
    Api(app, NamedCard { auth, card }, OptionalJsonBody(body)): Named<
        S,
        OptionalJsonBody<ThreddUnblock>,
    >,
) -> Answer {
    let note = UnblockNote {
        description: body.description,
        updated_by: body.updated_by,
    };
    app.unblock_pin(&auth, &card.id, note).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::quote_bare_pin;

    #[test]
    fn a_bare_number_keeps_its_digits_as_written() {
        let q = |t: &str| quote_bare_pin(t).map(|s| s.to_string());
        assert_eq!(q(r#"{"pin": 0000}"#).as_deref(), Some(r#"{"pin": "0000"}"#));
        assert_eq!(
            q("{\n\"pin\":0123\n}").as_deref(),
            Some("{\n\"pin\":\"0123\"\n}")
        );
        assert_eq!(q(r#"{"pin": "0000"}"#), None);
        assert_eq!(q(r#"{"pin": 12.5}"#), None);
        assert_eq!(q(r#"{"pin": 1e3}"#), None);
        assert_eq!(q(r#"{"pin": -12}"#), None);
        assert_eq!(q(r#"{"pin"}"#), None);
        assert_eq!(q(r#"{"pin":"#), None);
    }
}
