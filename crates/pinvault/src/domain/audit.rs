//! Audit entries and the hash that chains them (the format is in `crate::audit`).

use aws_lc_rs::digest;

use super::time::Timestamp;

/// An audit record before it is chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: Timestamp,
    /// An API key id (`key_…`) or `operator`.
    pub actor: String,
    pub request_id: Option<String>,
    pub source: Option<String>,
    pub action: String,
    pub program_id: Option<String>,
    pub card_id: Option<String>,
    /// A JSON object.
    pub details: String,
}

/// The previous hash of record 1.
pub const GENESIS: [u8; 32] = [0; 32];

const DOMAIN: &[u8] = b"pinvault-audit-v1";

pub fn chain_hash(prev: &[u8], seq: i64, e: &AuditEntry) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(DOMAIN);
    ctx.update(prev);
    let mut field = |v: Option<&str>| match v {
        Some(s) => {
            ctx.update(&(s.len() as u32).to_be_bytes());
            ctx.update(s.as_bytes());
        }
        None => ctx.update(&[0xff; 4]),
    };
    field(Some(&seq.to_string()));
    field(Some(&e.at.to_string()));
    field(Some(&e.actor));
    field(e.request_id.as_deref());
    field(e.source.as_deref());
    field(Some(&e.action));
    field(e.program_id.as_deref());
    field(e.card_id.as_deref());
    field(Some(&e.details));
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}
