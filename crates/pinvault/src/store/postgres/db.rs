//! The catalogue's statements on PostgreSQL: parameters by their declared
//! types, rows decoded by their columns' types.

use std::error::Error;

use std::collections::HashMap;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use tokio_postgres::{Client, Statement, Transaction};

/// The statements a connection has prepared, by their text (every statement
/// text is `'static`: its address and length name it).
pub(super) type Statements = HashMap<(usize, usize), Statement>;

use crate::store::db::{Arg, Args, Cell, Cells, Db, DbFuture, DbResult, EachRow, Row, Sql, bad};

/// A pooled client (reads) or a transaction (writes), with the connection's
/// prepared statements (`None`: the statement cache is off).
pub(super) enum PgDb<'c> {
    Client(&'c Client, Option<&'c mut Statements>),
    Tx(&'c Transaction<'c>, Option<&'c mut Statements>),
}

impl PgDb<'_> {
    /// `sql` prepared on this connection: from the cache, or prepared now and
    /// kept; `None` with the cache off (the text is then sent with each run as
    /// the unnamed statement, its parameters' types given: one round trip,
    /// and nothing named that a pooler in transaction mode could lose).
    async fn statement(&mut self, sql: &'static str) -> DbResult<Option<Statement>> {
        let key = (sql.as_ptr() as usize, sql.len());
        let (prepared, cache) = match self {
            PgDb::Client(c, Some(cache)) => match cache.get(&key) {
                Some(s) => return Ok(Some(s.clone())),
                None => (c.prepare(sql).await?, cache),
            },
            PgDb::Tx(t, Some(cache)) => match cache.get(&key) {
                Some(s) => return Ok(Some(s.clone())),
                None => (t.prepare(sql).await?, cache),
            },
            PgDb::Client(_, None) | PgDb::Tx(_, None) => return Ok(None),
        };
        cache.insert(key, prepared.clone());
        Ok(Some(prepared))
    }
}

type BoxError = Box<dyn Error + Sync + Send>;

fn refuse(arg: &str, ty: &Type) -> BoxError {
    format!("a {arg} parameter where the statement takes {ty}").into()
}

impl ToSql for Arg<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                _ => Err(refuse("integer", ty)),
            },
            Arg::Text(s) if <&str as ToSql>::accepts(ty) => s.to_sql(ty, out),
            Arg::Bytes(b) if <&[u8] as ToSql>::accepts(ty) => b.to_sql(ty, out),
            Arg::Bool(b) if <bool as ToSql>::accepts(ty) => b.to_sql(ty, out),
            Arg::Text(_) => Err(refuse("text", ty)),
            Arg::Bytes(_) => Err(refuse("bytes", ty)),
            Arg::Bool(_) => Err(refuse("boolean", ty)),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked against the value in `to_sql`: an `Arg` is any of them.
        true
    }

    to_sql_checked!();
}

struct PgRow<'a>(&'a tokio_postgres::Row);

impl Cells for PgRow<'_> {
    fn cell(&self, idx: usize) -> DbResult<Cell<'_>> {
        let r = self.0;
        let ty = r.columns().get(idx).ok_or_else(|| bad("column"))?.type_();
        let cell = match *ty {
            Type::INT8 => r.try_get::<_, Option<i64>>(idx)?.map(Cell::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(idx)?
                .map(|v| Cell::Int(v.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(idx)?
                .map(|v| Cell::Int(v.into())),
            Type::BOOL => r.try_get::<_, Option<bool>>(idx)?.map(Cell::Bool),
            Type::BYTEA => r.try_get::<_, Option<&[u8]>>(idx)?.map(Cell::Bytes),
            _ if <&str as tokio_postgres::types::FromSql>::accepts(ty) => {
                r.try_get::<_, Option<&str>>(idx)?.map(Cell::Text)
            }
            _ => return Err(bad(&format!("column of type {ty}"))),
        };
        Ok(cell.unwrap_or(Cell::Null))
    }
}

fn params<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

/// The parameters with the types they are sent as when no statement was
/// prepared to declare them: a NULL's type is left to the server
/// (unspecified, OID 0), like a literal `NULL`'s.
fn typed<'a>(args: &'a [Arg<'a>]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    args.iter()
        .map(|a| {
            let ty = match a {
                Arg::Int(_) => Type::INT8,
                Arg::Text(_) => Type::TEXT,
                Arg::Bytes(_) => Type::BYTEA,
                Arg::Bool(_) => Type::BOOL,
                Arg::Null => Type::new(
                    "unspecified".into(),
                    0,
                    tokio_postgres::types::Kind::Simple,
                    String::new(),
                ),
            };
            (a as &(dyn ToSql + Sync), ty)
        })
        .collect()
}

/// Runs `sql` as the unnamed statement (see [`typed`]): its rows, and how
/// many rows it changed.
async fn run_unnamed(
    client: &Client,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<(Vec<tokio_postgres::Row>, u64), tokio_postgres::Error> {
    use futures_util::TryStreamExt;
    let stream = client.query_typed_raw(sql, typed(args)).await?;
    futures_util::pin_mut!(stream);
    let mut rows = Vec::new();
    while let Some(row) = stream.try_next().await? {
        rows.push(row);
    }
    let changed = stream.rows_affected().unwrap_or(0);
    Ok((rows, changed))
}

impl Db for PgDb<'_> {
    fn text(&self, sql: &Sql) -> &'static str {
        sql.pg
    }

    fn exec_text<'a>(&'a mut self, text: &'static str, args: Args<'a>) -> DbFuture<'a, u64> {
        Box::pin(async move {
            let params = params(args);
            let statement = self.statement(text).await?;
            Ok(match (self, statement) {
                (PgDb::Client(c, _), Some(s)) => c.execute(&s, &params).await?,
                (PgDb::Tx(t, _), Some(s)) => t.execute(&s, &params).await?,
                (PgDb::Client(c, _), None) => run_unnamed(c, text, args).await?.1,
                (PgDb::Tx(t, _), None) => run_unnamed(t.client(), text, args).await?.1,
            })
        })
    }

    fn query_text<'a>(
        &'a mut self,
        text: &'static str,
        args: Args<'a>,
        each: &'a mut EachRow<'a>,
    ) -> DbFuture<'a, ()> {
        Box::pin(async move {
            let params = params(args);
            let statement = self.statement(text).await?;
            let rows = match (self, statement) {
                (PgDb::Client(c, _), Some(s)) => c.query(&s, &params).await?,
                (PgDb::Tx(t, _), Some(s)) => t.query(&s, &params).await?,
                (PgDb::Client(c, _), None) => run_unnamed(c, text, args).await?.0,
                (PgDb::Tx(t, _), None) => run_unnamed(t.client(), text, args).await?.0,
            };
            for r in &rows {
                each(Row::new(&PgRow(r)))?;
            }
            Ok(())
        })
    }

    fn batch<'a>(&'a mut self, sql: &'a str) -> DbFuture<'a, ()> {
        Box::pin(async move {
            match self {
                PgDb::Client(c, _) => c.batch_execute(sql).await?,
                PgDb::Tx(t, _) => t.batch_execute(sql).await?,
            }
            Ok(())
        })
    }
}
