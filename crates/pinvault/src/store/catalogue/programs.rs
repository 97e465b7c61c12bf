//! Programs and their API keys, and the read at the start of every request:
//! the key presented, its program, and the card the path names.

use super::outbox;
use crate::domain::ids::SecretHash;
use crate::domain::program::{Mode, Settings};
use crate::domain::time::Timestamp;
use crate::store::backend::Backend;
use crate::store::db::{ALL, Db, DbResult, Sql, args, first, sql, vals};
use crate::store::decode::{self, api_key_cols, card_cols, program_cols, select};
use crate::store::error::{StoreError, StoreFuture, StoreResult};
use crate::store::rows::{ApiKeyRow, AuditEntry, AuthenticatedCard, ProgramRow};

const INSERT_PROGRAM: Sql = sql!(
    "INSERT INTO programs (id, name, mode, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)"
);
const PROGRAM: Sql = select!(program_cols, " FROM programs WHERE id = $1");
const PROGRAMS: Sql = select!(program_cols, " FROM programs ORDER BY seq");
const UPDATE_PROGRAM: Sql =
    sql!("UPDATE programs SET settings = $1, mode = $2, updated_at = $3 WHERE id = $4");
const INSERT_API_KEY: Sql = sql!(
    "INSERT INTO api_keys (id, program_id, key_hash, hint, created_at) VALUES ($1, $2, $3, $4, $5)"
);
const API_KEYS: Sql = select!(
    api_key_cols,
    " FROM api_keys WHERE program_id = $1 ORDER BY seq"
);
const REVOKE_API_KEY: Sql =
    sql!("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL");
const AUTHENTICATE: Sql = sql!(concat!(
    "SELECT ",
    api_key_cols!(k),
    ", ",
    program_cols!(p),
    " FROM api_keys k JOIN programs p ON p.id = k.program_id
     WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
));
const AUTHENTICATE_CARD: Sql = sql!(concat!(
    "SELECT ",
    api_key_cols!(k),
    ", ",
    program_cols!(p),
    ", ",
    card_cols!(c),
    " FROM api_keys k JOIN programs p ON p.id = k.program_id
     LEFT JOIN cards c ON c.id = $2 AND c.program_id = k.program_id
     WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
));
pub(super) const CARD: Sql = select!(card_cols, " FROM cards WHERE id = $1 AND program_id = $2");

async fn insert_api_key(db: &mut dyn Db, key: &ApiKeyRow) -> DbResult<()> {
    let args = args![
        &key.id,
        &key.program_id,
        &key.key_hash,
        &key.hint,
        key.created_at
    ];
    db.exec(&INSERT_API_KEY, &args).await?;
    Ok(())
}

fn settings_text(settings: &Settings) -> StoreResult<String> {
    serde_json::to_string(settings).map_err(|e| StoreError::database(e.to_string()))
}

pub trait ProgramStore: Backend {
    /// A program, its first API key and their audit records, in one transaction.
    fn create_program(
        &self,
        program: ProgramRow,
        key: ApiKeyRow,
        audit: Vec<AuditEntry>,
    ) -> impl StoreFuture<()> {
        async move {
            let settings = settings_text(&program.settings)?;
            self.write(
                (program, key, settings, audit),
                |db, (p, key, settings, audit)| {
                    Box::pin(async move {
                        let args = args![
                            &p.id,
                            &p.name,
                            p.mode.as_str(),
                            settings,
                            p.created_at,
                            p.updated_at
                        ];
                        db.exec(&INSERT_PROGRAM, &args).await?;
                        insert_api_key(db, key).await?;
                        for entry in audit {
                            outbox::append_audit(db, entry).await?;
                        }
                        Ok(())
                    })
                },
            )
            .await
        }
    }

    fn get_program(&self, id: &str) -> impl StoreFuture<Option<ProgramRow>> {
        self.first_row(&PROGRAM, vals![id], decode::program)
    }

    fn list_programs(&self) -> impl StoreFuture<Vec<ProgramRow>> {
        self.rows_read(&PROGRAMS, vec![], decode::program, ALL)
    }

    /// New settings and mode, with the audit record of the change.
    fn update_program(
        &self,
        id: &str,
        settings: Settings,
        mode: Mode,
        now: Timestamp,
        audit: AuditEntry,
    ) -> impl StoreFuture<bool> {
        async move {
            let settings = settings_text(&settings)?;
            let vals = vals![&settings, mode.as_str(), now, id];
            outbox::exec_audited(self, &UPDATE_PROGRAM, vals, audit).await
        }
    }

    /// The unrevoked API key with this hash, and its program.
    fn authenticate(
        &self,
        key_hash: SecretHash,
    ) -> impl StoreFuture<Option<(ApiKeyRow, ProgramRow)>> {
        async move {
            let cache = self.read_cache();
            let stamp = cache.and_then(|c| c.stamp());
            if let (Some(cache), Some(stamp)) = (cache, &stamp) {
                if let (Some(auth), _) = cache.get(stamp, &key_hash, None) {
                    return Ok(Some(auth));
                }
            }
            let found = self
                .read_short(key_hash, |db, hash| {
                    Box::pin(async move {
                        first(db, &AUTHENTICATE, &args![hash], decode::key_and_program).await
                    })
                })
                .await?;
            if let (Some(cache), Some(stamp), Some((key, program))) = (cache, &stamp, &found) {
                cache.put(stamp, Some((key, program)), None);
            }
            Ok(found)
        }
    }

    /// [`ProgramStore::authenticate`] and the key's program's card with this
    /// id in one read (one statement): the path of every request about one
    /// card, PIN verification first. `None`: no such unrevoked key;
    /// `Some((.., None))`: the key is good but its program has no such card.
    fn authenticate_card(
        &self,
        key_hash: SecretHash,
        card_id: &str,
    ) -> impl StoreFuture<Option<AuthenticatedCard>> {
        // Owned only where a read needs it: a request whose caller and card are
        // both held between commits (most verifications on SQLite) allocates nothing.
        async move {
            let cache = self.read_cache();
            let stamp = cache.and_then(|c| c.stamp());
            if let (Some(cache), Some(stamp)) = (cache, &stamp) {
                match cache.get(stamp, &key_hash, Some(card_id)) {
                    (Some((key, program)), Some(card)) => {
                        return Ok(Some((key, program, Some(card))));
                    }
                    (Some((key, program)), None) => {
                        // The caller is known: only the card to read.
                        let card = self
                            .read_short((program.id.clone(), card_id.to_owned()), |db, (p, c)| {
                                Box::pin(async move {
                                    first(db, &CARD, &args![c, p], decode::card).await
                                })
                            })
                            .await?;
                        if let Some(card) = &card {
                            cache.put(stamp, None, Some(card));
                        }
                        return Ok(Some((key, program, card)));
                    }
                    (None, _) => {}
                }
            }
            let found = self
                .read_short((key_hash, card_id.to_owned()), |db, (hash, card)| {
                    Box::pin(async move {
                        first(
                            db,
                            &AUTHENTICATE_CARD,
                            &args![hash, card],
                            decode::authenticated_card,
                        )
                        .await
                    })
                })
                .await?;
            if let (Some(cache), Some(stamp), Some((key, program, card))) = (cache, &stamp, &found)
            {
                cache.put(stamp, Some((key, program)), card.as_ref());
            }
            Ok(found)
        }
    }

    /// A new API key, with its audit record.
    fn create_api_key(&self, key: ApiKeyRow, audit: AuditEntry) -> impl StoreFuture<()> {
        self.write((key, audit), |db, (key, audit)| {
            Box::pin(async move {
                insert_api_key(db, key).await?;
                outbox::append_audit(db, audit).await
            })
        })
    }

    fn list_api_keys(&self, program_id: &str) -> impl StoreFuture<Vec<ApiKeyRow>> {
        self.rows_read(&API_KEYS, vals![program_id], decode::api_key, ALL)
    }

    /// False when there is no such unrevoked key (nothing is recorded then).
    fn revoke_api_key(
        &self,
        id: &str,
        now: Timestamp,
        audit: AuditEntry,
    ) -> impl StoreFuture<bool> {
        outbox::exec_audited(self, &REVOKE_API_KEY, vals![now, id], audit)
    }
}

impl<B: Backend> ProgramStore for B {}
