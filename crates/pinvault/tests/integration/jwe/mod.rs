//! PIN encryption against the real binary: the published keys, every way an
//! inbound JWE can fail, reveal to a device key, rotation with its grace period.
//! The JWEs here are made with aws-lc-rs directly from RFC 7516/7518; the
//! independent JOSE implementation is tests/interop/jwe_interop.py (jwcrypto).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod device_reveal;
mod inbound;
mod rotation;
