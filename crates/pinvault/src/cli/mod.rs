//! The command line: `pinvault <command>`. Results go to stdout (JSON for the
//! operator commands); errors to stderr with a non-zero exit code (1 for a failed
//! command, 2 for a usage error).

mod api_keys;
mod audit;
mod cards;
mod data;
mod issuer_keys;
mod kbpk;
mod key_material;
mod key_provider;
mod keys;
mod listen;
mod output;
mod programs;
mod pvks;
pub(crate) mod serve;
mod tools;
mod zone_keys;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use output::CliError;
use output::{print_stderr, print_stdout};

#[derive(Debug, Parser)]
#[command(name = "pinvault", version, about = "Self-hostable card PIN service", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve(Box<serve::ServeArgs>),
    /// Manage programs (tenants) and their settings.
    #[command(subcommand)]
    Programs(programs::ProgramsCommand),
    /// Create, list and revoke API keys.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(api_keys::ApiKeysCommand),
    /// The master key and the data keys: init (where the master key lives), rotate,
    /// list, migrate (to another master-key provider).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Import and list the zone PIN keys terminals' PIN blocks arrive under.
    #[command(subcommand, name = "zone-keys")]
    ZoneKeys(zone_keys::ZoneKeysCommand),
    /// Import and list a program's PIN verification keys (Visa PVK, IBM 3624)
    /// for cards migrated with PVVs or offsets.
    #[command(subcommand, name = "pin-verification-keys")]
    PinVerificationKeys(pvks::PvksCommand),
    /// Bring a portfolio's cards in from a JSON Lines file.
    #[command(subcommand)]
    Cards(cards::CardsCommand),
    /// Import and list a program's issuer master keys for chip cards (AC, SMI, SMC).
    #[command(subcommand, name = "issuer-keys")]
    IssuerKeys(issuer_keys::IssuerKeysCommand),
    /// Import and list the key block protection keys TR-31 key blocks arrive under.
    #[command(subcommand, name = "key-block-protection-keys")]
    KeyBlockProtectionKeys(kbpk::KbpkCommand),
    /// Read and verify the tamper-evident audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Build and read ISO 9564 PIN blocks (integrator tools, for test data).
    #[command(subcommand)]
    Pinblock(tools::PinblockCommand),
    /// Print the key check value of a TDES or AES key.
    Kcv(tools::KcvArgs),
}

/// Logs go to stderr; `PINVAULT_LOG` sets the level (`info` by default; for
/// example `warn`, or `info,pinvault=debug`).
fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter: Targets = std::env::var("PINVAULT_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_timer(MillisUtc),
        )
        .with(filter)
        .try_init();
}

/// Log timestamps in UTC to the millisecond (`2026-11-23T20:12:34.567Z`).
struct MillisUtc;

impl tracing_subscriber::fmt::time::FormatTime for MillisUtc {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = crate::domain::time::rfc3339(now.as_secs() as i64);
        write!(
            w,
            "{}.{:03}Z",
            secs.trim_end_matches('Z'),
            now.subsec_millis()
        )
    }
}

fn runtime(multi: bool) -> Result<tokio::runtime::Runtime, CliError> {
    let mut b = if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all()
        .build()
        .map_err(|e| CliError::Refused(format!("cannot start the runtime: {e}")))
}

/// Runs an operator command (on a runtime of its own) for its printed result.
fn operator(
    command: impl std::future::Future<Output = Result<String, CliError>>,
) -> Result<Option<zeroize::Zeroizing<String>>, CliError> {
    let printed = runtime(false)?.block_on(command)?;
    Ok(Some(printed.into()))
}

/// Parses the command line, runs the command, and maps the outcome to an exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let outcome: Result<Option<zeroize::Zeroizing<String>>, CliError> = match cli.command {
        Command::Serve(args) => {
            init_logging();
            runtime(true)
                .and_then(|rt| rt.block_on(serve::serve(*args)))
                .map(|()| None)
        }
        Command::Programs(cmd) => operator(programs::programs(cmd)),
        Command::ApiKeys(cmd) => operator(api_keys::api_keys(cmd)),
        Command::Keys(cmd) => operator(keys::keys(cmd)),
        Command::ZoneKeys(cmd) => operator(zone_keys::zone_keys(cmd)),
        Command::PinVerificationKeys(cmd) => operator(pvks::pvks(cmd)),
        Command::Cards(cmd) => operator(cards::cards(cmd)),
        Command::IssuerKeys(cmd) => operator(issuer_keys::issuer_keys(cmd)),
        Command::KeyBlockProtectionKeys(cmd) => operator(kbpk::kbpks(cmd)),
        Command::Audit(cmd) => operator(audit::audit(cmd)),
        Command::Pinblock(cmd) => tools::pinblock(cmd).map(Some),
        Command::Kcv(args) => tools::kcv(&args).map(Some),
    };
    match outcome {
        Ok(output) => {
            if let Some(output) = output {
                print_stdout(output.as_str());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_stderr(&format!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}
