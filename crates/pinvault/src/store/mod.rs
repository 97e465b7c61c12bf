//! Storage: one trait, one implementation per database. Every method is one
//! transaction; concurrency is made safe by the database, not by process memory.

mod any;
mod postgres;
mod sqlite;
mod sqlite_cache;

use std::future::Future;

pub use any::AnyStore;
pub use postgres::{PgSettings, PgStore};
pub use sqlite::SqliteStore;

use crate::domain::ids::SecretHash;
use crate::domain::program::{Mode, Settings};
use crate::domain::time::Timestamp;
use crate::domain::token::{TokenError, TokenType};
use crate::keys::{DataKeyRow, KeyKind, ZoneAlgorithm};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardStatus {
    Active,
    Inactive,
    Suspended,
}

impl CardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Active => "active",
            CardStatus::Inactive => "inactive",
            CardStatus::Suspended => "suspended",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(CardStatus::Active),
            "inactive" => Some(CardStatus::Inactive),
            "suspended" => Some(CardStatus::Suspended),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetBy {
    Random,
    Issuer,
    Cardholder,
}

impl SetBy {
    pub fn as_str(self) -> &'static str {
        match self {
            SetBy::Random => "random",
            SetBy::Issuer => "issuer",
            SetBy::Cardholder => "cardholder",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "random" => Some(SetBy::Random),
            "issuer" => Some(SetBy::Issuer),
            "cardholder" => Some(SetBy::Cardholder),
            _ => None,
        }
    }
}

/// A stored PIN: the enciphered block and the key version that protects it.
#[derive(Clone)]
pub struct PinWrite {
    pub block: Vec<u8>,
    pub key_version: u32,
    pub set_by: SetBy,
}

impl std::fmt::Debug for PinWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinWrite")
            .field("key_version", &self.key_version)
            .field("set_by", &self.set_by)
            .finish_non_exhaustive()
    }
}

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
}

impl CardRow {
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

/// Program settings from their stored JSON text. Every authenticated request
/// reads its program's settings; parsing them is a large part of a PIN
/// verification's own work, so the parsed value is kept per program with the
/// exact text it came from, and used again only for that same text (a changed
/// setting is different text, so nothing is ever stale). Looking a program up
/// by its id and comparing the text costs less than hashing the whole text.
/// At most `SETTINGS_MEMO` programs are kept; past that the memo starts again.
pub(crate) fn parse_settings(program_id: &str, text: &str) -> Option<Settings> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, RwLock};
    const SETTINGS_MEMO: usize = 1024;
    type Memo = HashMap<String, (String, Settings)>;
    static MEMO: LazyLock<RwLock<Memo>> = LazyLock::new(Default::default);
    if let Some((seen, s)) = MEMO
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(program_id)
    {
        if seen == text {
            return Some(s.clone());
        }
    }
    let parsed: Settings = serde_json::from_str(text).ok()?;
    let mut memo = MEMO.write().unwrap_or_else(|p| p.into_inner());
    if memo.len() >= SETTINGS_MEMO {
        memo.clear();
    }
    memo.insert(program_id.to_owned(), (text.to_owned(), parsed.clone()));
    Some(parsed)
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
}

/// A zone PIN key as stored: wrapped by the master key.
#[derive(Debug, Clone)]
pub struct ZoneKeyRow {
    pub id: String,
    pub name: String,
    pub algorithm: ZoneAlgorithm,
    /// Key check value, 6 upper-case hex digits.
    pub kcv: String,
    pub wrapped: Vec<u8>,
    pub created_at: Timestamp,
}

/// The state of a card's PIN tries after a counted failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinFailure {
    pub fail_count: u32,
    /// This failure reached `max_tries` and blocked the PIN.
    pub blocked: bool,
}

/// A key wrapped by the master key, re-wrapped under another provider
/// (`pinvault keys migrate`). Applied only if the row still holds `old`.
#[derive(Debug, Clone)]
pub enum MasterRewrap {
    DataKey {
        kind: KeyKind,
        version: u32,
        old: Vec<u8>,
        new: Vec<u8>,
    },
    ZoneKey {
        id: String,
        old: Vec<u8>,
        new: Vec<u8>,
    },
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

/// An audit record before it is chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: Timestamp,
    /// An API key id (`key_…`) or `operator`.
    pub actor: String,
    pub request_id: Option<String>,
    pub source: Option<String>,
    pub action: String,
    pub program_id: Option<String>,
    pub card_id: Option<String>,
    /// A JSON object.
    pub details: String,
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
    pub secret_key_version: u32,
    pub created_at: Timestamp,
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

impl std::fmt::Debug for StagedRewrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedRewrap")
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub enum StoreError {
    /// The database failed or is unreachable.
    Database(String),
    /// A uniqueness rule was broken.
    Conflict(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Database(m) => write!(f, "database: {m}"),
            StoreError::Conflict(m) => write!(f, "conflict: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the service keeps. Each method is atomic.
///
/// A method that changes state takes the events and audit record to write with
/// the change ([`Effects`]), or, where they depend on what the transaction
/// finds, a function from its outcome to them. Such a function must be pure:
/// a backend may run the transaction (and so the function) again after a
/// serialization failure.
pub trait Store: Clone + Send + Sync + 'static {
    /// Checks the database answers (readiness).
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;

    fn data_keys(&self) -> impl Future<Output = StoreResult<Vec<DataKeyRow>>> + Send;
    /// Inserts a data key version; false if that version exists already.
    fn insert_data_key(&self, row: DataKeyRow) -> impl Future<Output = StoreResult<bool>> + Send;
    /// How many rows each key version protects.
    fn key_usage(&self) -> impl Future<Output = StoreResult<Vec<(KeyKind, u32, u64)>>> + Send;
    /// Cards with any row (the staged PIN included) under a key version older
    /// than the given current ones.
    fn cards_under_old_keys(
        &self,
        pin: u32,
        pan: u32,
        lookup: u32,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<CardRow>>> + Send;
    /// Applies a rotation rewrap unless the card's PIN or staged PIN changed
    /// since it was read.
    fn rewrap_card(&self, rewrap: Rewrap) -> impl Future<Output = StoreResult<bool>> + Send;

    fn create_program(
        &self,
        program: ProgramRow,
        key: ApiKeyRow,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn get_program(&self, id: &str)
    -> impl Future<Output = StoreResult<Option<ProgramRow>>> + Send;
    fn list_programs(&self) -> impl Future<Output = StoreResult<Vec<ProgramRow>>> + Send;
    fn update_program(
        &self,
        id: &str,
        settings: Settings,
        mode: Mode,
        now: Timestamp,
        audit: AuditEntry,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// The unrevoked API key with this hash, and its program.
    fn authenticate(
        &self,
        key_hash: SecretHash,
    ) -> impl Future<Output = StoreResult<Option<(ApiKeyRow, ProgramRow)>>> + Send;
    /// [`Store::authenticate`] and [`Store::get_card`] of the key's program in one
    /// read (one statement): the path of every request about one card, PIN
    /// verification first. `None`: no such unrevoked key; `Some((.., None))`: the
    /// key is good but its program has no card with this id.
    fn authenticate_card(
        &self,
        key_hash: SecretHash,
        card_id: &str,
    ) -> impl Future<Output = StoreResult<Option<AuthenticatedCard>>> + Send;
    fn create_api_key(&self, key: ApiKeyRow) -> impl Future<Output = StoreResult<()>> + Send;
    fn list_api_keys(
        &self,
        program_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<ApiKeyRow>>> + Send;
    fn revoke_api_key(
        &self,
        id: &str,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    fn create_card(
        &self,
        card: CardRow,
        idem: Option<IdemRow>,
        effects: Effects,
    ) -> impl Future<Output = StoreResult<Created>> + Send;
    fn get_card(
        &self,
        program_id: &str,
        card_id: &str,
    ) -> impl Future<Output = StoreResult<Option<CardRow>>> + Send;
    /// A card whatever its program: only for the hosted widgets, which reach the
    /// card of the control token they were given (and nothing else).
    fn card_of_token(
        &self,
        card_id: &str,
    ) -> impl Future<Output = StoreResult<Option<CardRow>>> + Send;
    /// Newest first. `None` when `starting_after` names no card of the program.
    fn list_cards(
        &self,
        program_id: &str,
        external_id: Option<&str>,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl Future<Output = StoreResult<Option<(Vec<CardRow>, bool)>>> + Send;
    /// Sets a card's status; reactivating a card PIN blocking made inactive also
    /// unblocks its PIN.
    /// `effects` is given the card before and after the change.
    fn set_card_status<F>(
        &self,
        program_id: &str,
        card_id: &str,
        status: CardStatus,
        now: Timestamp,
        effects: F,
    ) -> impl Future<Output = StoreResult<Option<CardRow>>> + Send
    where
        F: Fn(&CardRow, &CardRow) -> Effects + Send + Sync + 'static;
    /// Resets the fail count, unblocks the PIN, reactivates a card PIN blocking
    /// made inactive.
    /// `effects` is given the card before and after the change.
    fn unblock_pin<F>(
        &self,
        program_id: &str,
        card_id: &str,
        now: Timestamp,
        effects: F,
    ) -> impl Future<Output = StoreResult<Option<CardRow>>> + Send
    where
        F: Fn(&CardRow, &CardRow) -> Effects + Send + Sync + 'static;

    /// Inserts a token; older unused tokens of its type for its card are superseded.
    fn create_token(
        &self,
        token: TokenRow,
        idem: Option<IdemRow>,
        effects: Effects,
    ) -> impl Future<Output = StoreResult<Created>> + Send;
    fn find_token(
        &self,
        hash: SecretHash,
    ) -> impl Future<Output = StoreResult<Option<TokenRow>>> + Send;
    /// Uses one attempt of a still-valid token; returns the attempts left.
    /// `effects` are written only when an attempt is used.
    fn use_token_attempt(
        &self,
        token_id: &str,
        now: Timestamp,
        effects: Effects,
    ) -> impl Future<Output = StoreResult<Result<u32, TokenError>>> + Send;
    /// Redeems a still-valid token and, in the same transaction, sets or stages
    /// the card's PIN when a change is given (see [`PinChange`]).
    /// `effects` are written only when the token is redeemed.
    fn redeem_token(
        &self,
        token_id: &str,
        change: Option<PinChange>,
        now: Timestamp,
        effects: Effects,
    ) -> impl Future<Output = StoreResult<Result<(), TokenError>>> + Send;
    /// Makes the card's staged PIN its PIN, as a set does (fail count reset,
    /// PIN unblocked, a card PIN blocking made inactive reactivated, set by the
    /// cardholder), and clears the staged PIN. One conditional update: of
    /// commits racing, exactly one succeeds. False (nothing committed) when the
    /// program's card has no unexpired staged PIN; an expired one is removed.
    /// `effects` (given the card before the commit) are written with it.
    fn commit_staged_pin<F>(
        &self,
        program_id: &str,
        card_id: &str,
        now: Timestamp,
        effects: F,
    ) -> impl Future<Output = StoreResult<bool>> + Send
    where
        F: Fn(&CardRow) -> Effects + Send + Sync + 'static;
    /// Removes staged PINs that expired at or before `now`; returns how many.
    fn clear_expired_staged_pins(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    fn insert_zone_key(
        &self,
        key: ZoneKeyRow,
        audit: AuditEntry,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn get_zone_key(
        &self,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<ZoneKeyRow>>> + Send;
    /// Newest first. `None` when `starting_after` names no zone key.
    fn list_zone_keys(
        &self,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl Future<Output = StoreResult<Option<(Vec<ZoneKeyRow>, bool)>>> + Send;

    /// Counts one failed PIN try, atomically: the count goes up by one and, when
    /// it reaches `max_tries`, the PIN is blocked and an active card becomes
    /// inactive (marked as made so by blocking). `None` when the PIN was already
    /// blocked (nothing is counted), or the card does not exist. `effects`
    /// (given the counted failure) are written with the count.
    fn record_pin_failure<F>(
        &self,
        card_id: &str,
        max_tries: u32,
        now: Timestamp,
        effects: F,
    ) -> impl Future<Output = StoreResult<Option<PinFailure>>> + Send
    where
        F: Fn(PinFailure) -> Effects + Send + Sync + 'static;
    /// Resets the fail count after a match; false when the PIN was blocked
    /// meanwhile (a match never unblocks).
    fn reset_pin_failures(
        &self,
        card_id: &str,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Applies master-key re-wraps in one transaction; returns how many rows
    /// changed (a row whose wrapping changed meanwhile is left alone).
    fn rewrap_master(
        &self,
        rewraps: Vec<MasterRewrap>,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    fn get_idempotency(
        &self,
        program_id: &str,
        key: &str,
    ) -> impl Future<Output = StoreResult<Option<IdemRow>>> + Send;

    /// Appends one audit record on its own (operator actions whose change is
    /// not one transaction, such as a key rotation).
    fn append_audit(&self, entry: AuditEntry) -> impl Future<Output = StoreResult<()>> + Send;
    /// Audit records with `seq` greater than `after`, oldest first.
    fn list_audit(
        &self,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<AuditRecord>>> + Send;

    /// A program's events, newest first, optionally of one card and one type.
    /// `None` when `starting_after` names no event of the program.
    fn list_events(
        &self,
        program_id: &str,
        card_id: Option<&str>,
        kind: Option<&str>,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl Future<Output = StoreResult<Option<(Vec<EventRow>, bool)>>> + Send;

    fn create_webhook_endpoint(
        &self,
        endpoint: WebhookEndpointRow,
        idem: Option<IdemRow>,
        audit: AuditEntry,
    ) -> impl Future<Output = StoreResult<Created>> + Send;
    /// A program's endpoints that are not deleted, newest first.
    fn list_webhook_endpoints(
        &self,
        program_id: &str,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl Future<Output = StoreResult<Option<(Vec<WebhookEndpointRow>, bool)>>> + Send;
    fn get_webhook_endpoint(
        &self,
        program_id: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<WebhookEndpointRow>>> + Send;
    /// Deletes an endpoint; its pending deliveries fail. False if there is none.
    fn delete_webhook_endpoint(
        &self,
        program_id: &str,
        id: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// An endpoint's deliveries, newest first.
    fn list_deliveries(
        &self,
        endpoint_id: &str,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl Future<Output = StoreResult<Option<(Vec<DeliveryRow>, bool)>>> + Send;
    /// Claims up to `limit` due deliveries for `owner` until `lease_until`: a
    /// conditional update, so two workers (or nodes) never claim the same
    /// attempt while a lease holds. (PostgreSQL: `FOR UPDATE SKIP LOCKED`.)
    fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<ClaimedDelivery>>> + Send;
    /// Gives back every claim `owner` still holds (a worker stopped before its
    /// attempts ended), so another worker takes them at once rather than when
    /// the leases expire; the attempts count as not made. Returns how many.
    fn release_deliveries(&self, owner: &str) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Records an attempt of a delivery `owner` holds; false (nothing written)
    /// when the lease was lost.
    fn finish_delivery(
        &self,
        id: &str,
        owner: &str,
        result: AttemptResult,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_parsed_by_their_exact_text() {
        let mut s = Settings::default();
        let text = serde_json::to_string(&s).unwrap_or_default();
        let p = "prg_settingsmemotest";
        assert_eq!(parse_settings(p, &text), Some(s.clone()));
        // Read again (from the memo): the same value.
        assert_eq!(parse_settings(p, &text), Some(s.clone()));
        // A changed setting is different text, so a different value, never the memo's.
        s.max_tries = 7;
        let changed = serde_json::to_string(&s).unwrap_or_default();
        assert_eq!(parse_settings(p, &changed).map(|p| p.max_tries), Some(7));
        assert_eq!(parse_settings(p, &text).map(|p| p.max_tries), Some(3));
        // Another program with the same text reads its own entry.
        assert_eq!(
            parse_settings("prg_othermemotest", &changed).map(|p| p.max_tries),
            Some(7)
        );
        assert_eq!(parse_settings(p, &text).map(|p| p.max_tries), Some(3));
        // Text that is not settings is refused, also when asked twice.
        assert_eq!(parse_settings(p, "{\"max_tries\": \"x\"}"), None);
        assert_eq!(parse_settings(p, "{\"max_tries\": \"x\"}"), None);
        assert_eq!(parse_settings(p, &text).map(|p| p.max_tries), Some(3));
    }
}
