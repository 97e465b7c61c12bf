//! Data key versions, and the rows rotation and master-key migration rewrite.

use crate::keys::{DataKeyRow, KeyKind};
use crate::store::backend::Backend;
use crate::store::db::{ALL, Arg, DbResult, Row, Sql, args, bad, first, rows, sql, sql_each, vals};
use crate::store::decode::{self, card_cols, select};
use crate::store::error::StoreFuture;
use crate::store::rows::{MasterRewrap, OldCards, Rewrap, Rewrapped};

const DATA_KEYS: Sql =
    sql!("SELECT kind, version, wrapped, created_at FROM data_keys ORDER BY kind, version");
const INSERT_DATA_KEY: Sql = sql!(
    "INSERT INTO data_keys (kind, version, wrapped, created_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT DO NOTHING"
);
/// How many cards each combination of key versions protects: one pass over
/// the cards for what `keys list` shows of them (PIN, PAN, lookup, staged PIN).
const CARD_KEY_USAGE: Sql = sql!(
    "SELECT pin_key_version, pan_key_version, lookup_key_version, staged_pin_key_version,
         COUNT(*)
     FROM cards GROUP BY pin_key_version, pan_key_version, lookup_key_version,
         staged_pin_key_version"
);
/// How many rows each key version protects elsewhere (the rest of `keys list`).
const KEY_USAGE: [(KeyKind, Sql); 5] = [
    (
        KeyKind::Pin,
        sql!(
            "SELECT previous_pin_key_version, COUNT(*) FROM pin_changes
             GROUP BY previous_pin_key_version"
        ),
    ),
    (
        KeyKind::Pan,
        sql!(
            "SELECT key_version, COUNT(*) FROM idempotency_keys WHERE key_kind = 'pan'
             GROUP BY key_version"
        ),
    ),
    (
        KeyKind::Idempotency,
        sql!(
            "SELECT key_version, COUNT(*) FROM idempotency_keys WHERE key_kind = 'idempotency'
             GROUP BY key_version"
        ),
    ),
    (
        KeyKind::Pan,
        sql!(
            "SELECT secret_key_version, COUNT(*) FROM webhook_endpoints WHERE secret_key_kind = 'pan'
             GROUP BY secret_key_version"
        ),
    ),
    (
        KeyKind::Webhook,
        sql!(
            "SELECT secret_key_version, COUNT(*) FROM webhook_endpoints
             WHERE secret_key_kind = 'webhook' GROUP BY secret_key_version"
        ),
    ),
];
/// The id that ends a window of `$2 + 1` cards after `$1` (none: fewer are left).
const WINDOW_END: Sql = sql!("SELECT id FROM cards WHERE id > $1 ORDER BY id LIMIT 1 OFFSET $2");
/// Cards under a version older than `$1`..`$3` after `$4`, up to `$6`.
const CARDS_UNDER_OLD_KEYS: Sql = select!(
    card_cols,
    " FROM cards
     WHERE id > $4 AND id <= $6 AND (pin_key_version < $1 OR pan_key_version < $2
        OR lookup_key_version < $3 OR staged_pin_key_version < $1)
     ORDER BY id LIMIT $5"
);
/// The same, to the last card.
const LAST_CARDS_UNDER_OLD_KEYS: Sql = select!(
    card_cols,
    " FROM cards
     WHERE id > $4 AND (pin_key_version < $1 OR pan_key_version < $2
        OR lookup_key_version < $3 OR staged_pin_key_version < $1)
     ORDER BY id LIMIT $5"
);
/// About how many cards there are: on PostgreSQL the largest of its last
/// `ANALYZE`'s estimate, its statistics' count of live rows (both may be
/// missing or late: a table never analyzed, statistics not yet flushed) and
/// a count of the first 100,000 (a count of all of them reads the whole table,
/// and ten million take longer than a statement may); SQLite's count (its
/// smallest index).
const CARDS_ESTIMATE: Sql = sql_each!(
    pg: "SELECT GREATEST(c.reltuples::BIGINT, pg_stat_get_live_tuples(c.oid),
             (SELECT COUNT(*) FROM (SELECT 1 FROM cards LIMIT 100000) AS first), 0)
         FROM pg_class c WHERE c.oid = 'cards'::regclass",
    sqlite: "SELECT COUNT(*) FROM cards"
);
/// Many cards re-encrypted in one statement (one round trip on PostgreSQL),
/// each a compare-and-set: a card whose PIN or staged PIN changed since its
/// rewrap was computed is skipped.
const REWRAP_CARDS: &str =
    "UPDATE cards SET pin_block = v.pin_block, pin_key_version = v.pin_key_version,
         pan_sealed = v.pan_sealed, pan_key_version = v.pan_key_version, pan_hash = v.pan_hash,
         lookup_key_version = v.lookup_key_version, staged_pin_block = v.staged_pin_block,
         staged_pin_key_version = v.staged_pin_key_version
     FROM v WHERE cards.id = v.id AND cards.pin_block = v.old_pin_block
         AND cards.staged_pin_block IS NOT DISTINCT FROM v.old_staged";
/// The values of [`REWRAP_CARDS`], in [`rewrap_args`] order, with their
/// PostgreSQL and SQLite types.
const REWRAP_COLUMNS: &[(&str, &str, &str)] = &[
    ("pin_block", "BYTEA", "BLOB"),
    ("pin_key_version", "BIGINT", "INTEGER"),
    ("pan_sealed", "BYTEA", "BLOB"),
    ("pan_key_version", "BIGINT", "INTEGER"),
    ("pan_hash", "BYTEA", "BLOB"),
    ("lookup_key_version", "BIGINT", "INTEGER"),
    ("id", "TEXT", "TEXT"),
    ("old_pin_block", "BYTEA", "BLOB"),
    ("old_staged", "BYTEA", "BLOB"),
    ("staged_pin_block", "BYTEA", "BLOB"),
    ("staged_pin_key_version", "BIGINT", "INTEGER"),
];

/// A rewrap's values, in [`REWRAP_COLUMNS`] order.
fn rewrap_args(w: &Rewrap) -> [Arg<'_>; 11] {
    let staged = w.staged.as_ref();
    args![
        &w.pin.block,
        w.pin.key_version,
        &w.pan_sealed,
        w.pan_key_version,
        &w.pan_hash,
        w.lookup_key_version,
        &w.card_id,
        &w.old_pin_block,
        staged.map(|s| &s.old_block),
        staged.map(|s| &s.block),
        staged.map(|s| s.key_version),
    ]
}
const REWRAP_DATA_KEY: Sql =
    sql!("UPDATE data_keys SET wrapped = $1 WHERE kind = $2 AND version = $3 AND wrapped = $4");
const REWRAP_ZONE_KEY: Sql =
    sql!("UPDATE zone_keys SET wrapped = $1 WHERE id = $2 AND wrapped = $3");

const SECRETS_TO_RESEAL: Sql = sql!(
    "SELECT id, secret_key_kind, secret_key_version, secret_sealed FROM webhook_endpoints
     WHERE secret_key_kind <> 'webhook' OR secret_key_version < $1 ORDER BY seq LIMIT $2"
);
const RESEAL_SECRET: Sql = sql!(
    "UPDATE webhook_endpoints SET secret_sealed = $1, secret_key_kind = 'webhook',
         secret_key_version = $2
     WHERE id = $3 AND secret_sealed = $4"
);
const RESPONSES_TO_RESEAL: Sql = sql!(
    "SELECT program_id, key, key_kind, key_version, response_sealed FROM idempotency_keys
     WHERE key_kind <> 'idempotency' OR key_version < $1 ORDER BY created_at LIMIT $2"
);
const RESEAL_RESPONSE: Sql = sql!(
    "UPDATE idempotency_keys SET response_sealed = $1, key_kind = 'idempotency', key_version = $2
     WHERE program_id = $3 AND key = $4 AND response_sealed = $5"
);

/// Something sealed under a data key that is not (or no longer) its
/// purpose's current one: a webhook secret or an idempotency response.
#[derive(Debug, Clone)]
pub struct Resealable {
    /// The endpoint id; or the program and the idempotency key.
    pub id: (String, Option<String>),
    pub kind: KeyKind,
    pub version: u32,
    pub sealed: Vec<u8>,
}

/// A value to reseal: its id (one column, or two when `keyed`: an
/// idempotency response's key with its API key), then its purpose, the version
/// it is sealed under and the sealed bytes.
fn resealable(r: Row<'_>, keyed: bool) -> DbResult<Resealable> {
    let id = (r.string(0)?, if keyed { Some(r.string(1)?) } else { None });
    let r = r.from(1 + usize::from(keyed));
    let kind = r.str(0)?;
    Ok(Resealable {
        id,
        kind: KeyKind::parse(kind).ok_or_else(|| bad("key kind"))?,
        version: r.u32(1)?,
        sealed: r.bytes(2)?,
    })
}

pub trait KeyStore: Backend {
    fn data_keys(&self) -> impl StoreFuture<Vec<DataKeyRow>> {
        self.rows_read(&DATA_KEYS, vec![], decode::data_key, ALL)
    }

    /// Inserts a data key version; false if that version exists already.
    fn insert_data_key(&self, row: DataKeyRow) -> impl StoreFuture<bool> {
        let vals = vals![row.kind.as_str(), row.version, &row.wrapped, row.created_at];
        async move { Ok(self.exec_one(&INSERT_DATA_KEY, vals).await? == 1) }
    }

    /// How many rows each key version protects.
    fn key_usage(&self) -> impl StoreFuture<Vec<(KeyKind, u32, u64)>> {
        self.read((), |db, ()| {
            Box::pin(async move {
                let cards = rows(
                    db,
                    &CARD_KEY_USAGE,
                    &[],
                    |r| {
                        let versions = [r.u32(0)?, r.u32(1)?, r.u32(2)?];
                        Ok((versions, r.opt_u32(3)?, r.u64(4)?))
                    },
                    ALL,
                )
                .await?;
                // A version may come in several rows (its readers sum them).
                let mut out = Vec::new();
                for ([pin, pan, lookup], staged, n) in cards {
                    out.extend([(KeyKind::Pin, pin, n), (KeyKind::Pan, pan, n)]);
                    out.push((KeyKind::Lookup, lookup, n));
                    out.extend(staged.map(|v| (KeyKind::Pin, v, n)));
                }
                for (kind, sql) in &KEY_USAGE {
                    let rows = rows(db, sql, &[], |r| Ok((r.u32(0)?, r.u64(1)?)), ALL).await?;
                    out.extend(rows.into_iter().map(|(v, n)| (*kind, v, n)));
                }
                Ok(out)
            })
        })
    }

    /// What is sealed for `kind` (webhook secrets for `webhook`, stored
    /// idempotency responses for `idempotency`) and not under its version
    /// `current`: the first `limit`.
    fn to_reseal(
        &self,
        kind: KeyKind,
        current: u32,
        limit: u32,
    ) -> impl StoreFuture<Vec<Resealable>> {
        let (sql, decode): (_, fn(Row<'_>) -> DbResult<Resealable>) = match kind {
            KeyKind::Webhook => (&SECRETS_TO_RESEAL, |r| resealable(r, false)),
            _ => (&RESPONSES_TO_RESEAL, |r| resealable(r, true)),
        };
        self.rows_read(sql, vals![current, limit], decode, ALL)
    }

    /// Stores `old` sealed again (`sealed`, under `version` of its purpose's
    /// key) unless it changed since it was read; whether it was stored.
    fn reseal(&self, old: &Resealable, sealed: Vec<u8>, version: u32) -> impl StoreFuture<bool> {
        let (sql, vals) = match &old.id {
            (id, None) => (&RESEAL_SECRET, vals![&sealed, version, id, &old.sealed]),
            (program, Some(key)) => (
                &RESEAL_RESPONSE,
                vals![&sealed, version, program, key, &old.sealed],
            ),
        };
        async move { Ok(self.exec_one(sql, vals).await? == 1) }
    }

    /// Cards with any row (the staged PIN included) under a key version older
    /// than the given current ones, in id order from after `after` (`""`:
    /// from the start), at most `limit` of them among the next `window`
    /// cards: each statement reads a bounded part of the table however few
    /// cards are left to re-encrypt (a whole pass in one statement takes
    /// longer than the statement timeout at ten million cards). A pass over
    /// every card reads each once, through the primary key.
    fn cards_under_old_keys(
        &self,
        current: (u32, u32, u32),
        after: &str,
        limit: u32,
        window: u32,
    ) -> impl StoreFuture<OldCards> {
        let data = (current, after.to_owned(), limit, window.max(1) - 1);
        self.read(data, |db, ((pin, pan, lookup), after, limit, offset)| {
            Box::pin(async move {
                let end = first(db, &WINDOW_END, &args![after, *offset], |r| r.string(0)).await?;
                let old = args![*pin, *pan, *lookup, after, *limit];
                let cards = match &end {
                    Some(end) => {
                        let args = [old.as_slice(), &args![end]].concat();
                        rows(db, &CARDS_UNDER_OLD_KEYS, &args, decode::card, ALL).await?
                    }
                    None => rows(db, &LAST_CARDS_UNDER_OLD_KEYS, &old, decode::card, ALL).await?,
                };
                // A full batch may leave more of the window: the next one
                // begins after its last card.
                let next = match cards.last() {
                    Some(last) if cards.len() as u64 >= u64::from(*limit) => Some(last.id.clone()),
                    _ => end,
                };
                Ok(OldCards { cards, next })
            })
        })
    }

    /// About how many cards there are (a rotation's progress total).
    fn cards_estimate(&self) -> impl StoreFuture<u64> {
        async move {
            let n = self
                .first_row(&CARDS_ESTIMATE, vals![], |r| r.u64(0))
                .await?;
            Ok(n.unwrap_or(0))
        }
    }

    /// Applies rotation rewraps in one transaction, each unless the card's
    /// PIN or staged PIN changed since it was read (that card is left for
    /// the next pass); how many were applied.
    fn rewrap_cards(&self, rewraps: Vec<Rewrap>) -> impl StoreFuture<u64> {
        self.write(rewraps, |db, rewraps| {
            Box::pin(async move {
                let mut n = 0;
                for chunk in rewraps.chunks(super::outbox::ROWS_A_STATEMENT) {
                    let sql =
                        super::bulk::update_from_values(REWRAP_CARDS, REWRAP_COLUMNS, chunk.len());
                    let args: Vec<Arg<'_>> = chunk.iter().flat_map(rewrap_args).collect();
                    n += db.exec(&sql, &args).await?;
                }
                Ok(n)
            })
        })
    }

    /// Applies master-key re-wraps in one transaction; returns how many rows
    /// changed (a row whose wrapping changed meanwhile is left alone).
    fn rewrap_master(&self, rewraps: Vec<MasterRewrap>) -> impl StoreFuture<u64> {
        self.write(rewraps, |db, rewraps| {
            Box::pin(async move {
                let mut n = 0;
                for MasterRewrap { of, old, new } in rewraps {
                    let (sql, id) = match of {
                        Rewrapped::DataKey { kind, version } => {
                            let args = args![new, kind.as_str(), *version, old];
                            n += db.exec(&REWRAP_DATA_KEY, &args).await?;
                            continue;
                        }
                        Rewrapped::ZoneKey(id) => (&REWRAP_ZONE_KEY, id),
                        Rewrapped::IssuerKey(id, part) => {
                            (&super::issuer_keys::REWRAP[*part as usize], id)
                        }
                        Rewrapped::PinVerificationKey(id) => (&super::pvks::REWRAP, id),
                        Rewrapped::Kbpk(id) => (&super::kbpk::REWRAP, id),
                    };
                    n += db.exec(sql, &args![new, id, old]).await?;
                }
                Ok(n)
            })
        })
    }
}

impl<B: Backend> KeyStore for B {}
