//! What the commands share to report: the error type (printed after `error: `
//! on stderr) and writing to stdout and stderr.

use serde_json::Value;

/// A command's failure: the message is printed after `error: ` on stderr.
#[derive(Debug)]
pub struct CliError(pub String);

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
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

/// Any error as a [`CliError`], with its message.
pub(super) fn err(e: impl std::fmt::Display) -> CliError {
    CliError(e.to_string())
}

/// A JSON result as the operator commands print it.
pub(super) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}
