//! The catalogue's statements on a SQLite connection: prepared once per
//! connection (`prepare_cached`), run synchronously (every future is ready on
//! its first poll).

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, params_from_iter};

use crate::store::db::{Arg, Args, Cell, Cells, Db, DbFuture, DbResult, EachRow, Row, Sql, bad};

/// A connection of the writer thread (inside its transaction) or of the
/// reader pool. Held by `&mut`: the connection is not shared while a
/// statement runs.
pub(super) struct LiteDb<'c>(pub(super) &'c mut Connection);

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Int(v) => ValueRef::Integer(v),
            Arg::Text(s) => ValueRef::Text(s.as_bytes()),
            Arg::Bytes(b) => ValueRef::Blob(b),
            Arg::Bool(b) => ValueRef::Integer(i64::from(b)),
            Arg::Null => ValueRef::Null,
        }))
    }
}

struct LiteRow<'a, 'stmt>(&'a rusqlite::Row<'stmt>);

impl Cells for LiteRow<'_, '_> {
    fn cell(&self, idx: usize) -> DbResult<Cell<'_>> {
        Ok(match self.0.get_ref(idx)? {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(v) => Cell::Int(v),
            ValueRef::Text(t) => {
                Cell::Text(std::str::from_utf8(t).map_err(|_| bad("text (not UTF-8)"))?)
            }
            ValueRef::Blob(b) => Cell::Bytes(b),
            ValueRef::Real(_) => return Err(bad("number (a real)")),
        })
    }
}

impl Db for LiteDb<'_> {
    fn text(&self, sql: &Sql) -> &'static str {
        sql.lite
    }

    fn exec_text<'a>(&'a mut self, text: &'static str, args: Args<'a>) -> DbFuture<'a, u64> {
        Box::pin(async move {
            let n = self
                .0
                .prepare_cached(text)?
                .execute(params_from_iter(args.iter()))?;
            Ok(n as u64)
        })
    }

    fn query_text<'a>(
        &'a mut self,
        text: &'static str,
        args: Args<'a>,
        each: &'a mut EachRow<'a>,
    ) -> DbFuture<'a, ()> {
        Box::pin(async move {
            let mut stmt = self.0.prepare_cached(text)?;
            let mut rows = stmt.query(params_from_iter(args.iter()))?;
            while let Some(r) = rows.next()? {
                each(Row::new(&LiteRow(r)))?;
            }
            Ok(())
        })
    }

    fn batch<'a>(&'a mut self, sql: &'a str) -> DbFuture<'a, ()> {
        Box::pin(async move { Ok(self.0.execute_batch(sql)?) })
    }
}
