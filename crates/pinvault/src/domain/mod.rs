//! The rules: programs, cards, PINs, tokens. No I/O, no HTTP.

pub mod audit;
pub mod card;
pub mod chip;
pub mod ids;
pub mod legacy;
pub mod lookup;
pub mod policy;
pub mod program;
pub mod sensitive;
pub mod time;
pub mod token;
pub mod webhook_format;
pub mod zone_key;

/// Whether free text (an external id, a note) holds something that looks like a
/// card number: a whole run of 12 to 19 digits, possibly split by spaces or
/// dashes, that passes the Luhn check (a window inside a longer run would flag
/// one long number in ten). Such text is refused, because free text is stored
/// and logged in clear and a PAN must never be.
pub fn looks_like_pan(text: &str) -> bool {
    holds_pan(text, 12)
}

/// Whether `text` holds a run of `min_digits` to 19 digits (spaces or dashes
/// between them allowed) that passes the Luhn check.
pub fn holds_pan(text: &str, min_digits: usize) -> bool {
    let mut digits: Vec<u8> = Vec::new();
    let check = |run: &[u8]| {
        (min_digits..=19).contains(&run.len()) && {
            let s: String = run.iter().map(|d| char::from(b'0' + d)).collect();
            pinblock::Pan::new(&s).is_ok_and(|p| p.luhn_valid())
        }
    };
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c as u8 - b'0'),
            ' ' | '-' if !digits.is_empty() => {}
            _ => {
                if check(&digits) {
                    return true;
                }
                digits.clear();
            }
        }
    }
    check(&digits)
}

/// A rule was broken. Each variant maps to one stable API error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainError {
    Invalid(String),
    Forbidden(String),
    InvalidPin,
    WeakPin,
}

#[cfg(test)]
mod tests {
    use super::looks_like_pan;

    #[test]
    fn pan_shaped_text() {
        for yes in [
            "4111111111111111",
            "card 4111 1111 1111 1111 lost",
            "x-4111-1111-1111-1111",
            "ref5555555555554444",
        ] {
            assert!(looks_like_pan(yes), "{yes}");
        }
        for no in [
            "cust-1",
            "4111111111111112",
            "order 12345678901",
            "",
            "2026-11-23 20:26:00",
            "4111 1111",
        ] {
            assert!(!looks_like_pan(no), "{no}");
        }
    }
}
