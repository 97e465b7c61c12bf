//! Keys that arrive as ANSI X9.143 / TR-31 key blocks (API.md "Key exchange"):
//! the rules a block must meet before its key is taken in, and what of its
//! header is kept. Pure: the key block protection key is given in clear here
//! (`app::kbpk` unwraps it from the master key), and `keyblock::unwrap` checks
//! the block's MAC before anything of it is read.
//!
//! In this order, each refusal saying why (never a byte of a key):
//! 1. the KBPK fits the block's version: B and C are TDES key block protection
//!    keys, D is AES;
//! 2. the block unwraps under it (structure, then the MAC, then the key length);
//! 3. its key usage is one the caller takes (`P0` for a zone key, `E0`/`E2`/`E1`
//!    for IMK-AC/SMI/SMC, `V1`/`V2` for PIN verification keys);
//! 4. its mode of use fits that usage ([`modes_of_use`]);
//! 5. its exportability is `E`, `N` or `S`;
//! 6. its key version number does not mark a key component (`c1`, `c2`…): a
//!    component is combined with the others first, not imported as a key.
//!
//! The mode of use, the exportability, the key version number, the version
//! and the KBPK are kept with the key ([`Tr31Origin`]). pinvault never exports a
//! key, so the exportability is recorded, not acted on.

use keyblock::Header;
use pinblock::SecretKey;
use serde::{Deserialize, Serialize};

use super::ZoneAlgorithm;

/// What of a key block is kept with the key it brought: where it came from
/// and how its sender bound it. Public facts (no key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tr31Origin {
    /// The key block protection key it was unwrapped under (`kbpk_…`).
    pub kbpk_id: String,
    /// `B`, `C` or `D`.
    pub version: String,
    /// `P0`, `E0`, `E1`, `E2`, `V1`, `V2`.
    pub key_usage: String,
    /// One character, e.g. `B` (both), `D` (decrypt only), `X` (derivation).
    pub mode_of_use: String,
    /// `E` (exportable under a KEK), `N` (not exportable), `S` (sensitive).
    pub exportability: String,
    /// Two characters, `00` when not used.
    pub key_version: String,
}

impl Tr31Origin {
    pub fn new(kbpk_id: &str, header: &Header) -> Self {
        Tr31Origin {
            kbpk_id: kbpk_id.to_owned(),
            version: header.version().as_char().to_string(),
            key_usage: header.key_usage().to_owned(),
            mode_of_use: header.mode_of_use().to_string(),
            exportability: header.exportability().to_string(),
            key_version: header.key_version().to_owned(),
        }
    }

    /// The facts a program may see of one of its keys (the API views): all
    /// but the operator's KBPK id.
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "version": self.version,
            "key_usage": self.key_usage,
            "mode_of_use": self.mode_of_use,
            "exportability": self.exportability,
            "key_version": self.key_version,
        })
    }
}

/// The modes of use taken for a key usage; `None` for a usage pinvault takes
/// no key of.
///
/// - `P0` (PIN encryption, a zone key): `B` both, `D` decrypt only, `E`
///   encrypt only, `N` no special restrictions. A zone key is kept for one
///   direction (`--usage verify|export`) and blocks are marked from either
///   side's point of view in the field (TR-31:2018's own example ZPK is `E`),
///   so `D` and `E` are both taken for both. Anything else (`G` generate only,
///   `V` verify only, `C`, `S`, `T`, `X`, `Y`…) is no way to use a PIN
///   encryption key, and is refused.
/// - `E0`, `E1`, `E2` (EMV issuer master keys for AC, SMC, SMI): `B`, `C`,
///   `D`, `E`, `G`, `N`, `X` (card keys are derived from them, then used to
///   generate and verify cryptograms and to encipher and MAC scripts; issuers
///   mark them several ways). Refused: `S`, `T`, `V`, `Y` and the rest.
/// - `V1`, `V2` (IBM 3624 and Visa PVV PIN verification keys): `C` both, `G`
///   generate only (verifying a PVV or an offset is generating it again and
///   comparing), `V` verify only, `N`. Refused: encryption modes and the rest.
pub fn modes_of_use(usage: &str) -> Option<&'static str> {
    match usage {
        "P0" => Some("BDEN"),
        "E0" | "E1" | "E2" => Some("BCDEGNX"),
        "V1" | "V2" => Some("CGNV"),
        _ => None,
    }
}

/// The name of a mode of use, for messages.
fn mode_name(mode: char) -> &'static str {
    match mode {
        'B' => "both encrypt and decrypt",
        'C' => "both generate and verify",
        'D' => "decrypt only",
        'E' => "encrypt only",
        'G' => "generate only",
        'N' => "no special restrictions",
        'S' => "signature only",
        'T' => "both sign and decrypt",
        'V' => "verify only",
        'X' => "key derivation",
        'Y' => "key variants",
        _ => "not a defined mode of use",
    }
}

/// Whether a KBPK of `algorithm` protects blocks of `version`.
fn kbpk_fits(algorithm: ZoneAlgorithm, version: char) -> bool {
    match version {
        'B' | 'C' => algorithm == ZoneAlgorithm::Tdes,
        'D' => algorithm != ZoneAlgorithm::Tdes,
        // Anything else: keyblock::unwrap says what is wrong with it.
        _ => true,
    }
}

/// Opens `block` under the clear KBPK `kbpk` (of `kbpk_algorithm`) and checks
/// it by the rules above, for a key of one of `wanted_usages`. Returns the key
/// and the block's header; the message of a refusal says why (no key material).
pub fn open(
    kbpk_algorithm: ZoneAlgorithm,
    kbpk: &SecretKey,
    block: &str,
    wanted_usages: &[&str],
) -> Result<(SecretKey, Header), String> {
    let block = block.trim();
    if block.is_empty() {
        return Err("the key block is empty".into());
    }
    if let Some(version) = block.chars().next() {
        if !kbpk_fits(kbpk_algorithm, version) {
            let needs = if version == 'D' { "an AES" } else { "a TDES" };
            return Err(format!(
                "a version {version} key block is protected by {needs} key block protection key, \
                 and this one is {}",
                kbpk_algorithm.as_str()
            ));
        }
    }
    let out = keyblock::unwrap(kbpk.expose(), block).map_err(|e| e.to_string())?;
    let header = out.header;
    let usage = header.key_usage();
    if !wanted_usages.contains(&usage) {
        return Err(format!(
            "the key block's key usage is {usage}, and this key must be {}",
            wanted_usages.join(" or ")
        ));
    }
    let modes = modes_of_use(usage)
        .ok_or_else(|| format!("pinvault takes no key of usage {usage} from a key block"))?;
    let mode = header.mode_of_use();
    if !modes.contains(mode) {
        let taken: Vec<String> = modes.chars().map(|m| m.to_string()).collect();
        return Err(format!(
            "the key block's mode of use {mode} ({}) does not fit a key of usage {usage} \
             (taken: {})",
            mode_name(mode),
            taken.join(", ")
        ));
    }
    let exportability = header.exportability();
    if !"ENS".contains(exportability) {
        return Err(format!(
            "the key block's exportability {exportability} is not E, N or S"
        ));
    }
    let key_version = header.key_version();
    if key_version.starts_with('c') {
        return Err(format!(
            "the key block holds a key component (key version number {key_version}): \
             combine the components first and send the key"
        ));
    }
    let key = SecretKey::from_slice(out.key.expose())
        .map_err(|_| format!("the key block holds a key of {} bytes", out.key.len()))?;
    Ok((key, header))
}

/// The zone key algorithm of a key block's key: `T` with 16 or 24 bytes is
/// `tdes`; `A` with 16, 24 or 32 bytes is `aes128`, `aes192`, `aes256`.
pub fn zone_algorithm(header: &Header, len: usize) -> Result<ZoneAlgorithm, String> {
    match (header.algorithm(), len) {
        ('T', 16 | 24) => Ok(ZoneAlgorithm::Tdes),
        ('A', 16) => Ok(ZoneAlgorithm::Aes128),
        ('A', 24) => Ok(ZoneAlgorithm::Aes192),
        ('A', 32) => Ok(ZoneAlgorithm::Aes256),
        ('T', n) => Err(format!(
            "the key block holds a {n}-byte TDES key: a zone key is double or triple length (16 or 24 bytes)"
        )),
        ('A', n) => Err(format!(
            "the key block holds a {n}-byte AES key: a zone key is 16, 24 or 32 bytes"
        )),
        (other, _) => Err(format!(
            "the key block's algorithm is {other}: a zone key is T (TDES) or A (AES)"
        )),
    }
}

/// Checks a key block's key is a double-length TDES key (issuer master keys,
/// PIN verification keys).
pub fn double_length_tdes(header: &Header, len: usize) -> Result<(), String> {
    match (header.algorithm(), len) {
        ('T', 16) => Ok(()),
        (algorithm, n) => Err(format!(
            "the key block holds a {n}-byte key of algorithm {algorithm}: this key is a \
             double-length TDES key (algorithm T, 16 bytes)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyblock::Version;

    fn key(len: usize, byte: u8) -> SecretKey {
        SecretKey::from_slice(&vec![byte; len]).unwrap()
    }

    /// A block of a 16-byte key under `kbpk`; `fields` its header's key
    /// usage, algorithm, mode of use, key version and exportability, as they
    /// stand in the header ("P0TE01S").
    fn block(version: Version, kbpk: &SecretKey, fields: &str) -> String {
        let c = |i: usize| char::from(fields.as_bytes()[i]);
        let (usage, kv) = (&fields[0..2], &fields[4..6]);
        let header = Header::new(version, usage, c(2), c(3), kv, c(6)).unwrap();
        let wrapped = key(16, 0x5A);
        keyblock::wrap(kbpk.expose(), &header, wrapped.expose(), &mut rand::rng()).unwrap()
    }

    #[test]
    fn a_fitting_block_opens_and_its_header_is_kept() {
        let kbpk = key(16, 0x11);
        let b = block(Version::B, &kbpk, "P0TE01S");
        let (k, header) = open(ZoneAlgorithm::Tdes, &kbpk, &b, &["P0"]).unwrap();
        assert_eq!(k.expose(), &[0x5A; 16]);
        let origin = Tr31Origin::new("kbpk_x", &header);
        assert_eq!(
            (origin.version.as_str(), origin.mode_of_use.as_str()),
            ("B", "E")
        );
        assert_eq!(
            (origin.exportability.as_str(), origin.key_version.as_str()),
            ("S", "01")
        );
        assert_eq!(
            zone_algorithm(&header, k.len()).unwrap(),
            ZoneAlgorithm::Tdes
        );
        assert!(double_length_tdes(&header, k.len()).is_ok());
    }

    #[test]
    fn refusals_say_why() {
        let tdes = key(16, 0x11);
        let aes = key(32, 0x22);
        let other = key(16, 0x12);
        use Version::{B, C, D};
        use ZoneAlgorithm::{Aes256, Tdes};
        // The KBPK it is opened with, the block (its version, the KBPK it is
        // under, its header), the key usage wanted; what the refusal names.
        let cases = [
            (&tdes, B, &tdes, "K0TB00N", "P0", "key usage is K0"),
            (&tdes, C, &tdes, "P0TG00N", "P0", "G (generate only)"),
            (&aes, D, &aes, "E0TV00N", "E0", "mode of use V"),
            (&aes, D, &aes, "P0AB00X", "P0", "exportability X"),
            (&aes, D, &aes, "P0ABc1N", "P0", "key component"),
            (&tdes, D, &tdes, "P0AB00N", "P0", "an AES key block"),
            (&other, B, &tdes, "P0TB00N", "P0", "MAC"),
        ];
        for (opener, version, under, header, usage, why) in cases {
            let alg = if opener.len() == 32 { Aes256 } else { Tdes };
            let err = open(alg, opener, &block(version, under, header), &[usage]).unwrap_err();
            assert!(err.contains(why), "{header}: {err} (wanted {why})");
        }
        let b = block(Version::B, &tdes, "P0TB00N");
        let mut tampered = b.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(
            open(Tdes, &tdes, &tampered, &["P0"])
                .unwrap_err()
                .contains("MAC")
        );
    }

    #[test]
    fn zone_algorithms_come_from_the_block() {
        let kbpk = key(32, 0x22);
        for (alg, len, want) in [
            ('A', 16, Some(ZoneAlgorithm::Aes128)),
            ('A', 24, Some(ZoneAlgorithm::Aes192)),
            ('A', 32, Some(ZoneAlgorithm::Aes256)),
            ('T', 24, Some(ZoneAlgorithm::Tdes)),
            ('T', 8, None),
            ('A', 20, None),
            ('D', 8, None),
        ] {
            let header = Header::new(Version::D, "P0", alg, 'B', "00", 'N').unwrap();
            let b =
                keyblock::wrap(kbpk.expose(), &header, &vec![7; len], &mut rand::rng()).unwrap();
            let (k, h) = open(ZoneAlgorithm::Aes256, &kbpk, &b, &["P0"]).unwrap();
            assert_eq!(zone_algorithm(&h, k.len()).ok(), want, "{alg} {len}");
        }
    }
}
