//! Events, webhooks and the audit trail, against the real binary: a receiver
//! on loopback that fails its first answers gets every event of a card's life,
//! signed, across a restart; private targets are refused; the events API
//! filters, pages and keeps programs apart; the audit chain names any record
//! changed in the database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod audit_trail;
mod compat;
mod deliveries;
mod purpose_keys;
