//! PIN verification, driven from outside as an authorization host would: zone
//! keys loaded through the command line, ISO 9564 PIN blocks made by an
//! independent implementation (psec 1.3.0 and OpenSSL, the committed vectors in
//! `crates/pinblock/tests/vectors/psec.json`), sent over HTTP to the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure

mod support;

mod atm_change;
mod blocks;
mod tries;
mod zone_key_grants;
mod zone_key_import;
