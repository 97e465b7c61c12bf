//! Every statement and every composition of statements, written once for
//! both databases, grouped by concern; each concern is a small trait that
//! every [`Backend`](super::backend::Backend) has.

mod audit;
mod audit_seal;
mod bulk;
mod card_state;
mod cards;
mod chips;
mod import;
mod issuer_keys;
mod kbpk;
mod key_tables;
mod keys;
mod outbox;
mod page;
mod pin_changes;
mod programs;
mod pvks;
mod tokens;
mod webhooks;
mod zone_keys;

pub use audit::AuditStore;
pub use audit_seal::{AuditSealStore, Pending as AuditPending, SEAL_BATCH, SealFrom, Sealed};
pub use cards::{CardStore, ChangeEffects};
pub use chips::ChipStore;
pub use import::ImportStore;
pub use key_tables::{KeyRow, KeyTableStore};
pub use keys::{KeyStore, Resealable};
pub use page::every as every_page;
pub use pin_changes::{PinChangeOutcome, PinChangeStore, REVERSIBLE_S};
pub use programs::ProgramStore;
pub use pvks::params_json as pvk_params_json;
pub use tokens::TokenStore;
pub use webhooks::WebhookStore;
pub use zone_keys::{GrantChange, ZoneKeyStore};
