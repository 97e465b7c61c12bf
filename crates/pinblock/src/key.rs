//! Zone keys: prepared TDES and AES ciphers, and their key check values.

use core::fmt;
use core::str::FromStr;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use cmac::{Cmac, Mac};
use des::{TdesEde2, TdesEde3};

use crate::{Error, SecretKey};

/// The block cipher family of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Triple DES (TDEA), double (16 bytes) or triple (24 bytes) length.
    Tdes,
    /// AES-128, AES-192 or AES-256.
    Aes,
}

impl KeyAlgorithm {
    /// `tdes` or `aes`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Tdes => "tdes",
            KeyAlgorithm::Aes => "aes",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "tdes" => Ok(KeyAlgorithm::Tdes),
            "aes" => Ok(KeyAlgorithm::Aes),
            _ => Err(Error::UnknownKeyAlgorithm),
        }
    }
}

/// A key's algorithm and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Double-length TDES (two 8-byte keys, K1 K2 K1).
    Tdes2,
    /// Triple-length TDES.
    Tdes3,
    Aes128,
    Aes192,
    Aes256,
}

impl KeyKind {
    pub fn algorithm(self) -> KeyAlgorithm {
        match self {
            KeyKind::Tdes2 | KeyKind::Tdes3 => KeyAlgorithm::Tdes,
            KeyKind::Aes128 | KeyKind::Aes192 | KeyKind::Aes256 => KeyAlgorithm::Aes,
        }
    }

    /// The kind of a key of `len` bytes for `algorithm`.
    pub fn from_len(algorithm: KeyAlgorithm, len: usize) -> Result<Self, Error> {
        match (algorithm, len) {
            (KeyAlgorithm::Tdes, 16) => Ok(KeyKind::Tdes2),
            (KeyAlgorithm::Tdes, 24) => Ok(KeyKind::Tdes3),
            (KeyAlgorithm::Aes, 16) => Ok(KeyKind::Aes128),
            (KeyAlgorithm::Aes, 24) => Ok(KeyKind::Aes192),
            (KeyAlgorithm::Aes, 32) => Ok(KeyKind::Aes256),
            (algorithm, found) => Err(Error::KeyLength { algorithm, found }),
        }
    }

    /// Block size of the cipher in bytes.
    pub fn block_len(self) -> usize {
        match self.algorithm() {
            KeyAlgorithm::Tdes => 8,
            KeyAlgorithm::Aes => 16,
        }
    }
}

/// A prepared zone (or any block-cipher) key: the key schedule is computed once,
/// so enciphering a PIN block costs only the block operations.
///
/// `Debug` shows the kind and the key check value, never key material; the key
/// schedule is zeroed on drop (the `zeroize` features of `aes` and `des`).
pub struct ZoneKey {
    cipher: Cipher,
    kcv: Kcv,
}

#[derive(Clone, Copy)]
enum Direction {
    Encrypt,
    Decrypt,
}

enum Cipher {
    Tdes2(TdesEde2),
    Tdes3(TdesEde3),
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
}

impl ZoneKey {
    /// Prepares a key. TDES keys are 16 or 24 bytes (parity bits are ignored, as
    /// every TDES implementation does); AES keys 16, 24 or 32.
    pub fn new(algorithm: KeyAlgorithm, key: &SecretKey) -> Result<Self, Error> {
        let bytes = key.expose();
        let kind = KeyKind::from_len(algorithm, bytes.len())?;
        let bad_len = |_| Error::KeyLength {
            algorithm,
            found: bytes.len(),
        };
        let cipher = match kind {
            KeyKind::Tdes2 => Cipher::Tdes2(TdesEde2::new_from_slice(bytes).map_err(bad_len)?),
            KeyKind::Tdes3 => Cipher::Tdes3(TdesEde3::new_from_slice(bytes).map_err(bad_len)?),
            KeyKind::Aes128 => Cipher::Aes128(Aes128::new_from_slice(bytes).map_err(bad_len)?),
            KeyKind::Aes192 => Cipher::Aes192(Aes192::new_from_slice(bytes).map_err(bad_len)?),
            KeyKind::Aes256 => Cipher::Aes256(Aes256::new_from_slice(bytes).map_err(bad_len)?),
        };
        let kcv = match kind {
            KeyKind::Tdes2 | KeyKind::Tdes3 => {
                // ANSI X9.24-1 legacy method: encipher a zero block, keep 3 bytes.
                let mut block = [0u8; 8];
                encrypt_with(&cipher, &mut block);
                Kcv::new(&block, 3)
            }
            KeyKind::Aes128 => Kcv::new(&cmac_zero_block::<Cmac<Aes128>>(bytes, algorithm)?, 5),
            KeyKind::Aes192 => Kcv::new(&cmac_zero_block::<Cmac<Aes192>>(bytes, algorithm)?, 5),
            KeyKind::Aes256 => Kcv::new(&cmac_zero_block::<Cmac<Aes256>>(bytes, algorithm)?, 5),
        };
        Ok(ZoneKey { cipher, kcv })
    }

    /// Parses and prepares a key given in hex.
    pub fn from_hex(algorithm: KeyAlgorithm, hex: &str) -> Result<Self, Error> {
        Self::new(algorithm, &SecretKey::from_hex(hex)?)
    }

    pub fn kind(&self) -> KeyKind {
        match self.cipher {
            Cipher::Tdes2(_) => KeyKind::Tdes2,
            Cipher::Tdes3(_) => KeyKind::Tdes3,
            Cipher::Aes128(_) => KeyKind::Aes128,
            Cipher::Aes192(_) => KeyKind::Aes192,
            Cipher::Aes256(_) => KeyKind::Aes256,
        }
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.kind().algorithm()
    }

    /// The key check value: for TDES the first 3 bytes of the key's encipherment of
    /// a zero block; for AES the first bytes of the AES-CMAC of a zero block (ANSI
    /// X9.24-1:2017; shown as 3 bytes, up to 5 compared).
    pub fn kcv(&self) -> &Kcv {
        &self.kcv
    }

    /// Enciphers one block in place (ECB, a single block). `block` must be the
    /// cipher's block length; any other length is refused without touching it.
    pub fn encrypt_block(&self, block: &mut [u8]) -> Result<(), Error> {
        self.check_block(block)?;
        encrypt_with(&self.cipher, block);
        Ok(())
    }

    /// Deciphers one block in place (ECB, a single block).
    pub fn decrypt_block(&self, block: &mut [u8]) -> Result<(), Error> {
        self.check_block(block)?;
        decrypt_with(&self.cipher, block);
        Ok(())
    }

    /// Format 4's two-step encipherment, `E(E(block) XOR mask)`, with one dispatch on
    /// the key type for both steps (this is the hot path of PIN verification).
    /// AES keys only.
    pub(crate) fn encrypt_xor_encrypt(
        &self,
        block: &mut [u8; 16],
        mask: u128,
    ) -> Result<(), Error> {
        self.twice_with_mask(block, mask, Direction::Encrypt)
    }

    /// The inverse: `D(D(block) XOR mask)`. AES keys only.
    pub(crate) fn decrypt_xor_decrypt(
        &self,
        block: &mut [u8; 16],
        mask: u128,
    ) -> Result<(), Error> {
        self.twice_with_mask(block, mask, Direction::Decrypt)
    }

    #[inline(always)]
    fn twice_with_mask(
        &self,
        block: &mut [u8; 16],
        mask: u128,
        dir: Direction,
    ) -> Result<(), Error> {
        #[inline(always)]
        fn run<C: BlockEncrypt + BlockDecrypt>(
            c: &C,
            block: &mut [u8; 16],
            mask: u128,
            dir: Direction,
        ) {
            let step = |b: &mut [u8; 16]| match dir {
                Direction::Encrypt => c.encrypt_block(GenericArray::from_mut_slice(b)),
                Direction::Decrypt => c.decrypt_block(GenericArray::from_mut_slice(b)),
            };
            step(block);
            *block = (u128::from_be_bytes(*block) ^ mask).to_be_bytes();
            step(block);
        }
        match &self.cipher {
            Cipher::Aes128(c) => run(c, block, mask, dir),
            Cipher::Aes192(c) => run(c, block, mask, dir),
            Cipher::Aes256(c) => run(c, block, mask, dir),
            Cipher::Tdes2(_) | Cipher::Tdes3(_) => return Err(self.not_for_format_4()),
        }
        Ok(())
    }

    fn not_for_format_4(&self) -> Error {
        Error::KeyAlgorithmNotAllowed {
            format: crate::Format::Iso4,
            algorithm: self.algorithm(),
        }
    }

    fn check_block(&self, block: &[u8]) -> Result<(), Error> {
        let expected = self.kind().block_len();
        if block.len() == expected {
            Ok(())
        } else {
            Err(Error::BlockLength {
                expected,
                found: block.len(),
            })
        }
    }
}

impl fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZoneKey")
            .field("kind", &self.kind())
            .field("kcv", &self.kcv.to_string())
            .finish_non_exhaustive()
    }
}

/// Callers have checked that `block` is the cipher's block length, so the
/// `from_mut_slice` conversions below cannot fail.
fn encrypt_with(cipher: &Cipher, block: &mut [u8]) {
    match cipher {
        Cipher::Tdes2(c) => c.encrypt_block(GenericArray::from_mut_slice(block)),
        Cipher::Tdes3(c) => c.encrypt_block(GenericArray::from_mut_slice(block)),
        Cipher::Aes128(c) => c.encrypt_block(GenericArray::from_mut_slice(block)),
        Cipher::Aes192(c) => c.encrypt_block(GenericArray::from_mut_slice(block)),
        Cipher::Aes256(c) => c.encrypt_block(GenericArray::from_mut_slice(block)),
    }
}

fn decrypt_with(cipher: &Cipher, block: &mut [u8]) {
    match cipher {
        Cipher::Tdes2(c) => c.decrypt_block(GenericArray::from_mut_slice(block)),
        Cipher::Tdes3(c) => c.decrypt_block(GenericArray::from_mut_slice(block)),
        Cipher::Aes128(c) => c.decrypt_block(GenericArray::from_mut_slice(block)),
        Cipher::Aes192(c) => c.decrypt_block(GenericArray::from_mut_slice(block)),
        Cipher::Aes256(c) => c.decrypt_block(GenericArray::from_mut_slice(block)),
    }
}

/// AES-CMAC (NIST SP 800-38B) of one zero block, from the `cmac` crate.
fn cmac_zero_block<M: Mac + KeyInit>(
    key: &[u8],
    algorithm: KeyAlgorithm,
) -> Result<[u8; 16], Error> {
    let mut mac = <M as KeyInit>::new_from_slice(key).map_err(|_| Error::KeyLength {
        algorithm,
        found: key.len(),
    })?;
    Mac::update(&mut mac, &[0u8; 16]);
    let tag = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    for (o, t) in out.iter_mut().zip(tag.iter()) {
        *o = *t;
    }
    Ok(out)
}

/// A key check value: up to 5 bytes of a one-way function of the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kcv {
    bytes: [u8; 5],
    len: u8,
}

impl Kcv {
    /// The length shown by default: 3 bytes (6 hex digits), as PCI PIN requires at
    /// most for TDES and as HSMs show for AES.
    pub const DISPLAY_LEN: usize = 3;

    fn new(source: &[u8], len: usize) -> Self {
        let mut bytes = [0u8; 5];
        for (slot, &b) in bytes.iter_mut().zip(source).take(len) {
            *slot = b;
        }
        Kcv {
            bytes,
            len: len.min(5) as u8,
        }
    }

    /// The first 3 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..Self::DISPLAY_LEN).unwrap_or(&[])
    }

    /// Whether `hex` (either case) equals the start of this check value. At least 4
    /// hex digits (2 bytes) are needed; up to 6 for TDES and 10 for AES are compared.
    pub fn matches_hex(&self, hex: &str) -> bool {
        let mut given = [0u8; 5];
        match crate::hex::decode_into(hex, &mut given) {
            Ok(n) if n >= 2 && n <= usize::from(self.len) => given.get(..n) == self.bytes.get(..n),
            _ => false,
        }
    }
}

impl fmt::Display for Kcv {
    /// Upper-case hex of the first 3 bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::encode_upper(self.as_bytes()))
    }
}

impl fmt::Debug for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kcv({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tdes_kcv_published() {
        // The classic test key of payment HSM manuals.
        let k = ZoneKey::from_hex(KeyAlgorithm::Tdes, "0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert_eq!(k.kcv().to_string(), "08D7B4");
        assert!(k.kcv().matches_hex("08d7b4"));
        assert!(k.kcv().matches_hex("08D7"));
        assert!(!k.kcv().matches_hex("08D7B5"));
        assert!(!k.kcv().matches_hex("08"));
        assert!(!k.kcv().matches_hex("08D7B40000"));
    }

    #[test]
    fn aes_kcv_is_cmac_of_zero_block() {
        // NIST SP 800-38B, AES-128 example 2 is the CMAC of one block; the KCV is
        // the CMAC of a zero block, checked against an independent CMAC in the
        // interop vectors. Here: only the shape and the comparison rules.
        let k = ZoneKey::from_hex(KeyAlgorithm::Aes, "2B7E151628AED2A6ABF7158809CF4F3C").unwrap();
        assert_eq!(k.kcv().to_string().len(), 6);
        let full = crate::hex::encode_upper(&k.kcv().bytes);
        assert!(k.kcv().matches_hex(&full));
        assert!(k.kcv().matches_hex(&full[..8]));
    }

    #[test]
    fn key_lengths() {
        assert_eq!(
            ZoneKey::from_hex(KeyAlgorithm::Tdes, "0123456789ABCDEF").unwrap_err(),
            Error::KeyLength {
                algorithm: KeyAlgorithm::Tdes,
                found: 8
            }
        );
        assert!(ZoneKey::from_hex(KeyAlgorithm::Aes, &"00".repeat(20)).is_err());
        assert!(ZoneKey::from_hex(KeyAlgorithm::Aes, &"00".repeat(33)).is_err());
        assert_eq!(
            ZoneKey::from_hex(KeyAlgorithm::Aes, &"00".repeat(32))
                .unwrap()
                .kind(),
            KeyKind::Aes256
        );
        assert_eq!(
            ZoneKey::from_hex(KeyAlgorithm::Tdes, &"01".repeat(24))
                .unwrap()
                .kind(),
            KeyKind::Tdes3
        );
    }

    #[test]
    fn debug_shows_no_key() {
        let k = ZoneKey::from_hex(KeyAlgorithm::Aes, "2B7E151628AED2A6ABF7158809CF4F3C").unwrap();
        let shown = format!("{k:?}");
        assert!(
            !shown.contains("2B7E") && !shown.contains("2b7e"),
            "{shown}"
        );
    }
}
