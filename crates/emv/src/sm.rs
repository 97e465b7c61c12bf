//! Secure messaging for confidentiality (EMV Book 2 §9.3, Annex A1.1): the
//! command data of an issuer script enciphered under the SMC session key.
//!
//! The two schemes differ (checked against pyemv's `sm.encrypt_command_data`
//! and its HSM-made examples):
//! - [`Encipherment::Visa`] (VIS): one byte with the length of the clear data
//!   is put in front, the whole is padded with ISO/IEC 9797-1 method 2 (`80`,
//!   then zeros to a multiple of 8, always), and enciphered with TDES in **ECB**
//!   mode. An 8-byte PIN block becomes 16 bytes.
//! - [`Encipherment::Mastercard`] (M/Chip): no length byte; method 2 padding
//!   only if the data is not already a multiple of 8 bytes; TDES in **CBC**
//!   mode with a zero IV. An 8-byte PIN block stays 8 bytes.

use zeroize::Zeroizing;

use crate::{Error, TdesKey};

/// How command data is enciphered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encipherment {
    /// Length byte, method 2 padding, TDES ECB.
    Visa,
    /// Method 2 padding when not block-aligned, TDES CBC with a zero IV.
    Mastercard,
}

/// The most command data enciphered here: its ciphertext (at most 240 bytes)
/// and an 8-byte MAC then fit a short APDU's Lc of 255.
pub const MAX_COMMAND_DATA: usize = 232;

/// Appends `80` and zeros up to a multiple of 8.
fn pad_method_2(buf: &mut Vec<u8>) {
    buf.push(0x80);
    while buf.len() % 8 != 0 {
        buf.push(0);
    }
}

/// Enciphers `data` under the SMC session key as `mode` specifies.
pub fn encipher_command_data(
    sk_smc: &TdesKey,
    data: &[u8],
    mode: Encipherment,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    if data.len() > MAX_COMMAND_DATA {
        return Err(Error::CommandDataTooLong {
            found: data.len(),
            max: MAX_COMMAND_DATA,
        });
    }
    Ok(encipher(sk_smc, data, mode))
}

/// [`encipher_command_data`] for data the caller knows is at most
/// [`MAX_COMMAND_DATA`] bytes (a longer length byte would be cut to 8 bits).
pub(crate) fn encipher(sk_smc: &TdesKey, data: &[u8], mode: Encipherment) -> Zeroizing<Vec<u8>> {
    // Room for the length byte and a whole block of padding: no reallocation,
    // so no copy of the clear data is left behind.
    let mut buf = Zeroizing::new(Vec::with_capacity(data.len() + 16));
    match mode {
        Encipherment::Visa => {
            buf.push(data.len() as u8);
            buf.extend_from_slice(data);
            pad_method_2(&mut buf);
            sk_smc.encrypt_ecb(&mut buf);
        }
        Encipherment::Mastercard => {
            buf.extend_from_slice(data);
            if buf.len() % 8 != 0 {
                pad_method_2(&mut buf);
            }
            sk_smc.encrypt_cbc_zero_iv(&mut buf);
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32,
        0x10,
    ];

    #[test]
    fn pyemv_example_mastercard() {
        // pyemv sm.encrypt_command_data docstring (MASTERCARD).
        let ct = encipher_command_data(
            &TdesKey::new(KEY),
            &[0x24, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            Encipherment::Mastercard,
        )
        .unwrap();
        assert_eq!(&ct[..], &[0x98, 0x59, 0x24, 0x0A, 0xE5, 0x28, 0x20, 0xC3]);
    }

    #[test]
    fn visa_always_pads_and_ecb_repeats() {
        let key = TdesKey::new(KEY);
        let ct = encipher_command_data(&key, &[], Encipherment::Visa).unwrap();
        let mut want = [0u8, 0x80, 0, 0, 0, 0, 0, 0];
        key.encrypt_block(&mut want);
        assert_eq!(&ct[..], &want);
        // 7 bytes + length byte is one block, then a whole block of padding.
        let ct = encipher_command_data(&key, &[1; 7], Encipherment::Visa).unwrap();
        assert_eq!(ct.len(), 16);
        let mut pad = [0x80u8, 0, 0, 0, 0, 0, 0, 0];
        key.encrypt_block(&mut pad);
        assert_eq!(&ct[8..], &pad);
    }

    #[test]
    fn too_long_is_refused() {
        let key = TdesKey::new(KEY);
        for mode in [Encipherment::Visa, Encipherment::Mastercard] {
            assert!(encipher_command_data(&key, &[0; MAX_COMMAND_DATA], mode).is_ok());
            assert_eq!(
                encipher_command_data(&key, &[0; MAX_COMMAND_DATA + 1], mode),
                Err(Error::CommandDataTooLong {
                    found: MAX_COMMAND_DATA + 1,
                    max: 232
                })
            );
        }
    }
}
