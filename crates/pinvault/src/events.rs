//! Events: what happened to a card, for the program to react to. Each is
//! written to the outbox (the `events` table, with a delivery row for every
//! subscribed webhook endpoint) in the transaction that makes the change, so
//! an event exists exactly when its change does. `webhooks` delivers them.
//!
//! An event never carries a PIN, a PIN block or a full PAN (`last4` only).

use serde_json::{Map, Value, json};

use crate::domain::ids::new_id;
use crate::domain::time::{now, rfc3339};
use crate::store::EventRow;

pub const EVENT_PREFIX: &str = "evt_";

/// The event types of API.md. `pin.staged` and `pin.stage_failed` belong to
/// the staged PIN set mode (`pin_set_mode` `staged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    CardCreated,
    PinTokenCreated,
    PinChanged,
    PinStaged,
    PinStageFailed,
    PinRevealed,
    PinVerificationFailed,
    PinBlocked,
    PinUnblocked,
    PinChangeReversed,
    PinChipUpdated,
    PinChipUpdateFailed,
    PinOfflineBlocked,
    PinExported,
    PinFailCountReset,
}

impl EventType {
    pub const ALL: [EventType; 15] = [
        EventType::CardCreated,
        EventType::PinTokenCreated,
        EventType::PinChanged,
        EventType::PinStaged,
        EventType::PinStageFailed,
        EventType::PinRevealed,
        EventType::PinVerificationFailed,
        EventType::PinBlocked,
        EventType::PinUnblocked,
        EventType::PinChangeReversed,
        EventType::PinChipUpdated,
        EventType::PinChipUpdateFailed,
        EventType::PinOfflineBlocked,
        EventType::PinExported,
        EventType::PinFailCountReset,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CardCreated => "card.created",
            EventType::PinTokenCreated => "pin.token_created",
            EventType::PinChanged => "pin.changed",
            EventType::PinStaged => "pin.staged",
            EventType::PinStageFailed => "pin.stage_failed",
            EventType::PinRevealed => "pin.revealed",
            EventType::PinVerificationFailed => "pin.verification_failed",
            EventType::PinBlocked => "pin.blocked",
            EventType::PinUnblocked => "pin.unblocked",
            EventType::PinChangeReversed => "pin.change_reversed",
            EventType::PinChipUpdated => "pin.chip_updated",
            EventType::PinChipUpdateFailed => "pin.chip_update_failed",
            EventType::PinOfflineBlocked => "pin.offline_blocked",
            EventType::PinExported => "pin.exported",
            EventType::PinFailCountReset => "pin.fail_count_reset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// `card.created, pin.token_created, …` for error messages.
    pub fn list() -> String {
        Self::ALL.map(EventType::as_str).join(", ")
    }
}

/// In the OpenAPI document: a string, one of [`EventType::ALL`].
impl utoipa::PartialSchema for EventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("An event type (docs/reference.md, \"Events\")."))
            .enum_values(Some(Self::ALL.map(EventType::as_str)))
            .into()
    }
}

impl utoipa::ToSchema for EventType {}

/// A new event about `card_id`: `{"id","type","created_at","data":{"card_id",…}}`.
/// `data` must be a JSON object and hold no secret.
pub fn event(program_id: &str, card_id: &str, kind: EventType, data: Value) -> EventRow {
    let id = new_id(EVENT_PREFIX);
    let t = now();
    let mut d = Map::new();
    d.insert("card_id".into(), Value::String(card_id.to_owned()));
    if let Value::Object(extra) = data {
        d.extend(extra);
    }
    let body = json!({
        "id": id,
        "type": kind.as_str(),
        "created_at": rfc3339(t),
        "data": d,
    });
    EventRow {
        id,
        program_id: program_id.to_owned(),
        card_id: Some(card_id.to_owned()),
        kind: kind.as_str().to_owned(),
        created_at: t,
        body: body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let e = event(
            "prg_a",
            "card_b",
            EventType::PinBlocked,
            json!({"fail_count": 3}),
        );
        let v: Value = serde_json::from_str(&e.body).unwrap_or_default();
        assert_eq!(v["type"], "pin.blocked");
        assert_eq!(v["data"]["card_id"], "card_b");
        assert_eq!(v["data"]["fail_count"], 3);
        assert!(v["id"].as_str().is_some_and(|i| i.starts_with("evt_")));
        assert!(v["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("pin.nope"), None);
    }
}
