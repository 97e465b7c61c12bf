//! The database chosen at start (`--database-url`): one type for the rest of
//! the program, so the server and the commands are compiled once rather than
//! once per backend. Each method hands the call to the backend it holds.

use super::*;

#[derive(Debug, Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Calls the same method on whichever backend `$store` holds.
macro_rules! each {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            AnyStore::Sqlite($s) => $call.await,
            AnyStore::Postgres($s) => $call.await,
        }
    };
}

impl AnyStore {
    /// The backend's name, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Postgres(_) => "postgres",
        }
    }
}

impl Store for AnyStore {
    async fn ping(&self) -> StoreResult<()> {
        each!(self, s => s.ping())
    }
    async fn data_keys(&self) -> StoreResult<Vec<DataKeyRow>> {
        each!(self, s => s.data_keys())
    }
    async fn insert_data_key(&self, row: DataKeyRow) -> StoreResult<bool> {
        each!(self, s => s.insert_data_key(row))
    }
    async fn key_usage(&self) -> StoreResult<Vec<(KeyKind, u32, u64)>> {
        each!(self, s => s.key_usage())
    }
    async fn cards_under_old_keys(
        &self,
        pin: u32,
        pan: u32,
        lookup: u32,
        limit: u32,
    ) -> StoreResult<Vec<CardRow>> {
        each!(self, s => s.cards_under_old_keys(pin, pan, lookup, limit))
    }
    async fn rewrap_card(&self, rewrap: Rewrap) -> StoreResult<bool> {
        each!(self, s => s.rewrap_card(rewrap))
    }
    async fn create_program(&self, program: ProgramRow, key: ApiKeyRow) -> StoreResult<()> {
        each!(self, s => s.create_program(program, key))
    }
    async fn get_program(&self, id: &str) -> StoreResult<Option<ProgramRow>> {
        each!(self, s => s.get_program(id))
    }
    async fn list_programs(&self) -> StoreResult<Vec<ProgramRow>> {
        each!(self, s => s.list_programs())
    }
    async fn update_program(
        &self,
        id: &str,
        settings: Settings,
        mode: Mode,
        now: Timestamp,
        audit: AuditEntry,
    ) -> StoreResult<bool> {
        each!(self, s => s.update_program(id, settings, mode, now, audit))
    }
    async fn authenticate(
        &self,
        key_hash: SecretHash,
    ) -> StoreResult<Option<(ApiKeyRow, ProgramRow)>> {
        each!(self, s => s.authenticate(key_hash))
    }
    async fn authenticate_card(
        &self,
        key_hash: SecretHash,
        card_id: &str,
    ) -> StoreResult<Option<AuthenticatedCard>> {
        each!(self, s => s.authenticate_card(key_hash, card_id))
    }
    async fn create_api_key(&self, key: ApiKeyRow) -> StoreResult<()> {
        each!(self, s => s.create_api_key(key))
    }
    async fn list_api_keys(&self, program_id: &str) -> StoreResult<Vec<ApiKeyRow>> {
        each!(self, s => s.list_api_keys(program_id))
    }
    async fn revoke_api_key(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
        each!(self, s => s.revoke_api_key(id, now))
    }
    async fn create_card(
        &self,
        card: CardRow,
        idem: Option<IdemRow>,
        effects: Effects,
    ) -> StoreResult<Created> {
        each!(self, s => s.create_card(card, idem, effects))
    }
    async fn get_card(&self, program_id: &str, card_id: &str) -> StoreResult<Option<CardRow>> {
        each!(self, s => s.get_card(program_id, card_id))
    }
    async fn card_of_token(&self, card_id: &str) -> StoreResult<Option<CardRow>> {
        each!(self, s => s.card_of_token(card_id))
    }
    async fn list_cards(
        &self,
        program_id: &str,
        external_id: Option<&str>,
        limit: u32,
        starting_after: Option<&str>,
    ) -> StoreResult<Option<(Vec<CardRow>, bool)>> {
        each!(self, s => s.list_cards(program_id, external_id, limit, starting_after))
    }
    async fn set_card_status<F>(
        &self,
        program_id: &str,
        card_id: &str,
        status: CardStatus,
        now: Timestamp,
        effects: F,
    ) -> StoreResult<Option<CardRow>>
    where
        F: Fn(&CardRow, &CardRow) -> Effects + Send + Sync + 'static,
    {
        each!(self, s => s.set_card_status(program_id, card_id, status, now, effects))
    }
    async fn unblock_pin<F>(
        &self,
        program_id: &str,
        card_id: &str,
        now: Timestamp,
        effects: F,
    ) -> StoreResult<Option<CardRow>>
    where
        F: Fn(&CardRow, &CardRow) -> Effects + Send + Sync + 'static,
    {
        each!(self, s => s.unblock_pin(program_id, card_id, now, effects))
    }
    async fn create_token(
        &self,
        token: TokenRow,
        idem: Option<IdemRow>,
        effects: Effects,
    ) -> StoreResult<Created> {
        each!(self, s => s.create_token(token, idem, effects))
    }
    async fn find_token(&self, hash: SecretHash) -> StoreResult<Option<TokenRow>> {
        each!(self, s => s.find_token(hash))
    }
    async fn use_token_attempt(
        &self,
        token_id: &str,
        now: Timestamp,
        effects: Effects,
    ) -> StoreResult<Result<u32, TokenError>> {
        each!(self, s => s.use_token_attempt(token_id, now, effects))
    }
    async fn redeem_token(
        &self,
        token_id: &str,
        change: Option<PinChange>,
        now: Timestamp,
        effects: Effects,
    ) -> StoreResult<Result<(), TokenError>> {
        each!(self, s => s.redeem_token(token_id, change, now, effects))
    }
    async fn commit_staged_pin<F>(
        &self,
        program_id: &str,
        card_id: &str,
        now: Timestamp,
        effects: F,
    ) -> StoreResult<bool>
    where
        F: Fn(&CardRow) -> Effects + Send + Sync + 'static,
    {
        each!(self, s => s.commit_staged_pin(program_id, card_id, now, effects))
    }
    async fn clear_expired_staged_pins(&self, now: Timestamp) -> StoreResult<u64> {
        each!(self, s => s.clear_expired_staged_pins(now))
    }
    async fn insert_zone_key(&self, key: ZoneKeyRow, audit: AuditEntry) -> StoreResult<()> {
        each!(self, s => s.insert_zone_key(key, audit))
    }
    async fn get_zone_key(&self, id: &str) -> StoreResult<Option<ZoneKeyRow>> {
        each!(self, s => s.get_zone_key(id))
    }
    async fn list_zone_keys(
        &self,
        limit: u32,
        starting_after: Option<&str>,
    ) -> StoreResult<Option<(Vec<ZoneKeyRow>, bool)>> {
        each!(self, s => s.list_zone_keys(limit, starting_after))
    }
    async fn record_pin_failure<F>(
        &self,
        card_id: &str,
        max_tries: u32,
        now: Timestamp,
        effects: F,
    ) -> StoreResult<Option<PinFailure>>
    where
        F: Fn(PinFailure) -> Effects + Send + Sync + 'static,
    {
        each!(self, s => s.record_pin_failure(card_id, max_tries, now, effects))
    }
    async fn reset_pin_failures(&self, card_id: &str, now: Timestamp) -> StoreResult<bool> {
        each!(self, s => s.reset_pin_failures(card_id, now))
    }
    async fn rewrap_master(&self, rewraps: Vec<MasterRewrap>) -> StoreResult<u64> {
        each!(self, s => s.rewrap_master(rewraps))
    }
    async fn get_idempotency(&self, program_id: &str, key: &str) -> StoreResult<Option<IdemRow>> {
        each!(self, s => s.get_idempotency(program_id, key))
    }
    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        each!(self, s => s.append_audit(entry))
    }
    async fn list_audit(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        each!(self, s => s.list_audit(after, limit))
    }
    async fn list_events(
        &self,
        program_id: &str,
        card_id: Option<&str>,
        kind: Option<&str>,
        limit: u32,
        starting_after: Option<&str>,
    ) -> StoreResult<Option<(Vec<EventRow>, bool)>> {
        each!(self, s => s.list_events(program_id, card_id, kind, limit, starting_after))
    }
    async fn create_webhook_endpoint(
        &self,
        endpoint: WebhookEndpointRow,
        idem: Option<IdemRow>,
        audit: AuditEntry,
    ) -> StoreResult<Created> {
        each!(self, s => s.create_webhook_endpoint(endpoint, idem, audit))
    }
    async fn list_webhook_endpoints(
        &self,
        program_id: &str,
        limit: u32,
        starting_after: Option<&str>,
    ) -> StoreResult<Option<(Vec<WebhookEndpointRow>, bool)>> {
        each!(self, s => s.list_webhook_endpoints(program_id, limit, starting_after))
    }
    async fn get_webhook_endpoint(
        &self,
        program_id: &str,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpointRow>> {
        each!(self, s => s.get_webhook_endpoint(program_id, id))
    }
    async fn delete_webhook_endpoint(
        &self,
        program_id: &str,
        id: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> StoreResult<bool> {
        each!(self, s => s.delete_webhook_endpoint(program_id, id, now, audit))
    }
    async fn list_deliveries(
        &self,
        endpoint_id: &str,
        limit: u32,
        starting_after: Option<&str>,
    ) -> StoreResult<Option<(Vec<DeliveryRow>, bool)>> {
        each!(self, s => s.list_deliveries(endpoint_id, limit, starting_after))
    }
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        each!(self, s => s.claim_deliveries(owner, now, lease_until, limit))
    }
    async fn release_deliveries(&self, owner: &str) -> StoreResult<u64> {
        each!(self, s => s.release_deliveries(owner))
    }
    async fn finish_delivery(
        &self,
        id: &str,
        owner: &str,
        result: AttemptResult,
    ) -> StoreResult<bool> {
        each!(self, s => s.finish_delivery(id, owner, result))
    }
}
