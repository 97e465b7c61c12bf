//! Why a use case refused or failed. Each refusal is one stable API error
//! code (the HTTP layer maps them, `api/error.rs`); a failure is the
//! service's (the database, the keys).

use super::ServiceError;
use crate::domain::DomainError;
use crate::domain::token::TokenError;

#[derive(Debug)]
pub enum AppError {
    /// The program has no such thing (`not_found`); names what.
    NotFound(&'static str),
    /// The request breaks a rule of its shape (`invalid_request`).
    Invalid(String),
    /// Not 12 to 19 digits with a valid Luhn check digit (`invalid_pan`).
    InvalidPan,
    /// A PIN in clear where the program takes only encrypted ones
    /// (`plaintext_not_allowed`): what to send instead.
    PlaintextNotAllowed(&'static str),
    /// The program has PIN reveal turned off (`reveal_disabled`).
    RevealDisabled,
    /// An encrypted PIN that cannot be used, whatever the reason
    /// (`decryption_failed`): one answer, no oracle.
    DecryptionFailed,
    /// A commit with nothing staged (`nothing_staged`).
    NothingStaged,
    /// Several of the program's cards fit a lookup (`card_ambiguous`).
    CardAmbiguous,
    /// Several of the program's cards carry the `external_id` a card was
    /// named by (`card_ambiguous`).
    ExternalIdAmbiguous,
    /// A PIN change that cannot be reversed any more (`reversal_not_possible`).
    ReversalNotPossible,
    /// The program may not export PINs (`export_not_allowed`).
    ExportNotAllowed,
    /// A legacy card whose PIN no verification has captured yet
    /// (`pin_not_available`).
    PinNotAvailable,
    Token(TokenError),
    /// A PIN the policy refuses (`invalid_pin`, `weak_pin`), and the like.
    Domain(DomainError),
    Service(ServiceError),
}

super::service_errors!(AppError);
super::wraps!(AppError: Token(TokenError), Domain(DomainError));

pub type AppResult<T> = Result<T, AppError>;
