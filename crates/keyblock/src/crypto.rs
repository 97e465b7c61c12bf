//! The ciphers of the three versions: KBEK/KBAK derivation, CBC, CMAC and the
//! version C CBC-MAC. Every derived key and every clear payload lives in a
//! buffer that is zeroed on drop; cipher and CMAC states zero themselves (the
//! `zeroize` features of `aes`, `des` and `cmac`).

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use cmac::{Cmac, Mac};
use des::{TdesEde2, TdesEde3};
use zeroize::{Zeroize, Zeroizing};

use crate::{Tr31Error, Version};

/// Key material or a clear payload.
pub(crate) type Secret = Zeroizing<Vec<u8>>;

/// Checks the KBPK's length for the version: TDES 16 or 24 bytes for B and C,
/// AES 16, 24 or 32 for D.
pub(crate) fn check_kbpk(version: Version, kbpk: &[u8]) -> Result<(), Tr31Error> {
    match (version, kbpk.len()) {
        (Version::B | Version::C, 16 | 24) | (Version::D, 16 | 24 | 32) => Ok(()),
        (v, found) => Err(Tr31Error::KbpkLength {
            version: v.as_char(),
            found,
        }),
    }
}

/// The key block encryption and authentication keys (KBEK, KBAK).
pub(crate) fn derive(version: Version, kbpk: &[u8]) -> Result<(Secret, Secret), Tr31Error> {
    check_kbpk(version, kbpk)?;
    match version {
        // The variant method: KBPK XOR 45… and XOR 4D….
        Version::C => {
            let variant = |mask: u8| Zeroizing::new(kbpk.iter().map(|b| b ^ mask).collect());
            Ok((variant(0x45), variant(0x4D)))
        }
        // CMAC key derivation (TR-31 5.3.2.1 and 5.3.2.3, NIST SP 800-108 counter
        // mode): CMAC(KBPK, counter || usage (0000 encryption, 0001 MAC) || 00 ||
        // algorithm || length in bits), counter from 1, as many calls as the KBPK
        // needs, cut to its length.
        Version::B | Version::D => {
            let (algorithm, bits, calls): (u16, u16, u8) = match (version, kbpk.len()) {
                (Version::B, 16) => (0x0000, 128, 2),
                (Version::B, 24) => (0x0001, 192, 3),
                (Version::D, 16) => (0x0002, 128, 1),
                (Version::D, 24) => (0x0003, 192, 2),
                _ => (0x0004, 256, 2),
            };
            let derive_one = |usage: u16| -> Result<Secret, Tr31Error> {
                let mut out = Zeroizing::new(Vec::with_capacity(32));
                for counter in 1..=calls {
                    let [u0, u1] = usage.to_be_bytes();
                    let [a0, a1] = algorithm.to_be_bytes();
                    let [b0, b1] = bits.to_be_bytes();
                    let input = [counter, u0, u1, 0, a0, a1, b0, b1];
                    out.extend_from_slice(&cmac(version, kbpk, &[&input])?);
                }
                out.truncate(kbpk.len());
                Ok(out)
            };
            Ok((derive_one(0x0000)?, derive_one(0x0001)?))
        }
    }
}

/// CMAC (NIST SP 800-38B) under `key` of the concatenated `parts`: TDES for B and
/// C, AES for D.
pub(crate) fn cmac(version: Version, key: &[u8], parts: &[&[u8]]) -> Result<Secret, Tr31Error> {
    fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Option<Secret> {
        let mut mac = <M as KeyInit>::new_from_slice(key).ok()?;
        for part in parts {
            Mac::update(&mut mac, part);
        }
        let mut tag = mac.finalize().into_bytes();
        let out = Zeroizing::new(tag.to_vec());
        tag.as_mut_slice().zeroize();
        Some(out)
    }
    let tag = match (version, key.len()) {
        (Version::B | Version::C, 16) => run::<Cmac<TdesEde2>>(key, parts),
        (Version::B | Version::C, 24) => run::<Cmac<TdesEde3>>(key, parts),
        (Version::D, 16) => run::<Cmac<Aes128>>(key, parts),
        (Version::D, 24) => run::<Cmac<Aes192>>(key, parts),
        (Version::D, 32) => run::<Cmac<Aes256>>(key, parts),
        _ => None,
    };
    tag.ok_or(Tr31Error::KbpkLength {
        version: version.as_char(),
        found: key.len(),
    })
}

#[derive(Clone, Copy)]
enum Direction {
    Encrypt,
    Decrypt,
}

/// CBC encipherment in place; `data` is a whole number of blocks and `iv` one block.
pub(crate) fn cbc_encrypt(
    version: Version,
    key: &[u8],
    iv: &[u8],
    data: &mut [u8],
) -> Result<(), Tr31Error> {
    cbc(version, key, iv, data, Direction::Encrypt)
}

/// CBC decipherment in place.
pub(crate) fn cbc_decrypt(
    version: Version,
    key: &[u8],
    iv: &[u8],
    data: &mut [u8],
) -> Result<(), Tr31Error> {
    cbc(version, key, iv, data, Direction::Decrypt)
}

/// ISO 9797-1 MAC algorithm 1 (CBC-MAC, zero IV, no padding: the data is a whole
/// number of blocks) with TDES, the version C MAC before it is cut to 4 bytes.
pub(crate) fn cbc_mac(version: Version, key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, Tr31Error> {
    let mut data: Vec<u8> = parts.concat();
    let bs = version.block_len();
    cbc(version, key, &vec![0u8; bs], &mut data, Direction::Encrypt)?;
    let start = data
        .len()
        .checked_sub(bs)
        .ok_or(Tr31Error::Malformed("nothing to compute the MAC over"))?;
    Ok(data.get(start..).unwrap_or(&[]).to_vec())
}

fn cbc(
    version: Version,
    key: &[u8],
    iv: &[u8],
    data: &mut [u8],
    dir: Direction,
) -> Result<(), Tr31Error> {
    fn run<C: BlockEncrypt + BlockDecrypt + KeyInit>(
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
        dir: Direction,
    ) -> Option<()> {
        let bs = C::block_size();
        if iv.len() != bs || data.len() % bs != 0 {
            return None;
        }
        let cipher = C::new_from_slice(key).ok()?;
        let mut chain = Zeroizing::new(iv.to_vec());
        let mut saved = Zeroizing::new(vec![0u8; bs]);
        for block in data.chunks_exact_mut(bs) {
            match dir {
                Direction::Encrypt => {
                    block
                        .iter_mut()
                        .zip(chain.iter())
                        .for_each(|(b, c)| *b ^= c);
                    cipher.encrypt_block(GenericArray::from_mut_slice(block));
                    chain.copy_from_slice(block);
                }
                Direction::Decrypt => {
                    saved.copy_from_slice(block);
                    cipher.decrypt_block(GenericArray::from_mut_slice(block));
                    block
                        .iter_mut()
                        .zip(chain.iter())
                        .for_each(|(b, c)| *b ^= c);
                    chain.copy_from_slice(&saved);
                }
            }
        }
        Some(())
    }
    let done = match (version, key.len()) {
        (Version::B | Version::C, 16) => run::<TdesEde2>(key, iv, data, dir),
        (Version::B | Version::C, 24) => run::<TdesEde3>(key, iv, data, dir),
        (Version::D, 16) => run::<Aes128>(key, iv, data, dir),
        (Version::D, 24) => run::<Aes192>(key, iv, data, dir),
        (Version::D, 32) => run::<Aes256>(key, iv, data, dir),
        _ => None,
    };
    done.ok_or(Tr31Error::Malformed(
        "cipher input is not a whole number of blocks",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn tdes_cmac_sp800_38b() {
        // NIST SP 800-38B, D.4 (three-key TDEA), example 2 (one 8-byte block).
        let key = unhex("8aa83bf8cbda10620bc1bf19fbb6cd58bc313d4a371ca8b5");
        let msg = unhex("6bc1bee22e409f96");
        assert_eq!(
            *cmac(Version::B, &key, &[&msg]).unwrap(),
            unhex("8e8f293136283797")
        );
    }

    #[test]
    fn aes_cmac_sp800_38b() {
        // NIST SP 800-38B, D.1 (AES-128), example 2.
        let key = unhex("2b7e151628aed2a6abf7158809cf4f3c");
        let msg = unhex("6bc1bee22e409f96e93d7e117393172a");
        assert_eq!(
            *cmac(Version::D, &key, &[&msg[..8], &msg[8..]]).unwrap(),
            unhex("070a16b46b4d4144f79bdd9dd04a287c")
        );
    }

    #[test]
    fn cbc_round_trip_and_lengths() {
        let key = [7u8; 24];
        let iv = [1u8; 8];
        let mut data = *b"sixteen bytes!!!";
        cbc_encrypt(Version::B, &key, &iv, &mut data).unwrap();
        assert_ne!(&data, b"sixteen bytes!!!");
        cbc_decrypt(Version::B, &key, &iv, &mut data).unwrap();
        assert_eq!(&data, b"sixteen bytes!!!");
        assert!(cbc_encrypt(Version::B, &key, &iv, &mut [0u8; 12]).is_err());
        assert!(cbc_encrypt(Version::D, &[0u8; 16], &iv, &mut [0u8; 16]).is_err());
        assert!(derive(Version::B, &[0u8; 32]).is_err());
        assert!(derive(Version::C, &[0u8; 8]).is_err());
    }
}
