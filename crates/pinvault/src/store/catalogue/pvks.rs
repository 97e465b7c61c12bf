//! PIN verification keys (Visa PVK, IBM 3624), per program, wrapped by the
//! master key.

use std::future::Future;

use pinblock::ibm3624::Ibm3624Params;
use serde_json::json;

use super::outbox;
use super::page::{self, Page};
use crate::domain::legacy::Method;
use crate::store::backend::Backend;
use crate::store::db::{DbResult, Row, Sql, args, bad, sql, vals};
use crate::store::error::StoreResult;
use crate::store::rows::{AuditEntry, PvkRow};

macro_rules! pvk_cols {
    () => {
        "id, program_id, name, method, kcv, wrapped, params, created_at, tr31"
    };
}

const INSERT: Sql = sql!(
    "INSERT INTO pin_verification_keys (id, program_id, name, method, kcv, wrapped, params, created_at, tr31)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
const ONE: Sql = sql!(concat!(
    "SELECT ",
    pvk_cols!(),
    " FROM pin_verification_keys WHERE id = $1 AND program_id = $2"
));
const PROGRAM_KEYS: Page = Page {
    lookup: sql!("SELECT seq FROM pin_verification_keys WHERE id = $1 AND program_id = $2"),
    list: sql!(concat!(
        "SELECT ",
        pvk_cols!(),
        " FROM pin_verification_keys WHERE program_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
    )),
};
const ALL_KEYS: Page = Page {
    lookup: sql!("SELECT seq FROM pin_verification_keys WHERE id = $1"),
    list: sql!(concat!(
        "SELECT ",
        pvk_cols!(),
        " FROM pin_verification_keys WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
    )),
};
pub(super) const REWRAP: Sql =
    sql!("UPDATE pin_verification_keys SET wrapped = $1 WHERE id = $2 AND wrapped = $3");

/// IBM 3624 parameters as stored.
pub fn params_json(p: &Ibm3624Params) -> serde_json::Value {
    json!({
        "decimalization_table": String::from_utf8_lossy(p.decimalization()),
        "validation_data_offset": p.validation_offset(),
        "validation_data_length": p.validation_length(),
        "pad_character": char::from(p.pad()).to_string(),
        "pin_length": p.pin_length(),
    })
}

fn parse_params(text: &str) -> Option<Ibm3624Params> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let small = |k: &str| v.get(k)?.as_u64().and_then(|n| u8::try_from(n).ok());
    let pad = v.get("pad_character")?.as_str()?.as_bytes();
    Ibm3624Params::new(
        v.get("decimalization_table")?.as_str()?,
        small("validation_data_offset")?,
        small("validation_data_length")?,
        *pad.first()?,
        small("pin_length")?,
    )
    .ok()
}

fn decode(r: Row<'_>) -> DbResult<PvkRow> {
    let method = Method::parse(r.str(3)?).ok_or_else(|| bad("method"))?;
    let params = match r.opt_str(6)? {
        None => None,
        Some(t) => Some(parse_params(t).ok_or_else(|| bad("params"))?),
    };
    Ok(PvkRow {
        id: r.string(0)?,
        program_id: r.string(1)?,
        name: r.string(2)?,
        method,
        kcv: r.string(4)?,
        wrapped: r.bytes(5)?,
        params,
        created_at: r.time(7)?,
        tr31: match r.opt_str(8)? {
            None => None,
            Some(t) => Some(serde_json::from_str(t).map_err(|_| bad("tr31"))?),
        },
    })
}

pub trait PvkStore: Backend {
    /// A new key, with its audit record.
    fn insert_pvk(
        &self,
        key: PvkRow,
        audit: AuditEntry,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.write((key, audit), |db, (k, audit)| {
            Box::pin(async move {
                let params = k.params.as_ref().map(|p| params_json(p).to_string());
                let tr31 = match &k.tr31 {
                    None => None,
                    Some(o) => Some(
                        serde_json::to_string(o)
                            .map_err(|_| crate::store::db::bad("a TR-31 origin"))?,
                    ),
                };
                let row = args![
                    &k.id,
                    &k.program_id,
                    &k.name,
                    k.method.as_str(),
                    &k.kcv,
                    &k.wrapped,
                    params.as_deref(),
                    k.created_at,
                    tr31.as_deref()
                ];
                db.exec(&INSERT, &row).await?;
                outbox::append_audit(db, audit).await
            })
        })
    }

    /// The program's key with this id.
    fn get_pvk(
        &self,
        program_id: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<PvkRow>>> + Send {
        self.first_row(&ONE, vals![id, program_id], decode)
    }

    /// Newest first (one program's, or all); `None` when `starting_after`
    /// names none of them.
    fn list_pvks(
        &self,
        program_id: Option<&str>,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl Future<Output = StoreResult<Option<(Vec<PvkRow>, bool)>>> + Send {
        let (page, scope) = match program_id {
            Some(p) => (&PROGRAM_KEYS, vals![p]),
            None => (&ALL_KEYS, vec![]),
        };
        page::read(
            self,
            page,
            scope.clone(),
            scope,
            starting_after,
            limit,
            decode,
        )
    }
}

impl<B: Backend> PvkStore for B {}
