//! `pinvault audit`: verify the tamper-evident audit trail's hash chain, and
//! list its records. Only the database is opened (the chain needs no key).

use clap::Subcommand;
use serde_json::{Value, json};

use super::data::{DataArgs, open_store};
use super::output::{CliError, pretty, print_stdout};
use crate::domain::time::rfc3339;
use crate::store::prelude::*;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Seal the records still queued (running servers seal them within a
    /// second), then check the hash chain from the first record; prints how
    /// many records were checked and the head hash, or the first broken
    /// record (exit 1), and how far sealing has come (`sealing`: sealed by
    /// this command, still queued, the oldest queued record's time).
    Verify {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print audit records, oldest first, as a JSON array (the records still
    /// queued are sealed first).
    List {
        /// Only records after this sequence number.
        #[arg(long, default_value_t = 0, value_name = "SEQ")]
        after: i64,
        /// At most this many records (1 to 10000).
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
        /// Only records about this card.
        #[arg(long, value_name = "CARD_ID")]
        card_id: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub async fn audit(cmd: AuditCommand) -> Result<String, CliError> {
    match cmd {
        AuditCommand::Verify { data } => {
            // The chain needs no key: only the database is opened.
            let store = open_store(&data).await?;
            let sealed_now = store.seal_all_audit().await?;
            let check = crate::audit::verify(&store).await?;
            let pending = store.audit_pending().await?;
            let mut report = check.to_json();
            report["sealing"] = json!({
                "sealed_now": sealed_now,
                "pending": pending.records,
                "oldest_pending_at": pending.oldest_at.map(rfc3339),
            });
            let out = pretty(&report);
            match check {
                crate::audit::ChainCheck::Intact { .. } => Ok(out),
                crate::audit::ChainCheck::Broken { seq, reason, .. } => {
                    print_stdout(&out);
                    Err(CliError::Refused(format!(
                        "the audit chain is broken at record {seq}: {reason}"
                    )))
                }
            }
        }
        AuditCommand::List {
            after,
            limit,
            card_id,
            data,
        } => {
            if !(1..=10_000).contains(&limit) {
                return Err(CliError::Refused("--limit must be from 1 to 10000".into()));
            }
            let store = open_store(&data).await?;
            store.seal_all_audit().await?;
            let mut out = Vec::new();
            let mut from = after;
            while out.len() < limit as usize {
                let batch = store.list_audit(from, 1000).await?;
                let Some(last) = batch.last() else { break };
                from = last.seq;
                out.extend(
                    batch
                        .iter()
                        .filter(|r| card_id.is_none() || r.entry.card_id == card_id)
                        .map(crate::audit::record_json),
                );
            }
            out.truncate(limit as usize);
            Ok(pretty(&Value::Array(out)))
        }
    }
}
