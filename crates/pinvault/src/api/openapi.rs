//! The OpenAPI 3.1 document, generated from the handlers' annotations and the
//! request and response types they use.

use utoipa::openapi::path::{Operation, PathItem, Paths};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{RefOr, schema::Schema};
use utoipa::{Modify, OpenApi};

use super::compat::{enfuce, marqeta, spidr, stripe, thredd};
use super::{
    cards, chip, export, extract, lookup, pin, pin_change, program, verify, views, webhooks,
    widget_api, widgets,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pinvault",
        description = "Self-hostable card PIN service: PIN set, reveal and verification without the program's back end ever seeing a PIN. Every route, field, error code, event, setting and command is explained in docs/reference.md of the pinvault repository (the architecture in docs/architecture.md, the security model in docs/security.md).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(
        views::CardView, views::PinStatusView, views::CardList, views::TokenView, views::RevealedPin,
        views::EncryptedPin, views::RevealResponse, views::DeviceJwk, views::PinEncryptionKey, views::PinEncryptionKeys,
        views::ProgramView, views::Problem, super::error::Code, crate::events::EventType, views::StatusView, program::SettingsChanges,
        pin::StagedView, extract::NoFields, lookup::CardLookup, lookup::CardFound,
        verify::VerifyResult, verify::ZoneKeyView, verify::ZoneKeyList,
        pin_change::ChangePin, pin_change::ChangeResult, export::ExportPin, export::ExportedPin,
        chip::IssuerKeySetView, chip::IssuerKeySetList, chip::ScriptRequest, chip::ScriptResponse, views::ChipView, cards::ChipBody,
        webhooks::EventView, webhooks::EventList, webhooks::CreateEndpoint, webhooks::EndpointView,
        webhooks::CreatedEndpoint, webhooks::EndpointList, webhooks::DeliveryView, webhooks::DeliveryList,
        widgets::PageForm, widget_api::WidgetSetPin, widget_api::WidgetRevealPin,
        marqeta::MarqetaError, marqeta::MarqetaTokenRequest, marqeta::MarqetaToken, marqeta::MarqetaSetPin,
        marqeta::MarqetaReveal, marqeta::MarqetaPin,
        thredd::ThreddSetPin, thredd::ThreddPin, thredd::ThreddStatus, thredd::ThreddUnblock,
        spidr::SpidrToken, spidr::SpidrCommitted, spidr::SpidrReset, spidr::SpidrCard,
        stripe::StripeError, stripe::StripeErrorDetail, stripe::StripeCard, stripe::StripeUpdate,
        enfuce::PinControlRequest, enfuce::PinControl,
    )),
    tags(
        (name = "cards", description = "Cards and their PINs' state"),
        (name = "pin", description = "Control tokens, set (direct or staged, then commit), reveal, unblock"),
        (name = "pin-encryption", description = "The keys a device encrypts PINs to"),
        (name = "verification", description = "PIN verification at authorization time, the sandbox, zone keys"),
        (name = "chip", description = "Chip cards: issuer key sets, the offline PIN and its issuer scripts"),
        (name = "events", description = "Events, webhook endpoints and their deliveries"),
        (name = "program", description = "The calling program and its settings"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "widgets", description = "Hosted widgets: pages, the SDK, and the calls the pages make (no API key: the control token is the credential)"),
        (name = "marqeta", description = "Marqeta's PIN calls (COMPAT.md), under /compat/marqeta/v3; errors as Marqeta shapes them"),
        (name = "thredd", description = "Thredd's PIN calls (COMPAT.md), under /compat/thredd"),
        (name = "spidr", description = "Spidr's PIN calls (COMPAT.md), under /compat/spidr/v1"),
        (name = "stripe", description = "Stripe Issuing's PIN calls (COMPAT.md), under /compat/stripe/v1, form encoded; errors as Stripe shapes them"),
        (name = "enfuce", description = "Enfuce's PIN control token (COMPAT.md), under /compat/enfuce/v1"),
    )
)]
pub struct ApiDoc;

/// `Authorization: Bearer <api key>` (`pv_test_…` or `pv_live_…`), which every
/// operation takes (its handler takes `Auth` or `AuthCard`) but those of
/// [`KEYLESS_TAGS`].
struct ApiKeyAuth;

/// The tags of the operations that take no API key: health, readiness,
/// metrics and this document; the published PIN encryption keys (public
/// keys); the hosted widgets (the control token is the credential).
const KEYLESS_TAGS: [&str; 3] = ["operations", "pin-encryption", "widgets"];

/// The seed-compatible routes' tags (COMPAT.md).
const COMPAT_TAGS: [&str; 5] = ["marqeta", "thredd", "spidr", "stripe", "enfuce"];

/// The tags whose errors are not problem+json: the schema their errors have.
const VENDOR_ERRORS: [(&str, &str); 2] = [("marqeta", "MarqetaError"), ("stripe", "StripeError")];

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_key",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
            components.add_security_scheme(
                "api_key_basic",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
            );
        }
        for item in openapi.paths.paths.values_mut() {
            for op in operations(item) {
                let tags = op.tags.iter().flatten();
                if !tags.clone().any(|t| KEYLESS_TAGS.contains(&t.as_str())) {
                    let mut security =
                        vec![SecurityRequirement::new("api_key", Vec::<String>::new())];
                    // The seed-compatible routes also take the key as Basic's user name.
                    if tags.clone().any(|t| COMPAT_TAGS.contains(&t.as_str())) {
                        security.push(SecurityRequirement::new(
                            "api_key_basic",
                            Vec::<String>::new(),
                        ));
                    }
                    op.security = Some(security);
                }
            }
        }
    }
}

/// A path's operations.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// The operations under abuse limits (429 `rate_limited`, with `Retry-After`):
/// per API key and per card, and the widgets per client address.
pub const RATE_LIMITED: [(&str, &str); 10] = [
    ("createControlToken", "for this API key or this card"),
    ("revealPin", "for this API key or this card"),
    ("verifyPin", "for this API key or this card"),
    ("sandboxVerifyPin", "for this API key or this card"),
    ("pinSetWidget", "from this client address"),
    ("pinSetWidgetForm", "from this client address"),
    ("pinRevealWidget", "from this client address"),
    ("pinRevealWidgetForm", "from this client address"),
    ("widgetSetPin", "from this client address"),
    (
        "widgetRevealPin",
        "from this client address or for this card",
    ),
];

/// The errors every operation of a kind can answer, added to each so the document
/// lists every status the API really returns: 401 where an API key is needed;
/// 400, 413, 415 and 422 where a JSON body is read; 400 for headers and query
/// strings; 429 where a rate limit applies.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for item in openapi.paths.paths.values_mut() {
            for op in operations(item) {
                let vendor = VENDOR_ERRORS
                    .iter()
                    .find(|(tag, _)| op.tags.iter().flatten().any(|t| t == tag));
                let (content_type, schema) = vendor
                    .map_or(("application/problem+json", "Problem"), |(_, schema)| {
                        ("application/json", *schema)
                    });
                let problem = |description: &str| {
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            content_type,
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name(schema)))
                                .build(),
                        )
                        .build()
                };
                let responses = &mut op.responses.responses;
                let mut add = |code: &str, description: &str| {
                    responses
                        .entry(code.to_owned())
                        .or_insert_with(|| problem(description).into());
                };
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add("401", "`unauthorized`: no valid API key");
                }
                if op.request_body.is_some() {
                    add(
                        "400",
                        "`invalid_request`: the body is not valid JSON, has a key twice in an object, or did not arrive in time",
                    );
                    add(
                        "413",
                        "`payload_too_large`: the body is over 64 KiB (65536 bytes)",
                    );
                    add(
                        "415",
                        "`unsupported_media_type`: the body is not `application/json`",
                    );
                    add(
                        "422",
                        "`invalid_request`: the JSON does not have the expected shape",
                    );
                }
                if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                    add(
                        "400",
                        "`invalid_request`: a malformed header or query parameter",
                    );
                }
                let limit = RATE_LIMITED
                    .iter()
                    .find(|(id, _)| op.operation_id.as_deref() == Some(*id));
                if let Some((_, whose)) = limit {
                    let mut limited = problem(&format!(
                        "`rate_limited`: too many requests {whose}; `Retry-After` says in how many seconds to try again"
                    ));
                    limited.headers.insert(
                        "Retry-After".to_owned(),
                        utoipa::openapi::HeaderBuilder::new()
                            .schema(Some(
                                utoipa::openapi::ObjectBuilder::new()
                                    .schema_type(utoipa::openapi::schema::Type::Integer)
                                    .minimum(Some(1)),
                            ))
                            .description(Some("Seconds to wait before trying again"))
                            .build()
                            .into(),
                    );
                    responses.insert("429".to_owned(), limited.into());
                }
            }
        }
    }
}

/// The document (OpenAPI 3.1) of the given operations (the route table's),
/// with their schemas, the security schemes and the errors every operation
/// of a kind answers, as JSON.
pub fn document(paths: Paths, schemas: Vec<(String, RefOr<Schema>)>) -> String {
    let mut doc = ApiDoc::openapi();
    doc.paths = paths;
    if let Some(components) = doc.components.as_mut() {
        components.schemas.extend(schemas);
    }
    ApiKeyAuth.modify(&mut doc);
    CommonErrors.modify(&mut doc);
    doc.to_json().unwrap_or_default()
}
