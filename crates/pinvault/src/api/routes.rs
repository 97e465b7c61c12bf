//! The documented operations, each declared once: by its handler, whose
//! `#[utoipa::path]` gives both the path and methods it is routed at and its
//! entry in `/openapi.json`. What is not part of the API (the widgets' static
//! assets, `/demo`) is routed in `mod.rs`.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::handler::Handler;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use utoipa::openapi::path::{HttpMethod, Paths};
use utoipa::openapi::{RefOr, schema::Schema};

use super::compat::{enfuce, marqeta, spidr, stripe, thredd};
use super::{
    cards, chip, encryption_keys, export, lookup, ops, pin, pin_change, program, verify, webhooks,
    widget_api, widgets,
};
use crate::app::App;
use crate::store::Store;

type Routes<S> = Router<Arc<App<S>>>;

/// `group: module::handler, …;` (`handler<S>` for a handler generic over the
/// store) makes `fn group<S>()`, the router of the group's handlers, each at
/// its documented path and methods; and `operations()`, every group's
/// operations for the document, with those `routed elsewhere: …;`.
macro_rules! operations {
    (
        routed { $($group:ident: $($module:ident :: $handler:ident $(<$s:ident>)?),+;)+ }
        routed elsewhere: $($other_module:ident :: $other:ident),+;
    ) => { pastey::paste! {
        $(
            pub fn $group<S: Store>() -> Routes<S> {
                Router::new()$(.route(
                    &<$module::[<__path_ $handler>] as utoipa::Path>::path(),
                    routed::<$module::[<__path_ $handler>], _, _, S>($module::$handler $(::<$s>)?),
                ))+
            }
        )+

        /// Every operation, with the schemas their bodies name.
        fn operations() -> (Paths, Vec<(String, RefOr<Schema>)>) {
            let (mut paths, mut schemas) = (Paths::new(), Vec::new());
            $($(document::<$module::[<__path_ $handler>]>(&mut paths, &mut schemas);)+)+
            $(document::<$other_module::[<__path_ $other>]>(&mut paths, &mut schemas);)+
            (paths, schemas)
        }
    }};
}

operations! {
    routed {
        api:
            cards::create<S>, cards::list<S>, cards::get, cards::update<S>, cards::pin_status,
            lookup::lookup<S>,
            pin::create_token<S>, pin::set_pin<S>, pin::commit<S>, pin::reveal<S>, pin::unblock<S>,
            export::export<S>,
            encryption_keys::list<S>,
            verify::verify<S>, verify::sandbox_verify<S>, verify::list_zone_keys<S>,
            pin_change::change<S>, pin_change::reverse<S>,
            chip::list_issuer_key_sets<S>, chip::unblock_offline_pin<S>, chip::scripts<S>,
            webhooks::list_events<S>, webhooks::create_endpoint<S>, webhooks::list_endpoints<S>,
            webhooks::delete_endpoint<S>, webhooks::list_deliveries<S>,
            program::get<S>, program::update<S>,
            ops::healthz, ops::readyz<S>, ops::metrics<S>, self::openapi,
            widgets::sdk_js;
        // The widget pages and their API: limited per client address (`limits::per_address`).
        widgets:
            widgets::pin_set_get<S>, widgets::pin_set_post<S>,
            widgets::pin_reveal_get<S>, widgets::pin_reveal_post<S>,
            widget_api::api_set_pin<S>, widget_api::api_reveal_pin<S>;
        // The seed platforms' calls (COMPAT.md), which also take Basic auth.
        compat:
            marqeta::control_token<S>, marqeta::set_pin<S>, marqeta::reveal<S>,
            thredd::set_pin<S>, thredd::get_pin<S>, thredd::status, thredd::unblock<S>,
            spidr::pin_change_token<S>, spidr::commit<S>, spidr::reset<S>, spidr::card,
            stripe::get, stripe::update<S>,
            enfuce::pin_control<S>;
    }
    // `/v1/pin-encryption-keys/{kid}.pem`, which axum routes as `{file}` (`mod.rs`).
    routed elsewhere: encryption_keys::pem;
}

/// The handler, on every method its operation `P` declares.
fn routed<P: utoipa::Path, H, T, S>(handler: H) -> MethodRouter<Arc<App<S>>>
where
    H: Handler<T, Arc<App<S>>>,
    T: 'static,
    S: Store,
{
    let filter = |method| match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Put => MethodFilter::PUT,
        HttpMethod::Delete => MethodFilter::DELETE,
        HttpMethod::Patch => MethodFilter::PATCH,
        HttpMethod::Head => MethodFilter::HEAD,
        HttpMethod::Options => MethodFilter::OPTIONS,
        HttpMethod::Trace => MethodFilter::TRACE,
    };
    let methods = P::methods()
        .into_iter()
        .map(filter)
        .reduce(MethodFilter::or);
    // `#[utoipa::path]` does not compile without a method.
    on(methods.unwrap_or(MethodFilter::GET), handler)
}

/// Adds operation `P` (with its tags, which utoipa keeps apart from the
/// operation, as its OpenApi derive and utoipa-axum read them).
fn document<P>(paths: &mut Paths, schemas: &mut Vec<(String, RefOr<Schema>)>)
where
    P: utoipa::Path + utoipa::__dev::Tags<'static> + utoipa::__dev::SchemaReferences,
{
    let mut operation = P::operation();
    let tags = P::tags().into_iter().map(str::to_owned);
    operation.tags.get_or_insert_with(Vec::new).extend(tags);
    paths.add_path_operation(P::path(), P::methods(), operation);
    P::schemas(schemas);
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "operations", responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub async fn openapi() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        let (paths, schemas) = operations();
        super::openapi::document(paths, schemas)
    });
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str()).into_response()
}
