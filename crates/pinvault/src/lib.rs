//! pinvault: a self-hostable card PIN service.
//!
//! The binary is a thin shell over [`cli::run`]; every command lives in this library.

/// A `Debug` that shows only the fields named and marks the struct as having
/// more (keys, sealed data and handles are never printed):
/// `debug_fields!(KeyFile: path);`. Defined before the modules, so every one
/// of them can use it.
macro_rules! debug_fields {
    ($t:ident: $($field:ident),+) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))
                    $(.field(stringify!($field), &self.$field))+
                    .finish_non_exhaustive()
            }
        }
    };
}

pub mod api;
pub mod app;
pub mod audit;
pub mod cli;
pub mod der;
pub mod domain;
pub mod events;
// The fuzz targets' harness (with a fixed test-only RSA key): built for the unit
// tests and for fuzz/ (feature `fuzzing`), never into the server.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod jose;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod store;
pub mod webhooks;
pub mod widgets;
