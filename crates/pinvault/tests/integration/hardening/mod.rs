//! Hardening, from outside: abuse limits (429 `rate_limited` with
//! `Retry-After`), HTTPS with a self-signed certificate and HSTS, request
//! body size limits on every route that reads one, header and body timeouts
//! against slow clients, and a SIGTERM that still answers the request in
//! flight and gives back the webhook claims of attempts it had to cut short.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod connections;
mod rate_limits;
mod tls;
