//! The integration suite: one binary, a module per feature, each driving the
//! real `pinvault` binary from outside; the harness they share is in `harness/`.
//!
//! scripts/test runs it three times: on SQLite (all of it, but the
//! `postgres_only` tests), on PostgreSQL (every module but `cli_tools`, which
//! starts no server) and with the master key in a SoftHSM2 token (`service`,
//! `verification`, `jwe`, `events`, `staged`); a pass picks its modules with
//! name filters (`-- service:: nodes:: …`).

mod harness;

mod canaries;
mod cli_tools;
mod events;
mod hardening;
mod jwe;
mod nodes;
mod pkcs11;
mod service;
mod staged;
mod verification;
mod widgets;
