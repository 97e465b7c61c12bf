//! One extractor per shape of route, bringing the application with what a
//! handler of that shape reads from the request, so that a handler's signature
//! names only what is its own (its body's type, its query's). Each reads the
//! request in the order the refusals are documented: the API key (401), the
//! path (404), the query or the body (4xx).

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use super::extract::{Auth, AuthCard, JsonBody, NoBodyOrJson, NoFields, PathId, QueryParams};
use crate::app::App;
use crate::store::Store;

/// What a handler answers.
pub type Answer = Result<Response, ApiError>;

/// A request to a route of the API: the application, what the route reads
/// from the request's parts (`C`: the caller, with the card or the id its path
/// names), and its body (`B`: `JsonBody<T>`, `OptionalJsonBody<T>`, or by
/// default no body or `{}`). Parts first, so a refusal of the key or the path
/// comes before the body's.
pub struct Api<S: Store, C, B = NoBodyOrJson<NoFields>>(pub Arc<App<S>>, pub C, pub B);

/// A route on the caller's program.
pub type Call<S, B> = Api<S, Auth, B>;

/// A route on the card its path names, read with the caller ([`AuthCard`]).
pub type OnCard<S, B = NoBodyOrJson<NoFields>> = Api<S, AuthCard, B>;

/// A route on the resource its path names by id (the use case looks it up).
pub type OnId<S, B = NoBodyOrJson<NoFields>> = Api<S, AuthId, B>;

/// The body of a route that does not read one (a `GET`, a `DELETE`, a
/// reversal): whatever is sent is left unread.
pub struct Unread;

/// The body of a create route that takes an `Idempotency-Key`: the request's
/// headers and its JSON as sent (the key's fingerprint is taken over it).
pub struct Idempotent(pub HeaderMap, pub Value);

/// The caller and the id the path names.
pub struct AuthId(pub Auth, pub String);

/// A list route: the caller, its query (`Q`, which declares and checks every
/// parameter, `limit` and `starting_after` among them) and the page asked
/// for, its size checked ([`ApiError::page_limit`]).
pub struct Listing<S: Store, Q> {
    pub app: Arc<App<S>>,
    pub auth: Auth,
    pub query: Q,
    pub limit: u32,
}

impl<S: Store, Q: Paged> Listing<S, Q> {
    /// The query's page size checked (400 `invalid_request` out of 1 to 100).
    pub fn new(app: Arc<App<S>>, auth: Auth, query: Q) -> Result<Self, ApiError> {
        let limit = ApiError::page_limit(query.page().0)?;
        Ok(Listing {
            app,
            auth,
            query,
            limit,
        })
    }

    /// `starting_after`: the id of the last row of the previous page.
    pub fn after(&self) -> Option<&str> {
        self.query.page().1
    }
}

/// A list's query: `limit` and `starting_after`, which every list has.
pub trait Paged {
    fn page(&self) -> (Option<u32>, Option<&str>);
}

/// Implements [`Paged`] for query types with the fields `limit` and
/// `starting_after` (in their own module, where the fields are seen).
macro_rules! paged {
    ($($query:ty),+) => {$(
        impl $crate::api::shapes::Paged for $query {
            fn page(&self) -> (Option<u32>, Option<&str>) {
                (self.limit, self.starting_after.as_deref())
            }
        }
    )+};
}
pub(crate) use paged;

impl<S: Store, C, B> FromRequest<Arc<App<S>>> for Api<S, C, B>
where
    C: FromRequestParts<Arc<App<S>>, Rejection = ApiError> + Send,
    B: FromRequest<Arc<App<S>>, Rejection = ApiError>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let of = C::from_request_parts(&mut parts, app).await?;
        let body = B::from_request(Request::from_parts(parts, body), app).await?;
        Ok(Api(app.clone(), of, body))
    }
}

impl<S: Send + Sync> FromRequest<S> for Unread {
    type Rejection = ApiError;

    async fn from_request(_: Request, _: &S) -> Result<Self, ApiError> {
        Ok(Unread)
    }
}

impl<S: Send + Sync> FromRequest<S> for Idempotent {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &S) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let JsonBody(raw) = JsonBody::from_request(req, app).await?;
        Ok(Idempotent(headers, raw))
    }
}

impl<S: Store> FromRequestParts<Arc<App<S>>> for AuthId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, app).await?;
        let PathId(id) = PathId::from_request_parts(parts, app).await?;
        Ok(AuthId(auth, id))
    }
}

impl<S: Store, Q: DeserializeOwned + Paged + Send> FromRequestParts<Arc<App<S>>> for Listing<S, Q> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S>>) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, app).await?;
        let QueryParams(query) = QueryParams::<Q>::from_request_parts(parts, app).await?;
        Listing::new(app.clone(), auth, query)
    }
}
