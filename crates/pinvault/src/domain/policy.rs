//! The PIN policy of API.md: digits only, length within the program's range, and
//! (with `reject_weak_pins`) no PIN that is one digit repeated, a run up or down
//! by one, or the PAN's own last digits.

use pinblock::{Pan, Pin};

use super::DomainError;
use super::program::{Mode, Settings};

/// Why a PIN is refused. Carries no digit of the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRejection {
    /// Not digits, or a length outside the program's range (`invalid_pin`).
    Invalid,
    /// Guessable (`weak_pin`).
    Weak,
}

/// Parses and checks a PIN given as text.
pub fn check_text(text: &str, settings: &Settings, pan: &Pan) -> Result<Pin, PinRejection> {
    let len = text.len();
    if len < usize::from(settings.pin_length_min) || len > usize::from(settings.pin_length_max) {
        return Err(PinRejection::Invalid);
    }
    let pin = Pin::new(text).map_err(|_| PinRejection::Invalid)?;
    check(&pin, settings, pan)?;
    Ok(pin)
}

/// A random PIN for a new card: never weak, whatever the program's policy;
/// `0000` in test mode, as integrators expect from a sandbox. `None` only if
/// the system's random source fails.
pub fn random_pin(settings: &Settings, mode: Mode, pan: &Pan) -> Option<Pin> {
    if mode == Mode::Test {
        return Pin::new("0000").ok();
    }
    let len = usize::from(settings.pin_length_min);
    loop {
        let pin = Pin::random(len, &mut rand::rng()).ok()?;
        if !is_weak(&pin, pan) {
            return Some(pin);
        }
    }
}

/// Checks a parsed PIN against the program's policy.
pub fn check(pin: &Pin, settings: &Settings, pan: &Pan) -> Result<(), PinRejection> {
    if pin.len() < usize::from(settings.pin_length_min)
        || pin.len() > usize::from(settings.pin_length_max)
    {
        return Err(PinRejection::Invalid);
    }
    if settings.reject_weak_pins && is_weak(pin, pan) {
        return Err(PinRejection::Weak);
    }
    Ok(())
}

/// One digit repeated, a run up or down by one, or the PAN's last digits.
pub fn is_weak(pin: &Pin, pan: &Pan) -> bool {
    let digits: Vec<u8> = pin.digits().collect();
    let steps: Vec<i16> = digits
        .windows(2)
        .map(|w| i16::from(w[1]) - i16::from(w[0]))
        .collect();
    let same = steps.iter().all(|&s| s == 0);
    let up = steps.iter().all(|&s| s == 1);
    let down = steps.iter().all(|&s| s == -1);
    let pan_digits = pan.expose();
    let pan_tail = pan_digits
        .as_bytes()
        .iter()
        .rev()
        .take(digits.len())
        .rev()
        .map(|c| c - b'0');
    let from_pan = pan_digits.len() >= digits.len() && pan_tail.eq(digits.iter().copied());
    same || up || down || from_pan
}

impl From<PinRejection> for DomainError {
    fn from(r: PinRejection) -> Self {
        match r {
            PinRejection::Invalid => DomainError::InvalidPin,
            PinRejection::Weak => DomainError::WeakPin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weak(pin: &str) -> bool {
        is_weak(
            &Pin::new(pin).unwrap(),
            &Pan::new("4111111111114821").unwrap(),
        )
    }

    #[test]
    fn weak_pins() {
        for w in [
            "0000",
            "9999",
            "1234",
            "6543",
            "0123456789",
            "9876",
            "4821",
            "114821",
        ] {
            assert!(weak(w), "{w}");
        }
        for ok in ["1357", "2580", "7890", "1243", "8264", "4822", "0987 "] {
            if let Ok(p) = Pin::new(ok) {
                assert!(!is_weak(&p, &Pan::new("4111111111114821").unwrap()), "{ok}");
            }
        }
    }

    #[test]
    fn lengths_follow_the_program() {
        let pan = Pan::new("4111111111111111").unwrap();
        let s = Settings {
            pin_length_min: 6,
            pin_length_max: 8,
            ..Settings::default()
        };
        for (text, rejection) in [
            ("8264", PinRejection::Invalid),
            ("826419512", PinRejection::Invalid),
            ("82a419", PinRejection::Invalid),
            ("123456", PinRejection::Weak),
        ] {
            assert_eq!(check_text(text, &s, &pan).unwrap_err(), rejection, "{text}");
        }
        assert!(check_text("826419", &s, &pan).is_ok());
        let lax = Settings {
            reject_weak_pins: false,
            ..Settings::default()
        };
        assert!(check_text("1111", &lax, &pan).is_ok());
    }
}
