//! What a receiver checks: the signature header over each delivery, made with
//! the endpoint's secret; and the associated data that secret is sealed with.

use aws_lc_rs::hmac;

use crate::domain::time::Timestamp;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Pinvault-Signature";

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. The key is
/// the secret exactly as shown at creation (`whsec_…`), as UTF-8 bytes.
pub fn signature(secret: &[u8], t: Timestamp, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// The associated data an endpoint's sealed secret is bound to.
pub fn secret_aad(endpoint_id: &str) -> Vec<u8> {
    crate::keys::aad::webhook_secret(endpoint_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_format() {
        // HMAC-SHA256("key", "1.body"), computed independently (Python's hmac).
        assert_eq!(
            signature(b"key", 1, b"body"),
            "t=1,v1=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
        );
    }
}
