//! What the API answers, as types: the handlers serialize these, and the OpenAPI
//! document is generated from the same types.

use serde::Serialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::domain::program::Settings;
use crate::domain::sensitive::Sensitive;
use crate::domain::time::rfc3339;
use crate::store::{CardRow, ProgramRow};

/// A card. Never the PAN beyond its last four digits, never the PIN in any form.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardView {
    /// `card_…`
    pub id: String,
    pub last4: String,
    /// `YYYY-MM`
    pub expiry: Option<String>,
    pub external_id: Option<String>,
    /// `active`, `inactive` or `suspended`.
    pub status: String,
    pub pin: PinStatusView,
    /// A chip card's offline PIN (EMV); `null` for a card without chip data.
    pub chip: Option<ChipView>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
}

/// A chip card's issuer keys, sequence number and what its chip still has to
/// be told by an issuer script.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChipView {
    /// `iks_…`
    pub issuer_key_set_id: String,
    /// Two digits.
    pub pan_sequence_number: String,
    /// `in_sync`, `update_pending` or `blocked`.
    #[schema(pattern = "^(in_sync|update_pending|blocked)$")]
    pub offline_pin: &'static str,
    /// `change_pin`, `unblock_pin`: what the next script for this card carries.
    pub pending_commands: Vec<&'static str>,
    pub last_script_at: Option<String>,
    /// `success` or `failed`.
    pub last_script_result: Option<&'static str>,
}

impl ChipView {
    pub fn new(chip: &crate::store::ChipData) -> Self {
        ChipView {
            issuer_key_set_id: chip.issuer_key_set_id.clone(),
            pan_sequence_number: chip.pan_sequence_number.clone(),
            offline_pin: chip.state.offline_pin.as_str(),
            pending_commands: chip
                .state
                .pending_commands()
                .iter()
                .map(|c| c.as_str())
                .collect(),
            last_script_at: chip.state.last_script_at.map(rfc3339),
            last_script_result: chip.state.last_script_result.map(|r| r.as_str()),
        }
    }
}

/// The state of a card's PIN.
#[derive(Debug, Serialize, ToSchema)]
pub struct PinStatusView {
    /// `unblocked` or `blocked`.
    pub status: String,
    pub remaining_tries: u32,
    pub fail_count: u32,
    pub last_failed_at: Option<String>,
    /// `random`, `issuer` or `cardholder`.
    pub set_by: String,
    pub updated_at: String,
    /// Whether a staged PIN (staged mode) awaits commit: true until it is
    /// committed, replaced by a direct set, or expires with its token.
    pub staged: bool,
    /// How the PIN is verified: `stored` (pinvault holds it), or for a card
    /// migrated with legacy data and not yet captured by a matching
    /// verification, `visa_pvv` or `ibm_3624`.
    #[schema(pattern = "^(stored|visa_pvv|ibm_3624)$")]
    pub verification: &'static str,
}

impl CardView {
    pub fn new(card: &CardRow, settings: &Settings) -> Self {
        CardView {
            id: card.id.clone(),
            last4: card.last4.clone(),
            expiry: card.expiry.clone(),
            external_id: card.external_id.clone(),
            status: card.status.as_str().to_owned(),
            pin: PinStatusView::new(card, settings),
            chip: card.chip.as_ref().map(ChipView::new),
            created_at: rfc3339(card.created_at),
            updated_at: rfc3339(card.updated_at),
        }
    }
}

impl PinStatusView {
    pub fn new(card: &CardRow, settings: &Settings) -> Self {
        PinStatusView {
            status: if card.pin_blocked {
                "blocked"
            } else {
                "unblocked"
            }
            .to_owned(),
            remaining_tries: u32::from(settings.max_tries).saturating_sub(card.fail_count),
            fail_count: card.fail_count,
            last_failed_at: card.last_failed_at.map(rfc3339),
            set_by: card.pin_set_by.as_str().to_owned(),
            updated_at: rfc3339(card.pin_updated_at),
            staged: card.has_staged_pin(crate::domain::time::now()),
            verification: crate::domain::legacy::verification(card.legacy.as_ref()),
        }
    }
}

/// A page of cards, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardList {
    pub data: Vec<CardView>,
    pub has_more: bool,
}

/// A control token: shown once, the credential for one PIN operation on one card.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// `pct_…`: a secret; only its hash is stored.
    #[schema(value_type = String)]
    pub token: Sensitive<String>,
    /// `set_pin` or `reveal_pin`.
    #[serde(rename = "type")]
    pub kind: String,
    pub card_id: String,
    pub expires_at: String,
    pub attempts_remaining: u32,
    /// The hosted widget for this token.
    #[schema(value_type = String)]
    pub widget_url: Sensitive<String>,
}

/// A PIN revealed in clear (only where the program allows it).
#[derive(Serialize, ToSchema)]
pub struct RevealedPin {
    #[schema(value_type = String)]
    pub pin: Zeroizing<String>,
}

impl std::fmt::Debug for RevealedPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevealedPin(<redacted>)")
    }
}

/// A PIN encrypted to the device key of the request: a compact JWE (`alg`
/// `ECDH-ES`, `enc` `A256GCM`, the ephemeral key in `epk`) whose plaintext is
/// `{"pin":"1234","card_id":"card_…"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EncryptedPin {
    pub encrypted_pin: String,
}

/// What a reveal answers: encrypted to the device key, or (only where the
/// program allows it, and no device key was given) in clear.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum RevealResponse {
    Encrypted(EncryptedPin),
    Clear(RevealedPin),
}

/// A device's public EC P-256 key, as a JWK (RFC 7517).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceJwk {
    /// `EC`
    #[schema(pattern = "^EC$")]
    pub kty: String,
    /// `P-256`
    #[schema(pattern = "^P-256$")]
    pub crv: String,
    /// The point's x coordinate, 32 bytes, base64url without padding.
    pub x: String,
    /// The point's y coordinate, 32 bytes, base64url without padding.
    pub y: String,
    /// Copied into the JWE header, for the device to pick its key.
    pub kid: Option<String>,
}

/// A published PIN encryption key (RSA public key, RFC 7517).
#[derive(Debug, Serialize, ToSchema)]
pub struct PinEncryptionKey {
    /// `RSA`
    pub kty: String,
    /// The RFC 7638 thumbprint of the key; name it in the JWE header's `kid`.
    pub kid: String,
    /// `enc`
    #[serde(rename = "use")]
    pub use_: String,
    /// `RSA-OAEP-256` (`RSA-OAEP` is accepted too).
    pub alg: String,
    /// Modulus, base64url.
    pub n: String,
    /// Public exponent, base64url.
    pub e: String,
}

/// The PIN encryption keys in service, newest first: encrypt to the first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PinEncryptionKeys {
    pub keys: Vec<PinEncryptionKey>,
}

/// The calling program.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgramView {
    /// `prg_…`
    pub id: String,
    pub name: String,
    /// `test` or `live`.
    pub mode: String,
    pub settings: Settings,
    pub created_at: String,
    pub updated_at: String,
}

impl ProgramView {
    pub fn new(p: &ProgramRow) -> Self {
        ProgramView {
            id: p.id.clone(),
            name: p.name.clone(),
            mode: p.mode.as_str().to_owned(),
            settings: p.settings.clone(),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

/// An error (RFC 9457 problem details, `application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:pinvault:problem:<code>`
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable code, one of those listed (each explained in the repository's
    /// docs/reference.md, "Error codes").
    #[schema(value_type = super::error::Code)]
    pub code: String,
}

/// Health or readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    /// `ok`, `ready` or `unavailable`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_provider: Option<String>,
}
