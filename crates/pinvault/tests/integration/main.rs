//! The integration suite: one binary, a module per feature, each driving the
//! real `pinvault` binary from outside; the harness they share is in `harness/`.
//!
//! scripts/test runs it four times: on SQLite (all of it, but the
//! `postgres_only` tests; `postgres_tls` there too, against the TLS-only
//! cluster scripts/test starts), on PostgreSQL (every module but `cli_tools`,
//! which starts no server, and `postgres_tls`), the same modules again on
//! PostgreSQL over TLS (that cluster, `sslmode=verify-full`) and with the
//! master key in a SoftHSM2 token (`service`, `verification`, `jwe`, `events`,
//! `staged`); a pass picks its modules with name filters (`-- service:: nodes:: …`).

mod harness;

mod canaries;
mod cli_tools;
mod events;
mod hardening;
mod jwe;
mod nodes;
mod pkcs11;
mod postgres_tls;
mod service;
mod staged;
mod verification;
mod widgets;
