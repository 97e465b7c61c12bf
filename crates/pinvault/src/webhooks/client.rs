//! The outbound HTTP client: one delivery attempt to a checked address (the
//! host is resolved once and every address checked before connecting), over
//! TLS where `https`; redirects are not followed.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::http::{Request, header};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;

use super::signing::SIGNATURE_HEADER;
use super::target::{Target, is_public};

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
