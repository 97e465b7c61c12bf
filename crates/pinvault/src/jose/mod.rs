//! JWE (RFC 7516) with the algorithms of RFC 7518, composed from aws-lc-rs
//! primitives, for PINs in transit:
//!
//! - inbound, compact JWE with `alg` `RSA-OAEP-256` or `RSA-OAEP` and `enc`
//!   `A256GCM` or `A128CBC-HS256`, to a published transport key;
//! - outbound, compact JWE with `alg` `ECDH-ES` (direct key agreement, Concat
//!   KDF of RFC 7518 §4.6) and `enc` `A256GCM`, to a device's P-256 key.
//!
//! Every inbound failure is the one [`DecryptFailed`]: which step failed is not
//! told to the sender (no padding or format oracle). As RFC 7516 §11.5 asks, an
//! RSA decryption that fails goes on with a random content key, so that it fails
//! only at the content's authentication tag, like any other tampering.
//!
//! The functions here are CPU-bound (RSA, ECDH): call them off the async threads.
//!
//! The parts: `compact` reads a compact JWE and its header; `content` opens
//! the content encryptions (`A256GCM`, `A128CBC-HS256`); `inbound` decrypts
//! to a transport key (`RSA-OAEP-256`, `RSA-OAEP`); `plaintext` holds the
//! rules for what an inbound plaintext may be; `device_key` checks a
//! device's JWK; `outbound` encrypts to it (`ECDH-ES`). This file only
//! re-exports, so `crate::jose::X` names every public item.

mod compact;
mod content;
mod device_key;
mod inbound;
mod outbound;
mod plaintext;

pub use compact::{DecryptFailed, MAX_JWE_LEN, ParsedJwe, parse};
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use content::seal_a256gcm;
pub use device_key::DeviceKey;
pub use inbound::{decrypt, decrypt_with};
pub use outbound::{EncryptFailed, encrypt_to_device};
pub use plaintext::pin_from_plaintext;
