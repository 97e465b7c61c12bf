//! TLS to PostgreSQL with rustls (aws-lc-rs): tokio-postgres's
//! `MakeTlsConnect`/`TlsConnect`/`TlsStream` over tokio-rustls, for the
//! modes of libpq's `sslmode` (read from the URL by `url.rs`):
//!
//! | `sslmode`     | TLS                         | chain to a CA      | host name |
//! |---------------|-----------------------------|--------------------|-----------|
//! | `disable`     | never                       | —                  | —         |
//! | `prefer`      | if the server offers it     | only if `sslrootcert` | no     |
//! | `require`     | always                      | only if `sslrootcert` | no     |
//! | `verify-ca`   | always                      | yes                | no        |
//! | `verify-full` | always                      | yes                | yes       |
//!
//! The CAs are those in `sslrootcert=FILE`, else (verify modes) the Mozilla
//! roots built in. The server's certificate hash is handed to SCRAM as the
//! `tls-server-end-point` channel binding, so a password login over TLS is
//! bound to that TLS session.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Config;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, CertificateError, ClientConfig};

use super::cert::{ChainOnly, end_point_hash, load_roots};
use super::url::{RootCert, SslMode, TlsParams, split_tls_params};

/// The TLS a database URL asks for: the connector handed to tokio-postgres
/// (`config.connect(tls)`), for the pool and for anyone else who connects
/// with the same URL (the test harness).
#[derive(Clone)]
pub struct PgTls {
    mode: SslMode,
    roots: Option<RootCert>,
    config: Arc<ClientConfig>,
}

debug_fields!(PgTls: mode, roots);

impl PgTls {
    /// Reads a `postgres://` URL: tokio-postgres's configuration (everything
    /// but `sslmode` and `sslrootcert`) and the TLS they ask for. A bad
    /// `sslmode`, or an `sslrootcert` that cannot be read or holds no PEM
    /// certificate, is an error naming the parameter; no error repeats the URL.
    pub fn from_url(url: &str) -> Result<(Config, PgTls), String> {
        let (rest, params) = split_tls_params(url)?;
        let mut config: Config = rest
            .parse()
            .map_err(|e| format!("bad PostgreSQL URL: {e}"))?;
        config.ssl_mode(match params.mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let tls = PgTls {
            mode: params.mode,
            config: client_config(&params)?,
            roots: params.roots,
        };
        Ok((config, tls))
    }

    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// What the connection is not protected against, when it is not the
    /// server's identity checked against a CA of the operator's choosing.
    pub fn weakness(&self) -> Option<String> {
        let mode = self.mode;
        match (mode, &self.roots) {
            (SslMode::Disable, _) => Some(
                "the database connection is plain TCP (sslmode=disable): \
                 anyone on the network path reads and changes it"
                    .into(),
            ),
            (SslMode::Prefer | SslMode::Require, None) => Some(format!(
                "the database's identity is not checked (sslmode={mode}{}): anyone on the \
                 network path can pose as it; use sslmode=verify-full with sslrootcert",
                if mode == SslMode::Prefer {
                    ", and without TLS if the server does not offer it"
                } else {
                    ""
                }
            )),
            (SslMode::VerifyCa, Some(RootCert::BuiltIn)) => Some(
                "sslmode=verify-ca with the built-in public root CAs takes any publicly \
                 issued certificate, for any name: name the database's CA in sslrootcert, \
                 or use sslmode=verify-full"
                    .into(),
            ),
            _ => None,
        }
    }

    /// A connection failure as one line, with what the mode has to do with it.
    pub fn explain(&self, e: &tokio_postgres::Error) -> String {
        let text = e.to_string().replace('\n', "; ");
        let described = std::error::Error::source(e).is_some_and(|s| s.is::<TlsError>());
        if e.code() == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
            && self.mode == SslMode::Disable
        {
            format!(
                "{text} (the server refused a connection without TLS, sslmode=disable: \
                 it may accept only TLS; use sslmode=verify-full)"
            )
        } else if text.starts_with("error performing TLS handshake") && !described {
            format!("{text} (sslmode={})", self.mode)
        } else {
            text
        }
    }

    fn roots_text(&self) -> String {
        match &self.roots {
            Some(RootCert::File(path)) => format!("CA from sslrootcert {}", path.display()),
            Some(RootCert::BuiltIn) => "the built-in Mozilla root CAs".into(),
            None => "no CA".into(),
        }
    }

    /// A failed handshake, saying what failed: the chain, the name, or else.
    fn describe(&self, host: &str, e: &io::Error) -> TlsError {
        let mode = self.mode;
        let cause = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
        TlsError(match cause {
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => format!(
                "the server's certificate does not match the host name {host} (sslmode={mode}): {e}"
            ),
            Some(rustls::Error::InvalidCertificate(_)) => format!(
                "certificate verification failed for host {host} (sslmode={mode}, {}): {e}",
                self.roots_text()
            ),
            _ => format!("TLS handshake with host {host} failed (sslmode={mode}): {e}"),
        })
    }
}

/// The rustls configuration for the URL's mode and roots (the roots are read
/// here, at start, so a bad `sslrootcert` fails before any connection).
fn client_config(params: &TlsParams) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = params.roots.as_ref().map(load_roots).transpose()?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let mut config = match roots {
        Some(roots) if params.mode == SslMode::VerifyFull => {
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("TLS setup failed: {e}"))?;
            builder.with_webpki_verifier(verifier)
        }
        roots => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly::new(roots, &provider))),
    }
    .with_no_client_auth();
    // What libpq 17 sends; servers before 17 ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Arc::new(config))
}

/// Why a handshake failed, in words (tokio-postgres prefixes "error performing
/// TLS handshake: ").
#[derive(Debug)]
pub struct TlsError(String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type TlsConnect = PgTlsConnect;
    type Error = TlsError;

    fn make_tls_connect(&mut self, host: &str) -> Result<PgTlsConnect, TlsError> {
        Ok(PgTlsConnect {
            tls: self.clone(),
            host: host.to_owned(),
        })
    }
}

/// One handshake, with the host the connection is for.
#[derive(Debug)]
pub struct PgTlsConnect {
    tls: PgTls,
    host: String,
}

type Handshake<S> =
    Pin<Box<dyn std::future::Future<Output = Result<PgTlsStream<S>, TlsError>> + Send>>;

impl<S> TlsConnect<S> for PgTlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = TlsError;
    type Future = Handshake<S>;

    fn connect(self, stream: S) -> Handshake<S> {
        Box::pin(async move {
            let name = ServerName::try_from(self.host.clone()).map_err(|_| {
                TlsError(format!(
                    "{:?} is not a host name or address TLS can check (sslmode={})",
                    self.host, self.tls.mode
                ))
            })?;
            TlsConnector::from(self.tls.config.clone())
                .connect(name, stream)
                .await
                .map(PgTlsStream)
                .map_err(|e| self.tls.describe(&self.host, &e))
        })
    }
}

/// A TLS connection to the server.
#[derive(Debug)]
pub struct PgTlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for PgTlsStream<S> {
    /// `tls-server-end-point` (RFC 5929): the server certificate's hash, for
    /// SCRAM-SHA-256-PLUS; none when its signature's hash is not one we know.
    fn channel_binding(&self) -> ChannelBinding {
        let (_, conn) = self.0.get_ref();
        conn.peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| end_point_hash(cert))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tls(query: &str) -> PgTls {
        PgTls::from_url(&format!("postgres://u:hunter2@db.internal:5432/pv?{query}"))
            .unwrap()
            .1
    }

    #[test]
    fn modes_reach_tokio_postgres_and_the_unchecked_ones_are_named() {
        let (config, t) = PgTls::from_url("postgres://u@h/db?sslmode=verify-ca").unwrap();
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(t.mode(), SslMode::VerifyCa);
        let (config, _) = PgTls::from_url("postgres://u@h/db").unwrap();
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
        let (config, _) = PgTls::from_url("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        for (query, weak) in [
            ("sslmode=disable", Some("plain TCP")),
            ("", Some("sslmode=prefer")),
            ("sslmode=require", Some("sslmode=require")),
            ("sslmode=verify-ca", Some("public root CAs")),
            ("sslmode=verify-full", None),
        ] {
            let weakness = tls(query).weakness();
            match weak {
                Some(w) => assert!(weakness.as_deref().unwrap().contains(w), "{query}"),
                None => assert_eq!(weakness, None, "{query}"),
            }
        }
    }

    #[test]
    fn errors_in_the_rest_of_the_url_do_not_repeat_it() {
        let e = PgTls::from_url("postgres://u:hunter2@h:notaport/db?sslmode=require").unwrap_err();
        assert!(
            e.contains("bad PostgreSQL URL") && !e.contains("hunter2"),
            "{e}"
        );
        let e = PgTls::from_url("postgres://u:hunter2@h/db?sslcert=/c.pem").unwrap_err();
        assert!(e.contains("sslcert") && !e.contains("hunter2"), "{e}");
    }
}
