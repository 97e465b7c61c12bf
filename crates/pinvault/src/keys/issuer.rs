//! Issuer master keys for chip cards (API.md "Chip cards"): per program and
//! cryptogram version, three double-length TDES keys — AC (the application
//! cryptogram key, which the Visa chip PIN block is built with), SMI (secure
//! messaging for integrity) and SMC (for confidentiality). Loaded from clear
//! components like zone keys, stored wrapped by the master key with the set's
//! id, the key's part and its check value as associated data.

use pinblock::SecretKey;
use zeroize::Zeroizing;

use super::zone::{self, ImportError, ZoneAlgorithm};

/// One of a set's three keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Ac,
    Smi,
    Smc,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Ac, Part::Smi, Part::Smc];

    pub fn as_str(self) -> &'static str {
        match self {
            Part::Ac => "ac",
            Part::Smi => "smi",
            Part::Smc => "smc",
        }
    }

    /// The TR-31 key usage of a key block holding this key: `E0` (EMV/chip
    /// issuer master key: application cryptograms), `E2` (secure messaging
    /// for integrity), `E1` (secure messaging for confidentiality).
    pub fn tr31_usage(self) -> &'static str {
        match self {
            Part::Ac => "E0",
            Part::Smi => "E2",
            Part::Smc => "E1",
        }
    }
}

/// Combines clear components (XOR) into a double-length TDES key, checked
/// against `expected_kcv` where given; the key and its check value.
pub fn combine(
    components: &[Zeroizing<String>],
    expected_kcv: Option<&str>,
) -> Result<(SecretKey, String), ImportError> {
    let (key, kcv) = zone::combine(ZoneAlgorithm::Tdes, components, expected_kcv)?;
    if key.len() != 16 {
        return Err(ImportError::Length {
            component: 1,
            expected: "32 hex digits (a double-length TDES key)",
        });
    }
    Ok((key, kcv))
}
