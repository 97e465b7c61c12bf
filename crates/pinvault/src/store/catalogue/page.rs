//! Cursor pagination (API.md: `limit`, `starting_after`), newest first by `seq`.

use std::future::Future;

use crate::store::backend::Backend;
use crate::store::db::{ALL, Arg, Db, DbResult, Row, Sql, Val, first, rows};
use crate::store::error::{StoreFuture, StoreResult};

/// The two statements of a list.
#[derive(Debug)]
pub struct Page {
    /// Finds the `seq` of the `starting_after` row: `$1` its id, then the
    /// scope (so an id of another program's list is not found).
    pub lookup: Sql,
    /// Selects the rows: its own parameters, then the `seq` to stay below and
    /// the row limit as its last two.
    pub list: Sql,
}

/// A page of at most `limit` rows and whether more follow; `None` when
/// `starting_after` names no row of the list.
pub async fn fetch<T: Send>(
    db: &mut dyn Db,
    page: &Page,
    scope: &[Arg<'_>],
    params: &[Arg<'_>],
    starting_after: Option<&str>,
    limit: u32,
    decode: fn(Row<'_>) -> DbResult<T>,
) -> DbResult<Option<(Vec<T>, bool)>> {
    let before = match starting_after {
        None => i64::MAX,
        Some(id) => {
            let mut args = vec![Arg::Text(id)];
            args.extend_from_slice(scope);
            match first(db, &page.lookup, &args, |r| r.i64(0)).await? {
                Some(seq) => seq,
                None => return Ok(None),
            }
        }
    };
    let mut args = params.to_vec();
    args.push(Arg::Int(before));
    args.push(Arg::Int(i64::from(limit) + 1));
    let mut rows = rows(db, &page.list, &args, decode, ALL).await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok(Some((rows, has_more)))
}

/// A page of a list, read on its own (see [`fetch`]).
pub fn read<B: Backend, T: Send + 'static>(
    store: &B,
    page: &'static Page,
    scope: Vec<Val>,
    params: Vec<Val>,
    starting_after: Option<&str>,
    limit: u32,
    decode: fn(Row<'_>) -> DbResult<T>,
) -> impl StoreFuture<Option<(Vec<T>, bool)>> {
    let data = (
        page,
        scope,
        params,
        starting_after.map(str::to_owned),
        limit,
        decode,
    );
    store.read(data, |db, (page, scope, params, after, limit, decode)| {
        Box::pin(async move {
            let scope: Vec<Arg<'_>> = scope.iter().map(Val::arg).collect();
            let params: Vec<Arg<'_>> = params.iter().map(Val::arg).collect();
            fetch(db, page, &scope, &params, after.as_deref(), *limit, *decode).await
        })
    })
}

/// A page of a list whose statement's parameters are its scope alone (see
/// [`read`]).
pub fn read_in<B: Backend, T: Send + 'static>(
    store: &B,
    page: &'static Page,
    scope: Vec<Val>,
    starting_after: Option<&str>,
    limit: u32,
    decode: fn(Row<'_>) -> DbResult<T>,
) -> impl StoreFuture<Option<(Vec<T>, bool)>> {
    read(
        store,
        page,
        scope.clone(),
        scope,
        starting_after,
        limit,
        decode,
    )
}

/// Every row of a list, page after page (`page` reads the page after the
/// given id), for the operator's commands and maintenance passes.
pub async fn every<T, F, Fut>(mut page: F, id: fn(&T) -> String) -> StoreResult<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = StoreResult<Option<(Vec<T>, bool)>>>,
{
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    while let Some((rows, more)) = page(after.take()).await? {
        after = rows.last().map(id);
        out.extend(rows);
        if !more || after.is_none() {
            break;
        }
    }
    Ok(out)
}
