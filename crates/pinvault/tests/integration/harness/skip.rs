//! Tests that cannot run here say so, loudly: a `SKIPPED:` line on stderr.
//! With `CI=true` a dependency missing from the machine (SoftHSM2, a reachable
//! PostgreSQL server) fails the test instead; a test that only applies to the
//! other backend of this pass is skipped, in CI too (scripts/test runs it in
//! that backend's pass).

use super::postgres::{on_postgres, postgres_reachable};

/// Whether this is a CI run (`CI=true`): nothing may be skipped for a missing
/// dependency.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Prints the loud `SKIPPED: <test>: <reason>` line, straight to the
/// process's stderr: the test harness captures `eprintln!` of a passing test,
/// and a skip must be seen.
pub fn skipped(test: &str, reason: &str) {
    use std::io::Write;
    // One write, so that the line is not cut by the harness's own output.
    let line = format!("\n!!!!!!!!\n!!! SKIPPED: {test}: {reason}\n!!!!!!!!\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `test` cannot run because `reason` (a dependency missing from this
/// machine): a failure under `CI=true`, else a loud skip.
pub fn missing_dependency(test: &str, reason: &str) {
    if in_ci() {
        panic!("CI=true: {test} cannot run: {reason}");
    }
    skipped(test, reason);
}

/// For a test that only applies on PostgreSQL: whether it runs in this pass.
/// On SQLite it is skipped (loudly), and under `CI=true` it fails only if no
/// PostgreSQL server is reachable at all, so that the PostgreSQL pass could not
/// run it either.
pub fn postgres_only(test: &str) -> bool {
    if on_postgres() {
        return true;
    }
    if in_ci() && !postgres_reachable() {
        missing_dependency(
            test,
            "no PostgreSQL server answers (PINVAULT_TEST_POSTGRES_URL, else 127.0.0.1:5432)",
        );
    }
    skipped(
        test,
        "PostgreSQL only, and this pass is on SQLite (scripts/test runs it in the PostgreSQL pass)",
    );
    false
}
