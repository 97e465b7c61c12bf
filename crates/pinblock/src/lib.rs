//! ISO 9564-1 PIN blocks, key check values and secret types, and the legacy PIN
//! verification methods a portfolio migrates from ([`pvv`]: Visa PVV, [`ibm3624`]:
//! IBM 3624 offsets). Pure functions: no I/O, no global state, no panics on any
//! input.
//!
//! | format | clear block | binds the PAN | enciphered under |
//! |---|---|---|---|
//! | [`Format::Iso0`] | `0 N P… F…` XOR `0000` + 12 PAN digits | yes | TDES (8 bytes), AES (16) |
//! | [`Format::Iso1`] | `1 N P… T…` (random transaction field) | no | TDES, AES |
//! | [`Format::Iso3`] | `3 N P… X…` (random fill A–F) XOR PAN field | yes | TDES, AES |
//! | [`Format::Iso4`] | PIN field `4 N P… A… R…` and PAN field `M PAN 0…` | yes | AES only |
//!
//! Formats 0, 1 and 3 under an AES key are the 8-byte block followed by eight zero
//! bytes, enciphered as one AES block: ISO 9564 defines no AES encipherment for
//! them, so interoperable systems should use format 4 with AES keys.
//!
//! ```
//! use pinblock::{decipher, encipher, Format, KeyAlgorithm, Pan, Pin, ZoneKey};
//! let key = ZoneKey::from_hex(KeyAlgorithm::Aes, "000102030405060708090A0B0C0D0E0F")?;
//! let pan = Pan::new("4111111111111111")?;
//! let block = encipher(Format::Iso4, &Pin::new("1234")?, &pan, &key, &mut rand::rng())?;
//! let pin = decipher(Format::Iso4, block.as_bytes(), &pan, &key)?;
//! assert_eq!(&*pin.expose(), "1234");
//! # Ok::<(), pinblock::Error>(())
//! ```

mod block;
mod error;
pub mod hex;
pub mod ibm3624;
mod key;
mod pvk;
pub mod pvv;
mod secret;

pub use block::{
    ClearBlock, EncipheredBlock, Format, decipher, decode_clear, encipher, encode_clear, translate,
};
pub use error::Error;
pub use key::{Kcv, KeyAlgorithm, KeyKind, ZoneKey};
pub use secret::{PAN_MAX_LEN, PIN_MAX_LEN, PIN_MIN_LEN, Pan, Pin, SecretKey};
