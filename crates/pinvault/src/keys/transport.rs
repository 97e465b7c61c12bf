//! Transport keys: the RSA key pairs whose public halves are published
//! (`GET /v1/pin-encryption-keys`) so that a cardholder's device can encrypt a
//! PIN to the service. The private half is stored as PKCS#8, wrapped by the
//! master key like every data key (kind `transport`).
//!
//! A key is named by its RFC 7638 JWK thumbprint (`kid`). After a rotation the
//! previous key still decrypts for a grace period, counted from the moment its
//! successor was made, and then is retired: it leaves the JWKS and decrypts
//! nothing more.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use super::KeyError;
use crate::der::element;
use crate::domain::time::Timestamp;

/// The RSA modulus sizes a transport key may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportBits {
    Rsa2048,
    Rsa3072,
}

impl TransportBits {
    pub fn from_bits(bits: u32) -> Option<Self> {
        match bits {
            2048 => Some(TransportBits::Rsa2048),
            3072 => Some(TransportBits::Rsa3072),
            _ => None,
        }
    }

    fn key_size(self) -> KeySize {
        match self {
            TransportBits::Rsa2048 => KeySize::Rsa2048,
            TransportBits::Rsa3072 => KeySize::Rsa3072,
        }
    }
}

/// A new RSA key pair as PKCS#8 (v1) DER. Slow (tens to hundreds of
/// milliseconds): call it off the async threads.
pub fn generate_pkcs8(bits: TransportBits) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let key = PrivateDecryptingKey::generate(bits.key_size())
        .map_err(|_| KeyError::Provider("RSA key generation failed".into()))?;
    let der = key
        .as_der()
        .map_err(|_| KeyError::Provider("RSA key encoding failed".into()))?;
    Ok(Zeroizing::new(der.as_ref().to_vec()))
}

/// A loaded transport key.
pub struct TransportKey {
    pub version: u32,
    pub created_at: Timestamp,
    /// RFC 7638 thumbprint of the public key, base64url.
    pub kid: String,
    pub bits: usize,
    /// Modulus and public exponent, big-endian without leading zeros.
    pub n: Vec<u8>,
    pub e: Vec<u8>,
    /// SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
    oaep: OaepPrivateDecryptingKey,
}

debug_fields!(TransportKey: version, kid, bits);

impl TransportKey {
    pub fn from_pkcs8(version: u32, created_at: Timestamp, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let bad = |what: &str| KeyError::Integrity(format!("transport key v{version}: {what}"));
        let private = PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| bad("not an RSA key"))?;
        let bits = private.key_size_bits();
        let spki = private
            .public_key()
            .as_der()
            .map_err(|_| bad("public key encoding"))?
            .as_ref()
            .to_vec();
        let public = aws_lc_rs::rsa::PublicKey::from_der(&spki).map_err(|_| bad("public key"))?;
        let (n, e) = rsa_public_components(public.as_ref()).ok_or_else(|| bad("public key"))?;
        let kid = thumbprint(&n, &e);
        let oaep = OaepPrivateDecryptingKey::new(private).map_err(|_| bad("OAEP"))?;
        Ok(TransportKey {
            version,
            created_at,
            kid,
            bits,
            n,
            e,
            spki,
            oaep,
        })
    }

    /// The modulus length in bytes: the length of every RSA ciphertext to it.
    pub fn size_bytes(&self) -> usize {
        self.oaep.key_size_bytes()
    }

    pub fn oaep(&self) -> &OaepPrivateDecryptingKey {
        &self.oaep
    }

    /// The public key as SubjectPublicKeyInfo PEM.
    pub fn pem(&self) -> String {
        let b64 = STANDARD.encode(&self.spki);
        let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END PUBLIC KEY-----\n");
        out
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, no spaces.
/// `n` and `e` (big-endian, no leading zero) from a PKCS#1 `RSAPublicKey` in DER,
/// `SEQUENCE { INTEGER n, INTEGER e }`: what aws-lc-rs's `PublicKey::as_ref`
/// gives. (Its own accessors need the `ring-io` feature, which would bring a
/// second `untrusted` crate next to rustls-webpki's.)
fn rsa_public_components(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let unsigned = |int: &[u8]| {
        let start = int.iter().position(|&b| b != 0).unwrap_or(int.len());
        int[start..].to_vec()
    };
    let (seq, trailing) = element(der, 0x30)?;
    let (n, rest) = element(seq, 0x02)?;
    let (e, rest) = element(rest, 0x02)?;
    let (n, e) = (unsigned(n), unsigned(e));
    (trailing.is_empty() && rest.is_empty() && !n.is_empty() && !e.is_empty()).then_some((n, e))
}

fn thumbprint(n: &[u8], e: &[u8]) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(e),
        URL_SAFE_NO_PAD.encode(n)
    );
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        canonical.as_bytes(),
    ))
}

/// Whether the key of `version` may still decrypt at `now`: the newest always,
/// an older one until `grace_s` after its successor was made.
pub fn in_service(
    keys: &[std::sync::Arc<TransportKey>],
    version: u32,
    now: Timestamp,
    grace_s: i64,
) -> bool {
    let successor = keys
        .iter()
        .filter(|k| k.version > version)
        .map(|k| k.created_at)
        .min();
    match successor {
        None => keys.iter().any(|k| k.version == version),
        Some(at) => now < at.saturating_add(grace_s),
    }
}

/// When the key of `version` stops decrypting, if a newer key exists.
pub fn retires_at(
    keys: &[std::sync::Arc<TransportKey>],
    version: u32,
    grace_s: i64,
) -> Option<Timestamp> {
    keys.iter()
        .filter(|k| k.version > version)
        .map(|k| k.created_at)
        .min()
        .map(|at| at.saturating_add(grace_s))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pkcs1_public_components() {
        // SEQUENCE { INTEGER 0x00C5 (a leading zero keeps it positive), INTEGER 65537 }
        let der = [
            0x30, 0x09, 0x02, 0x02, 0x00, 0xC5, 0x02, 0x03, 0x01, 0x00, 0x01,
        ];
        assert_eq!(
            super::rsa_public_components(&der),
            Some((vec![0xC5], vec![0x01, 0x00, 0x01]))
        );
        // Long-form length.
        let mut long = vec![0x30, 0x81, 0x87, 0x02, 0x81, 0x81, 0x00];
        long.extend([0xAB; 128]);
        long.extend([0x02, 0x01, 0x03]);
        let (n, e) = super::rsa_public_components(&long).unwrap_or_default();
        assert_eq!((n.len(), e), (128, vec![3]));
        for bad in [&der[..10], &[0x31, 0x00][..], &[0x30, 0x02, 0x02, 0x00][..]] {
            assert_eq!(super::rsa_public_components(bad), None);
        }
        let mut trailing = der.to_vec();
        trailing.push(0);
        assert_eq!(super::rsa_public_components(&trailing), None);
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let n = URL_SAFE_NO_PAD.decode("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw").unwrap();
        let e = URL_SAFE_NO_PAD.decode("AQAB").unwrap();
        assert_eq!(
            thumbprint(&n, &e),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn grace_counts_from_the_successor() {
        let pkcs8 = generate_pkcs8(TransportBits::Rsa2048).unwrap();
        let k1 = std::sync::Arc::new(TransportKey::from_pkcs8(1, 1000, &pkcs8).unwrap());
        let k2 = std::sync::Arc::new(TransportKey::from_pkcs8(2, 5000, &pkcs8).unwrap());
        let keys = vec![k1, k2];
        assert!(in_service(&keys, 1, 5000 + 99, 100));
        assert!(!in_service(&keys, 1, 5000 + 100, 100));
        assert!(in_service(&keys, 2, 1_000_000, 100));
        assert!(!in_service(&keys, 3, 0, 100));
        assert_eq!(retires_at(&keys, 1, 100), Some(5100));
        assert_eq!(retires_at(&keys, 2, 100), None);
    }
}
