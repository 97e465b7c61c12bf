//! The PKCS#11 key provider against a real token: SoftHSM2, one token of its
//! own per test (its own configuration and token directory), driven through
//! the real binary. Needs `softhsm2-util` and the SoftHSM2 module (Debian:
//! `softhsm2`); scripts/test installs them. Without them the tests fail under
//! CI=true and say loudly that they did not run elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure

mod support;

mod migration;
mod token_lifecycle;
