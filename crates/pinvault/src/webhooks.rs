//! Webhook delivery: a worker in every `serve` claims due deliveries from the
//! outbox, POSTs each event signed with its endpoint's secret, and records the
//! attempt. Any 2xx is delivered; anything else is retried on a schedule with
//! jitter (by default for more than 24 hours), then given up.
//!
//! At least once: a delivery row is written with its event, in the change's
//! transaction; a worker holds a claim (lease) on it only for one attempt, and
//! a claim whose worker died expires and is taken again. A receiver may so see
//! an event twice (deduplicate on the event `id`), never zero times while the
//! endpoint exists and answers within the schedule.
//!
//! Outbound requests (SSRF): only `http` and `https`; the host is resolved and
//! every resolved address checked, then the connection goes to a checked
//! address (no second lookup between check and connect); loopback, private,
//! link-local, unspecified, multicast and other special ranges (IPv4 and IPv6,
//! IPv4-mapped included) are refused unless the operator allows private targets.
//! Redirects are not followed (a 3xx is a failed attempt).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::http::{Request, Uri, header};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;

use crate::app::App;
use crate::domain::ids::new_id;
use crate::domain::time::{Timestamp, now};
use crate::keys::KeyKind;
use crate::store::{AttemptNext, AttemptResult, ClaimedDelivery, Store};

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Pinvault-Signature";

/// Delivery settings of a server.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Deliver to loopback, private and link-local addresses too.
    pub allow_private_targets: bool,
    pub schedule: RetrySchedule,
    /// Time allowed for one attempt: connect, TLS, request and response head.
    pub attempt_timeout: Duration,
    /// How often the worker looks for due deliveries.
    pub poll_interval: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private_targets: false,
            schedule: RetrySchedule::default(),
            attempt_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// The delays before each retry, after the first attempt. Each gets ±10 %
/// jitter, so receivers that failed together are not all hit again at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

/// 5 s, 30 s, 2 min, 10 min, 1 h, 2 h, 4 h, then every 6 h: 11 attempts over
/// about 25 hours.
pub const DEFAULT_SCHEDULE: &str = "5s,30s,2m,10m,1h,2h,4h,6h,6h,6h";

impl Default for RetrySchedule {
    fn default() -> Self {
        // The constant parses; a failure would be a bug caught by the unit test.
        RetrySchedule::parse(DEFAULT_SCHEDULE).unwrap_or(RetrySchedule(vec![]))
    }
}

impl RetrySchedule {
    /// `5s,30s,2m,1h`: durations with a unit (`s`, `m`, `h`), comma-separated.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for item in text.split(',').map(str::trim) {
            let (n, unit) = item.split_at(item.len().saturating_sub(1));
            let n: u64 = n
                .parse()
                .map_err(|_| format!("bad retry delay `{item}` (expected e.g. 5s, 2m, 1h)"))?;
            let secs = match unit {
                "s" => n,
                "m" => n * 60,
                "h" => n * 3600,
                _ => return Err(format!("bad retry delay `{item}` (unit s, m or h)")),
            };
            if secs == 0 || secs > 7 * 86_400 {
                return Err(format!("retry delay `{item}` must be from 1s to 168h"));
            }
            out.push(Duration::from_secs(secs));
        }
        if out.is_empty() || out.len() > 50 {
            return Err("the retry schedule needs 1 to 50 delays".into());
        }
        Ok(RetrySchedule(out))
    }

    /// When to try again after `attempts` failed attempts; `None`: give up.
    pub fn next_after(&self, attempts: u32, at: Timestamp) -> Option<Timestamp> {
        let delay = self.0.get(attempts.checked_sub(1)? as usize)?;
        let ms = delay.as_millis() as f64 * rand::rng().random_range(0.9..1.1);
        Some(at + (ms / 1000.0).ceil().max(1.0) as i64)
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. The key is
/// the secret exactly as shown at creation (`whsec_…`), as UTF-8 bytes.
pub fn signature(secret: &[u8], t: Timestamp, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// A checked endpoint URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path_and_query: String,
}

/// Checks an endpoint URL's form: absolute `http`/`https`, a host, no user
/// name or password, no fragment, at most [`MAX_URL_LEN`] characters.
pub fn parse_url(url: &str) -> Result<Target, String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("`url` must be at most {MAX_URL_LEN} characters"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("`url` must not contain spaces or control characters".into());
    }
    if url.contains('#') {
        return Err("`url` must not have a fragment".into());
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| "`url` must be an absolute http or https URL".to_owned())?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("`url` must be an http or https URL".into()),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| "`url` must name a host".to_owned())?;
    if authority.as_str().contains('@') {
        return Err("`url` must not carry a user name or password".into());
    }
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err("`url` must name a host".into());
    }
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    if port == 0 {
        return Err("`url` must not use port 0".into());
    }
    Ok(Target {
        https,
        host: host.to_ascii_lowercase(),
        port,
        path_and_query: uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
    })
}

/// Whether an address may be delivered to without `--allow-private-webhook-targets`.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a >= 240 // reserved
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 198 && (18..20).contains(&b))) // benchmarking
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // IPv4 embedded: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64
    // (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::): judged by the IPv4 address.
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return is_public_v4(mapped);
    }
    if s[..6] == [0; 6] {
        // :: and ::1 included (unspecified, loopback).
        return !ip.is_unspecified() && !ip.is_loopback() && is_public_v4(v4(s[6], s[7]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return is_public_v4(v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(v4(s[1], s[2]));
    }
    !(ip.is_multicast()
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo (tunnels to any IPv4)
        || s[0] == 0x0100 && s[1..4] == [0; 3]) // discard-only
}

/// Refuses, at creation, a URL whose host is an address literal this server
/// would never deliver to (names are checked when delivering, after resolution).
pub fn check_literal(target: &Target, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let literal = target.host.parse::<IpAddr>().ok();
    if literal.is_some_and(|ip| !is_public(ip)) || target.host == "localhost" {
        return Err(
            "`url` points to a loopback, private or link-local address, which this server does not deliver to (the operator can allow it with `serve --allow-private-webhook-targets`)".into(),
        );
    }
    Ok(())
}

/// Resolves the host and keeps the addresses that may be delivered to.
async fn resolve(target: &Target, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    let allowed: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| allow_private || is_public(a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(if addrs.is_empty() {
            format!("{} resolves to no address", target.host)
        } else {
            format!(
                "refused: {} resolves only to loopback, private or otherwise non-public addresses",
                target.host
            )
        });
    }
    Ok(allowed)
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| format!("TLS setup failed: {e}"))
        })
        .clone()
}

/// Sends one POST over an open connection; returns the status code.
async fn post<T>(io: T, target: &Target, body: &str, sig: &str) -> Result<u16, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let conn = tokio::spawn(conn);
    let name = if target.host.contains(':') {
        format!("[{}]", target.host) // an IPv6 literal
    } else {
        target.host.clone()
    };
    let host = if (target.https && target.port == 443) || (!target.https && target.port == 80) {
        name
    } else {
        format!("{name}:{}", target.port)
    };
    let req = Request::post(target.path_and_query.as_str())
        .header(header::HOST, host)
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("pinvault-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header(SIGNATURE_HEADER, sig)
        .header(header::CONNECTION, "close")
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| format!("bad request: {e}"))?;
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request failed: {e}"));
    // The response body is not read: only the status matters.
    conn.abort();
    Ok(res?.status().as_u16())
}

/// One attempt: resolve, check, connect to a checked address, TLS where
/// `https`, POST. Returns the status code.
pub async fn attempt(
    target: &Target,
    allow_private: bool,
    body: &str,
    sig: &str,
) -> Result<u16, String> {
    let addrs = resolve(target, allow_private).await?;
    let mut last = String::new();
    let mut stream = None;
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    let stream = stream.ok_or(last)?;
    let _ = stream.set_nodelay(true);
    if target.https {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| format!("bad TLS server name {}", target.host))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config()?)
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        post(tls, target, body, sig).await
    } else {
        post(stream, target, body, sig).await
    }
}

/// A running delivery worker: its task, and the owner name its claims carry.
#[derive(Debug)]
pub struct Worker {
    pub handle: tokio::task::JoinHandle<()>,
    pub owner: String,
}

/// Runs the delivery worker until `stop` turns true; the attempts under way
/// then finish (each within the attempt timeout) and are recorded, so a
/// clean shutdown leaves no claim to expire. (One stopped at a deadline
/// instead gives its claims back with [`Store::release_deliveries`].)
pub fn spawn_worker<S: Store>(
    app: Arc<App<S>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Worker {
    let settings = app.settings.webhooks.clone();
    let owner = new_id("wrk_");
    let name = owner.clone();
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(settings.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let t = now();
            // The lease outlasts an attempt: only a dead worker's claim expires.
            let lease = t + settings.attempt_timeout.as_secs() as i64 * 2 + 30;
            let claimed = match app.store.claim_deliveries(&owner, t, lease, 32).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim webhook deliveries");
                    continue;
                }
            };
            let mut set = tokio::task::JoinSet::new();
            for d in claimed {
                let (app, owner, settings) = (app.clone(), owner.clone(), settings.clone());
                set.spawn(async move { deliver(&app, &owner, &settings, d).await });
            }
            while set.join_next().await.is_some() {}
        }
    });
    Worker {
        handle,
        owner: name,
    }
}

async fn deliver<S: Store>(
    app: &App<S>,
    owner: &str,
    settings: &WebhookSettings,
    d: ClaimedDelivery,
) {
    let outcome = match open_secret(app, &d).await {
        Err(e) => Err(e),
        Ok(secret) => {
            let t = now();
            let sig = signature(secret.as_bytes(), t, d.event_body.as_bytes());
            drop(secret);
            match parse_url(&d.url) {
                Err(e) => Err(e),
                Ok(target) => tokio::time::timeout(
                    settings.attempt_timeout,
                    attempt(&target, settings.allow_private_targets, &d.event_body, &sig),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "no answer within {} s",
                        settings.attempt_timeout.as_secs()
                    ))
                }),
            }
        }
    };
    let at = now();
    let attempts = d.attempts + 1;
    let (code, error, next) = match outcome {
        Ok(code) if (200..300).contains(&code) => (Some(code), None, AttemptNext::Delivered),
        other => {
            let (code, error) = match other {
                Ok(code) if (300..400).contains(&code) => {
                    (Some(code), Some("redirect not followed".to_owned()))
                }
                Ok(code) => (Some(code), None),
                Err(e) => (None, Some(e)),
            };
            let next = settings
                .schedule
                .next_after(attempts, at)
                .map_or(AttemptNext::GiveUp, AttemptNext::RetryAt);
            (code, error, next)
        }
    };
    let outcome = match next {
        AttemptNext::Delivered => "delivered",
        AttemptNext::RetryAt(_) => "retry",
        AttemptNext::GiveUp => "gave_up",
    };
    app.metrics.webhook_attempt(outcome);
    tracing::info!(
        delivery_id = %d.id,
        endpoint_id = %d.endpoint_id,
        attempt = attempts,
        status = code.unwrap_or(0),
        error = error.as_deref().unwrap_or("-"),
        outcome,
        "webhook attempt"
    );
    let result = AttemptResult {
        at,
        response_code: code,
        error,
        next,
    };
    match app.store.finish_delivery(&d.id, owner, result).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(delivery_id = %d.id, "webhook delivery lease lost; another worker retries it")
        }
        Err(e) => {
            tracing::warn!(delivery_id = %d.id, error = %e, "cannot record a webhook attempt")
        }
    }
}

/// The associated data an endpoint's sealed secret is bound to.
pub fn secret_aad(endpoint_id: &str) -> Vec<u8> {
    format!("webhook-endpoint {endpoint_id}").into_bytes()
}

async fn open_secret<S: Store>(
    app: &App<S>,
    d: &ClaimedDelivery,
) -> Result<zeroize::Zeroizing<String>, String> {
    app.ensure_key(KeyKind::Pan, d.secret_key_version)
        .await
        .map_err(|e| format!("cannot load the key of the endpoint's secret: {e}"))?;
    let bytes = app
        .keys
        .open(
            d.secret_key_version,
            &d.secret_sealed,
            &secret_aad(&d.endpoint_id),
        )
        .map_err(|e| format!("cannot open the endpoint's secret: {e}"))?;
    String::from_utf8(bytes.to_vec())
        .map(zeroize::Zeroizing::new)
        .map_err(|_| "the endpoint's secret is not text".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule() {
        let s = RetrySchedule::default();
        let total: u64 = s.0.iter().map(Duration::as_secs).sum();
        assert!(total >= 24 * 3600, "{total}");
        assert_eq!(s.0[0], Duration::from_secs(5));
        assert!(
            s.next_after(1, 1000)
                .is_some_and(|t| (1005..=1006).contains(&t))
        );
        assert_eq!(s.next_after(s.0.len() as u32 + 1, 0), None);
        assert!(RetrySchedule::parse("1s,2x").is_err());
        assert!(RetrySchedule::parse("0s").is_err());
        assert!(RetrySchedule::parse("").is_err());
    }

    #[test]
    fn urls() {
        let t = parse_url("https://example.com/hooks?a=1").unwrap();
        assert!(t.https);
        assert_eq!((t.host.as_str(), t.port), ("example.com", 443));
        assert_eq!(t.path_and_query, "/hooks?a=1");
        assert_eq!(parse_url("http://[::1]:8080").unwrap().host, "::1");
        for bad in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "example.com/hook",
            "https://example.com/a b",
            "https://example.com/#frag",
            "https://example.com:0/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert!(parse_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        let t = parse_url("http://127.0.0.1:9/").unwrap();
        assert!(check_literal(&t, false).is_err());
        assert!(check_literal(&t, true).is_ok());
        assert!(check_literal(&parse_url("http://localhost/").unwrap(), false).is_err());
    }

    #[test]
    fn signature_format() {
        // HMAC-SHA256("key", "1.body"), computed independently (Python's hmac).
        assert_eq!(
            signature(b"key", 1, b"body"),
            "t=1,v1=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
        );
    }
}
