//! The problem answers several operations document alike, each written once:
//! an operation names the type in its `responses(…)` instead of repeating the
//! status, the description and the `application/problem+json` body.

use super::views::Problem;

const ZONE_KEY_NOT_FOUND: &str =
    "`not_found`: no such card, or no such zone key granted to this program";

/// One type per problem answer: `Name = status, "description";`. The types
/// only describe (the handlers answer with [`super::error::ApiError`]).
macro_rules! problems {
    ($($name:ident = $status:tt, $description:tt;)*) => {$(
        #[derive(utoipa::IntoResponses)]
        #[response(status = $status, description = $description, content_type = "application/problem+json")]
        #[allow(dead_code)] // documentation only: never built
        pub struct $name(Problem);
    )*};
}

problems! {
    InvalidQuery = 400, "`invalid_request`";
    NotFound = 404, "`not_found`";
    CardNotFound = 404, "`not_found`: no such card for this program";
    CardOrZoneKeyNotFound = 404, ZONE_KEY_NOT_FOUND;
    IdempotencyConflict = 409, "`idempotency_conflict`";
    UnsupportedMediaType = 415, "`unsupported_media_type`";
    InvalidBody = 422, "`invalid_request`";
    InvalidPinSet = 422, "`invalid_pin`, `weak_pin`, `decryption_failed`, `invalid_request`";
}

/// What an operation on a PIN block under a zone key (a verification, an ATM
/// PIN change) answers about the key: a key of usage `export` does not
/// verify; an unknown card, or a key not granted to the program, is not found.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only: never built
pub enum UnderZoneKey {
    #[response(
        status = 403,
        description = "`forbidden`: the zone key is of usage `export`",
        content_type = "application/problem+json"
    )]
    ForExport(Problem),
    #[response(status = 404, description = ZONE_KEY_NOT_FOUND, content_type = "application/problem+json")]
    NotFound(Problem),
}
