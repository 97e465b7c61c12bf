//! The command line: `pinvault <command>`. Results go to stdout (JSON for the
//! operator commands); errors to stderr with a non-zero exit code (1 for a failed
//! command, 2 for a usage error).

mod admin;
mod listen;
pub(crate) mod serve;
mod tools;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Programs(admin::ProgramsCommand),
    /// Create, list and revoke API keys.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(admin::ApiKeysCommand),
    /// Rotate and list the data keys.
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Import and list the zone PIN keys terminals' PIN blocks arrive under.
    #[command(subcommand, name = "zone-keys")]
    ZoneKeys(admin::ZoneKeysCommand),
    /// Read and verify the tamper-evident audit trail.
    #[command(subcommand)]
    Audit(admin::AuditCommand),
    /// Build and read ISO 9564 PIN blocks (integrator tools, for test data).
    #[command(subcommand)]
    Pinblock(tools::PinblockCommand),
    /// Print the key check value of a TDES or AES key.
    Kcv(tools::KcvArgs),
}

/// A command's failure: the message is printed after `error: ` on stderr.
#[derive(Debug)]
pub struct CliError(pub String);

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
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
        .map_err(|e| CliError(format!("cannot start the runtime: {e}")))
}

/// Writes a result to stdout. A reader that has gone away (`| head -1`, a test
/// that stopped reading) is not an error worth dying for, so write errors are
/// ignored rather than panicking as `println!` would.
pub(crate) fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// As [`print_stdout`], for stderr.
pub(crate) fn print_stderr(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{text}");
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
        Command::Programs(cmd) => runtime(false)
            .and_then(|rt| rt.block_on(admin::programs(cmd)))
            .map(|s| Some(s.into())),
        Command::ApiKeys(cmd) => runtime(false)
            .and_then(|rt| rt.block_on(admin::api_keys(cmd)))
            .map(|s| Some(s.into())),
        Command::Keys(cmd) => runtime(false)
            .and_then(|rt| rt.block_on(admin::keys(cmd)))
            .map(|s| Some(s.into())),
        Command::ZoneKeys(cmd) => runtime(false)
            .and_then(|rt| rt.block_on(admin::zone_keys(cmd)))
            .map(|s| Some(s.into())),
        Command::Audit(cmd) => runtime(false)
            .and_then(|rt| rt.block_on(admin::audit(cmd)))
            .map(|s| Some(s.into())),
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
        Err(CliError(message)) => {
            print_stderr(&format!("error: {message}"));
            ExitCode::FAILURE
        }
    }
}
