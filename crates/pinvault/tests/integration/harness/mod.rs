//! Test harness: the real `pinvault` binary, serving on port 0 over a fresh data
//! directory and database, driven over HTTP and through its command line.
//!
//! The database is SQLite in the data directory, or, with
//! `PINVAULT_TEST_BACKEND=postgres`, a PostgreSQL database of its own per data
//! directory (made on the server at `PINVAULT_TEST_POSTGRES_URL`, else the local
//! one at 127.0.0.1:5432), dropped when the data directory goes. The URL's
//! `sslmode` and `sslrootcert` hold for the harness's own connections too:
//! they go through the library's TLS connector (`pinvault::store::PgTls`).
//!
//! The parts, each using only those listed before it: `postgres` (the test
//! PostgreSQL server), `skip` (tests that cannot run here say so), `data_dir`
//! (the binary, a data directory and its database), `pkcs11` (the key provider the servers
//! start on), `server` (starting and stopping a server), `canaries` (leak
//! canaries, checked when a server is dropped), `http` (requests and replies)
//! and `cli` (operator commands). This file only re-exports.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod canaries;
mod cli;
mod data_dir;
mod http;
mod pkcs11;
mod postgres;
mod server;
mod skip;

pub use canaries::find_canaries;
pub use data_dir::{BIN, DataDir, fresh_dir, fresh_path};
pub use http::Reply;
pub use pkcs11::pkcs11_provider;
pub use postgres::{connect as postgres_connect, postgres_query};
pub use server::Server;
pub use skip::{missing_dependency, postgres_only};

/// The `field` of every object in a JSON array (`audit list`'s actions, a
/// page's ids).
pub fn each<'a>(list: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|x| x[field].as_str().expect("a string"))
        .collect()
}
