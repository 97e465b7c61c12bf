//! `pinvault serve`: its arguments ([`args`]), the server's start, run and
//! stop ([`run`]), its background tasks ([`tasks`]) and `--dev` ([`dev`]).
//! Only re-exports here; what every data command shares is in
//! [`crate::cli::data`], re-exported for the paths `crate::cli::serve::…`.

mod args;
mod dev;
mod limit_args;
mod run;
mod tasks;

// The paths the unit tests of api/limits.rs and the fuzzing harness name.
#[allow(
    unused_imports,
    reason = "used by unit tests and the fuzzing feature only"
)]
pub use super::data::{DataArgs, create_program, open_app_with};
pub use args::ServeArgs;
pub use run::serve;
