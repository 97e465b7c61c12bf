//! A device's public key for outbound JWE: a P-256 JWK, checked.

use aws_lc_rs::agreement::{self, ECDH_P256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// A device's public P-256 key, checked: a JWK with `kty` `EC`, `crv` `P-256`,
/// `x` and `y` of 32 bytes naming a point on the curve, and no private part.
#[derive(Debug, Clone)]
pub struct DeviceKey {
    /// The uncompressed point: 0x04 || x || y.
    pub(super) point: Vec<u8>,
    pub(super) kid: Option<String>,
}

impl DeviceKey {
    /// Checks a JWK; the error is a sentence for the API's `detail`.
    pub fn from_jwk(jwk: &Value) -> Result<DeviceKey, String> {
        let Some(obj) = jwk.as_object() else {
            return Err("`device_key` must be a JWK: a JSON object".into());
        };
        let text = |name: &str| obj.get(name).and_then(Value::as_str);
        if text("kty") != Some("EC") {
            return Err("`device_key` must be an elliptic-curve key: `kty` \"EC\"".into());
        }
        if text("crv") != Some("P-256") {
            return Err("`device_key` must be on the P-256 curve: `crv` \"P-256\"".into());
        }
        if obj.contains_key("d") {
            return Err(
                "`device_key` must be the public key only: it has a private part (`d`); keep that on the device"
                    .into(),
            );
        }
        if let Some(u) = obj.get("use") {
            if u.as_str() != Some("enc") {
                return Err("`device_key` `use`, where given, must be \"enc\"".into());
            }
        }
        if let Some(a) = obj.get("alg") {
            if a.as_str() != Some("ECDH-ES") {
                return Err("`device_key` `alg`, where given, must be \"ECDH-ES\"".into());
            }
        }
        let coord = |name: &str| -> Result<Vec<u8>, String> {
            text(name)
                .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    format!("`device_key` `{name}` must be 32 bytes, base64url without padding")
                })
        };
        let (x, y) = (coord("x")?, coord("y")?);
        let kid = match obj.get("kid") {
            None => None,
            Some(Value::String(k)) if !k.is_empty() && k.len() <= 200 => Some(k.clone()),
            Some(_) => {
                return Err("`device_key` `kid`, where given, must be 1 to 200 characters".into());
            }
        };
        let mut point = Vec::with_capacity(65);
        point.push(4);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        agreement::ParsedPublicKey::try_from(&UnparsedPublicKey::new(&ECDH_P256, &point))
            .map_err(|_| "`device_key` is not a point on the P-256 curve".to_owned())?;
        Ok(DeviceKey { point, kid })
    }
}
