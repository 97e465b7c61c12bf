//! The service, driven from outside as a card program would: over HTTP and the
//! operator command line, against the real binary on a fresh data directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure

mod support;

mod cards;
mod chip;
mod dev;
mod help;
mod lookups;
mod operations;
mod readme;
mod requests;
mod rotation;
mod tr31;
