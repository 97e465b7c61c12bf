//! Storage. What the service keeps, as small traits per concern (cards,
//! tokens, keys, programs, zone keys, the audit trail and events, webhooks),
//! each written once over the SQL both databases share (`catalogue/`), and a
//! folder per database for what differs: connections, SQLite's writer thread
//! and read cache, PostgreSQL's pool and retries, how rows decode.
//! Every method is one transaction; concurrency is made safe by the
//! database (a conditional update, a compare-and-set, a row lock), not by
//! process memory.

mod any;
mod backend;
mod catalogue;
#[cfg(test)]
pub(crate) mod contract;
pub(crate) mod db;
mod decode;
mod error;
mod postgres;
mod read_cache;
mod rows;
mod sqlite;

pub use any::AnyStore;
pub use backend::Backend;
pub use catalogue::{
    AuditPending, AuditSealStore, AuditStore, CardStore, ChangeEffects, ChipStore, GrantChange,
    ImportStore, KeyRow, KeyStore, KeyTableStore, PinChangeOutcome, PinChangeStore, ProgramStore,
    REVERSIBLE_S, Resealable, SEAL_BATCH, SealFrom, Sealed, TokenStore, WebhookStore, ZoneKeyStore,
    every_page, pvk_params_json,
};
pub use error::{StoreError, StoreFuture, StoreResult};
pub use postgres::{PgSettings, PgStore, PgTls, PgTlsConnect, PgTlsStream, SslMode, TlsError};
pub use rows::*;
pub use sqlite::{Durability, SqliteStore};

/// The concern traits, for code that calls them on a concrete store
/// (`AnyStore`); code generic over `S: Store` has them already.
pub mod prelude {
    pub use super::{
        AuditSealStore, AuditStore, Backend, CardStore, ChipStore, ImportStore, KeyStore,
        KeyTableStore, PinChangeStore, ProgramStore, Store, TokenStore, WebhookStore, ZoneKeyStore,
    };
}

/// Everything the service keeps: every concern, on one database.
pub trait Store:
    Backend
    + AuditSealStore
    + AuditStore
    + CardStore
    + ChipStore
    + ImportStore
    + KeyStore
    + KeyTableStore
    + PinChangeStore
    + ProgramStore
    + TokenStore
    + WebhookStore
    + ZoneKeyStore
{
    /// Checks the database answers (readiness).
    fn ping(&self) -> impl StoreFuture<()>;
}

impl<B: Backend> Store for B {
    async fn ping(&self) -> StoreResult<()> {
        const PING: db::Sql = db::sql!("SELECT 1");
        self.read((), |db, ()| {
            Box::pin(db::first(db, &PING, &[], decode::int))
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::decode::parse_settings;
    use crate::domain::program::Settings;

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
