//! Zone PIN keys: the keys an authorization host enciphers PIN blocks under
//! (ZPK in card-payment speak). The operator loads them from clear components
//! (`pinvault zone-keys import`); they are stored wrapped by the master key,
//! with the key's id, algorithm and check value as associated data, and never
//! leave the server again.

use pinblock::{KeyAlgorithm, SecretKey, ZoneKey};
use zeroize::Zeroizing;

/// The algorithm and length of a zone key, as the operator names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneAlgorithm {
    /// Triple DES, double (16 bytes) or triple (24 bytes) length.
    Tdes,
    Aes128,
    Aes192,
    Aes256,
}

impl ZoneAlgorithm {
    pub const ALL: [ZoneAlgorithm; 4] = [
        ZoneAlgorithm::Tdes,
        ZoneAlgorithm::Aes128,
        ZoneAlgorithm::Aes192,
        ZoneAlgorithm::Aes256,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ZoneAlgorithm::Tdes => "tdes",
            ZoneAlgorithm::Aes128 => "aes128",
            ZoneAlgorithm::Aes192 => "aes192",
            ZoneAlgorithm::Aes256 => "aes256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn block_algorithm(self) -> KeyAlgorithm {
        match self {
            ZoneAlgorithm::Tdes => KeyAlgorithm::Tdes,
            _ => KeyAlgorithm::Aes,
        }
    }

    /// Whether a key of `len` bytes has this algorithm's length.
    pub(super) fn fits(self, len: usize) -> bool {
        match self {
            ZoneAlgorithm::Tdes => len == 16 || len == 24,
            ZoneAlgorithm::Aes128 => len == 16,
            ZoneAlgorithm::Aes192 => len == 24,
            ZoneAlgorithm::Aes256 => len == 32,
        }
    }

    fn lengths(self) -> &'static str {
        match self {
            ZoneAlgorithm::Tdes => "32 or 48 hex digits (double or triple length)",
            ZoneAlgorithm::Aes128 => "32 hex digits",
            ZoneAlgorithm::Aes192 => "48 hex digits",
            ZoneAlgorithm::Aes256 => "64 hex digits",
        }
    }
}

/// Why components were refused. The messages never hold key material.
#[derive(Debug, PartialEq, Eq)]
pub enum ImportError {
    NoComponents,
    NotHex {
        component: usize,
    },
    Length {
        component: usize,
        expected: &'static str,
    },
    /// The combined TDES key's parts repeat: it is single DES in disguise.
    DegenerateTdes,
    AllZero,
    KcvMismatch {
        computed: String,
    },
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::NoComponents => f.write_str("give at least one --component"),
            ImportError::NotHex { component } => {
                write!(f, "component {component} is not hexadecimal")
            }
            ImportError::Length {
                component,
                expected,
            } => write!(f, "component {component} must be {expected}"),
            ImportError::DegenerateTdes => {
                f.write_str("the combined TDES key repeats its first 8 bytes (single DES): refused")
            }
            ImportError::AllZero => f.write_str("the combined key is all zeros: refused"),
            ImportError::KcvMismatch { computed } => write!(
                f,
                "key check value mismatch: the components combine to a key with check value {computed}; nothing was stored"
            ),
        }
    }
}

impl std::error::Error for ImportError {}

/// Combines clear components (XOR) into a key of `algorithm`, and checks it
/// against `expected_kcv` where one is given. Returns the key and its check
/// value (3 bytes, upper-case hex).
pub fn combine(
    algorithm: ZoneAlgorithm,
    components: &[Zeroizing<String>],
    expected_kcv: Option<&str>,
) -> Result<(SecretKey, String), ImportError> {
    let mut key: Option<SecretKey> = None;
    for (i, text) in components.iter().enumerate() {
        let component = i + 1;
        let text = text.trim();
        let part = SecretKey::from_hex(text).map_err(|e| match e {
            pinblock::Error::NotHex => ImportError::NotHex { component },
            _ => ImportError::Length {
                component,
                expected: algorithm.lengths(),
            },
        })?;
        if !algorithm.fits(part.len()) {
            return Err(ImportError::Length {
                component,
                expected: algorithm.lengths(),
            });
        }
        match &mut key {
            None => key = Some(part),
            Some(k) => k.xor_assign(&part).map_err(|_| ImportError::Length {
                component,
                expected: "as long as the first component",
            })?,
        }
    }
    let key = key.ok_or(ImportError::NoComponents)?;
    let kcv = check_key(algorithm, &key, expected_kcv)?;
    Ok((key, kcv))
}

/// Checks a whole key (combined from components, or taken from a key block)
/// is a key of `algorithm`: its length, not all zeros, not single DES in
/// disguise, and its check value where one is expected. Returns the check
/// value (3 bytes, upper-case hex).
pub fn check_key(
    algorithm: ZoneAlgorithm,
    key: &SecretKey,
    expected_kcv: Option<&str>,
) -> Result<String, ImportError> {
    let bytes = key.expose();
    let length = ImportError::Length {
        component: 1,
        expected: algorithm.lengths(),
    };
    if !algorithm.fits(bytes.len()) {
        return Err(length);
    }
    if bytes.iter().all(|&b| b == 0) {
        return Err(ImportError::AllZero);
    }
    if algorithm == ZoneAlgorithm::Tdes && tdes_degenerate(bytes) {
        return Err(ImportError::DegenerateTdes);
    }
    let zone = ZoneKey::new(algorithm.block_algorithm(), key).map_err(|_| length)?;
    let kcv = zone.kcv();
    if let Some(expected) = expected_kcv {
        if !kcv.matches_hex(expected.trim()) {
            return Err(ImportError::KcvMismatch {
                computed: kcv.to_string(),
            });
        }
    }
    Ok(kcv.to_string())
}

/// A TDES key whose first two 8-byte parts are equal (parity ignored) enciphers
/// as single DES.
fn tdes_degenerate(bytes: &[u8]) -> bool {
    let part = |i: usize| -> Option<[u8; 8]> {
        let mut out = [0u8; 8];
        for (o, b) in out.iter_mut().zip(bytes.get(i * 8..i * 8 + 8)?) {
            *o = b & 0xFE;
        }
        Some(out)
    };
    let (k1, k2) = (part(0), part(1));
    k1 == k2 || (bytes.len() == 24 && part(2) == k2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(parts: &[&str]) -> Vec<Zeroizing<String>> {
        parts
            .iter()
            .map(|p| Zeroizing::new((*p).to_owned()))
            .collect()
    }

    #[test]
    fn components_xor_and_the_published_kcv_checks() {
        // 0123456789ABCDEF FEDCBA9876543210 has the published KCV 08D7B4; split
        // into two components that XOR back to it.
        let (key, kcv) = combine(
            ZoneAlgorithm::Tdes,
            &z(&[
                "11111111111111111111111111111111",
                "1032547698BADCFEEFCDAB8967452301",
            ]),
            Some("08d7b4"),
        )
        .unwrap();
        assert_eq!(kcv, "08D7B4");
        assert_eq!(
            pinblock::hex::encode_upper(key.expose()),
            "0123456789ABCDEFFEDCBA9876543210"
        );
    }

    #[test]
    fn refusals() {
        let one = "0123456789ABCDEFFEDCBA9876543210";
        assert_eq!(
            combine(ZoneAlgorithm::Tdes, &z(&[one]), Some("000000")).unwrap_err(),
            ImportError::KcvMismatch {
                computed: "08D7B4".into()
            }
        );
        assert_eq!(
            combine(ZoneAlgorithm::Tdes, &[], None).unwrap_err(),
            ImportError::NoComponents
        );
        assert!(matches!(
            combine(ZoneAlgorithm::Aes256, &z(&[one]), None),
            Err(ImportError::Length { component: 1, .. })
        ));
        assert!(matches!(
            combine(ZoneAlgorithm::Tdes, &z(&[one, "00"]), None),
            Err(ImportError::Length { component: 2, .. })
        ));
        assert!(matches!(
            combine(ZoneAlgorithm::Tdes, &z(&["zz"]), None),
            Err(ImportError::NotHex { component: 1 })
        ));
        assert_eq!(
            combine(ZoneAlgorithm::Tdes, &z(&[one, one]), None).unwrap_err(),
            ImportError::AllZero
        );
        assert_eq!(
            combine(
                ZoneAlgorithm::Tdes,
                &z(&["0123456789ABCDEF0123456789ABCDEF"]),
                None
            )
            .unwrap_err(),
            ImportError::DegenerateTdes
        );
    }
}
