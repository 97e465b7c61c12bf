//! The audit trail: who did what to which card, when, from where, and how the
//! cardholder was verified. Append-only, and tamper-evident: each record's hash
//! covers the previous record's hash, so changing, removing or reordering any
//! record breaks the chain from that record on (`pinvault audit verify`).
//!
//! The hash of record `seq` is
//!
//! ```text
//! SHA-256( "pinvault-audit-v1" || prev_hash
//!          || f(seq) || f(at) || f(actor) || f(request_id) || f(source)
//!          || f(action) || f(program_id) || f(card_id) || f(details) )
//! ```
//!
//! where `prev_hash` is the previous record's 32-byte hash (32 zero bytes for
//! record 1), `seq` and `at` (Unix seconds) are written in decimal, every field
//! is `f(x) = u32 big-endian byte length of x || x` (UTF-8), and an absent
//! field is `f(None) = FF FF FF FF`. `details` is the stored JSON text as is.
//! `seq` runs 1, 2, 3… without gaps.
//!
//! What it does not prove: that the newest records were not cut off (keep the
//! head hash `audit verify` prints somewhere else to prove that), nor anything
//! against someone who can rewrite the whole chain from a point on; it proves
//! that no record before a head you trust was changed.
//!
//! Never in a record: a PIN, a PIN block, a key or a full PAN.

use serde_json::{Value, json};

use crate::domain::time::{now, rfc3339};
use crate::store::{AuditEntry, AuditRecord, Store, StoreResult};

pub use crate::domain::audit::{GENESIS, chain_hash};

/// The actor `operator`: the command line.
pub const OPERATOR: &str = "operator";

/// Who is acting, for audit records: an API key (with its request) or the
/// operator.
#[derive(Debug, Clone)]
pub struct Actor {
    pub actor: String,
    pub request_id: Option<String>,
    pub source: Option<String>,
}

impl Actor {
    pub fn operator() -> Self {
        Actor {
            actor: OPERATOR.to_owned(),
            request_id: None,
            source: None,
        }
    }

    /// A record of `action`; `details` must be a JSON object without secrets.
    pub fn record(
        &self,
        action: &str,
        program_id: Option<&str>,
        card_id: Option<&str>,
        details: Value,
    ) -> AuditEntry {
        AuditEntry {
            at: now(),
            actor: self.actor.clone(),
            request_id: self.request_id.clone(),
            source: self.source.clone(),
            action: action.to_owned(),
            program_id: program_id.map(str::to_owned),
            card_id: card_id.map(str::to_owned),
            details: details.to_string(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A record as the operator reads it.
pub fn record_json(r: &AuditRecord) -> Value {
    let e = &r.entry;
    json!({
        "seq": r.seq,
        "at": rfc3339(e.at),
        "actor": e.actor,
        "request_id": e.request_id,
        "source": e.source,
        "action": e.action,
        "program_id": e.program_id,
        "card_id": e.card_id,
        "details": serde_json::from_str::<Value>(&e.details).unwrap_or(Value::String(e.details.clone())),
        "hash": hex(&r.hash),
    })
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    Intact {
        records: u64,
        head_seq: i64,
        head_hash: String,
    },
    /// The first record that does not chain, and why.
    Broken {
        records_checked: u64,
        seq: i64,
        reason: String,
    },
}

impl ChainCheck {
    pub fn to_json(&self) -> Value {
        match self {
            ChainCheck::Intact {
                records,
                head_seq,
                head_hash,
            } => json!({
                "ok": true,
                "records_checked": records,
                "head": { "seq": head_seq, "hash": head_hash },
            }),
            ChainCheck::Broken {
                records_checked,
                seq,
                reason,
            } => json!({
                "ok": false,
                "records_checked": records_checked,
                "broken_at": { "seq": seq, "reason": reason },
            }),
        }
    }
}

/// Walks the whole chain from record 1.
pub async fn verify<S: Store>(store: &S) -> StoreResult<ChainCheck> {
    let mut prev_seq = 0i64;
    let mut prev_hash = GENESIS.to_vec();
    let mut checked = 0u64;
    loop {
        let batch = store.list_audit(prev_seq, 1000).await?;
        if batch.is_empty() {
            break;
        }
        for r in batch {
            let broken = |reason: String| ChainCheck::Broken {
                records_checked: checked,
                seq: r.seq,
                reason,
            };
            if r.seq != prev_seq + 1 {
                return Ok(ChainCheck::Broken {
                    records_checked: checked,
                    seq: prev_seq + 1,
                    reason: format!("record {} is missing (next is {})", prev_seq + 1, r.seq),
                });
            }
            if r.prev_hash != prev_hash {
                return Ok(broken(
                    "its previous hash is not the hash of the record before it".into(),
                ));
            }
            if chain_hash(&r.prev_hash, r.seq, &r.entry)[..] != r.hash[..] {
                return Ok(broken(
                    "its hash does not match its contents: the record was changed".into(),
                ));
            }
            checked += 1;
            prev_seq = r.seq;
            prev_hash = r.hash;
        }
    }
    Ok(ChainCheck::Intact {
        records: checked,
        head_seq: prev_seq,
        head_hash: hex(&prev_hash),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            at: 1_700_000_000,
            actor: "key_abc".into(),
            request_id: Some("req_x".into()),
            source: None,
            action: "pin.changed".into(),
            program_id: Some("prg_a".into()),
            card_id: Some("card_b".into()),
            details: "{}".into(),
        }
    }

    #[test]
    fn every_field_is_covered() {
        let base = chain_hash(&GENESIS, 1, &entry());
        assert_ne!(base, chain_hash(&GENESIS, 2, &entry()));
        assert_ne!(base, chain_hash(&[1; 32], 1, &entry()));
        let changes: Vec<fn(&mut AuditEntry)> = vec![
            |e| e.at += 1,
            |e| e.actor.push('x'),
            |e| e.request_id = None,
            |e| e.source = Some(String::new()),
            |e| e.action.push('x'),
            |e| e.program_id = None,
            |e| e.card_id = Some("card_c".into()),
            |e| e.details = "{ }".into(),
        ];
        for change in changes {
            let mut e = entry();
            change(&mut e);
            assert_ne!(base, chain_hash(&GENESIS, 1, &e), "{e:?}");
        }
        // Fields are length-prefixed: moving a boundary changes the hash.
        let mut a = entry();
        a.actor = "key_abcpin".into();
        a.action = ".changed".into();
        assert_ne!(base, chain_hash(&GENESIS, 1, &a));
    }
}
