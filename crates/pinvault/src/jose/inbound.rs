//! Inbound JWE: the content key unwrapped with a transport key (`RSA-OAEP-256`
//! or `RSA-OAEP`), then the content opened. An RSA failure carries on with a
//! random key (RFC 7516 §11.5), so every failure looks the same.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::compact::{DecryptFailed, Enc, ParsedJwe, parse};
use super::content::{Sealed, open_a128cbc_hs256, open_a256gcm};
use crate::keys::transport::TransportKey;

/// Decrypts a parsed JWE with the transport key its `kid` named.
pub fn decrypt(jwe: &ParsedJwe, key: &TransportKey) -> Result<Zeroizing<Vec<u8>>, DecryptFailed> {
    if jwe.encrypted_key.len() != key.size_bytes() {
        return Err(DecryptFailed("encrypted key length"));
    }
    // Both content encryptions take a 256-bit key.
    let mut cek = Zeroizing::new([0u8; 32]);
    let mut out = Zeroizing::new(vec![0u8; key.size_bytes()]);
    let rsa_ok = match key
        .oaep()
        .decrypt(jwe.oaep, &jwe.encrypted_key, &mut out, None)
    {
        Ok(plain) if plain.len() == cek.len() => {
            cek.copy_from_slice(plain);
            true
        }
        _ => false,
    };
    if !rsa_ok {
        // RFC 7516 §11.5: carry on with a random key; the tag check fails.
        aws_lc_rs::rand::fill(cek.as_mut_slice()).map_err(|_| DecryptFailed("rng"))?;
    }
    let sealed = Sealed {
        iv: &jwe.iv,
        aad: &jwe.aad,
        ciphertext: &jwe.ciphertext,
        tag: &jwe.tag,
    };
    let plain = match jwe.enc {
        Enc::A256Gcm => open_a256gcm(&cek[..], sealed),
        Enc::A128CbcHs256 => open_a128cbc_hs256(&cek[..], sealed),
    }?;
    if !rsa_ok {
        return Err(DecryptFailed("content key"));
    }
    Ok(plain)
}

/// Finds the key a JWE names among those in service and decrypts it.
pub fn decrypt_with(
    jwe: &str,
    keys: &[Arc<TransportKey>],
) -> Result<Zeroizing<Vec<u8>>, DecryptFailed> {
    let parsed = parse(jwe)?;
    let key = keys
        .iter()
        .find(|k| k.kid == parsed.kid)
        .ok_or(DecryptFailed("unknown kid"))?;
    decrypt(&parsed, key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use aws_lc_rs::cipher::{AES_128, UnboundCipherKey};
    use aws_lc_rs::rsa::{
        OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey,
    };
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use crate::jose::content::{cbc_hs256_tag, seal_a256gcm};
    use crate::keys::transport::{TransportBits, generate_pkcs8};

    fn key() -> Arc<TransportKey> {
        let pkcs8 = generate_pkcs8(TransportBits::Rsa2048).unwrap();
        Arc::new(TransportKey::from_pkcs8(1, 0, &pkcs8).unwrap())
    }

    /// An encrypter written from the RFC, for round trips (the independent
    /// implementation is the Python interop test).
    fn encrypt(key: &TransportKey, alg: &str, enc: &str, plain: &[u8]) -> String {
        let header = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&json!({"alg": alg, "enc": enc, "kid": key.kid})).unwrap());
        let mut cek = [0u8; 32];
        aws_lc_rs::rand::fill(&mut cek).unwrap();
        let public =
            OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(&key.spki).unwrap())
                .unwrap();
        let mut ek = vec![0u8; public.ciphertext_size()];
        let oaep = if alg == "RSA-OAEP" {
            &OAEP_SHA1_MGF1SHA1
        } else {
            &OAEP_SHA256_MGF1SHA256
        };
        let ek = public.encrypt(oaep, &cek, &mut ek, None).unwrap().to_vec();
        let (iv, ct, tag) = if enc == "A256GCM" {
            let mut iv = [0u8; 12];
            aws_lc_rs::rand::fill(&mut iv).unwrap();
            let (ct, tag) = seal_a256gcm(&cek, iv, header.as_bytes(), plain).unwrap();
            (iv.to_vec(), ct.to_vec(), tag.as_ref().to_vec())
        } else {
            use aws_lc_rs::cipher::{EncryptionContext, PaddedBlockEncryptingKey};
            let mut iv = [0u8; 16];
            aws_lc_rs::rand::fill(&mut iv).unwrap();
            let k = PaddedBlockEncryptingKey::cbc_pkcs7(
                UnboundCipherKey::new(&AES_128, &cek[16..]).unwrap(),
            )
            .unwrap();
            let mut buf = plain.to_vec();
            k.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv.into()))
                .unwrap();
            let tag = cbc_hs256_tag(&cek[..16], &iv, header.as_bytes(), &buf);
            (iv.to_vec(), buf, tag.to_vec())
        };
        [
            header,
            URL_SAFE_NO_PAD.encode(ek),
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(ct),
            URL_SAFE_NO_PAD.encode(tag),
        ]
        .join(".")
    }

    #[test]
    fn round_trips_every_combination_and_refuses_tampering() {
        let k = key();
        let keys = vec![k.clone()];
        for alg in ["RSA-OAEP-256", "RSA-OAEP"] {
            for enc in ["A256GCM", "A128CBC-HS256"] {
                for plain in [&b"0123"[..], b"{\"pin\":\"4821\"}", b"0123456789abcdef0123"] {
                    let jwe = encrypt(&k, alg, enc, plain);
                    assert_eq!(
                        &decrypt_with(&jwe, &keys).unwrap()[..],
                        plain,
                        "{alg} {enc}"
                    );
                    // Flip one bit of each part in turn.
                    let parts: Vec<&str> = jwe.split('.').collect();
                    for i in [1, 2, 3, 4] {
                        let mut bytes = URL_SAFE_NO_PAD.decode(parts[i]).unwrap();
                        bytes[0] ^= 1;
                        let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
                        p[i] = URL_SAFE_NO_PAD.encode(bytes);
                        assert!(
                            decrypt_with(&p.join("."), &keys).is_err(),
                            "{alg} {enc} part {i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn refuses_other_headers_and_shapes() {
        let k = key();
        let keys = vec![k.clone()];
        let good = encrypt(&k, "RSA-OAEP-256", "A256GCM", b"1357");
        let rest: Vec<&str> = good.splitn(2, '.').collect();
        for header in [
            json!({"alg": "RSA1_5", "enc": "A256GCM", "kid": k.kid}),
            json!({"alg": "RSA-OAEP-256", "enc": "A128GCM", "kid": k.kid}),
            json!({"alg": "RSA-OAEP-256", "enc": "A256GCM"}),
            json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "other"}),
            json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": k.kid, "zip": "DEF"}),
        ] {
            let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
            assert!(
                decrypt_with(&format!("{h}.{}", rest[1]), &keys).is_err(),
                "{header}"
            );
        }
        for bad in [
            "",
            "a.b.c.d",
            "a.b.c.d.e.f",
            &format!("{good}="),
            &good.replace('.', ".."),
        ] {
            assert!(decrypt_with(bad, &keys).is_err(), "{bad}");
        }
    }
}
