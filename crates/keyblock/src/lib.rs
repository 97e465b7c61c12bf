//! ANSI X9.143 / TR-31 key blocks: how keys travel between payment systems,
//! bound to their usage, algorithm, mode of use and exportability. Pure
//! functions: no I/O, no global state, no panics on any input.
//!
//! | version | KBPK | KBEK / KBAK | MAC | encipherment |
//! |---|---|---|---|---|
//! | [`Version::B`] | TDES, 16 or 24 bytes | TDES-CMAC derivation | 8-byte TDES-CMAC of header ‖ clear payload | TDES-CBC, IV = the MAC |
//! | [`Version::C`] | TDES, 16 or 24 bytes | KBPK XOR `45…` / XOR `4D…` | first 4 bytes of the TDES CBC-MAC of header ‖ ciphertext | TDES-CBC, IV = the header's first 8 characters |
//! | [`Version::D`] | AES, 16, 24 or 32 bytes | AES-CMAC derivation | 16-byte AES-CMAC of header ‖ clear payload | AES-CBC, IV = the MAC |
//!
//! The clear payload is the key's length in bits (2 bytes), the key and random
//! pad. Version A (deprecated) is not read. This matches psec's `tr31` module
//! (and so X9 TR-31:2018's annex examples and Thales payShield blocks, which the
//! tests read) byte for byte, except that nothing malformed is let through:
//! [`unwrap`] says which rule a block breaks, and checks the MAC before it
//! exposes the key or any clear byte.
//!
//! ```
//! use keyblock::{Header, Version, unwrap, wrap};
//! // TR-31:2018 A.7.4: a TDES PIN key under an AES-256 KBPK.
//! let kbpk = [0x88, 0xE1, 0xAB, 0x2A, 0x2E, 0x3D, 0xD3, 0x8C, 0x1F, 0xA0, 0x39, 0xA5, 0x36,
//!     0x50, 0x0C, 0xC8, 0xA8, 0x7A, 0xB9, 0xD6, 0x2D, 0xC9, 0x2C, 0x01, 0x05, 0x8F, 0xA7, 0x9F,
//!     0x44, 0x65, 0x7D, 0xE6];
//! let block = "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03A457DC34";
//! let out = unwrap(&kbpk, block)?;
//! assert_eq!((out.header.key_usage(), out.header.mode_of_use()), ("P0", 'E'));
//! assert_eq!(out.key.len(), 16);
//!
//! let header = Header::new(Version::B, "V2", 'T', 'V', "00", 'N')?;
//! let made = wrap(&[0x11; 16], &header, &[0x22; 16], &mut rand::rng())?;
//! assert_eq!(unwrap(&[0x11; 16], &made)?.key.expose(), &[0x22; 16]);
//! # Ok::<(), keyblock::Tr31Error>(())
//! ```

mod block;
mod crypto;
mod error;
mod header;

pub use block::{KeyMaterial, Unwrapped, unwrap, wrap, wrap_masked};
pub use error::Tr31Error;
pub use header::{Header, Version};
