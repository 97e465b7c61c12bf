//! Webhook delivery: a worker in every `serve` claims due deliveries from the
//! outbox, POSTs each event signed with its endpoint's secret, and records the
//! attempt. Any 2xx is delivered; anything else is retried on a schedule with
//! jitter (by default for more than 24 hours), then given up.
//!
//! At least once: a delivery row is written with its event, in the change's
//! transaction; a worker holds a claim (lease) on it only for one attempt, and
//! a claim whose worker died expires and is taken again. A receiver may so see
//! an event twice (deduplicate on the event `id`), never zero times while the
//! endpoint exists and answers within the schedule.
//!
//! Outbound requests (SSRF): only `http` and `https`; the host is resolved and
//! every resolved address checked, then the connection goes to a checked
//! address (no second lookup between check and connect); loopback, private,
//! link-local, unspecified, multicast and other special ranges (IPv4 and IPv6,
//! IPv4-mapped included) are refused unless the operator allows private targets.
//! Redirects are not followed (a 3xx is a failed attempt).
//!
//! The parts, each depending only on those before it: `settings` (the
//! server's delivery settings and retry schedule), `signing` (the signature
//! header and the endpoint secret's sealing), `target` (endpoint URLs and which
//! addresses may be delivered to), `client` (one attempt: resolve, check,
//! connect, TLS, POST) and `worker` (claiming, delivering and recording). This
//! file only re-exports, so `crate::webhooks::X` names every public item.

pub(crate) mod client;
pub(crate) mod settings;
pub(crate) mod signing;
pub(crate) mod target;
pub(crate) mod worker;

pub use client::attempt;
pub use settings::{DEFAULT_SCHEDULE, RetrySchedule, WebhookSettings};
pub use signing::{SIGNATURE_HEADER, secret_aad, signature};
pub use target::{MAX_URL_LEN, Target, check_literal, is_public, parse_url};
pub use worker::{Worker, spawn_worker};
