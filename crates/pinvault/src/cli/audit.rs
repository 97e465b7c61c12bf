//! `pinvault audit`: verify the tamper-evident audit trail's hash chain, and
//! list its records. Only the database is opened (the chain needs no key).

use clap::Subcommand;
use serde_json::Value;

use super::data::{DataArgs, open_store};
use super::output::{CliError, pretty, print_stdout};
use crate::store::prelude::*;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain from the first record; prints how many records
    /// were checked and the head hash, or the first broken record (exit 1).
    Verify {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print audit records, oldest first, as a JSON array.
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
            let check = crate::audit::verify(&store).await?;
            let out = pretty(&check.to_json());
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
