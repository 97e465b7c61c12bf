//! Double-length TDES keys (issuer master keys, ICC master keys, session keys)
//! and the block operations the rest of the crate builds on: TDES ECB and CBC
//! over `des`'s `TdesEde2`, and single DES for the retail MAC.

use core::fmt;

use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::{Des, TdesEde2};
use zeroize::Zeroizing;

use crate::Error;

/// A double-length TDES key (K1 K2 K1), 16 bytes.
///
/// `Debug` is redacted, the bytes are zeroed on drop and can be read only
/// through [`TdesKey::expose`].
#[derive(Clone)]
pub struct TdesKey {
    bytes: Zeroizing<[u8; 16]>,
}

impl TdesKey {
    /// A key from its 16 bytes (parity bits as given: DES ignores them).
    pub fn new(bytes: [u8; 16]) -> Self {
        TdesKey {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// A key from a slice that must be 16 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let mut key = TdesKey::new([0; 16]);
        if bytes.len() != 16 {
            return Err(Error::KeyLength { found: bytes.len() });
        }
        key.bytes.copy_from_slice(bytes);
        Ok(key)
    }

    /// The key's bytes.
    pub fn expose(&self) -> &[u8; 16] {
        &self.bytes
    }

    /// The key's bytes, to fill in place (no copy left behind).
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; 16] {
        &mut self.bytes
    }

    /// The key check value: the first three bytes of TDES(key)[00…00].
    pub fn kcv(&self) -> [u8; 3] {
        let mut block = [0u8; 8];
        self.encrypt_block(&mut block);
        [block[0], block[1], block[2]]
    }

    /// The same key with every byte set to odd parity (the low bit of each byte
    /// flipped where needed), as derived EMV keys are stored.
    pub(crate) fn with_odd_parity(mut self) -> Self {
        for b in self.bytes.iter_mut() {
            if b.count_ones() % 2 == 0 {
                *b ^= 1;
            }
        }
        self
    }

    /// The left half (K1).
    pub(crate) fn left(&self) -> Zeroizing<[u8; 8]> {
        let mut half = Zeroizing::new([0u8; 8]);
        half.copy_from_slice(&self.bytes[..8]);
        half
    }

    /// The right half (K2).
    pub(crate) fn right(&self) -> Zeroizing<[u8; 8]> {
        let mut half = Zeroizing::new([0u8; 8]);
        half.copy_from_slice(&self.bytes[8..]);
        half
    }

    fn cipher(&self) -> TdesEde2 {
        TdesEde2::new(GenericArray::from_slice(&self.bytes[..]))
    }

    /// TDES-encrypts one 8-byte block in place.
    pub(crate) fn encrypt_block(&self, block: &mut [u8; 8]) {
        self.cipher()
            .encrypt_block(GenericArray::from_mut_slice(block));
    }

    /// TDES ECB over whole 8-byte blocks in place (a shorter tail is left as is:
    /// callers pad first).
    pub(crate) fn encrypt_ecb(&self, data: &mut [u8]) {
        let cipher = self.cipher();
        for block in data.chunks_exact_mut(8) {
            cipher.encrypt_block(GenericArray::from_mut_slice(block));
        }
    }

    /// TDES CBC with a zero IV over whole 8-byte blocks in place.
    pub(crate) fn encrypt_cbc_zero_iv(&self, data: &mut [u8]) {
        let cipher = self.cipher();
        let mut chain = [0u8; 8];
        for block in data.chunks_exact_mut(8) {
            for (b, c) in block.iter_mut().zip(chain.iter()) {
                *b ^= c;
            }
            cipher.encrypt_block(GenericArray::from_mut_slice(block));
            chain.copy_from_slice(block);
        }
    }
}

impl fmt::Debug for TdesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TdesKey(<redacted>)")
    }
}

/// Single DES under an 8-byte key (the retail MAC's chaining and output steps).
pub(crate) struct SingleDes(Des);

impl SingleDes {
    pub(crate) fn new(key: &[u8; 8]) -> Self {
        SingleDes(Des::new(GenericArray::from_slice(key)))
    }

    pub(crate) fn encrypt(&self, block: &mut [u8; 8]) {
        self.0.encrypt_block(GenericArray::from_mut_slice(block));
    }

    pub(crate) fn decrypt(&self, block: &mut [u8; 8]) {
        self.0.decrypt_block(GenericArray::from_mut_slice(block));
    }
}

/// The issuer master keys of one key set: application cryptograms (AC),
/// secure-messaging integrity (SMI) and confidentiality (SMC).
#[derive(Debug, Clone)]
pub struct IssuerMasterKeys {
    pub ac: TdesKey,
    pub smi: TdesKey,
    pub smc: TdesKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_is_odd_and_changes_only_the_low_bit() {
        // pyemv's tools.adjust_key_parity example.
        let key = TdesKey::new([
            0x1A, 0x2B, 0x3C, 0x4D, 0x5F, 0x0A, 0x1B, 0x2C, 0x4D, 0x5F, 0x6A, 0x7B, 0x8C, 0x9D,
            0x0F, 0x1A,
        ]);
        let adjusted = key.with_odd_parity();
        assert_eq!(
            adjusted.expose(),
            &[
                0x1A, 0x2A, 0x3D, 0x4C, 0x5E, 0x0B, 0x1A, 0x2C, 0x4C, 0x5E, 0x6B, 0x7A, 0x8C, 0x9D,
                0x0E, 0x1A
            ]
        );
    }

    #[test]
    fn kcv_of_a_known_key() {
        // pyemv's HSM tests: 0123456789ABCDEFFEDCBA9876543210 has check digits 08D7B4.
        let key = TdesKey::new([
            0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54,
            0x32, 0x10,
        ]);
        assert_eq!(key.kcv(), [0x08, 0xD7, 0xB4]);
        assert_eq!(format!("{key:?}"), "TdesKey(<redacted>)");
        assert_eq!(
            TdesKey::from_slice(&[0; 15]).err(),
            Some(Error::KeyLength { found: 15 })
        );
    }
}
