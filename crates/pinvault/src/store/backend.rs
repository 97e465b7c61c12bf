//! What a database must offer the catalogue: running an operation as one
//! transaction, or as a read. Everything else (which statements, in which
//! order, what the domain decided) is written once, in `catalogue/`.

use super::db::{Arg, DbResult, Op, Row, Sql, Val, rows};
use super::error::StoreFuture;
use super::read_cache::ReadCache;

pub trait Backend: Clone + Send + Sync + 'static {
    /// Runs `op` as one transaction, and answers once it is committed (so an
    /// answered write is durable). It may run `op` more than once (PostgreSQL,
    /// after a serialization failure): `op` must not act outside the database.
    fn write<D, T>(&self, data: D, op: Op<D, T>) -> impl StoreFuture<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static;

    /// Runs `op` as a read.
    fn read<D, T>(&self, data: D, op: Op<D, T>) -> impl StoreFuture<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static;

    /// A read of one indexed statement (a request's API key and card, a
    /// presented token). SQLite runs it on the calling thread, where a
    /// hand-off to the blocking pool would cost more than the read.
    fn read_short<D, T>(&self, data: D, op: Op<D, T>) -> impl StoreFuture<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.read(data, op)
    }

    /// API keys, programs and cards held between commits, where the database
    /// can say when anything was committed (SQLite's WAL index).
    fn read_cache(&self) -> Option<&ReadCache> {
        None
    }

    /// Before a write that a read can often show to be unneeded (a sweep, a
    /// poll): true when a look first is cheaper than the write's lock (SQLite,
    /// one writer for everything).
    fn look_before_writing(&self) -> bool {
        false
    }

    /// The rows of one statement, decoded, the first `most` of them (a read).
    fn rows_read<T: Send + 'static>(
        &self,
        sql: &'static Sql,
        vals: Vec<Val>,
        decode: fn(Row<'_>) -> DbResult<T>,
        most: usize,
    ) -> impl StoreFuture<Vec<T>> {
        self.read(
            (sql, vals, decode, most),
            |db, (sql, vals, decode, most)| {
                Box::pin(async move {
                    let args: Vec<Arg<'_>> = vals.iter().map(Val::arg).collect();
                    rows(db, sql, &args, *decode, *most).await
                })
            },
        )
    }

    /// The first row of one statement, decoded (a read).
    fn first_row<T: Send + 'static>(
        &self,
        sql: &'static Sql,
        vals: Vec<Val>,
        decode: fn(Row<'_>) -> DbResult<T>,
    ) -> impl StoreFuture<Option<T>> {
        async move { Ok(self.rows_read(sql, vals, decode, 1).await?.pop()) }
    }

    /// One statement as its own transaction; how many rows it changed.
    fn exec_one(&self, sql: &'static Sql, vals: Vec<Val>) -> impl StoreFuture<u64> {
        self.write((sql, vals), |db, (sql, vals)| {
            Box::pin(async move {
                let args: Vec<Arg<'_>> = vals.iter().map(Val::arg).collect();
                db.exec(sql, &args).await
            })
        })
    }
}
