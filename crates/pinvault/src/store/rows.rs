//! The rows the store reads and writes, as the rest of the service sees them.

pub use crate::domain::audit::AuditEntry;
use crate::domain::card::PinState;
pub use crate::domain::card::{CardStatus, PinFailure, SetBy};
use crate::domain::chip::ChipState;
use crate::domain::ids::SecretHash;
use crate::domain::program::{Mode, Settings};
use crate::domain::time::Timestamp;
use crate::domain::token::TokenType;
use crate::domain::zone_key::{Grants, Usage};
use crate::keys::tr31::Tr31Origin;
use crate::keys::{KeyKind, ZoneAlgorithm};

#[derive(Debug, Clone)]
pub struct ProgramRow {
    pub id: String,
    pub name: String,
    pub mode: Mode,
    pub settings: Settings,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: String,
    pub program_id: String,
    pub key_hash: SecretHash,
    /// The key's prefix and first characters, to tell keys apart in listings.
    pub hint: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A stored PIN: the enciphered block and the key version that protects it.
#[derive(Clone)]
pub struct PinWrite {
    pub block: Vec<u8>,
    pub key_version: u32,
    pub set_by: SetBy,
}

debug_fields!(PinWrite: key_version, set_by);

#[derive(Debug, Clone)]
pub struct CardRow {
    pub id: String,
    pub program_id: String,
    pub pan_hash: Vec<u8>,
    pub lookup_key_version: u32,
    pub pan_sealed: Vec<u8>,
    pub pan_key_version: u32,
    pub last4: String,
    pub expiry: Option<String>,
    pub external_id: Option<String>,
    pub status: CardStatus,
    /// The card became inactive because its PIN was blocked (reactivating it
    /// unblocks the PIN, and unblocking the PIN reactivates it).
    pub inactive_by_block: bool,
    pub pin_block: Vec<u8>,
    pub pin_key_version: u32,
    pub pin_set_by: SetBy,
    pub pin_updated_at: Timestamp,
    pub fail_count: u32,
    pub last_failed_at: Option<Timestamp>,
    pub pin_blocked: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the staged PIN (staged mode) expires; `None` when nothing is
    /// staged. An expired one counts as absent until it is removed.
    pub staged_expires_at: Option<Timestamp>,
    /// The `set_pin` token that staged the PIN.
    pub staged_token_id: Option<String>,
    /// The staged PIN, enciphered like `pin_block`, and its key version.
    pub staged_pin_block: Option<Vec<u8>>,
    pub staged_pin_key_version: Option<u32>,
    /// A chip card's chip data; `None` for a card without one.
    pub chip: Option<ChipData>,
    /// Legacy verification data (`pin_block` then holds the PVV or offset,
    /// not a PIN); `None`: the PIN is stored.
    pub legacy: Option<crate::domain::legacy::Legacy>,
}

/// A chip card's issuer keys, sequence number and offline-PIN state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipData {
    pub issuer_key_set_id: String,
    pub pan_sequence_number: String,
    pub state: ChipState,
}

/// A card's PAN as stored: sealed, and its keyed hash (how it is found).
#[derive(Debug, Clone)]
pub struct SealedPan {
    pub hash: Vec<u8>,
    pub lookup_key_version: u32,
    pub sealed: Vec<u8>,
    pub key_version: u32,
    pub last4: String,
}

impl CardRow {
    /// A new card: active, with `pin`, no try counted, nothing staged.
    pub fn issued(
        id: String,
        program_id: String,
        pan: SealedPan,
        pin: PinWrite,
        expiry: Option<String>,
        external_id: Option<String>,
        now: Timestamp,
    ) -> CardRow {
        CardRow {
            id,
            program_id,
            pan_hash: pan.hash,
            lookup_key_version: pan.lookup_key_version,
            pan_sealed: pan.sealed,
            pan_key_version: pan.key_version,
            last4: pan.last4,
            expiry,
            external_id,
            status: CardStatus::Active,
            inactive_by_block: false,
            pin_block: pin.block,
            pin_key_version: pin.key_version,
            pin_set_by: pin.set_by,
            pin_updated_at: now,
            fail_count: 0,
            last_failed_at: None,
            pin_blocked: false,
            created_at: now,
            updated_at: now,
            staged_expires_at: None,
            staged_token_id: None,
            staged_pin_block: None,
            staged_pin_key_version: None,
            chip: None,
            legacy: None,
        }
    }

    /// A card for tests: issued at `now` with a random PIN, no expiry.
    #[cfg(test)]
    pub(crate) fn for_test(
        id: String,
        program_id: String,
        pan_hash: Vec<u8>,
        now: Timestamp,
    ) -> CardRow {
        let pan = SealedPan {
            hash: pan_hash,
            lookup_key_version: 1,
            sealed: vec![1, 2, 3],
            key_version: 1,
            last4: "1111".into(),
        };
        let pin = PinWrite {
            block: vec![9; 16],
            key_version: 1,
            set_by: SetBy::Random,
        };
        CardRow::issued(id, program_id, pan, pin, None, None, now)
    }

    /// The card's status and PIN tries, for the rules in `domain::card`.
    pub fn pin_state(&self) -> PinState {
        PinState {
            status: self.status,
            inactive_by_block: self.inactive_by_block,
            fail_count: self.fail_count,
            pin_blocked: self.pin_blocked,
            last_failed_at: self.last_failed_at,
        }
    }

    /// Whether a staged PIN awaits commit at `now`.
    pub fn has_staged_pin(&self, now: Timestamp) -> bool {
        self.staged_expires_at.is_some_and(|t| t > now)
    }
}

/// What redeeming a `set_pin` token does to the card's PIN.
#[derive(Debug, Clone)]
pub enum PinChange {
    /// The PIN becomes the card's PIN at once (fail count reset, unblocked);
    /// a staged PIN is discarded.
    Set(PinWrite),
    /// Staged mode: the PIN waits, until `expires_at`, for a commit; it
    /// replaces whatever was staged before. The card's PIN does not change.
    Stage {
        pin: PinWrite,
        expires_at: Timestamp,
    },
}

/// An API key, its program, and the card asked for if that program has it.
pub type AuthenticatedCard = (ApiKeyRow, ProgramRow, Option<CardRow>);

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub token_hash: SecretHash,
    pub card_id: String,
    pub kind: TokenType,
    pub cvm: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub attempts_remaining: u32,
    pub used_at: Option<Timestamp>,
    pub superseded_at: Option<Timestamp>,
    /// A `set_pin` token whose PIN is staged whatever the program's
    /// `pin_set_mode` (Spidr's `pinChangeToken`, COMPAT.md).
    pub always_staged: bool,
}

/// A symmetric key as stored: named, wrapped by the master key, with its
/// check value. A key block protection key is one; a zone key is one with
/// a usage and grants.
#[derive(Debug, Clone)]
pub struct WrappedKey {
    pub id: String,
    pub name: String,
    pub algorithm: ZoneAlgorithm,
    /// Key check value, 6 upper-case hex digits.
    pub kcv: String,
    pub wrapped: Vec<u8>,
    pub created_at: Timestamp,
}

/// A zone PIN key as stored.
#[derive(Debug, Clone)]
pub struct ZoneKeyRow {
    pub key: WrappedKey,
    pub usage: Usage,
    /// Which programs may use it.
    pub grants: Grants,
    /// The TR-31 key block it arrived in, if it did (else from components).
    pub tr31: Option<Tr31Origin>,
}

/// A key block protection key as stored: nothing but the wrapped key.
pub type KbpkRow = WrappedKey;

/// A key wrapped by the master key, re-wrapped under another provider
/// (`pinvault keys migrate`). Applied only if the row still holds `old`.
#[derive(Debug, Clone)]
pub struct MasterRewrap {
    pub of: Rewrapped,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// The row of a [`MasterRewrap`]: a data key, or a key by its id.
#[derive(Debug, Clone)]
pub enum Rewrapped {
    DataKey { kind: KeyKind, version: u32 },
    ZoneKey(String),
    IssuerKey(String, crate::keys::issuer::Part),
    PinVerificationKey(String),
    Kbpk(String),
}

/// A program's issuer master keys for chip cards, wrapped by the master key.
#[derive(Debug, Clone)]
pub struct IssuerKeySetRow {
    pub id: String,
    pub program_id: String,
    pub name: String,
    pub cvn: crate::domain::chip::Cvn,
    /// The check values of the AC, SMI and SMC keys, in that order.
    pub kcv: [String; 3],
    /// The AC, SMI and SMC keys, wrapped.
    pub wrapped: [Vec<u8>; 3],
    pub created_at: Timestamp,
    /// The TR-31 key block each key arrived in, if it did.
    pub tr31: [Option<Tr31Origin>; 3],
}

/// A program's PIN verification key (Visa PVK or IBM 3624), wrapped by the
/// master key.
#[derive(Debug, Clone)]
pub struct PvkRow {
    pub id: String,
    pub program_id: String,
    pub name: String,
    pub method: crate::domain::legacy::Method,
    pub kcv: String,
    pub wrapped: Vec<u8>,
    /// IBM 3624's parameters (`None` for a Visa PVK).
    pub params: Option<pinblock::ibm3624::Ibm3624Params>,
    /// What its TR-31 key block said of it (`None`: from components).
    pub tr31: Option<crate::keys::tr31::Tr31Origin>,
    pub created_at: Timestamp,
}

/// A stored first response to an `Idempotency-Key`, sealed (it may hold a
/// control token).
#[derive(Debug, Clone)]
pub struct IdemRow {
    pub program_id: String,
    pub key: String,
    pub request_hash: Vec<u8>,
    pub status: u16,
    pub response_sealed: Vec<u8>,
    /// The key that sealed the response: `idempotency` (`pan` for records
    /// from before per-purpose keys).
    pub key_kind: KeyKind,
    pub key_version: u32,
    pub created_at: Timestamp,
}

/// An event as stored in the outbox: `body` is the JSON listed and delivered.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: String,
    pub program_id: String,
    pub card_id: Option<String>,
    pub kind: String,
    pub created_at: Timestamp,
    pub body: String,
}

/// A chained audit record as stored.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub seq: i64,
    pub entry: AuditEntry,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// What a state change writes besides the change itself, in the same
/// transaction: its events (each fanned out to the program's subscribed
/// webhook endpoints as deliveries) and its audit record.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub events: Vec<EventRow>,
    pub audit: Option<AuditEntry>,
}

#[derive(Debug, Clone)]
pub struct WebhookEndpointRow {
    pub id: String,
    pub program_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret_sealed: Vec<u8>,
    /// The key that sealed the secret: `webhook` (`pan` for endpoints from
    /// before per-purpose keys).
    pub secret_key_kind: KeyKind,
    pub secret_key_version: u32,
    pub created_at: Timestamp,
    /// The names its events go out under (`pinvault`, or Spidr's).
    pub format: crate::domain::webhook_format::WebhookFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Retries were exhausted, or the endpoint was deleted.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One event's delivery to one endpoint, with its last attempt.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_response_code: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A delivery a worker claimed (leased) for one attempt.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub endpoint_id: String,
    pub url: String,
    pub secret_sealed: Vec<u8>,
    pub secret_key_kind: KeyKind,
    pub secret_key_version: u32,
    pub event_body: String,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub at: Timestamp,
    pub response_code: Option<u16>,
    pub error: Option<String>,
    /// What happens next.
    pub next: AttemptNext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptNext {
    Delivered,
    RetryAt(Timestamp),
    GiveUp,
}

/// The outcome of a create that carries an idempotency record.
#[derive(Debug)]
pub enum Created {
    Created,
    /// Another request with the same key got there first; nothing was written.
    IdempotencyKeyTaken,
}

/// One window of a pass over the cards in id order (rotation): the cards in
/// it under an older key version, and where the next window begins (`None`:
/// the window reached the last card).
#[derive(Debug, Default)]
pub struct OldCards {
    pub cards: Vec<CardRow>,
    pub next: Option<String>,
}

/// The new state of a card's rows after rotation re-encrypted them.
#[derive(Debug, Clone)]
pub struct Rewrap {
    pub card_id: String,
    /// The PIN block the rewrap was computed from: the update is skipped if the
    /// PIN changed meanwhile.
    pub old_pin_block: Vec<u8>,
    pub pin: PinWrite,
    pub pan_sealed: Vec<u8>,
    pub pan_key_version: u32,
    pub pan_hash: Vec<u8>,
    pub lookup_key_version: u32,
    /// The staged PIN the rewrap was computed from (`None`: nothing staged),
    /// and its new block: the update is skipped if it changed meanwhile.
    pub staged: Option<StagedRewrap>,
}

/// A staged PIN re-enciphered by rotation.
#[derive(Clone)]
pub struct StagedRewrap {
    pub old_block: Vec<u8>,
    pub block: Vec<u8>,
    pub key_version: u32,
}

debug_fields!(StagedRewrap: key_version);

/// A PIN change as kept for its reversal. Its `Debug` leaves out the blocks.
#[derive(Clone)]
pub struct PinChangeRow {
    pub id: String,
    pub program_id: String,
    pub card_id: String,
    /// The card's PIN before the change, as the card held it.
    pub previous: PinWrite,
    /// The block the change wrote.
    pub new_pin_block: Vec<u8>,
    pub created_at: Timestamp,
    pub reversed_at: Option<Timestamp>,
}

debug_fields!(PinChangeRow: id, card_id, created_at, reversed_at);
