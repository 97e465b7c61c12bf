//! Opening the content encryptions of RFC 7518 §5 with a content key:
//! `A256GCM` and `A128CBC-HS256`; sealing with `A256GCM`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, Tag, UnboundKey};
use aws_lc_rs::cipher::{AES_128, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::{constant_time, hmac};
use zeroize::Zeroizing;

use super::compact::DecryptFailed;

/// What a content encryption opens: its IV, additional authenticated data,
/// ciphertext and tag.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sealed<'a> {
    pub iv: &'a [u8],
    pub aad: &'a [u8],
    pub ciphertext: &'a [u8],
    pub tag: &'a [u8],
}

pub(super) fn open_a256gcm(
    cek: &[u8],
    sealed: Sealed<'_>,
) -> Result<Zeroizing<Vec<u8>>, DecryptFailed> {
    let fail = DecryptFailed("content authentication");
    let (iv, aad, ciphertext, tag) = (sealed.iv, sealed.aad, sealed.ciphertext, sealed.tag);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek).map_err(|_| fail)?);
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| fail)?;
    let mut in_out = Zeroizing::new(Vec::with_capacity(ciphertext.len() + tag.len()));
    in_out.extend_from_slice(ciphertext);
    in_out.extend_from_slice(tag);
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut in_out)
        .map_err(|_| fail)?
        .len();
    in_out.truncate(len);
    Ok(in_out)
}

/// Seals `plaintext` with `A256GCM` under `cek` and `iv`, authenticating
/// `aad`: the ciphertext (in a buffer zeroed on drop, as it held the
/// plaintext) and the tag. `None`: `cek` is not a 256-bit key.
pub(crate) fn seal_a256gcm(
    cek: &[u8],
    iv: [u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Option<(Zeroizing<Vec<u8>>, Tag)> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek).ok()?);
    let mut in_out = Zeroizing::new(plaintext.to_vec());
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(aad),
            &mut in_out,
        )
        .ok()?;
    Some((in_out, tag))
}

/// RFC 7518 §5.2.2: the first half of the key authenticates (HMAC-SHA-256 over
/// AAD, IV, ciphertext and the AAD's length in bits, truncated to 128 bits),
/// the second half decrypts (AES-128-CBC, PKCS#7). The tag is checked in
/// constant time, and before any decryption.
pub(super) fn open_a128cbc_hs256(
    cek: &[u8],
    sealed: Sealed<'_>,
) -> Result<Zeroizing<Vec<u8>>, DecryptFailed> {
    let fail = DecryptFailed("content authentication");
    let (mac_key, enc_key) = cek.split_at(16);
    let expected = cbc_hs256_tag(mac_key, sealed.iv, sealed.aad, sealed.ciphertext);
    constant_time::verify_slices_are_equal(&expected, sealed.tag).map_err(|_| fail)?;
    let key = PaddedBlockDecryptingKey::cbc_pkcs7(
        UnboundCipherKey::new(&AES_128, enc_key).map_err(|_| fail)?,
    )
    .map_err(|_| fail)?;
    let iv: [u8; 16] = sealed.iv.try_into().map_err(|_| fail)?;
    let mut in_out = Zeroizing::new(sealed.ciphertext.to_vec());
    let len = key
        .decrypt(&mut in_out, DecryptionContext::Iv128(iv.into()))
        .map_err(|_| fail)?
        .len();
    in_out.truncate(len);
    Ok(in_out)
}

pub(super) fn cbc_hs256_tag(mac_key: &[u8], iv: &[u8], aad: &[u8], ciphertext: &[u8]) -> [u8; 16] {
    let al = (aad.len() as u64).saturating_mul(8).to_be_bytes();
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, mac_key));
    ctx.update(aad);
    ctx.update(iv);
    ctx.update(ciphertext);
    ctx.update(&al);
    let full = ctx.sign();
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&full.as_ref()[..16]);
    tag
}
