//! The OpenAPI 3.1 document, generated from the handlers' annotations and the
//! request and response types they use.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{cards, ops, pin, program, views};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pinvault",
        description = "Self-hostable card PIN service: PIN set, reveal and verification without the program's back end ever seeing a PIN. See API.md for the contract.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        cards::create, cards::list, cards::get, cards::update, cards::pin_status,
        pin::create_token, pin::set_pin, pin::reveal, pin::unblock,
        program::get, program::update,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    components(schemas(
        views::CardView, views::PinStatusView, views::CardList, views::TokenView, views::RevealedPin,
        views::ProgramView, views::Problem, views::StatusView,
    )),
    modifiers(&ApiKeyAuth),
    tags(
        (name = "cards", description = "Cards and their PINs' state"),
        (name = "pin", description = "Control tokens, set, reveal, unblock"),
        (name = "program", description = "The calling program and its settings"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// `Authorization: Bearer <api key>` (`pv_test_…` or `pv_live_…`).
struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}
