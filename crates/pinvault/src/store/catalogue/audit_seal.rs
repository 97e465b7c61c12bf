//! Sealing the audit trail (DESIGN.md "The audit trail at scale"): a change's
//! transaction queues its record (`audit_queue`, ordered by the database's
//! sequence, locking nothing shared), and one sealer at a time moves the
//! oldest queued records into `audit_log`, each chained to the one before
//! (`crate::audit`), and deletes exactly those from the queue, in one
//! transaction: a crash loses nothing and seals nothing twice. Every server
//! runs a sealer; on PostgreSQL the one that holds `audit_head`'s row seals,
//! the others skip their turn.

use super::bulk;
use super::outbox::ROWS_A_STATEMENT;
use crate::domain::audit::chain_hash;
use crate::domain::time::Timestamp;
use crate::store::backend::Backend;
use crate::store::db::{ALL, Arg, Db, DbResult, Sql, args, first, rows, sql, sql_each};
use crate::store::decode;
use crate::store::error::StoreFuture;

/// Records one pass seals at most.
pub const SEAL_BATCH: usize = 1000;

/// The chain's head: the seq and hash of the newest sealed record (0 and
/// the genesis hash before the first). PostgreSQL: the `audit_head` row,
/// locked for the pass (waiting for another sealer, or, `SKIP`, not).
/// SQLite: one writer at a time anyway.
const HEAD: Sql = sql_each!(
    pg: "SELECT seq, hash FROM audit_head FOR UPDATE",
    sqlite: "SELECT COALESCE(MAX(seq), 0),
                    COALESCE((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), zeroblob(32))
             FROM audit_log",
);
const HEAD_SKIP: Sql = sql_each!(
    pg: "SELECT seq, hash FROM audit_head FOR UPDATE SKIP LOCKED",
    sqlite: "SELECT COALESCE(MAX(seq), 0),
                    COALESCE((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), zeroblob(32))
             FROM audit_log",
);
const MOVE_HEAD: Sql = sql_each!(
    pg: "UPDATE audit_head SET seq = $1, hash = $2",
    sqlite: "",
);
const QUEUED: Sql = sql!(
    "SELECT id, at, actor, request_id, source, action, program_id, card_id, details
     FROM audit_queue ORDER BY id LIMIT $1"
);
/// The same, after the id a full batch ended at: while a backlog is sealed,
/// each batch starts where the one before ended. From the oldest, every batch
/// of a backlog of millions (after `cards import`) would step over all the
/// queue's entries deleted since PostgreSQL last vacuumed it (126 ms and
/// 18,568 index pages a batch at 7 million, the rate falling as it went).
const QUEUED_AFTER: Sql = sql!(
    "SELECT id, at, actor, request_id, source, action, program_id, card_id, details
     FROM audit_queue WHERE id > $2 ORDER BY id LIMIT $1"
);
const PENDING: Sql =
    sql!("SELECT COUNT(*), (SELECT at FROM audit_queue ORDER BY id LIMIT 1) FROM audit_queue");
const ANY_QUEUED: Sql = sql!("SELECT EXISTS (SELECT 1 FROM audit_queue)");
const SEALED_COLUMNS: &str = "audit_log (seq, at, actor, request_id, source, action, program_id, card_id, details, prev_hash, hash)";

/// How far sealing has come: records queued and not sealed yet, and when the
/// oldest of them was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub records: u64,
    pub oldest_at: Option<Timestamp>,
}

/// What one pass sealed: how many records, and the queue id the batch ended
/// at (where the next batch of a backlog starts: [`SealFrom::After`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    pub records: usize,
    pub last_id: Option<i64>,
}

impl Sealed {
    /// Where the next pass starts: after this batch if it was full (more
    /// are queued behind it), else at the oldest record queued again, which
    /// also takes any record a transaction committed meanwhile with an id
    /// below this batch's (ids come from a sequence, in the order records
    /// are written, not committed): such a record waits at most until the
    /// backlog is sealed.
    pub fn next(&self) -> SealFrom {
        match self.last_id {
            Some(id) if self.records == SEAL_BATCH => SealFrom::After(id),
            _ => SealFrom::Oldest,
        }
    }
}

/// Where a pass takes its batch from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealFrom {
    /// The oldest records queued.
    Oldest,
    /// The oldest after this queue id (the previous full batch's last).
    After(i64),
}

pub trait AuditSealStore: Backend {
    /// Seals the oldest queued records (at most [`SEAL_BATCH`]; `from`
    /// [`SealFrom::After`] a full batch's last id while a backlog is sealed)
    /// in one transaction. `wait` false (a server's sealer): `None` when
    /// another sealer is at work, rather than waiting for it.
    fn seal_audit(&self, wait: bool, from: SealFrom) -> impl StoreFuture<Option<Sealed>> {
        self.write((wait, from), |db, (wait, from)| {
            Box::pin(seal(db, *wait, *from))
        })
    }

    /// Seals until nothing is queued (the command line, before it reads the
    /// chain): how many.
    fn seal_all_audit(&self) -> impl StoreFuture<u64> {
        async move {
            let (mut total, mut from) = (0u64, SealFrom::Oldest);
            loop {
                let Some(sealed) = self.seal_audit(true, from).await? else {
                    return Ok(total);
                };
                total += sealed.records as u64;
                // Done when a batch from the oldest is not full.
                if from == SealFrom::Oldest && sealed.records < SEAL_BATCH {
                    return Ok(total);
                }
                from = sealed.next();
            }
        }
    }

    /// Whether any record is queued: one index probe, whatever the queue
    /// holds (a server's sealer asks before each batch; counting instead
    /// made sealing a queue of millions, after an import, quadratic).
    fn audit_queued(&self) -> impl StoreFuture<bool> {
        async move {
            let found = self.first_row(&ANY_QUEUED, vec![], |r| r.bool(0)).await?;
            Ok(found.unwrap_or(false))
        }
    }

    /// Records queued and the oldest one's time: counts the whole queue.
    fn audit_pending(&self) -> impl StoreFuture<Pending> {
        async move {
            let found = self
                .first_row(&PENDING, vec![], |r| {
                    Ok(Pending {
                        records: r.u64(0)?,
                        oldest_at: r.opt_time(1)?,
                    })
                })
                .await?;
            Ok(found.unwrap_or(Pending {
                records: 0,
                oldest_at: None,
            }))
        }
    }
}

impl<B: Backend> AuditSealStore for B {}

async fn seal(db: &mut dyn Db, wait: bool, from: SealFrom) -> DbResult<Option<Sealed>> {
    let head = if wait { &HEAD } else { &HEAD_SKIP };
    let Some((mut seq, mut prev)) = first(db, head, &[], |r| Ok((r.i64(0)?, r.bytes(1)?))).await?
    else {
        return Ok(None);
    };
    let limit = SEAL_BATCH as i64;
    let row = |r: crate::store::db::Row<'_>| Ok((r.i64(0)?, decode::audit_entry(r, 1)?));
    let queued = match from {
        SealFrom::Oldest => rows(db, &QUEUED, &args![limit], row, ALL).await?,
        SealFrom::After(id) => rows(db, &QUEUED_AFTER, &args![limit, id], row, ALL).await?,
    };
    for chunk in queued.chunks(ROWS_A_STATEMENT) {
        let mut chained = Vec::with_capacity(chunk.len());
        for (_, e) in chunk {
            seq += 1;
            let hash = chain_hash(&prev, seq, e).to_vec();
            chained.push((seq, std::mem::replace(&mut prev, hash.clone()), hash));
        }
        let mut values: Vec<Arg<'_>> = Vec::with_capacity(chunk.len() * 11);
        for ((_, e), (seq, prev, hash)) in chunk.iter().zip(&chained) {
            values.extend(args![
                *seq,
                e.at,
                &e.actor,
                &e.request_id,
                &e.source,
                &e.action
            ]);
            values.extend(args![
                &e.program_id,
                &e.card_id,
                &e.details,
                prev.as_slice(),
                hash.as_slice()
            ]);
        }
        db.exec(&bulk::insert_rows(SEALED_COLUMNS, 11, chunk.len()), &values)
            .await?;
        let ids: Vec<Arg<'_>> = chunk.iter().map(|(id, _)| Arg::Int(*id)).collect();
        let delete = bulk::in_list("DELETE FROM audit_queue WHERE id", chunk.len());
        db.exec(&delete, &ids).await?;
    }
    if !queued.is_empty() {
        db.exec(&MOVE_HEAD, &args![seq, &prev]).await?;
    }
    Ok(Some(Sealed {
        records: queued.len(),
        last_id: queued.last().map(|(id, _)| *id),
    }))
}
