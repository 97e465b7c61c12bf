//! Control tokens: single-use, short-lived, bound to one card and one purpose.

use super::time::Timestamp;

pub const TOKEN_PREFIX: &str = "pct_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    SetPin,
    RevealPin,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::SetPin => "set_pin",
            TokenType::RevealPin => "reveal_pin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "set_pin" => Some(TokenType::SetPin),
            "reveal_pin" => Some(TokenType::RevealPin),
            _ => None,
        }
    }
}

/// How the cardholder proved who they are before a reveal (recorded, not checked).
pub const CARDHOLDER_VERIFICATION_METHODS: &[&str] = &[
    "BIOMETRIC_FACE",
    "BIOMETRIC_FINGERPRINT",
    "LOGIN",
    "EXP_CVV",
    "OTP_CVV",
    "OTP",
    "OTHER",
];

/// Why a token cannot be redeemed; each is its own API error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Unknown, for another card, or for another purpose (`token_invalid`).
    Invalid,
    Expired,
    Used,
    Superseded,
    Exhausted,
}

impl TokenError {
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Invalid => "token_invalid",
            TokenError::Expired => "token_expired",
            TokenError::Used => "token_used",
            TokenError::Superseded => "token_superseded",
            TokenError::Exhausted => "token_exhausted",
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            TokenError::Invalid => "the control token is not valid for this card and operation",
            TokenError::Expired => "the control token has expired",
            TokenError::Used => "the control token has already been used",
            TokenError::Superseded => "a newer control token of this type was issued for this card",
            TokenError::Exhausted => "the control token's attempts are used up",
        }
    }
}

/// Why a token's state forbids redeeming it now, most specific first.
pub fn state(
    used_at: Option<Timestamp>,
    superseded_at: Option<Timestamp>,
    expires_at: Timestamp,
    attempts_remaining: u32,
    now: Timestamp,
) -> Result<(), TokenError> {
    if used_at.is_some() {
        Err(TokenError::Used)
    } else if superseded_at.is_some() {
        Err(TokenError::Superseded)
    } else if expires_at <= now {
        Err(TokenError::Expired)
    } else if attempts_remaining == 0 {
        Err(TokenError::Exhausted)
    } else {
        Ok(())
    }
}
