//! Outbound JWE to a device key: `ECDH-ES` (direct key agreement, the Concat
//! KDF of RFC 7518 §4.6) and `A256GCM`, the ephemeral public key in `epk`.

use aws_lc_rs::aead::NONCE_LEN;
use aws_lc_rs::agreement::{self, ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use zeroize::Zeroizing;

use super::content::seal_a256gcm;
use super::device_key::DeviceKey;

/// Concat KDF (NIST SP 800-56A, RFC 7518 §4.6.2), one SHA-256 round: enough
/// for any key of up to 256 bits. `alg` is the AlgorithmID (for direct
/// agreement, the `enc` value).
fn concat_kdf(z: &[u8], alg: &[u8], apu: &[u8], apv: &[u8], bits: u32) -> Zeroizing<Vec<u8>> {
    let len = |b: &[u8]| (b.len() as u32).to_be_bytes();
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&1u32.to_be_bytes());
    ctx.update(z);
    ctx.update(&len(alg));
    ctx.update(alg);
    ctx.update(&len(apu));
    ctx.update(apu);
    ctx.update(&len(apv));
    ctx.update(apv);
    ctx.update(&bits.to_be_bytes()); // SuppPubInfo: the key length in bits
    let full = ctx.finish();
    Zeroizing::new(full.as_ref()[..(bits as usize / 8).min(32)].to_vec())
}

/// The content key of an `ECDH-ES` + `A256GCM` JWE without `apu` / `apv`.
fn concat_kdf_a256gcm(z: &[u8]) -> Zeroizing<Vec<u8>> {
    concat_kdf(z, b"A256GCM", b"", b"", 256)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptFailed;

/// Encrypts `plaintext` to a device key: compact JWE, `ECDH-ES` + `A256GCM`,
/// the ephemeral public key in the header's `epk`.
pub fn encrypt_to_device(device: &DeviceKey, plaintext: &[u8]) -> Result<String, EncryptFailed> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let ephemeral = EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| EncryptFailed)?;
    let epk = ephemeral.compute_public_key().map_err(|_| EncryptFailed)?;
    let epk = epk.as_ref();
    if epk.len() != 65 {
        return Err(EncryptFailed);
    }
    let cek = agreement::agree_ephemeral(
        ephemeral,
        UnparsedPublicKey::new(&ECDH_P256, &device.point),
        EncryptFailed,
        |z| Ok(concat_kdf_a256gcm(z)),
    )?;
    let mut header = serde_json::json!({
        "alg": "ECDH-ES",
        "enc": "A256GCM",
        "epk": {
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&epk[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&epk[33..65]),
        },
    });
    if let Some(kid) = &device.kid {
        header["kid"] = Value::String(kid.clone());
    }
    let header_b64 =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(|_| EncryptFailed)?);
    let mut iv = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| EncryptFailed)?;
    let (in_out, tag) =
        seal_a256gcm(&cek, iv, header_b64.as_bytes(), plaintext).ok_or(EncryptFailed)?;
    Ok(format!(
        "{header_b64}..{}.{}.{}",
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(&*in_out),
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    use crate::jose::content::{Sealed, open_a256gcm};

    #[test]
    fn device_keys_are_checked() {
        // A valid public key, from a fresh pair.
        let private = agreement::PrivateKey::generate(&ECDH_P256).unwrap();
        let public = private.compute_public_key().unwrap();
        let p = public.as_ref();
        let x = URL_SAFE_NO_PAD.encode(&p[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&p[33..65]);
        let good = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "dev-1"});
        let device = DeviceKey::from_jwk(&good).unwrap();

        let mut off = URL_SAFE_NO_PAD.decode(&y).unwrap();
        off[31] ^= 1;
        for bad in [
            json!("key"),
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "EC", "crv": "P-384", "x": x, "y": y}),
            json!({"kty": "EC", "crv": "P-256", "x": x, "y": URL_SAFE_NO_PAD.encode(off)}),
            json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "d": x}),
            json!({"kty": "EC", "crv": "P-256", "x": x}),
            json!({"kty": "EC", "crv": "P-256", "x": format!("{x}="), "y": y}),
            json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig"}),
        ] {
            assert!(DeviceKey::from_jwk(&bad).is_err(), "{bad}");
        }

        // Decrypt what we encrypt, with the device's private key and the RFC's KDF.
        let jwe = encrypt_to_device(&device, br#"{"pin":"1234"}"#).unwrap();
        let parts: Vec<&str> = jwe.split('.').collect();
        assert_eq!(parts.len(), 5);
        assert!(parts[1].is_empty());
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ECDH-ES");
        assert_eq!(header["enc"], "A256GCM");
        assert_eq!(header["kid"], "dev-1");
        let mut epk = vec![4u8];
        epk.extend(
            URL_SAFE_NO_PAD
                .decode(header["epk"]["x"].as_str().unwrap())
                .unwrap(),
        );
        epk.extend(
            URL_SAFE_NO_PAD
                .decode(header["epk"]["y"].as_str().unwrap())
                .unwrap(),
        );
        let cek = agreement::agree(
            &private,
            UnparsedPublicKey::new(&ECDH_P256, &epk),
            (),
            |z| Ok(concat_kdf_a256gcm(z)),
        )
        .unwrap();
        let sealed = Sealed {
            iv: &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            aad: parts[0].as_bytes(),
            ciphertext: &URL_SAFE_NO_PAD.decode(parts[3]).unwrap(),
            tag: &URL_SAFE_NO_PAD.decode(parts[4]).unwrap(),
        };
        let plain = open_a256gcm(&cek[..], sealed).unwrap();
        assert_eq!(&plain[..], br#"{"pin":"1234"}"#);
    }

    #[test]
    fn concat_kdf_matches_rfc7518_appendix_c() {
        let z = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let key = concat_kdf(&z, b"A128GCM", b"Alice", b"Bob", 128);
        assert_eq!(URL_SAFE_NO_PAD.encode(&key[..]), "VqqN6vgjbSBcIijNcacQGg");
    }
}
