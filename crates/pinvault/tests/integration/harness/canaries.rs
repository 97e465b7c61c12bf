//! Leak canaries: every PAN and every long PIN a test sends is registered, and
//! none may be found afterwards in the data directory, the database or the
//! server's log. The check runs when a server is dropped.

use std::path::PathBuf;

use serde_json::Value;

use super::server::Server;

/// The values of a request body that must never be stored or logged in
/// clear: every `pan`, and every `pin` of 8 digits or more (shorter ones occur
/// by chance in binary files, so a scan for them would mean nothing).
pub(super) fn canaries_in(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if let Value::String(text) = v {
                    let digits = text.chars().all(|c| c.is_ascii_digit());
                    if digits
                        && ((k == "pan" && text.len() >= 12) || (k == "pin" && text.len() >= 8))
                    {
                        out.insert(text.clone());
                    }
                }
                canaries_in(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| canaries_in(v, out)),
        _ => {}
    }
}

/// Where `needles` occur in `hay` (as they are, and as hex of their ASCII,
/// the way PostgreSQL prints `bytea`).
pub fn find_canaries(
    hay: &[u8],
    needles: &std::collections::BTreeSet<String>,
    place: &str,
) -> Vec<String> {
    let mut found = Vec::new();
    for n in needles {
        let hex: String = n.bytes().map(|b| format!("{b:02x}")).collect();
        for (form, pat) in [("digits", n.as_bytes()), ("hex", hex.as_bytes())] {
            if hay.windows(pat.len()).any(|w| w == pat) {
                found.push(format!("{n} ({form}) in {place}"));
            }
        }
    }
    found
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

impl Server {
    /// Marks a value as a leak canary (a PIN sent encrypted, say).
    pub fn mark(&self, value: &str) {
        self.canaries.lock().unwrap().insert(value.to_owned());
    }

    /// The canaries registered so far.
    pub fn canaries(&self) -> std::collections::BTreeSet<String> {
        self.canaries.lock().unwrap().clone()
    }

    /// Where the canaries occur: every file of the data directory (the SQLite
    /// database with its WAL and shared memory, the key file…), the server's
    /// log, and on PostgreSQL every row of the database as text. Empty when
    /// none leaked.
    pub fn leaks(&self) -> Vec<String> {
        self.leaks_of(&self.canaries())
    }

    pub fn leaks_of(&self, canaries: &std::collections::BTreeSet<String>) -> Vec<String> {
        if canaries.is_empty() {
            return Vec::new();
        }
        let mut found = Vec::new();
        let mut files = Vec::new();
        files_under(&self.data_dir, &mut files);
        for f in files {
            if let Ok(bytes) = std::fs::read(&f) {
                found.extend(find_canaries(&bytes, canaries, &f.display().to_string()));
            }
        }
        found.extend(find_canaries(
            self.logs().as_bytes(),
            canaries,
            "the server log",
        ));
        if let Some(dump) = self.data.database_dump() {
            found.extend(find_canaries(
                dump.as_bytes(),
                canaries,
                "the PostgreSQL database",
            ));
        }
        found
    }

    /// Asserts that none of `canaries` (clear PINs, PANs, tokens, keys) is in
    /// the server's log or, in clear or as hex, in the data directory's files
    /// and the database. Failures name a canary by position, never by value.
    pub fn assert_nowhere(&self, canaries: &[&str]) {
        let logs = self.logs();
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.data_dir).unwrap() {
            let path = entry.unwrap().path();
            files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
        match self.data.database_dump() {
            // PostgreSQL: the rows as text, byte columns in hex.
            Some(dump) => files.push(("the PostgreSQL database".into(), dump.into_bytes())),
            None => assert!(files.iter().any(|(p, _)| p.ends_with("pinvault.db"))),
        }
        for (i, canary) in canaries.iter().enumerate() {
            assert!(!logs.contains(canary), "log holds canary #{i}");
            let hex: String = canary.bytes().map(|b| format!("{b:02x}")).collect();
            for (path, bytes) in &files {
                let found = [canary.as_bytes(), hex.as_bytes()]
                    .iter()
                    .any(|needle| bytes.windows(needle.len()).any(|w| w == *needle));
                assert!(!found, "{path} holds canary #{i} in clear");
            }
        }
    }
}

impl Drop for Server {
    /// Stops the server, then checks that no PAN or long PIN it was sent is in
    /// its data directory, its database or its log (unless the test failed).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let leaks = self.leaks();
            assert!(leaks.is_empty(), "leak canaries found: {leaks:#?}");
        }
    }
}
