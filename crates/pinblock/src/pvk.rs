//! The one block operation of the legacy PIN verification methods: a PIN
//! verification key enciphers one 8-byte block (DES or TDES, ECB).

use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockEncrypt, KeyInit};
use des::{Des, TdesEde2, TdesEde3};

use crate::{Error, SecretKey};

/// Which key lengths a method takes.
#[derive(Clone, Copy)]
pub(crate) enum Lengths {
    /// 16 (double-length, K1 K2 K1) or 24 bytes (triple-length).
    Tdes,
    /// 8 (single DES, as the first IBM 3624 PVKs were), 16 or 24 bytes.
    DesOrTdes,
}

/// Enciphers `block` in place under `pvk`. The key schedule lives only for the
/// call and is zeroed on drop (the `zeroize` feature of `des`).
pub(crate) fn encipher(
    pvk: &SecretKey,
    lengths: Lengths,
    block: &mut [u8; 8],
) -> Result<(), Error> {
    let key = pvk.expose();
    let allowed = match lengths {
        Lengths::Tdes => "16 or 24",
        Lengths::DesOrTdes => "8, 16 or 24",
    };
    let bad = || Error::PvkLength {
        found: key.len(),
        allowed,
    };
    let b = GenericArray::from_mut_slice(block.as_mut_slice());
    match (key.len(), lengths) {
        (8, Lengths::DesOrTdes) => Des::new_from_slice(key)
            .map_err(|_| bad())?
            .encrypt_block(b),
        (16, _) => TdesEde2::new_from_slice(key)
            .map_err(|_| bad())?
            .encrypt_block(b),
        (24, _) => TdesEde3::new_from_slice(key)
            .map_err(|_| bad())?
            .encrypt_block(b),
        _ => return Err(bad()),
    }
    Ok(())
}

/// The sixteen nibbles of a block, most significant first.
pub(crate) fn nibbles(block: &[u8; 8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (pair, &b) in out.chunks_exact_mut(2).zip(block.iter()) {
        if let [hi, lo] = pair {
            *hi = b >> 4;
            *lo = b & 0x0F;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        let mut block = [0u8; 8];
        let single = SecretKey::from_slice(&[1; 8]).unwrap();
        assert_eq!(
            encipher(&single, Lengths::Tdes, &mut block).unwrap_err(),
            Error::PvkLength {
                found: 8,
                allowed: "16 or 24"
            }
        );
        assert_eq!(block, [0; 8], "a refused key leaves the block alone");
        encipher(&single, Lengths::DesOrTdes, &mut block).unwrap();
        // Single DES is TDES with three equal keys.
        let mut again = [0u8; 8];
        let triple = SecretKey::from_slice(&[1; 24]).unwrap();
        encipher(&triple, Lengths::Tdes, &mut again).unwrap();
        assert_eq!(block, again);
        let odd = SecretKey::from_slice(&[1; 12]).unwrap();
        assert!(encipher(&odd, Lengths::DesOrTdes, &mut block).is_err());
    }

    #[test]
    fn nibbles_in_order() {
        assert_eq!(
            nibbles(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]),
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        );
    }
}
