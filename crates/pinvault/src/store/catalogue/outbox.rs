//! What a change writes besides itself, in its own transaction: its events
//! (each with a delivery for every subscribed endpoint of the program), its
//! audit record, and the idempotency record of the request that made it.

use crate::domain::ids::new_id;
use crate::domain::webhook_format::WebhookFormat;
use crate::store::backend::Backend;
use crate::store::db::{ALL, Arg, Db, DbResult, Row, Sql, Val, args, rows, sql, sql_each};
use crate::store::decode;
use crate::store::error::StoreFuture;
use crate::store::rows::{AuditEntry, Created, Effects, EventRow, IdemRow};

/// Effects of a change, from the row it changes (as it was before).
pub trait EffectsOf<T>: Fn(&T) -> Effects + Send + Sync + 'static {}
impl<T, F: Fn(&T) -> Effects + Send + Sync + 'static> EffectsOf<T> for F {}

const SUBSCRIBERS: Sql = sql!(
    "SELECT id, events, format FROM webhook_endpoints WHERE program_id = $1 AND deleted_at IS NULL"
);
const INSERT_DELIVERY: Sql = sql!(
    "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, status, attempts, next_attempt_at, created_at, delivered_as)
     VALUES ($1, $2, $3, 'pending', 0, $4, $4, $5)"
);

/// An endpoint an event may go to: its id, the names it subscribed to, its format.
type Subscriber = (String, Vec<String>, WebhookFormat);

async fn subscribers(db: &mut dyn Db, program_id: &str) -> DbResult<Vec<Subscriber>> {
    rows(db, &SUBSCRIBERS, &args![program_id], subscriber, ALL).await
}

/// A row of `id, events, format` from `webhook_endpoints`.
fn subscriber(r: Row<'_>) -> DbResult<Subscriber> {
    Ok((
        r.string(0)?,
        decode::event_types(r.str(1)?)?,
        r.parse(2, WebhookFormat::parse, "format")?,
    ))
}

/// A delivery to each endpoint for each name the event goes out under there
/// that the endpoint subscribed to (`domain::webhook_format`).
async fn fan_out(db: &mut dyn Db, subscribers: &[Subscriber], ev: &EventRow) -> DbResult<()> {
    let set_pin_token = || ev.body.contains(r#""token_type":"set_pin""#);
    for (endpoint_id, subscribed, format) in subscribers {
        for name in format.names(&ev.kind, set_pin_token) {
            if subscribed.iter().any(|s| s == name) {
                let id = new_id("whd_");
                let renamed = (name != ev.kind).then_some(name);
                db.exec(
                    &INSERT_DELIVERY,
                    &args![&id, endpoint_id, &ev.id, ev.created_at, renamed],
                )
                .await?;
            }
        }
    }
    Ok(())
}

pub use super::bulk::ROWS_A_STATEMENT;

/// Writes the events and audit records of many changes (a bulk import) in a
/// few statements: the subscribers read once, the events and the audit
/// records many rows a statement.
pub async fn apply_many(db: &mut dyn Db, effects: &[&Effects]) -> DbResult<()> {
    let events: Vec<&EventRow> = effects.iter().flat_map(|e| e.events.iter()).collect();
    let mut subs: Vec<Subscriber> = Vec::new();
    let mut program: Option<&str> = None;
    for ev in &events {
        if program != Some(ev.program_id.as_str()) {
            program = Some(ev.program_id.as_str());
            subs = subscribers(db, &ev.program_id).await?;
        }
        fan_out(db, &subs, ev).await?;
    }
    super::bulk::insert_all(db, EVENT_COLUMNS, &events, |ev| event_args(ev)).await?;
    let entries: Vec<&AuditEntry> = effects.iter().filter_map(|e| e.audit.as_ref()).collect();
    append_audits(db, &entries).await
}

/// Queues records for the audit chain, in order (`audit_queue`: the
/// sealer chains them shortly after, `catalogue::audit_seal`): many a
/// statement, locking nothing but their own rows, so changes on every node
/// append at once.
async fn append_audits(db: &mut dyn Db, entries: &[&AuditEntry]) -> DbResult<()> {
    super::bulk::insert_all(db, QUEUE_COLUMNS, entries, |e| audit_args(e)).await
}

/// The values of an audit record's row, in [`QUEUE_COLUMNS`] order.
fn audit_args(entry: &AuditEntry) -> [Arg<'_>; 8] {
    args![
        entry.at,
        &entry.actor,
        &entry.request_id,
        &entry.source,
        &entry.action,
        &entry.program_id,
        &entry.card_id,
        &entry.details
    ]
}

/// The values of an event's row, in [`EVENT_COLUMNS`] order.
fn event_args(ev: &EventRow) -> [Arg<'_>; 6] {
    args![
        &ev.id,
        &ev.program_id,
        &ev.card_id,
        &ev.kind,
        ev.created_at,
        &ev.body
    ]
}

const EVENT_COLUMNS: &str = "events (id, program_id, card_id, type, created_at, body)";
const QUEUE_COLUMNS: &str =
    "audit_queue (at, actor, request_id, source, action, program_id, card_id, details)";

/// Writes a change's events and its audit record, inside its transaction.
/// On PostgreSQL, where each statement is a round trip, the events, the audit
/// record and the read of whom the events go to are one statement
/// ([`effects_statement`]); SQLite runs them one by one (its calls are
/// function calls). Each statement below has the other dialect's text empty:
/// not sent, no rows.
pub async fn apply(db: &mut dyn Db, effects: &Effects) -> DbResult<()> {
    let events = &effects.events;
    let Some(first) = events.first() else {
        return match &effects.audit {
            Some(entry) => append_audit(db, entry).await,
            None => Ok(()),
        };
    };
    if events.iter().any(|ev| ev.program_id != first.program_id) {
        // Events of several programs (none is made so today): one at a time.
        for event in events {
            insert_event(db, event).await?;
        }
        if let Some(entry) = &effects.audit {
            append_audit(db, entry).await?;
        }
        return Ok(());
    }
    let mut values: Vec<Arg<'_>> = Vec::with_capacity(events.len() * 6 + 9);
    for ev in events {
        values.extend(event_args(ev));
    }
    if let Some(entry) = &effects.audit {
        values.extend(audit_args(entry));
    }
    values.push(Arg::from(&first.program_id));
    let combined = effects_statement(events.len(), effects.audit.is_some());
    let mut subs = rows(db, &combined, &values, subscriber, ALL).await?;
    // SQLite: the same, a statement each.
    let insert = pg_empty(super::bulk::insert_rows(EVENT_COLUMNS, 6, events.len()));
    db.exec(&insert, &values[..events.len() * 6]).await?;
    if let Some(entry) = &effects.audit {
        let queue = pg_empty(super::bulk::insert_rows(QUEUE_COLUMNS, 8, 1));
        db.exec(&queue, &audit_args(entry)).await?;
    }
    subs.extend(
        rows(
            db,
            &SUBSCRIBERS_SQLITE,
            &args![&first.program_id],
            subscriber,
            ALL,
        )
        .await?,
    );
    for ev in events {
        fan_out(db, &subs, ev).await?;
    }
    Ok(())
}

/// Whom a program's events may go to, read on SQLite (PostgreSQL reads it in
/// [`effects_statement`]).
const SUBSCRIBERS_SQLITE: Sql = sql_each!(
    pg: "",
    sqlite: "SELECT id, events, format FROM webhook_endpoints WHERE program_id = $1 AND deleted_at IS NULL"
);

/// `sql` on SQLite only.
fn pg_empty(sql: Sql) -> Sql {
    Sql {
        pg: "",
        lite: sql.lite,
    }
}

/// On PostgreSQL, one statement: `events` events (six parameters each), the
/// audit record if there is one (eight more), and the endpoints of the program
/// (the last parameter) that may receive them: `WITH e AS (INSERT INTO events
/// …), a AS (INSERT INTO audit_queue …) SELECT … FROM webhook_endpoints …`.
/// Empty on SQLite.
fn effects_statement(events: usize, audit: bool) -> Sql {
    super::bulk::shape("outbox effects", events, usize::from(audit), |mark| {
        if mark != '$' {
            return String::new();
        }
        let mut n = 0;
        let mut row = |count: usize| {
            let marks: Vec<String> = (0..count)
                .map(|_| {
                    n += 1;
                    format!("${n}")
                })
                .collect();
            format!("({})", marks.join(", "))
        };
        let rows: Vec<String> = (0..events).map(|_| row(6)).collect();
        let mut with = format!(
            "e AS (INSERT INTO {EVENT_COLUMNS} VALUES {})",
            rows.join(", ")
        );
        if audit {
            with.push_str(&format!(
                ", a AS (INSERT INTO {QUEUE_COLUMNS} VALUES {})",
                row(8)
            ));
        }
        format!(
            "WITH {with} SELECT id, events, format FROM webhook_endpoints WHERE program_id = ${} AND deleted_at IS NULL",
            n + 1
        )
    })
}

async fn insert_event(db: &mut dyn Db, ev: &EventRow) -> DbResult<()> {
    let insert = super::bulk::insert_rows(EVENT_COLUMNS, 6, 1);
    db.exec(&insert, &event_args(ev)).await?;
    let subs = subscribers(db, &ev.program_id).await?;
    fan_out(db, &subs, ev).await
}

/// Appends a record to the chain.
pub async fn append_audit(db: &mut dyn Db, entry: &AuditEntry) -> DbResult<()> {
    append_audits(db, &[entry]).await
}

/// One statement (an insert, update or delete of one row) and, when it
/// changed a row, the audit record of the change, as one transaction; whether
/// it changed one (an update that finds no row records nothing).
pub fn exec_audited<B: Backend>(
    store: &B,
    sql: &'static Sql,
    vals: Vec<Val>,
    audit: AuditEntry,
) -> impl StoreFuture<bool> {
    store.write((sql, vals, audit), |db, (sql, vals, audit)| {
        Box::pin(async move {
            let args: Vec<Arg<'_>> = vals.iter().map(Val::arg).collect();
            let changed = db.exec(sql, &args).await? == 1;
            if changed {
                append_audit(db, audit).await?;
            }
            Ok(changed)
        })
    })
}

const CLEAR_IDEMPOTENCY: Sql =
    sql!("DELETE FROM idempotency_keys WHERE program_id = $1 AND key = $2 AND created_at <= $3");
const INSERT_IDEMPOTENCY: Sql = sql!(
    "INSERT INTO idempotency_keys (program_id, key, request_hash, status, response_sealed, key_version, created_at, key_kind)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
);

/// How long an idempotency record answers for its key.
pub const IDEMPOTENCY_TTL_S: i64 = 86_400;

/// Inserts an idempotency record (if there is one); false if the key is
/// taken. It goes in before what it records, so a concurrent request with the
/// same key (on any node) waits for this transaction and then writes nothing.
/// `ON CONFLICT DO NOTHING` rather than catching the error: an error would
/// abort a PostgreSQL transaction.
pub async fn claim_idempotency(db: &mut dyn Db, idem: Option<&IdemRow>) -> DbResult<bool> {
    let Some(idem) = idem else { return Ok(true) };
    // Records live a day; an expired one is cleared as a new one comes.
    db.exec(
        &CLEAR_IDEMPOTENCY,
        &args![
            &idem.program_id,
            &idem.key,
            idem.created_at - IDEMPOTENCY_TTL_S
        ],
    )
    .await?;
    let n = db
        .exec(
            &INSERT_IDEMPOTENCY,
            &args![
                &idem.program_id,
                &idem.key,
                &idem.request_hash,
                idem.status,
                &idem.response_sealed,
                idem.key_version,
                idem.created_at,
                idem.key_kind.as_str()
            ],
        )
        .await?;
    Ok(n == 1)
}

/// A create with its idempotency record and its effects, in one transaction.
pub async fn create(
    db: &mut dyn Db,
    idem: Option<&IdemRow>,
    insert: &Sql,
    row: &[Arg<'_>],
    effects: &Effects,
) -> DbResult<Created> {
    if !claim_idempotency(db, idem).await? {
        return Ok(Created::IdempotencyKeyTaken);
    }
    db.exec(insert, row).await?;
    apply(db, effects).await?;
    Ok(Created::Created)
}
