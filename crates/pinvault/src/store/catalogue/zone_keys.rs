//! Zone PIN keys, wrapped by the master key, and the programs they are
//! granted to (the rules of grants are `domain::zone_key`).

use super::outbox;
use super::page::{self, Page};
use crate::domain::time::Timestamp;
use crate::domain::zone_key::{Grants, RevokeError};
use crate::store::backend::Backend;
use crate::store::db::{ALL, Arg, Db, DbResult, Sql, args, first, rows, sql, sql_each};
use crate::store::decode::{self, select, zone_key_cols};
use crate::store::error::StoreFuture;
use crate::store::rows::{AuditEntry, ZoneKeyRow};

const INSERT_ZONE_KEY: Sql = sql!(
    "INSERT INTO zone_keys (id, name, algorithm, kcv, wrapped, created_at, usage, all_programs,
         tr31)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
const INSERT_GRANT: Sql = sql!(
    "INSERT INTO zone_key_grants (zone_key_id, program_id, granted_at) VALUES ($1, $2, $3)
     ON CONFLICT (zone_key_id, program_id) DO NOTHING"
);
const DELETE_GRANT: Sql =
    sql!("DELETE FROM zone_key_grants WHERE zone_key_id = $1 AND program_id = $2");
const NARROW: Sql = sql!("UPDATE zone_keys SET all_programs = FALSE WHERE id = $1");
const GRANTS: Sql =
    sql!("SELECT program_id FROM zone_key_grants WHERE zone_key_id = $1 ORDER BY program_id");
const ZONE_KEY: Sql = select!(zone_key_cols, " FROM zone_keys WHERE id = $1");
/// The key, locked for the rest of the transaction (PostgreSQL; SQLite has
/// one writer).
const LOCK_ZONE_KEY: Sql = sql_each!(
    pg: concat!("SELECT ", zone_key_cols!(), " FROM zone_keys WHERE id = $1 FOR UPDATE"),
    sqlite: concat!("SELECT ", zone_key_cols!(), " FROM zone_keys WHERE id = $1"),
);
const ZONE_KEYS: Page = Page {
    lookup: sql!("SELECT seq FROM zone_keys WHERE id = $1"),
    list: select!(
        zone_key_cols,
        " FROM zone_keys WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
    ),
};
/// A program's zone keys: granted to it, or to every program.
const PROGRAM_ZONE_KEYS: Page = Page {
    lookup: sql!(
        "SELECT z.seq FROM zone_keys z WHERE z.id = $1 AND (z.all_programs OR EXISTS
         (SELECT 1 FROM zone_key_grants g WHERE g.zone_key_id = z.id AND g.program_id = $2))"
    ),
    list: select!(
        zone_key_cols,
        " FROM zone_keys z WHERE (z.all_programs OR EXISTS
         (SELECT 1 FROM zone_key_grants g WHERE g.zone_key_id = z.id AND g.program_id = $1))
         AND z.seq < $2 ORDER BY z.seq DESC LIMIT $3"
    ),
};

/// Reads the programs of a key whose grants are a list.
async fn fill_grants(db: &mut dyn Db, key: &mut ZoneKeyRow) -> DbResult<()> {
    if key.grants != Grants::All {
        let list = rows(db, &GRANTS, &args![&key.key.id], |r| r.string(0), ALL).await?;
        key.grants = Grants::Programs(list);
    }
    Ok(())
}

/// A change of a key's grants, as the store applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantChange {
    /// No zone key has this id.
    NoKey,
    Refused(RevokeError),
    /// The key's grants after the change.
    Done(Grants),
}

pub trait ZoneKeyStore: Backend {
    /// A new key with its grants (a list: new keys are never for every program).
    fn insert_zone_key(&self, key: ZoneKeyRow, audit: AuditEntry) -> impl StoreFuture<()> {
        self.write((key, audit), |db, (k, audit)| {
            Box::pin(async move {
                let tr31 = decode::tr31_text(k.tr31.as_ref());
                let mut row = decode::wrapped_key_args(&k.key).to_vec();
                row.extend(args![k.usage.as_str(), k.grants == Grants::All, &tr31]);
                db.exec(&INSERT_ZONE_KEY, &row).await?;
                if let Grants::Programs(list) = &k.grants {
                    for program in list {
                        db.exec(&INSERT_GRANT, &args![&k.key.id, program, k.key.created_at])
                            .await?;
                    }
                }
                outbox::append_audit(db, audit).await
            })
        })
    }

    /// The key with its grants.
    fn get_zone_key(&self, id: &str) -> impl StoreFuture<Option<ZoneKeyRow>> {
        self.read(id.to_owned(), |db, id| {
            Box::pin(async move {
                let Some(mut key) =
                    first(db, &ZONE_KEY, &args![id.as_str()], decode::zone_key).await?
                else {
                    return Ok(None);
                };
                fill_grants(db, &mut key).await?;
                Ok(Some(key))
            })
        })
    }

    /// Grants the key to `program` (`grant`) or revokes its grant, with the
    /// audit record `audit` makes of the grants after the change, in one
    /// transaction that holds the key's row.
    fn change_zone_key_grant(
        &self,
        id: &str,
        program: &str,
        grant: bool,
        at: Timestamp,
        audit: impl Fn(&Grants) -> AuditEntry + Send + Sync + 'static,
    ) -> impl StoreFuture<GrantChange> {
        let data = (id.to_owned(), program.to_owned(), grant, at, audit);
        self.write(data, |db, (id, program, grant, at, audit)| {
            Box::pin(async move {
                let Some(mut key) =
                    first(db, &LOCK_ZONE_KEY, &args![id.as_str()], decode::zone_key).await?
                else {
                    return Ok(GrantChange::NoKey);
                };
                fill_grants(db, &mut key).await?;
                let after = if *grant {
                    db.exec(&NARROW, &args![id.as_str()]).await?;
                    db.exec(&INSERT_GRANT, &args![id.as_str(), program.as_str(), *at])
                        .await?;
                    key.grants.grant(program)
                } else {
                    match key.grants.revoke(program) {
                        Err(e) => return Ok(GrantChange::Refused(e)),
                        Ok(after) => {
                            db.exec(&DELETE_GRANT, &args![id.as_str(), program.as_str()])
                                .await?;
                            after
                        }
                    }
                };
                if after != key.grants {
                    outbox::append_audit(db, &audit(&after)).await?;
                }
                Ok(GrantChange::Done(after))
            })
        })
    }

    /// Every zone key, newest first, with its grants. `None` when
    /// `starting_after` names no zone key.
    fn list_zone_keys(
        &self,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl StoreFuture<Option<(Vec<ZoneKeyRow>, bool)>> {
        list(self, &ZONE_KEYS, None, limit, starting_after)
    }

    /// The zone keys `program` may use, newest first. `None` when
    /// `starting_after` names none of them.
    fn list_program_zone_keys(
        &self,
        program: &str,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl StoreFuture<Option<(Vec<ZoneKeyRow>, bool)>> {
        list(
            self,
            &PROGRAM_ZONE_KEYS,
            Some(program),
            limit,
            starting_after,
        )
    }
}

impl<B: Backend> ZoneKeyStore for B {}

fn list<B: Backend>(
    store: &B,
    page: &'static Page,
    program: Option<&str>,
    limit: u32,
    starting_after: Option<&str>,
) -> impl StoreFuture<Option<(Vec<ZoneKeyRow>, bool)>> {
    let data = (
        page,
        program.map(str::to_owned),
        starting_after.map(str::to_owned),
        limit,
    );
    store.read(data, |db, (page, program, after, limit)| {
        Box::pin(async move {
            let scope: Vec<Arg<'_>> = program.iter().map(|p| Arg::Text(p)).collect();
            let fetched = page::fetch(
                db,
                page,
                &scope,
                &scope,
                after.as_deref(),
                *limit,
                decode::zone_key,
            )
            .await?;
            let Some((mut keys, more)) = fetched else {
                return Ok(None);
            };
            for key in &mut keys {
                fill_grants(db, key).await?;
            }
            Ok(Some((keys, more)))
        })
    })
}
