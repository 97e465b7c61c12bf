//! What the commands share to report: the error type (printed after `error: `
//! on stderr) and writing to stdout and stderr.

use serde_json::Value;
use zeroize::Zeroizing;

/// A command's failure, printed after `error: ` on stderr.
#[derive(Debug)]
pub enum CliError {
    /// What the operator asked cannot be done as asked (a value out of range,
    /// no such program, a KCV that does not match): says why.
    Refused(String),
    Store(crate::store::StoreError),
    Keys(crate::keys::KeyError),
    Service(crate::app::ServiceError),
    Io(std::io::Error),
    /// A PIN block tool's refusal (bad hex, a block of another format…).
    Pinblock(pinblock::Error),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Refused(m) => f.write_str(m),
            CliError::Store(e) => e.fmt(f),
            CliError::Keys(e) => e.fmt(f),
            CliError::Service(e) => e.fmt(f),
            CliError::Io(e) => e.fmt(f),
            CliError::Pinblock(e) => e.fmt(f),
        }
    }
}

impl From<crate::store::StoreError> for CliError {
    fn from(e: crate::store::StoreError) -> Self {
        CliError::Store(e)
    }
}

impl From<crate::keys::KeyError> for CliError {
    fn from(e: crate::keys::KeyError) -> Self {
        CliError::Keys(e)
    }
}

impl From<crate::app::ServiceError> for CliError {
    fn from(e: crate::app::ServiceError) -> Self {
        CliError::Service(e)
    }
}

impl From<crate::app::zone_keys::ZoneKeyAdminError> for CliError {
    fn from(e: crate::app::zone_keys::ZoneKeyAdminError) -> Self {
        match e {
            crate::app::zone_keys::ZoneKeyAdminError::Refused(e) => CliError::Refused(e),
            crate::app::zone_keys::ZoneKeyAdminError::Service(e) => CliError::Service(e),
        }
    }
}

impl From<pinblock::Error> for CliError {
    fn from(e: pinblock::Error) -> Self {
        CliError::Pinblock(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Io(e)
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
    CliError::Refused(e.to_string())
}

/// A JSON result as the operator commands print it.
pub(super) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// Components as given, each `-` read as one line of standard input.
pub fn read_components(flag: &str, given: Vec<String>) -> Result<Vec<Zeroizing<String>>, CliError> {
    let mut out = Vec::with_capacity(given.len());
    for (i, c) in given.into_iter().enumerate() {
        let c = Zeroizing::new(c);
        if c.as_str() == "-" {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut line).map_err(|e| {
                CliError::Refused(format!(
                    "reading {flag} component {} from stdin: {e}",
                    i + 1
                ))
            })?;
            out.push(Zeroizing::new(line.trim().to_owned()));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// A secret given on the command line (a TR-31 key block), or, for `-`, one
/// line of standard input (keeps it out of the process list and shell history).
pub fn read_secret(flag: &str, given: String) -> Result<Zeroizing<String>, CliError> {
    let given = Zeroizing::new(given);
    if given.as_str() != "-" {
        return Ok(Zeroizing::new(given.trim().to_owned()));
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::Refused(format!("reading {flag} from stdin: {e}")))?;
    Ok(Zeroizing::new(line.trim().to_owned()))
}

/// A key's name as the import commands take it: 1 to 200 characters, no
/// control characters (trimmed).
pub fn check_name(name: &str) -> Result<&str, CliError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(CliError::Refused(
            "--name must be 1 to 200 characters".into(),
        ));
    }
    Ok(name)
}

/// Rows printed as a JSON array of their `view`s.
pub fn pretty_list<T>(rows: &[T], view: fn(&T) -> Value) -> String {
    pretty(&Value::Array(rows.iter().map(view).collect()))
}
