//! Abuse limits at the HTTP edge: per API key and per card on token creation,
//! reveal and verification (checked in those handlers once the key is known),
//! and per client address on a group of routes (the hosted widgets), with the
//! client address taken from `X-Forwarded-For` only behind a trusted proxy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, Code};
use super::extract::{Auth, AuthCard};
use crate::app::App;
use crate::limits::{Cidr, Limited, Scope};
use crate::store::{CardRow, Store};

/// The limited operations: each has a per-key and a per-card limit.
#[derive(Debug, Clone, Copy)]
pub enum Operation {
    Verify,
    CreateToken,
    Reveal,
    Export,
}

/// Takes one request of `op` from the caller's API key's bucket and from the
/// card's. The card's bucket is keyed by the program too, so one program's
/// requests for another's card id (404 anyway) never use up that card's limit.
pub fn check<S: Store>(
    app: &App<S>,
    op: Operation,
    auth: &Auth,
    card_id: &str,
) -> Result<(), ApiError> {
    let (per_key, per_card) = match op {
        Operation::Verify => (Scope::KeyVerify, Scope::CardVerify),
        Operation::CreateToken => (Scope::KeyTokens, Scope::CardTokens),
        Operation::Reveal => (Scope::KeyReveal, Scope::CardReveal),
        Operation::Export => (Scope::KeyExport, Scope::CardExport),
    };
    app.limiter.check(per_key, &[auth.name()])?;
    app.limiter.check(per_card, &[&auth.program.id, card_id])?;
    Ok(())
}

impl AuthCard {
    /// The card, once one request of `op` is taken from the caller's and the
    /// card's limits ([`check`]): 429 `rate_limited`, then 404 `not_found`.
    pub fn limited_card<S: Store>(
        &mut self,
        app: &App<S>,
        op: Operation,
    ) -> Result<CardRow, ApiError> {
        check(app, op, &self.auth, &self.card_id)?;
        self.card()
    }
}

/// Refuses a PIN block for a card whose undecryptable blocks have used up
/// their limit (taking nothing: only a failure takes, [`decrypt_failed`]).
pub fn check_decrypt_failures<S: Store>(
    app: &App<S>,
    auth: &Auth,
    card_id: &str,
) -> Result<(), ApiError> {
    app.limiter
        .peek(Scope::CardDecryptFailures, &[&auth.program.id, card_id])?;
    Ok(())
}

/// Counts a PIN block for the card that did not decipher or parse, against
/// the card's limit and in the zone key's metric.
pub fn decrypt_failed<S: Store>(app: &App<S>, auth: &Auth, card_id: &str, zone_key_id: &str) {
    app.metrics.decryption_failure(zone_key_id);
    if app
        .limiter
        .check(Scope::CardDecryptFailures, &[&auth.program.id, card_id])
        .is_err()
    {
        tracing::warn!(card_id = %card_id, zone_key_id = %zone_key_id,
            "undecryptable PIN blocks for this card reached their limit: PIN blocks for it are refused until it refills");
    }
}

impl From<Limited> for ApiError {
    fn from(l: Limited) -> Self {
        let secs = l.retry_after_secs();
        let what = match l.scope {
            Scope::KeyVerify
            | Scope::KeyTokens
            | Scope::KeyReveal
            | Scope::KeyLookups
            | Scope::KeyExport => "for this API key",
            Scope::CardVerify | Scope::CardTokens | Scope::CardReveal | Scope::CardExport => {
                "for this card"
            }
            Scope::CardDecryptFailures => {
                "for this card: too many PIN blocks that did not decipher"
            }
            Scope::WidgetAddress => "from this address",
        };
        tracing::info!(
            limit = l.scope.label(),
            retry_after_s = secs,
            "rate limited"
        );
        let mut e = ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            Code::RateLimited,
            format!("too many requests {what}: try again in {secs} s"),
        );
        e.retry_after = Some(secs);
        e
    }
}

/// Middleware for a group of routes limited per client address (the hosted
/// widgets): `router.route_layer(axum::middleware::from_fn_with_state(app,
/// limit_by_address::<S>))`, or [`per_address`].
pub async fn limit_by_address<S: Store>(
    State(app): State<Arc<App<S>>>,
    req: Request,
    next: Next,
) -> Response {
    let ip = match req.extensions().get::<super::extract::ClientAddr>() {
        Some(c) => Some(c.0),
        None => req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| client_ip(c.0.ip(), req.headers(), &app.settings.trusted_proxies)),
    };
    if let Some(ip) = ip {
        if let Err(l) = app.limiter.check(Scope::WidgetAddress, &[&ip.to_string()]) {
            return ApiError::from(l).into_response();
        }
    }
    next.run(req).await
}

/// Puts a group of routes under the per-address limit.
pub fn per_address<S: Store>(
    app: Arc<App<S>>,
    routes: axum::Router<Arc<App<S>>>,
) -> axum::Router<Arc<App<S>>> {
    routes.route_layer(axum::middleware::from_fn_with_state(
        app,
        limit_by_address::<S>,
    ))
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then
/// the right-most `X-Forwarded-For` entry that is not a trusted proxy (entries
/// left of it could be written by the client itself).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        let hop = hop.trim();
        let ip = hop
            .parse::<IpAddr>()
            .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()));
        let Ok(ip) = ip else { break };
        client = ip.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Rate;

    /// A route group under `per_address`, as the widget routes are put.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn route_groups_are_limited_per_client_address() {
        use crate::cli::serve::{DataArgs, open_app_with};
        use axum::body::Body;
        use axum::http::Request;
        use tower_service::Service;
        let dir = std::env::temp_dir().join(format!(
            "pinvault-limits-{}-{}",
            std::process::id(),
            crate::domain::ids::new_id("")
        ));
        let data = DataArgs {
            data_dir: dir.clone(),
            database_url: None,
            db_pool_size: 1,
            db_timeout_ms: 5000,
            db_statement_cache: true,
        };
        let mut limits = crate::limits::LimitSettings::off();
        limits.set(Scope::WidgetAddress, Rate::parse("2/h").unwrap());
        let settings = crate::app::ServerSettings {
            limits,
            trusted_proxies: Cidr::parse_list("10.0.0.0/8").unwrap(),
            ..Default::default()
        };
        let app = Arc::new(open_app_with(&data, settings).await.unwrap());
        let group = axum::Router::new().route("/widgets/x", axum::routing::get(|| async { "ok" }));
        let mut router: axum::Router = per_address(app.clone(), group)
            .route("/other", axum::routing::get(|| async { "free" }))
            .with_state(app);
        let mut call = async |path: &str, peer: &str, xff: Option<&str>| {
            let mut req = Request::builder().uri(path);
            if let Some(x) = xff {
                req = req.header("x-forwarded-for", x);
            }
            let mut req = req.body(Body::empty()).unwrap();
            let peer: SocketAddr = format!("{peer}:5000").parse().unwrap();
            req.extensions_mut().insert(ConnectInfo(peer));
            let res = router.call(req).await.unwrap();
            (
                res.status().as_u16(),
                res.headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        };
        assert_eq!(call("/widgets/x", "1.2.3.4", None).await.0, 200);
        assert_eq!(call("/widgets/x", "1.2.3.4", None).await.0, 200);
        let (status, retry) = call("/widgets/x", "1.2.3.4", None).await;
        assert_eq!(status, 429);
        assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
        // Routes outside the group are not limited; another address has its own bucket.
        assert_eq!(call("/other", "1.2.3.4", None).await.0, 200);
        assert_eq!(call("/widgets/x", "5.6.7.8", None).await.0, 200);
        // Behind a trusted proxy, the forwarded client counts, not the proxy.
        for _ in 0..2 {
            assert_eq!(call("/widgets/x", "10.0.0.1", Some("9.9.9.9")).await.0, 200);
        }
        assert_eq!(call("/widgets/x", "10.0.0.1", Some("9.9.9.9")).await.0, 429);
        assert_eq!(call("/widgets/x", "10.0.0.1", Some("8.8.8.8")).await.0, 200);
        // An untrusted peer cannot pick its bucket with the header.
        assert_eq!(call("/widgets/x", "1.2.3.4", Some("7.7.7.7")).await.0, 429);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks() {
        let n = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(n.contains(ip("10.1.200.3")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(n.contains(ip("::ffff:10.1.0.9")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        for bad in ["10.0.0.0/33", "x", "10.0.0/8", "::/129", "1.2.3.4/"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Cidr::parse_list("").unwrap(), vec![]);
        assert_eq!(Cidr::parse_list("10.0.0.0/8, ::1").unwrap().len(), 2);
    }

    #[test]
    fn client_addresses() {
        let trusted = Cidr::parse_list("10.0.0.0/8").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.7".parse().unwrap(),
        );
        // From a trusted proxy: the right-most untrusted hop, not the forgeable first.
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("1.2.3.4"));
        // From anyone else the header is ignored.
        assert_eq!(client_ip(ip("5.5.5.5"), &h, &trusted), ip("5.5.5.5"));
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &[]), ip("10.0.0.2"));
        // No header, or garbage: the proxy itself (or the last good hop).
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "nonsense, 10.0.0.9".parse().unwrap());
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("10.0.0.9"));
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "[2001:db8::1]:443".parse().unwrap());
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("2001:db8::1"));
    }
}
