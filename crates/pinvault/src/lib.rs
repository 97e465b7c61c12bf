//! pinvault: a self-hostable card PIN service.
//!
//! The binary is a thin shell over [`cli::run`]; every command lives in this library.

pub mod cli;
