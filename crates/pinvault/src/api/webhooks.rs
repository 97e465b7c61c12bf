//! Events and webhook endpoints (API.md "Webhooks and events").

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{PathId, from_value};
use super::idempotency::{self, Idempotency};
use super::responses::{IdempotencyConflict, InvalidQuery, NotFound};
use super::shapes::{Answer, Api, AuthId, Call, Idempotent, Listing, OnId, Unread};
use super::views::Problem;
use crate::domain::card::CARD_PREFIX;
use crate::domain::ids::{Secret, is_id, new_id};
use crate::domain::sensitive::Sensitive;
use crate::domain::time::{now, rfc3339};
use crate::domain::webhook_format::{SPIDR_NAMES, WebhookFormat};
use crate::events::{EVENT_PREFIX, EventType};
use crate::keys::KeyKind;
use crate::store::{DeliveryRow, Store, WebhookEndpointRow};
use crate::webhooks;

pub const ENDPOINT_PREFIX: &str = "we_";
const SECRET_PREFIX: &str = "whsec_";

/// An event: `data` always has `card_id`, never a PIN, a PIN block or a full PAN.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// `evt_…`
    pub id: String,
    /// One of those listed (each explained in docs/reference.md, "Events").
    #[serde(rename = "type")]
    #[schema(value_type = EventType)]
    pub kind: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// A page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    #[schema(value_type = Vec<EventView>)]
    pub data: Vec<Value>,
    pub has_more: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListEvents {
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The id of the last event of the previous page.
    starting_after: Option<String>,
    /// Only this card's events.
    card_id: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<EventType>)]
    kind: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// `https://…` (or `http://…`), at most 2048 characters, no user name or
    /// password. Loopback, private and link-local targets are refused unless
    /// the operator allows them.
    #[schema(max_length = 2048)]
    url: String,
    /// The event types to deliver (at least one): v1 types, or for the
    /// `spidr` format Spidr's names (`card.pinToken`,
    /// `account.pinChangeStageSuccess`, `account.pinChangeStageFail`,
    /// `card.pinChanged`, `account.pinChange`, `card.resetPin`).
    #[schema(value_type = Vec<String>)]
    events: Vec<String>,
    /// `pinvault` (the default: each event under its v1 type) or `spidr`
    /// (COMPAT.md: Spidr's webhook names; the body is the v1 event with
    /// `type` set to the Spidr name, signed the same way).
    #[schema(pattern = "^(pinvault|spidr)$")]
    format: Option<String>,
}

/// A webhook endpoint (its secret is shown only when it is created).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    /// `we_…`
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// `pinvault` or `spidr`.
    pub format: String,
    pub created_at: String,
}

/// A new webhook endpoint, with its signing secret: shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEndpoint {
    /// `we_…`
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// `pinvault` or `spidr`.
    pub format: String,
    pub created_at: String,
    /// The HMAC-SHA256 key for `Pinvault-Signature` (`whsec_…`), as UTF-8 bytes.
    #[schema(value_type = String)]
    pub secret: Sensitive<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub data: Vec<EndpointView>,
    pub has_more: bool,
}

/// One event's delivery to an endpoint, with its last attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// `whd_…`
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    /// `pending` (another attempt is due at `next_attempt_at`), `delivered`
    /// (a 2xx answer), or `failed` (retries exhausted, or the endpoint deleted).
    pub status: String,
    pub attempts: u32,
    pub last_attempt_at: Option<String>,
    /// The HTTP status of the last attempt, if one came back.
    pub last_response_code: Option<u16>,
    /// Why the last attempt failed, where no answer came back (or a redirect).
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub data: Vec<DeliveryView>,
    pub has_more: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The id of the last item of the previous page.
    starting_after: Option<String>,
}

super::shapes::paged!(Page, ListEvents);

fn endpoint_view(e: &WebhookEndpointRow) -> EndpointView {
    EndpointView {
        id: e.id.clone(),
        url: e.url.clone(),
        events: e.events.clone(),
        format: e.format.as_str().to_owned(),
        created_at: rfc3339(e.created_at),
    }
}

fn delivery_view(d: &DeliveryRow) -> DeliveryView {
    DeliveryView {
        id: d.id.clone(),
        event_id: d.event_id.clone(),
        event_type: d.event_type.clone(),
        status: d.status.as_str().to_owned(),
        attempts: d.attempts,
        last_attempt_at: d.last_attempt_at.map(rfc3339),
        last_response_code: d.last_response_code,
        last_error: d.last_error.clone(),
        next_attempt_at: d.next_attempt_at.map(rfc3339),
        delivered_at: d.delivered_at.map(rfc3339),
        created_at: rfc3339(d.created_at),
    }
}

/// The program's events, newest first.
#[utoipa::path(get, path = "/v1/events", operation_id = "listEvents", tag = "events", params(ListEvents),
    responses((status = 200, description = "OK", body = EventList), InvalidQuery))]
pub async fn list_events<S: Store>(l: Listing<S, ListEvents>) -> Answer {
    let q = &l.query;
    if let Some(t) = &q.kind {
        if EventType::parse(t).is_none() {
            return Err(ApiError::bad_request(format!(
                "`type` must be one of {}",
                EventType::list()
            )));
        }
    }
    if let Some(c) = &q.card_id {
        if !is_id(c, CARD_PREFIX) {
            return Err(ApiError::bad_request("`card_id` is not a card id"));
        }
    }
    if let Some(after) = &q.starting_after {
        if !is_id(after, EVENT_PREFIX) {
            return Err(ApiError::bad_request("`starting_after` is not an event id"));
        }
    }
    let (card, kind) = (q.card_id.as_deref(), q.kind.as_deref());
    let page = l
        .app
        .store
        .list_events(&l.auth.program.id, card, kind, l.limit, l.after())
        .await?;
    super::page::answer(page, "event of this program", |events, has_more| {
        let data = events
            .iter()
            .map(|e| serde_json::from_str(&e.body).map_err(|_| ApiError::internal()))
            .collect::<Result<_, _>>()?;
        Ok(EventList { data, has_more })
    })
}

/// Subscribe a URL to events. The answer holds the signing secret, shown only here.
#[utoipa::path(post, path = "/v1/webhook-endpoints", operation_id = "createWebhookEndpoint", tag = "events", request_body = CreateEndpoint,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[\\x21-\\x7E]{1,255}$", description = "Replays the first response for 24 h")),
    responses((status = 201, description = "Created", body = CreatedEndpoint),
        IdempotencyConflict,
        (status = 422, description = "`invalid_request`: a bad URL, a refused target, an unknown event type (or format, or a name the format does not have)", body = Problem, content_type = "application/problem+json")))]
pub async fn create_endpoint<S: Store>(
    Api(app, auth, Idempotent(headers, raw)): Call<S, Idempotent>,
) -> Answer {
    let idem = Idempotency::from_headers(
        &headers,
        &auth.program.id,
        "POST /v1/webhook-endpoints",
        &raw,
    )?;
    if let Some(replay) = idempotency::replay(&app, idem.as_ref()).await? {
        return Ok(replay);
    }
    let body: CreateEndpoint = from_value(raw)?;
    let target = webhooks::parse_url(&body.url).map_err(ApiError::invalid)?;
    webhooks::check_literal(&target, app.settings.webhooks.allow_private_targets)
        .map_err(ApiError::invalid)?;
    if body.events.is_empty() {
        return Err(ApiError::invalid(
            "`events` must name at least one event type",
        ));
    }
    let format = match body.format.as_deref() {
        None => WebhookFormat::Pinvault,
        Some(f) => WebhookFormat::parse(f)
            .ok_or_else(|| ApiError::invalid("`format` must be \"pinvault\" or \"spidr\""))?,
    };
    let v1_types = EventType::ALL.map(EventType::as_str);
    let mut events: Vec<String> = Vec::new();
    for t in &body.events {
        if !format.knows(t, &v1_types) {
            let names = match format {
                WebhookFormat::Pinvault => EventType::list(),
                WebhookFormat::Spidr => SPIDR_NAMES.map(|(n, _)| n).join(", "),
            };
            return Err(ApiError::invalid(format!("`events` may hold only {names}")));
        }
        if !events.contains(t) {
            events.push(t.clone());
        }
    }
    let id = new_id(ENDPOINT_PREFIX);
    let secret = Secret::generate(SECRET_PREFIX);
    let (secret_key_version, secret_sealed) = app.keys.seal(
        KeyKind::Webhook,
        secret.expose().as_bytes(),
        &webhooks::secret_aad(&id),
    )?;
    let row = WebhookEndpointRow {
        id: id.clone(),
        program_id: auth.program.id.clone(),
        url: body.url,
        events,
        secret_sealed,
        secret_key_kind: KeyKind::Webhook,
        secret_key_version,
        created_at: now(),
        format,
    };
    let view = CreatedEndpoint {
        id: row.id.clone(),
        url: row.url.clone(),
        events: row.events.clone(),
        format: format.as_str().to_owned(),
        created_at: rfc3339(row.created_at),
        secret: Sensitive::new(secret.expose().to_owned()),
    };
    let audit = auth.program_audit(
        "webhook_endpoint.created",
        serde_json::json!({
            "endpoint_id": id, "url": row.url, "events": row.events, "format": format.as_str(),
        }),
    );
    tracing::info!(endpoint_id = %id, actor = %auth.name(), "webhook endpoint created");
    idempotency::create(&app, idem, &view, |idem_row| {
        app.store.create_webhook_endpoint(row, idem_row, audit)
    })
    .await
}

/// The program's webhook endpoints, newest first (never their secrets).
#[utoipa::path(get, path = "/v1/webhook-endpoints", operation_id = "listWebhookEndpoints", tag = "events", params(Page),
    responses((status = 200, description = "OK", body = EndpointList), InvalidQuery))]
pub async fn list_endpoints<S: Store>(l: Listing<S, Page>) -> Answer {
    let page = l
        .app
        .store
        .list_webhook_endpoints(&l.auth.program.id, l.limit, l.after())
        .await?;
    super::page::answer(
        page,
        "webhook endpoint of this program",
        |rows, has_more| {
            let data = rows.iter().map(endpoint_view).collect();
            Ok(EndpointList { data, has_more })
        },
    )
}

/// Delete an endpoint: nothing more is delivered to it; its pending deliveries fail.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", operation_id = "deleteWebhookEndpoint", tag = "events", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"),
        NotFound))]
pub async fn delete_endpoint<S: Store>(
    Api(app, AuthId(auth, id), Unread): OnId<S, Unread>,
) -> Answer {
    if !is_id(&id, ENDPOINT_PREFIX)
        || !app
            .store
            .delete_webhook_endpoint(
                &auth.program.id,
                &id,
                now(),
                auth.program_audit(
                    "webhook_endpoint.deleted",
                    serde_json::json!({ "endpoint_id": id }),
                ),
            )
            .await?
    {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    tracing::info!(endpoint_id = %id, actor = %auth.name(), "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// An endpoint's deliveries, newest first: status, attempts, the last
/// attempt's answer or error, and when the next attempt is due.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", operation_id = "listWebhookDeliveries", tag = "events",
    params(("id" = String, Path), Page),
    responses((status = 200, description = "OK", body = DeliveryList),
        InvalidQuery,
        NotFound))]
pub async fn list_deliveries<S: Store>(l: Listing<S, Page>, PathId(id): PathId) -> Answer {
    let app = &l.app;
    if !is_id(&id, ENDPOINT_PREFIX)
        || app
            .store
            .get_webhook_endpoint(&l.auth.program.id, &id)
            .await?
            .is_none()
    {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    let page = app.store.list_deliveries(&id, l.limit, l.after()).await?;
    super::page::answer(page, "delivery of this endpoint", |rows, has_more| {
        let data = rows.iter().map(delivery_view).collect();
        Ok(DeliveryList { data, has_more })
    })
}
