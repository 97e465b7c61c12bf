//! What an inbound JWE's plaintext may be: the PIN, or a small JSON object
//! binding it to a card and a time.

use zeroize::Zeroizing;

use super::compact::DecryptFailed;

/// What an inbound JWE's plaintext must be (API.md "PIN encryption (inbound)"):
/// the PIN's digits, or `{"pin","card_id"?,"iat"?}` where `card_id` must be the
/// card's and `iat` at most `max_age_s` old (and not more than a minute ahead).
/// Returns the PIN text, for the PIN policy to check.
pub fn pin_from_plaintext(
    plain: &[u8],
    card_id: Option<&str>,
    now: i64,
    max_age_s: i64,
) -> Result<Zeroizing<String>, DecryptFailed> {
    let text = std::str::from_utf8(plain).map_err(|_| DecryptFailed("plaintext not UTF-8"))?;
    if !text.starts_with('{') {
        return Ok(Zeroizing::new(text.to_owned()));
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Payload {
        pin: Zeroizing<String>,
        card_id: Option<String>,
        iat: Option<f64>,
    }
    let payload: Payload =
        serde_json::from_str(text).map_err(|_| DecryptFailed("plaintext JSON shape"))?;
    if let Some(bound) = &payload.card_id {
        if Some(bound.as_str()) != card_id {
            return Err(DecryptFailed("card_id does not match"));
        }
    }
    if let Some(iat) = payload.iat {
        let age = now as f64 - iat;
        if !age.is_finite() || age > max_age_s as f64 || age < -60.0 {
            return Err(DecryptFailed("iat out of range"));
        }
    }
    Ok(payload.pin)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn plaintext_rules() {
        let now = 1_000_000;
        assert_eq!(
            &*pin_from_plaintext(b"0123", Some("card_a"), now, 300).unwrap(),
            "0123"
        );
        let ok = format!(r#"{{"pin":"0123","card_id":"card_a","iat":{}}}"#, now - 299);
        assert_eq!(
            &*pin_from_plaintext(ok.as_bytes(), Some("card_a"), now, 300).unwrap(),
            "0123"
        );
        for bad in [
            r#"{"pin":"0123","card_id":"card_b"}"#.to_owned(),
            format!(r#"{{"pin":"0123","iat":{}}}"#, now - 301),
            format!(r#"{{"pin":"0123","iat":{}}}"#, now + 120),
            r#"{"pin":1234}"#.to_owned(),
            r#"{"card_id":"card_a"}"#.to_owned(),
            r#"{"pin":"0123","nonce":"x"}"#.to_owned(),
            "{".to_owned(),
        ] {
            assert!(
                pin_from_plaintext(bad.as_bytes(), Some("card_a"), now, 300).is_err(),
                "{bad}"
            );
        }
        assert!(
            pin_from_plaintext(br#"{"pin":"0123","card_id":"card_a"}"#, None, now, 300).is_err()
        );
    }
}
