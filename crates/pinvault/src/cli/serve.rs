//! `pinvault serve` and what every command that touches the data shares: where
//! the data lives and how to open it.

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::app::keys::KEY_REFRESH;
use crate::app::{App, ServerSettings, TransportSettings};
use crate::domain::ids::{Secret, new_id};
use crate::domain::program::{Mode, Settings};
use crate::domain::time::now;
use crate::keys::config as key_config;
use crate::keys::transport::TransportBits;
use crate::limits::{Cidr, LimitSettings, Rate, Scope};
use crate::store::prelude::*;
use crate::store::{AnyStore, ApiKeyRow, PgSettings, PgStore, ProgramRow, SqliteStore};
use crate::webhooks::{RetrySchedule, WebhookSettings};

/// How often a server removes expired staged PINs.
const STAGED_SWEEP: Duration = Duration::from_secs(60);

/// Where the data lives; every command that reads or writes it takes these.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// Data directory: the SQLite database and the master key file.
    #[arg(
        long,
        env = "PINVAULT_DATA_DIR",
        default_value = "./pinvault-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// Database URL: `postgres://USER@HOST:PORT/DB` for PostgreSQL, `sqlite:PATH`;
    /// without one, SQLite in the data directory.
    #[arg(long, env = "PINVAULT_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// PostgreSQL: most connections this process opens.
    #[arg(long, env = "PINVAULT_DB_POOL_SIZE", default_value_t = 16,
        value_parser = clap::value_parser!(u16).range(1..=1000), value_name = "N")]
    pub db_pool_size: u16,
    /// PostgreSQL: longest a statement may run, and longest a request waits for
    /// a connection (milliseconds).
    #[arg(long, env = "PINVAULT_DB_TIMEOUT_MS", default_value_t = 5000,
        value_parser = clap::value_parser!(u64).range(100..=600_000), value_name = "MS")]
    pub db_timeout_ms: u64,
}

impl DataArgs {
    fn pg_settings(&self) -> PgSettings {
        let timeout = std::time::Duration::from_millis(self.db_timeout_ms);
        PgSettings {
            pool_size: usize::from(self.db_pool_size),
            statement_timeout: timeout,
            acquire_timeout: timeout,
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Address to listen on.
    #[arg(
        long,
        env = "PINVAULT_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    listen: SocketAddr,
    /// Also make a test-mode program and print its API key and what to try.
    #[arg(long)]
    dev: bool,
    /// The URL clients reach this server at (for `widget_url`); default http://ADDR.
    #[arg(long, env = "PINVAULT_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Seconds an unwrapped data or zone key is held in memory before the key
    /// provider unwraps it again (0: for the life of the process).
    #[arg(
        long,
        env = "PINVAULT_KEY_CACHE_TTL_S",
        default_value_t = 3600,
        value_name = "SECONDS"
    )]
    key_cache_ttl: u64,
    /// Deliver webhooks to loopback, private and link-local addresses too
    /// (refused by default: a webhook URL must not reach into your network).
    #[arg(
        long,
        env = "PINVAULT_ALLOW_PRIVATE_WEBHOOK_TARGETS",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    allow_private_webhook_targets: bool,
    /// Delays between webhook delivery attempts, after the first (each ±10 %).
    #[arg(
        long,
        env = "PINVAULT_WEBHOOK_RETRY_SCHEDULE",
        default_value = crate::webhooks::DEFAULT_SCHEDULE,
        value_name = "DELAYS"
    )]
    webhook_retry_schedule: String,
    /// Seconds one webhook delivery attempt may take (connect, TLS, answer).
    #[arg(
        long,
        env = "PINVAULT_WEBHOOK_TIMEOUT_S",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=120),
        value_name = "SECONDS"
    )]
    webhook_timeout_s: u64,
    #[command(flatten)]
    transport: TransportArgs,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    limits: LimitArgs,
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
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "PINVAULT_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// Seconds a client may take to send a request's headers (and a TLS
    /// handshake); a kept-alive connection idle this long is closed.
    #[arg(long, env = "PINVAULT_HEADER_TIMEOUT_S", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600), value_name = "SECONDS")]
    header_timeout_s: u64,
    /// Seconds a client may take to send a request's body, from its headers.
    #[arg(long, env = "PINVAULT_BODY_TIMEOUT_S", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=3600), value_name = "SECONDS")]
    body_timeout_s: u64,
    /// On SIGTERM or SIGINT: seconds the requests (and webhook attempts) in
    /// flight may take to finish before the server exits anyway.
    #[arg(long, env = "PINVAULT_SHUTDOWN_TIMEOUT_S", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(0..=3600), value_name = "SECONDS")]
    shutdown_timeout_s: u64,
    /// Reverse proxies (addresses or networks, comma-separated) whose
    /// `X-Forwarded-For` names the client, for per-address limits and the
    /// audit trail; from anyone else the header is ignored.
    #[arg(
        long,
        env = "PINVAULT_TRUSTED_PROXIES",
        value_name = "CIDRS",
        default_value = ""
    )]
    trusted_proxies: String,
}

/// Abuse limits: token buckets of N requests refilled over the period
/// (`N/s`, `N/min`, `N/h`), or `off`. Held in each server's memory: per node.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// PIN verifications (incl. the sandbox's) per API key.
    #[arg(
        long,
        env = "PINVAULT_RATE_LIMIT_KEY_VERIFY",
        default_value = "50000/s",
        value_name = "RATE"
    )]
    rate_limit_key_verify: String,
    /// Control tokens created per API key.
    #[arg(
        long,
        env = "PINVAULT_RATE_LIMIT_KEY_TOKENS",
        default_value = "10000/s",
        value_name = "RATE"
    )]
    rate_limit_key_tokens: String,
    /// PIN reveals per API key.
    #[arg(
        long,
        env = "PINVAULT_RATE_LIMIT_KEY_REVEAL",
        default_value = "10000/s",
        value_name = "RATE"
    )]
    rate_limit_key_reveal: String,
    /// PIN verifications per card.
    #[arg(
        long,
        env = "PINVAULT_RATE_LIMIT_CARD_VERIFY",
        default_value = "600/min",
        value_name = "RATE"
    )]
    rate_limit_card_verify: String,
    /// Control tokens created per card.
    #[arg(
        long,
        env = "PINVAULT_RATE_LIMIT_CARD_TOKENS",
        default_value = "120/min",
        value_name = "RATE"
    )]
    rate_limit_card_tokens: String,
    /// PIN reveals per card.
    #[arg(
        long,
        env = "PINVAULT_RATE_LIMIT_CARD_REVEAL",
        default_value = "120/min",
        value_name = "RATE"
    )]
    rate_limit_card_reveal: String,
    /// Requests to the hosted widgets per client address.
    #[arg(
        long,
        env = "PINVAULT_RATE_LIMIT_WIDGET_ADDRESS",
        default_value = "600/min",
        value_name = "RATE"
    )]
    rate_limit_widget_address: String,
    /// Most rate-limit buckets held at once (idle ones are evicted first).
    #[arg(long, env = "PINVAULT_RATE_LIMIT_BUCKETS", default_value_t = 100_000,
        value_parser = clap::value_parser!(u64).range(1024..=100_000_000), value_name = "N")]
    rate_limit_buckets: u64,
}

impl LimitArgs {
    fn settings(&self) -> Result<LimitSettings, CliError> {
        let mut s = LimitSettings::off();
        s.max_buckets = usize::try_from(self.rate_limit_buckets).unwrap_or(usize::MAX);
        for (scope, flag, text) in [
            (
                Scope::KeyVerify,
                "--rate-limit-key-verify",
                &self.rate_limit_key_verify,
            ),
            (
                Scope::KeyTokens,
                "--rate-limit-key-tokens",
                &self.rate_limit_key_tokens,
            ),
            (
                Scope::KeyReveal,
                "--rate-limit-key-reveal",
                &self.rate_limit_key_reveal,
            ),
            (
                Scope::CardVerify,
                "--rate-limit-card-verify",
                &self.rate_limit_card_verify,
            ),
            (
                Scope::CardTokens,
                "--rate-limit-card-tokens",
                &self.rate_limit_card_tokens,
            ),
            (
                Scope::CardReveal,
                "--rate-limit-card-reveal",
                &self.rate_limit_card_reveal,
            ),
            (
                Scope::WidgetAddress,
                "--rate-limit-widget-address",
                &self.rate_limit_widget_address,
            ),
        ] {
            s.set(
                scope,
                Rate::parse(text).map_err(|e| CliError(format!("{flag}: {e}")))?,
            );
        }
        Ok(s)
    }
}

/// The published PIN encryption (transport) keys.
#[derive(Debug, Args, Clone)]
pub struct TransportArgs {
    /// Size of new transport (PIN encryption) RSA keys: 2048 or 3072 bits.
    /// 2048 (the default) is the minimum PCI PIN and NIST SP 800-57 accept for
    /// key transport (112-bit strength, through 2030); 3072 is 128-bit
    /// strength at about a third of the PIN sets per second of CPU.
    #[arg(
        long,
        env = "PINVAULT_TRANSPORT_KEY_BITS",
        default_value_t = 2048,
        value_parser = parse_bits,
        value_name = "BITS"
    )]
    pub transport_key_bits: u32,
    /// How long a transport key still decrypts after a rotation made its
    /// successor, in seconds (default 24 h); then it is retired.
    #[arg(
        long,
        env = "PINVAULT_TRANSPORT_KEY_GRACE",
        default_value_t = 86_400,
        value_parser = clap::value_parser!(u32).range(0..=31_536_000),
        value_name = "SECONDS"
    )]
    pub transport_key_grace: u32,
}

fn parse_bits(s: &str) -> Result<u32, String> {
    match s {
        "2048" => Ok(2048),
        "3072" => Ok(3072),
        _ => Err("must be 2048 or 3072".into()),
    }
}

impl TransportArgs {
    pub fn settings(&self) -> TransportSettings {
        TransportSettings {
            bits: TransportBits::from_bits(self.transport_key_bits)
                .unwrap_or(TransportBits::Rsa2048),
            grace_s: i64::from(self.transport_key_grace),
        }
    }
}

/// Creates the data directory (mode 0700) if needed and opens the database named
/// by the arguments. The data directory holds the master key file in every case
/// (on PostgreSQL, every node needs the same one).
pub async fn open_store(data: &DataArgs) -> Result<AnyStore, CliError> {
    ensure_dir(&data.data_dir)?;
    let path = match data.database_url.as_deref() {
        None => data.data_dir.join("pinvault.db"),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PgStore::open(url, data.pg_settings())
                .await
                .map_err(|e| CliError(format!("cannot open database {}: {e}", redact_url(url))))?;
            return Ok(AnyStore::Postgres(store));
        }
        Some(url) => match url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => {
                return Err(CliError(format!(
                    "unsupported --database-url (expected postgres://… or sqlite:PATH): {}",
                    redact_url(url)
                )));
            }
        },
    };
    let store = SqliteStore::open(&path)
        .map_err(|e| CliError(format!("cannot open database {}: {e}", path.display())))?;
    Ok(AnyStore::Sqlite(store))
}

/// A URL without its user, password or query (which may hold a password), for messages.
fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, _)) => (base, "?…"),
        None => (url, ""),
    };
    match (base.find("://"), base.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}{query}", &base[..s], &base[at + 1..]),
        _ => format!("{base}{query}"),
    }
}

fn ensure_dir(dir: &Path) -> Result<(), CliError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            CliError(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })
}

/// Opens the application over the data the arguments name (creating the master
/// key and data keys on first use).
pub async fn open_app(data: &DataArgs, public_url: String) -> Result<App<AnyStore>, CliError> {
    open_app_with(
        data,
        ServerSettings {
            public_url,
            ..ServerSettings::default()
        },
    )
    .await
}

/// Opens the application with the master key's provider that the data
/// directory's `keys.json` names (the key file when none does).
pub async fn open_app_with(
    data: &DataArgs,
    settings: ServerSettings,
) -> Result<App<AnyStore>, CliError> {
    let store = open_store(data).await?;
    let provider = key_config::open(&data.data_dir).map_err(|e| CliError(e.to_string()))?;
    App::open(store, provider, settings)
        .await
        .map_err(|e| CliError(e.to_string()))
}

/// Creates a program and its first API key; returns the program and the key.
/// Makes a program and its first API key, with their audit records
/// (`action` for the program: `program.created`), in one transaction.
pub async fn create_program<S: Store>(
    app: &App<S>,
    name: &str,
    mode: Mode,
    settings: Settings,
    action: &str,
) -> Result<(ProgramRow, Secret), CliError> {
    let t = now();
    let program = ProgramRow {
        id: new_id("prg_"),
        name: name.to_owned(),
        mode,
        settings,
        created_at: t,
        updated_at: t,
    };
    let (key, secret) = new_api_key(&program);
    let operator = crate::audit::Actor::operator();
    let audit = vec![
        operator.record(
            action,
            Some(&program.id),
            None,
            serde_json::json!({ "name": program.name, "mode": program.mode.as_str() }),
        ),
        api_key_created(&program, &key),
    ];
    app.store
        .create_program(program.clone(), key, audit)
        .await
        .map_err(|e| CliError(e.to_string()))?;
    Ok((program, secret))
}

/// The audit record of a new API key (its id and hint, never the key).
pub fn api_key_created(program: &ProgramRow, key: &ApiKeyRow) -> crate::store::AuditEntry {
    crate::audit::Actor::operator().record(
        "api_key.created",
        Some(&program.id),
        None,
        serde_json::json!({ "api_key_id": key.id, "hint": key.hint }),
    )
}

pub fn new_api_key(program: &ProgramRow) -> (ApiKeyRow, Secret) {
    let secret = Secret::generate(program.mode.api_key_prefix());
    let hint: String = secret
        .expose()
        .chars()
        .take(program.mode.api_key_prefix().len() + 4)
        .collect();
    let row = ApiKeyRow {
        id: new_id("key_"),
        program_id: program.id.clone(),
        key_hash: secret.hash(),
        hint: format!("{hint}…"),
        created_at: now(),
        revoked_at: None,
    };
    (row, secret)
}

pub async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let tls = match (&args.http.tls_cert, &args.http.tls_key) {
        (Some(cert), Some(key)) => Some(super::listen::tls_config(cert, key).map_err(CliError)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{}", args.listen));
    let limits = args.limits.settings()?;
    let trusted_proxies = Cidr::parse_list(&args.http.trusted_proxies)
        .map_err(|e| CliError(format!("--trusted-proxies: {e}")))?;
    let schedule = RetrySchedule::parse(&args.webhook_retry_schedule)
        .map_err(|e| CliError(format!("--webhook-retry-schedule: {e}")))?;
    let settings = ServerSettings {
        public_url: public_url.trim_end_matches('/').to_owned(),
        transport: args.transport.settings(),
        key_cache_ttl: (args.key_cache_ttl > 0).then(|| Duration::from_secs(args.key_cache_ttl)),
        webhooks: WebhookSettings {
            allow_private_targets: args.allow_private_webhook_targets,
            schedule,
            attempt_timeout: Duration::from_secs(args.webhook_timeout_s),
            ..WebhookSettings::default()
        },
        limits,
        trusted_proxies,
        body_timeout: Some(Duration::from_secs(args.http.body_timeout_s)),
    };
    let app = Arc::new(open_app_with(&args.data, settings).await?);
    // The first start makes the first published PIN encryption key.
    app.bootstrap_transport_key()
        .await
        .map_err(|e| CliError(format!("cannot make the PIN encryption key: {e}")))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr().map_err(|e| CliError(e.to_string()))?;
    let demo = if args.dev {
        Some(dev_program(&app, addr).await?)
    } else {
        None
    };

    // Pick up key rotations and provider migrations made by other processes.
    let refresher = app.clone();
    let dir = args.data.data_dir.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEY_REFRESH);
        let mut config = key_config::read(&dir).ok();
        loop {
            tick.tick().await;
            let now = key_config::read(&dir).ok();
            if now.is_some() && now != config {
                match key_config::open(&dir) {
                    Ok(provider) => {
                        tracing::info!(
                            provider = provider.name(),
                            "key provider configuration changed"
                        );
                        refresher.keys.set_provider(provider);
                        config = now;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open the newly configured key provider")
                    }
                }
            }
            if let Err(e) = refresher.reload_keys().await {
                tracing::warn!(error = %e, "could not refresh data keys");
            }
        }
    });

    // Remove expired staged PINs (a commit already treats them as absent).
    let sweeper = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(STAGED_SWEEP);
        loop {
            tick.tick().await;
            match sweeper.store.clear_expired_staged_pins(now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired staged PINs removed"),
                Err(e) => tracing::warn!(error = %e, "could not remove expired staged PINs"),
            }
        }
    });

    // Deliver the outbox's webhooks (every node runs a worker; claims keep
    // them from delivering the same attempt twice). The stop signal reaches
    // the worker and the HTTP server at once.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let worker = crate::webhooks::spawn_worker(app.clone(), stop.clone());
    let shutdown = shutdown_signal()?;
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    tracing::info!(%addr, key_provider = app.keys.provider_name(), database = app.store.backend(), tls = tls.is_some(), "listening");
    super::print_stderr(&format!("pinvault listening on {scheme}://{addr}"));
    let deadline = Duration::from_secs(args.http.shutdown_timeout_s);
    let settings = super::listen::ListenSettings {
        header_timeout: Duration::from_secs(args.http.header_timeout_s),
        shutdown_timeout: deadline,
        tls,
    };
    let mut stopped = stop.clone();
    let signalled = Arc::new(std::sync::OnceLock::new());
    let at = signalled.clone();
    super::listen::run(
        listener,
        crate::api::router(app.clone(), demo),
        settings,
        async move {
            let _ = stopped.wait_for(|s| *s).await;
            let _ = at.set(tokio::time::Instant::now());
        },
    )
    .await;
    // The webhook attempts under way finish and are recorded within what is
    // left of the deadline; a worker still busy then is stopped and gives its
    // claims back, so the next start (or another node) delivers them at once.
    let mut handle = worker.handle;
    let since = signalled.get().map_or(Duration::ZERO, |t| t.elapsed());
    let left = deadline.saturating_sub(since);
    if tokio::time::timeout(left.max(Duration::from_millis(100)), &mut handle)
        .await
        .is_err()
    {
        handle.abort();
        let _ = handle.await;
        match app.store.release_deliveries(&worker.owner).await {
            Ok(n) => tracing::warn!(
                released = n,
                "webhook attempts still under way at the deadline: their claims were given back"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "cannot give back webhook claims; they are retried when their leases expire"
            ),
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT; in-flight requests then finish. The handlers
/// are registered here, before the server says it is listening, so a signal that
/// comes at once is a clean shutdown rather than the default abrupt exit.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| CliError(format!("cannot handle SIGTERM: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| CliError(format!("cannot handle SIGINT: {e}")))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down: finishing requests in flight");
    })
}

/// `serve --dev`: a test-mode program named `dev` (made once, a new key each
/// start), with PINs in clear allowed so that the curl lines below work, and
/// this server's own origin among its `widget_allowed_origins` so that `/demo`
/// can frame the widgets.
async fn dev_program(
    app: &App<AnyStore>,
    addr: SocketAddr,
) -> Result<crate::api::DemoProgram, CliError> {
    let existing = app
        .store
        .list_programs()
        .await
        .map_err(|e| CliError(e.to_string()))?
        .into_iter()
        .find(|p| p.name == "dev" && p.mode == Mode::Test);
    let (program, key) = match existing {
        Some(program) => {
            let (row, secret) = new_api_key(&program);
            let audit = api_key_created(&program, &row);
            app.store
                .create_api_key(row, audit)
                .await
                .map_err(|e| CliError(e.to_string()))?;
            (program, secret)
        }
        None => {
            let settings = Settings {
                allow_plaintext_pin: true,
                allow_plaintext_reveal: true,
                ..Settings::default()
            };
            create_program(app, "dev", Mode::Test, settings, "program.created").await?
        }
    };
    let base = format!("http://{addr}");
    let mut settings = program.settings.clone();
    for origin in [base.as_str(), app.settings.public_url.as_str()] {
        if crate::domain::program::is_origin(origin)
            && !settings.widget_allowed_origins.iter().any(|o| o == origin)
        {
            settings.widget_allowed_origins.push(origin.to_owned());
        }
    }
    // The list has at most 20 entries: a dev program that met many ports keeps the newest.
    let excess = settings.widget_allowed_origins.len().saturating_sub(20);
    settings.widget_allowed_origins.drain(..excess);
    if settings != program.settings {
        let audit = crate::audit::Actor::operator().record(
            "program.updated",
            Some(&program.id),
            None,
            serde_json::json!({ "changes": { "widget_allowed_origins": settings.widget_allowed_origins }, "by": "serve --dev" }),
        );
        app.store
            .update_program(&program.id, settings, program.mode, now(), audit)
            .await
            .map_err(|e| CliError(e.to_string()))?;
    }
    let k = key.expose();
    // Shell lines a newcomer can paste as they are (curl and sed only).
    let out = format!(
        r#"
pinvault dev mode: test program {program_id} ("dev"); PINs in clear are allowed for it.
API key (shown once): {k}

Try it (paste into a shell):

export PV={base} PV_KEY={k}
CARD=$(curl -s -X POST $PV/v1/cards -H "Authorization: Bearer $PV_KEY" -H 'Content-Type: application/json' \
  -d '{{"pan":"4111111111111111","external_id":"demo-1"}}' | sed -E 's/.*"id":"(card_[a-z]+)".*/\1/')
echo "card: $CARD"
TOKEN=$(curl -s -X POST $PV/v1/cards/$CARD/control-tokens -H "Authorization: Bearer $PV_KEY" \
  -H 'Content-Type: application/json' -d '{{"type":"set_pin"}}' | sed -E 's/.*"token":"(pct_[^"]+)".*/\1/')
curl -s -o /dev/null -w 'set PIN: HTTP %{{http_code}}\n' -X PUT $PV/v1/cards/$CARD/pin \
  -H "Authorization: Bearer $PV_KEY" -H 'Content-Type: application/json' -d '{{"control_token":"'$TOKEN'","pin":"8264"}}'
curl -s $PV/v1/cards/$CARD/pin/status -H "Authorization: Bearer $PV_KEY"; echo
REVEAL=$(curl -s -X POST $PV/v1/cards/$CARD/control-tokens -H "Authorization: Bearer $PV_KEY" \
  -H 'Content-Type: application/json' -d '{{"type":"reveal_pin","cardholder_verification_method":"OTP"}}' \
  | sed -E 's/.*"token":"(pct_[^"]+)".*/\1/')
curl -s -X POST $PV/v1/cards/$CARD/pin/reveal -H "Authorization: Bearer $PV_KEY" \
  -H 'Content-Type: application/json' -d '{{"control_token":"'$REVEAL'"}}'; echo

The API: {base}/openapi.json
The demo (make a card, set and reveal its PIN in the hosted widgets, watch the events): {base}/demo
"#,
        program_id = program.id
    );
    super::print_stdout(&out);
    tracing::info!(program_id = %program.id, "dev program ready");
    Ok(crate::api::DemoProgram(program.id))
}
