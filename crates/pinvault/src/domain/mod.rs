//! The rules: programs, cards, PINs, tokens. No I/O, no HTTP.

pub mod ids;
pub mod policy;
pub mod program;
pub mod time;
pub mod token;

/// A rule was broken. Each variant maps to one stable API error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainError {
    Invalid(String),
    Forbidden(String),
    InvalidPin,
    WeakPin,
}
