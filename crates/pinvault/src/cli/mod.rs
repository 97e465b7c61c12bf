//! The command line: `pinvault <command>`. Results go to stdout; errors to stderr
//! with a non-zero exit code (1 for a failed command, 2 for a usage error).

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

/// Parses the command line, runs the command, and maps the outcome to an exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Pinblock(cmd) => tools::pinblock(cmd),
        Command::Kcv(args) => tools::kcv(&args),
    };
    match outcome {
        Ok(output) => {
            println!("{}", output.as_str());
            ExitCode::SUCCESS
        }
        Err(CliError(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
