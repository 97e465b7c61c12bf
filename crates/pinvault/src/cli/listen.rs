//! The HTTP server loop under `pinvault serve`: plain HTTP or HTTPS (rustls
//! with aws-lc-rs, the TLS stack the webhook client uses too), a time limit on
//! a request's headers (which also closes idle kept-alive connections) and on
//! a TLS handshake, HSTS on TLS answers, and a graceful stop that lets the
//! requests in flight finish within a deadline.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower_service::Service;

/// One year; without `includeSubDomains` (other hosts of the domain are not ours to pin).
const HSTS: &str = "max-age=31536000";

#[derive(Debug, Clone)]
pub struct ListenSettings {
    /// Longest a client may take to send a request's headers (or a TLS
    /// handshake); also how long a kept-alive connection may sit idle.
    pub header_timeout: Duration,
    /// After the stop signal: longest the requests in flight may take.
    pub shutdown_timeout: Duration,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The server's TLS configuration from a PEM certificate chain and private key
/// (PKCS#8, PKCS#1 or SEC1).
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not make a TLS identity: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` on `listener` until `stop` resolves; then accepts nothing
/// more, lets the requests in flight finish (closing idle connections at
/// once) and returns when they have, or at the deadline.
pub async fn run(
    listener: TcpListener,
    router: Router,
    settings: ListenSettings,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true);
    let acceptor = settings.tls.clone().map(TlsAcceptor::from);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let (http, router, watcher) = (http.clone(), router.clone(), graceful.watcher());
        let acceptor = acceptor.clone();
        let handshake_timeout = settings.header_timeout;
        tokio::spawn(async move {
            match acceptor {
                None => {
                    let conn =
                        http.serve_connection(TokioIo::new(stream), service(router, peer, false));
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(
                        handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    };
                    let conn =
                        http.serve_connection(TokioIo::new(stream), service(router, peer, true));
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(
        connections = open,
        "stopped accepting; finishing the requests in flight"
    );
    if tokio::time::timeout(settings.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_s = settings.shutdown_timeout.as_secs(),
            "requests still in flight at the shutdown deadline: their connections are closed"
        );
    }
}

/// The router for one connection: the peer's address for the handlers (audit
/// `source`, per-address limits), and HSTS on every answer over TLS.
fn service(
    router: Router,
    peer: SocketAddr,
    tls: bool,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::response::Response, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move {
            // A Router is always ready; `call` cannot fail (Infallible).
            let mut res = router.call(req).await?;
            if tls {
                res.headers_mut().insert(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static(HSTS),
                );
            }
            Ok(res)
        }
    })
}
