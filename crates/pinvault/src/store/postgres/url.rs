//! The database URL's TLS parameters, read the libpq way. tokio-postgres 0.7
//! knows only `sslmode=disable|prefer|require` and nothing of a root
//! certificate, so `sslmode` and `sslrootcert` are taken out of the query here
//! and the rest of the URL goes to its parser unchanged.

use std::fmt;
use std::path::PathBuf;

/// libpq's `sslmode`: how much TLS the connection insists on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP, never TLS.
    Disable,
    /// TLS when the server offers it, else plain TCP; no certificate check
    /// (unless `sslrootcert` is given: then the chain is checked).
    Prefer,
    /// TLS or no connection; no certificate check (unless `sslrootcert` is
    /// given: then the chain is checked, as libpq does).
    Require,
    /// TLS, the certificate chained to a trusted CA; the host name not checked.
    VerifyCa,
    /// TLS, the certificate chained to a trusted CA and valid for the host name.
    VerifyFull,
}

impl SslMode {
    const NAMES: &'static str = "disable, prefer, require, verify-ca or verify-full";

    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the CA certificates that a server's certificate must chain to come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// `sslrootcert=FILE`: the PEM certificates in that file.
    File(PathBuf),
    /// `sslrootcert=system` (libpq 16's spelling), or no `sslrootcert` with
    /// `verify-ca`/`verify-full`: the Mozilla roots built into the binary
    /// (webpki-roots), not the operating system's store.
    BuiltIn,
}

/// What the URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    pub mode: SslMode,
    /// The CAs to check the chain against; `None`: the chain is not checked.
    pub roots: Option<RootCert>,
}

/// Splits the TLS parameters off a `postgres://` or `postgresql://` URL: the
/// URL without `sslmode` and `sslrootcert`, and what they ask. The errors name
/// the parameter and never repeat the URL (it may hold a password).
pub fn split_tls_params(url: &str) -> Result<(String, TlsParams), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("a PostgreSQL URL must start with postgres:// or postgresql://".into());
    }
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut mode = None;
    let mut rootcert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(key).as_deref() {
            Some("sslmode") => {
                let value = percent_decode(value)
                    .ok_or("the database URL's sslmode is not valid percent-encoded UTF-8")?;
                let parsed = SslMode::parse(&value).ok_or_else(|| {
                    format!(
                        "unknown sslmode {value:?} in the database URL (expected {})",
                        SslMode::NAMES
                    )
                })?;
                mode = Some(parsed);
            }
            Some("sslrootcert") => {
                let value = percent_decode(value)
                    .ok_or("the database URL's sslrootcert is not valid percent-encoded UTF-8")?;
                if value.is_empty() {
                    return Err("the database URL's sslrootcert is empty (expected a file)".into());
                }
                rootcert = Some(value);
            }
            _ => kept.push(pair),
        }
    }
    let mode = mode.unwrap_or(SslMode::Prefer);
    let roots = match rootcert.as_deref() {
        Some("system") if mode != SslMode::VerifyFull => {
            // libpq refuses this too: the system's CAs vouch for anyone's name.
            return Err(format!(
                "sslrootcert=system needs sslmode=verify-full (the database URL says sslmode={mode})"
            ));
        }
        Some("system") => Some(RootCert::BuiltIn),
        Some(file) => Some(RootCert::File(PathBuf::from(file))),
        None if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) => Some(RootCert::BuiltIn),
        None => None,
    };
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, TlsParams { mode, roots }))
}

/// `%XX` decoded (no `+` for space, as tokio-postgres reads URLs); `None` for
/// a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, TlsParams) {
        split_tls_params(url).unwrap()
    }

    #[test]
    fn no_parameters_is_prefer_without_verification() {
        let (rest, p) = split("postgres://u@h:5432/db");
        assert_eq!(rest, "postgres://u@h:5432/db");
        assert_eq!(p.mode, SslMode::Prefer);
        assert_eq!(p.roots, None);
    }

    #[test]
    fn every_mode_is_read_and_taken_out() {
        for (name, mode) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            let (rest, p) = split(&format!("postgresql://u@h/db?sslmode={name}"));
            assert_eq!(rest, "postgresql://u@h/db", "{name}");
            assert_eq!(p.mode, mode);
            assert_eq!(mode.as_str(), name);
        }
    }

    #[test]
    fn verifying_modes_default_to_the_built_in_roots() {
        assert_eq!(
            split("postgres://h/db?sslmode=verify-ca").1.roots,
            Some(RootCert::BuiltIn)
        );
        assert_eq!(
            split("postgres://h/db?sslmode=verify-full").1.roots,
            Some(RootCert::BuiltIn)
        );
        assert_eq!(split("postgres://h/db?sslmode=require").1.roots, None);
    }

    #[test]
    fn sslrootcert_is_a_file_and_other_parameters_stay() {
        let (rest, p) = split(
            "postgres://u:pw@h:1/db?connect_timeout=3&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca%20x.pem&application_name=a%26b",
        );
        assert_eq!(
            rest,
            "postgres://u:pw@h:1/db?connect_timeout=3&application_name=a%26b"
        );
        assert_eq!(p.mode, SslMode::VerifyFull);
        assert_eq!(p.roots, Some(RootCert::File("/tmp/ca x.pem".into())));
        // With require too (libpq then checks the chain).
        let (_, p) = split("postgres://h/db?sslmode=require&sslrootcert=/ca.pem");
        assert_eq!(p.roots, Some(RootCert::File("/ca.pem".into())));
    }

    #[test]
    fn the_last_sslmode_wins() {
        let (_, p) = split("postgres://h/db?sslmode=disable&sslmode=verify-ca");
        assert_eq!(p.mode, SslMode::VerifyCa);
    }

    #[test]
    fn system_roots_need_verify_full() {
        let (_, p) = split("postgres://h/db?sslmode=verify-full&sslrootcert=system");
        assert_eq!(p.roots, Some(RootCert::BuiltIn));
        let e = split_tls_params("postgres://h/db?sslrootcert=system").unwrap_err();
        assert!(
            e.contains("sslrootcert=system") && e.contains("sslmode=prefer"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_parameter_not_the_url() {
        let e = split_tls_params("postgres://u:hunter2@h/db?sslmode=verify-fulll").unwrap_err();
        assert!(
            e.contains("sslmode") && e.contains("\"verify-fulll\""),
            "{e}"
        );
        assert!(e.contains("verify-full"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = split_tls_params("postgres://u:hunter2@h/db?sslmode=").unwrap_err();
        assert!(e.contains("sslmode"), "{e}");
        let e = split_tls_params("postgres://u:hunter2@h/db?sslrootcert=").unwrap_err();
        assert!(e.contains("sslrootcert"), "{e}");
        let e = split_tls_params("postgres://u:hunter2@h/db?sslrootcert=%ZZ").unwrap_err();
        assert!(e.contains("sslrootcert") && !e.contains("hunter2"), "{e}");
        let e = split_tls_params("host=h password=hunter2").unwrap_err();
        assert!(e.contains("postgres://") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%20c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
