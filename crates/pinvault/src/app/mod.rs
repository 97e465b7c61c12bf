//! The application: the store, the keys and the settings, and the use cases
//! the HTTP API, the hosted widgets and the command line share (one file per
//! group). Nothing here knows about HTTP or SQL: use cases take domain values
//! and a [`Caller`], and answer domain results or an [`error::AppError`].

pub mod cards;
pub mod chip;
pub mod error;
pub mod export;
pub mod issuer_keys;
pub mod kbpk;
pub mod keys;
pub mod lookup;
pub mod pin;
pub mod pin_change;
pub mod program_pin;
pub mod pvks;
mod reseal;
pub mod rotation;
pub mod scripts;
pub mod tokens;
pub mod verify;
pub mod zone_keys;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::audit::Actor;
use crate::domain::time::{Timestamp, now};
use crate::events::EventType;
use crate::keys::transport::TransportBits;
use crate::keys::{KeyError, KeyProvider, Keyring};
use crate::store::{AuditEntry, CardRow, EventRow, ProgramRow, Store, StoreError};

/// A `From` for each error a variant wraps:
/// `wraps!(AppError: Token(TokenError), Domain(DomainError));`.
macro_rules! wraps {
    ($t:ident: $($variant:ident($inner:ty)),+) => {$(
        impl From<$inner> for $t {
            fn from(e: $inner) -> Self {
                $t::$variant(e)
            }
        }
    )+};
}
pub(crate) use wraps;

/// `Display` and `Error` for an error whose every variant wraps one value
/// shown as it is: `shown_as_inner!(ServiceError: Store, Keys);`.
macro_rules! shown_as_inner {
    ($t:ident: $($variant:ident),+) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $($t::$variant(e) => e.fmt(f),)+
                }
            }
        }

        impl std::error::Error for $t {}
    };
}
pub(crate) use shown_as_inner;

#[derive(Debug)]
pub enum ServiceError {
    Store(StoreError),
    Keys(KeyError),
}

shown_as_inner!(ServiceError: Store, Keys);

wraps!(ServiceError: Store(StoreError), Keys(KeyError));

/// The `From`s of an error type with a `Service(ServiceError)` variant: a
/// service error, and the store and key errors it wraps.
macro_rules! service_errors {
    ($t:ty) => {
        impl From<$crate::app::ServiceError> for $t {
            fn from(e: $crate::app::ServiceError) -> Self {
                Self::Service(e)
            }
        }

        impl From<$crate::store::StoreError> for $t {
            fn from(e: $crate::store::StoreError) -> Self {
                Self::Service(e.into())
            }
        }

        impl From<$crate::keys::KeyError> for $t {
            fn from(e: $crate::keys::KeyError) -> Self {
                Self::Service(e.into())
            }
        }
    };
}
pub(crate) use service_errors;

/// Settings of a running server that are not per program.
#[derive(Debug, Clone, Default)]
pub struct ServerSettings {
    /// The base URL widgets are reached at, for `widget_url`.
    pub public_url: String,
    pub transport: TransportSettings,
    /// How long unwrapped data and zone keys are held before the provider is
    /// asked again (`None`: for the life of the process).
    pub key_cache_ttl: Option<Duration>,
    /// Webhook delivery: retries, timeouts, private targets.
    pub webhooks: crate::webhooks::WebhookSettings,
    /// Abuse limits (per API key, per card, per client address).
    pub limits: crate::limits::LimitSettings,
    /// Peers whose `X-Forwarded-For` names the client (reverse proxies).
    pub trusted_proxies: Vec<crate::limits::Cidr>,
    /// Longest a request body may take to arrive (`None`: no limit).
    pub body_timeout: Option<Duration>,
}

/// The published PIN encryption keys: their size, and how long a key still
/// decrypts after a rotation made its successor.
#[derive(Debug, Clone, Copy)]
pub struct TransportSettings {
    pub bits: TransportBits,
    pub grace_s: i64,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            bits: TransportBits::Rsa2048,
            grace_s: 24 * 3600,
        }
    }
}

/// An inbound encrypted PIN is refused when its `iat` is older than this.
pub const MAX_JWE_AGE_S: i64 = 300;

pub struct App<S: Store> {
    pub store: S,
    pub keys: Arc<Keyring>,
    pub settings: ServerSettings,
    pub metrics: crate::metrics::Metrics,
    /// Zone keys unwrapped for PIN verification.
    pub zone_keys: crate::keys::zone_cache::ZoneKeyCache,
    /// The abuse limits' buckets (in memory: limits are per node).
    pub limiter: crate::limits::Limiter,
}

impl<S: Store> std::fmt::Debug for App<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl<S: Store> App<S> {
    /// Makes sure every kind of data key exists (creating version 1 where none
    /// does) and loads them all.
    pub async fn open(
        store: S,
        provider: Arc<dyn KeyProvider>,
        settings: ServerSettings,
    ) -> Result<Self, ServiceError> {
        let keys = Arc::new(Keyring::with_cache_ttl(provider, settings.key_cache_ttl));
        let limiter = crate::limits::Limiter::new(settings.limits.clone());
        let app = App {
            limiter,
            store,
            keys,
            settings,
            metrics: crate::metrics::Metrics::default(),
            zone_keys: crate::keys::zone_cache::ZoneKeyCache::default(),
        };
        app.bootstrap_keys().await?;
        Ok(app)
    }
}

/// Seconds from now.
pub fn after(seconds: u32) -> Timestamp {
    now() + i64::from(seconds)
}

/// Who asks for a use case, acting for one program.
#[derive(Debug, Clone)]
pub struct Caller {
    pub program: ProgramRow,
    pub kind: CallerKind,
    /// The request's id (`req_…`), for the audit trail.
    pub request_id: Option<String>,
    /// The client's address, for the audit trail.
    pub source: Option<std::net::IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// The program's back end, with this API key (`key_…`).
    ApiKey(String),
    /// A hosted widget, holding a control token of one of the program's
    /// cards (the cardholder): it reaches that card and nothing else.
    Widget,
    /// The `serve --dev` demo page, acting for the dev program.
    Demo,
    /// The operator's command line (`pinvault cards import`).
    Operator,
}

impl Caller {
    /// The caller's name in logs and the audit trail: the API key's id,
    /// `widget` or `demo`.
    pub fn name(&self) -> &str {
        match &self.kind {
            CallerKind::ApiKey(id) => id,
            CallerKind::Widget => "widget",
            CallerKind::Demo => "demo",
            CallerKind::Operator => crate::audit::OPERATOR,
        }
    }

    /// Where a PIN change came from, as `pin.changed` says (`source`): the
    /// program's back end (`api`) or a hosted widget (`widget`).
    pub fn source(&self) -> &'static str {
        match &self.kind {
            CallerKind::Widget => "widget",
            CallerKind::Operator => "migration",
            CallerKind::ApiKey(_) | CallerKind::Demo => "api",
        }
    }

    /// The caller as an audit actor.
    pub fn actor(&self) -> Actor {
        Actor {
            actor: self.name().to_owned(),
            request_id: self.request_id.clone(),
            source: self.source.map(|ip| ip.to_string()),
        }
    }

    /// The caller's audit entry of `action` on its program (no card).
    pub fn program_audit(&self, action: &str, details: Value) -> AuditEntry {
        self.actor()
            .record(action, Some(&self.program.id), None, details)
    }
}

/// An event of `card`, in its program.
fn card_event(card: &CardRow, kind: EventType, data: Value) -> EventRow {
    crate::events::event(&card.program_id, &card.id, kind, data)
}

/// `actor`'s audit entry of `action` on `card`, in its program.
fn card_audit(actor: &Actor, action: &str, card: &CardRow, details: Value) -> AuditEntry {
    actor.record(action, Some(&card.program_id), Some(&card.id), details)
}
