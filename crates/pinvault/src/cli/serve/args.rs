//! The arguments of `pinvault serve`: where to listen, the webhook, HTTP and
//! abuse-limit settings (the data and transport key arguments are shared with
//! the operator commands, in [`crate::cli::data`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

pub use super::limit_args::LimitArgs;
use crate::cli::data::{DataArgs, TransportArgs};

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub(super) data: DataArgs,
    /// Address to listen on.
    #[arg(
        long,
        env = "PINVAULT_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub(super) listen: SocketAddr,
    /// Also make a test-mode program and print its API key and what to try.
    #[arg(long)]
    pub(super) dev: bool,
    /// The URL clients reach this server at (for `widget_url`); default http://ADDR.
    #[arg(long, env = "PINVAULT_PUBLIC_URL", value_name = "URL")]
    pub(super) public_url: Option<String>,
    /// Seconds an unwrapped data or zone key is held in memory before the key
    /// provider unwraps it again (0: for the life of the process).
    #[arg(
        long,
        env = "PINVAULT_KEY_CACHE_TTL_S",
        default_value_t = 3600,
        value_name = "SECONDS"
    )]
    pub(super) key_cache_ttl: u64,
    /// Deliver webhooks to loopback, private and link-local addresses too
    /// (refused by default: a webhook URL must not reach into your network).
    #[arg(
        long,
        env = "PINVAULT_ALLOW_PRIVATE_WEBHOOK_TARGETS",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub(super) allow_private_webhook_targets: bool,
    /// Delays between webhook delivery attempts, after the first (each ±10 %).
    #[arg(
        long,
        env = "PINVAULT_WEBHOOK_RETRY_SCHEDULE",
        default_value = crate::webhooks::DEFAULT_SCHEDULE,
        value_name = "DELAYS"
    )]
    pub(super) webhook_retry_schedule: String,
    /// Seconds one webhook delivery attempt may take (connect, TLS, answer).
    #[arg(
        long,
        env = "PINVAULT_WEBHOOK_TIMEOUT_S",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=120),
        value_name = "SECONDS"
    )]
    pub(super) webhook_timeout_s: u64,
    #[command(flatten)]
    pub(super) transport: TransportArgs,
    #[command(flatten)]
    pub(super) http: HttpArgs,
    #[command(flatten)]
    pub(super) limits: LimitArgs,
}

/// How the server speaks HTTP: TLS, timeouts, shutdown.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        env = "PINVAULT_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub(super) tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "PINVAULT_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub(super) tls_key: Option<PathBuf>,
    /// Seconds a client may take to send a request's headers (and a TLS
    /// handshake); a kept-alive connection idle this long is closed.
    #[arg(long, env = "PINVAULT_HEADER_TIMEOUT_S", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600), value_name = "SECONDS")]
    pub(super) header_timeout_s: u64,
    /// Seconds a client may take to send a request's body, from its headers.
    #[arg(long, env = "PINVAULT_BODY_TIMEOUT_S", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=3600), value_name = "SECONDS")]
    pub(super) body_timeout_s: u64,
    /// On SIGTERM or SIGINT: seconds the requests (and webhook attempts) in
    /// flight may take to finish before the server exits anyway.
    #[arg(long, env = "PINVAULT_SHUTDOWN_TIMEOUT_S", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(0..=3600), value_name = "SECONDS")]
    pub(super) shutdown_timeout_s: u64,
    /// Reverse proxies (addresses or networks, comma-separated) whose
    /// `X-Forwarded-For` names the client, for per-address limits and the
    /// audit trail; from anyone else the header is ignored.
    #[arg(
        long,
        env = "PINVAULT_TRUSTED_PROXIES",
        value_name = "CIDRS",
        default_value = ""
    )]
    pub(super) trusted_proxies: String,
}
