//! What every command that touches the data shares: where the data lives and
//! how to open it (the database, the master key's provider, the application),
//! and making a program with its first API key (`programs create`, `serve --dev`).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use clap::Args;

use super::output::CliError;
use crate::app::{App, ServerSettings, TransportSettings};
use crate::domain::ids::{Secret, new_id};
use crate::domain::program::{Mode, Settings};
use crate::domain::time::now;
use crate::keys::config as key_config;
use crate::keys::transport::TransportBits;
use crate::store::prelude::*;
use crate::store::{AnyStore, ApiKeyRow, Durability, PgSettings, PgStore, ProgramRow, SqliteStore};

/// Where the data lives; every command that reads or writes it takes these.
/// `Debug` leaves out the database URL's password.
#[derive(Args, Clone)]
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
    /// without one, SQLite in the data directory. PostgreSQL over TLS as libpq's
    /// `sslmode` says (`disable`, `prefer` by default, `require`, `verify-ca`,
    /// `verify-full`), with `sslrootcert=FILE` for the CA:
    /// `postgres://…/DB?sslmode=verify-full&sslrootcert=/etc/pinvault/db-ca.pem`.
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
    /// PostgreSQL: keep each statement prepared on each pooled connection
    /// (one round trip a statement instead of two). Turn it off behind a
    /// connection pooler in transaction mode that does not carry prepared
    /// statements across server connections (PgBouncer before 1.21).
    #[arg(long, env = "PINVAULT_DB_STATEMENT_CACHE", default_value_t = true,
        action = clap::ArgAction::Set, value_name = "BOOL")]
    pub db_statement_cache: bool,
}

impl std::fmt::Debug for DataArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataArgs")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(without_password),
            )
            .field("db_pool_size", &self.db_pool_size)
            .field("db_timeout_ms", &self.db_timeout_ms)
            .field("db_statement_cache", &self.db_statement_cache)
            .finish()
    }
}

/// A database URL with any password replaced by `***`.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

impl DataArgs {
    fn pg_settings(&self) -> PgSettings {
        let timeout = std::time::Duration::from_millis(self.db_timeout_ms);
        PgSettings {
            pool_size: usize::from(self.db_pool_size),
            statement_timeout: timeout,
            acquire_timeout: timeout,
            statement_cache: self.db_statement_cache,
        }
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
    open_store_with(data, Durability::EachCommit).await
}

/// [`open_store`], a SQLite store's commits made durable as `durability` says.
pub async fn open_store_with(
    data: &DataArgs,
    durability: Durability,
) -> Result<AnyStore, CliError> {
    ensure_dir(&data.data_dir)?;
    let path = match data.database_url.as_deref() {
        None => data.data_dir.join("pinvault.db"),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PgStore::open(url, data.pg_settings()).await.map_err(|e| {
                CliError::Refused(format!("cannot open database {}: {e}", redact_url(url)))
            })?;
            return Ok(AnyStore::Postgres(store));
        }
        Some(url) => match url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => {
                return Err(CliError::Refused(format!(
                    "unsupported --database-url (expected postgres://… or sqlite:PATH): {}",
                    redact_url(url)
                )));
            }
        },
    };
    let store = SqliteStore::open_with(&path, durability)
        .map_err(|e| CliError::Refused(format!("cannot open database {}: {e}", path.display())))?;
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
            CliError::Refused(format!(
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
    app_over(open_store(data).await?, data, settings).await
}

/// The application for a bulk load that is safe to run again (`cards
/// import`): on SQLite its commits are made durable together, by
/// [`AnyStore::sync`] when it ends, rather than one by one.
pub async fn open_app_for_bulk(data: &DataArgs) -> Result<App<AnyStore>, CliError> {
    let store = open_store_with(data, Durability::AtSync).await?;
    app_over(store, data, ServerSettings::default()).await
}

async fn app_over(
    store: AnyStore,
    data: &DataArgs,
    settings: ServerSettings,
) -> Result<App<AnyStore>, CliError> {
    let provider =
        key_config::open(&data.data_dir).map_err(|e| CliError::Refused(e.to_string()))?;
    App::open(store, provider, settings)
        .await
        .map_err(|e| CliError::Refused(e.to_string()))
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
        .map_err(|e| CliError::Refused(e.to_string()))?;
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

/// The audit record of a revoked API key (`program_id` where it is known).
pub fn api_key_revoked(key_id: &str, program_id: Option<&str>) -> crate::store::AuditEntry {
    crate::audit::Actor::operator().record(
        "api_key.revoked",
        program_id,
        None,
        serde_json::json!({ "api_key_id": key_id }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_password_never_prints() {
        let args = DataArgs {
            data_dir: "./d".into(),
            database_url: Some(
                "postgres://pv:s3cr3t-pw@db.internal:5432/pinvault?sslmode=require".into(),
            ),
            db_pool_size: 4,
            db_timeout_ms: 100,
            db_statement_cache: true,
        };
        let printed = format!("{args:?} {args:#?}");
        assert!(!printed.contains("s3cr3t-pw"), "{printed}");
        assert!(
            printed.contains("postgres://pv:***@db.internal:5432/pinvault?sslmode=require"),
            "{printed}"
        );
        assert_eq!(without_password("postgres://pv@h/db"), "postgres://pv@h/db");
        assert_eq!(without_password("sqlite:/x.db"), "sqlite:/x.db");
    }
}
