//! pinvault: a self-hostable card PIN service.
//!
//! The binary is a thin shell over [`cli::run`]; every command lives in this library.

pub mod api;
pub mod app;
pub mod audit;
pub mod cli;
pub mod der;
pub mod domain;
pub mod events;
// The fuzz targets' harness (with a fixed test-only RSA key): built for the unit
// tests and for fuzz/ (feature `fuzzing`), never into the server.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod jose;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod store;
pub mod webhooks;
pub mod widgets;
