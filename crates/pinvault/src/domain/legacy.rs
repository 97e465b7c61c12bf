//! Cards migrated with legacy verification data (API.md "Portfolio
//! migration"): no PIN held, only what the issuer's old system verified PINs
//! by — a Visa PVV (with its PVK index) or an IBM 3624 offset, under a PIN
//! verification key. A matching verification may capture the PIN (the
//! program setting `migrate_legacy_pins`), after which the card is like any
//! other; any new PIN replaces the legacy data.

/// How a card's PIN is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    VisaPvv,
    Ibm3624,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::VisaPvv => "visa_pvv",
            Method::Ibm3624 => "ibm_3624",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "visa_pvv" => Some(Method::VisaPvv),
            "ibm_3624" => Some(Method::Ibm3624),
            _ => None,
        }
    }
}

/// A card's legacy verification data besides the value itself (the PVV or
/// offset, which is stored enciphered where a PIN would be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Legacy {
    pub method: Method,
    /// The PIN verification key (`pvk_…`).
    pub pvk_id: String,
    /// The Visa PVK index (0 to 9); `None` for IBM 3624.
    pub pvki: Option<u8>,
}

/// `verification` as the PIN status shows it.
pub fn verification(legacy: Option<&Legacy>) -> &'static str {
    legacy.map_or("stored", |l| l.method.as_str())
}

/// A Visa PVV: four digits.
pub fn valid_pvv(s: &str) -> bool {
    s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A PVK index: one digit.
pub fn parse_pvki(s: &str) -> Option<u8> {
    match s.as_bytes() {
        [d @ b'0'..=b'9'] => Some(d - b'0'),
        _ => None,
    }
}

/// An IBM 3624 offset for a key checking `pin_length` digits.
pub fn valid_offset(s: &str, pin_length: u8) -> bool {
    s.len() == usize::from(pin_length) && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert!(
            valid_pvv("0123") && !valid_pvv("123") && !valid_pvv("12a4") && !valid_pvv("12345")
        );
        assert_eq!(parse_pvki("1"), Some(1));
        for bad in ["", "10", "a", "-1"] {
            assert_eq!(parse_pvki(bad), None, "{bad}");
        }
        assert!(valid_offset("8195", 4) && !valid_offset("8195", 5) && valid_offset("819500", 6));
        assert_eq!(verification(None), "stored");
        for m in [Method::VisaPvv, Method::Ibm3624] {
            assert_eq!(Method::parse(m.as_str()), Some(m));
        }
    }
}
