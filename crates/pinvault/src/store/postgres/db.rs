//! The catalogue's statements on PostgreSQL: parameters by their declared
//! types, rows decoded by their columns' types.

use std::error::Error;

use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Transaction};

use crate::store::db::{Arg, Cell, Cells, Db, DbFuture, DbResult, EachRow, Row, Sql, bad};

/// A pooled client (reads) or a transaction (writes).
pub(super) enum PgDb<'c> {
    Client(&'c Client),
    Tx(&'c Transaction<'c>),
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

impl Db for PgDb<'_> {
    fn exec<'a>(&'a mut self, sql: &'a Sql, args: &'a [Arg<'a>]) -> DbFuture<'a, u64> {
        Box::pin(async move {
            if sql.pg.is_empty() {
                return Ok(0);
            }
            let params = params(args);
            Ok(match self {
                PgDb::Client(c) => c.execute(sql.pg, &params).await?,
                PgDb::Tx(t) => t.execute(sql.pg, &params).await?,
            })
        })
    }

    fn batch<'a>(&'a mut self, sql: &'a str) -> DbFuture<'a, ()> {
        Box::pin(async move {
            match self {
                PgDb::Client(c) => c.batch_execute(sql).await?,
                PgDb::Tx(t) => t.batch_execute(sql).await?,
            }
            Ok(())
        })
    }

    fn query<'a>(
        &'a mut self,
        sql: &'a Sql,
        args: &'a [Arg<'a>],
        each: &'a mut EachRow<'a>,
    ) -> DbFuture<'a, ()> {
        Box::pin(async move {
            let params = params(args);
            let rows = match self {
                PgDb::Client(c) => c.query(sql.pg, &params).await?,
                PgDb::Tx(t) => t.query(sql.pg, &params).await?,
            };
            for r in &rows {
                each(Row::new(&PgRow(r)))?;
            }
            Ok(())
        })
    }
}
