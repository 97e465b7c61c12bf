//! The seam between the SQL catalogue and the two databases.
//!
//! Every statement is written once ([`Sql`], PostgreSQL's `$1` placeholders,
//! turned into SQLite's `?1` at compile time), with [`Arg`]s bound the same
//! way on both, and every row is decoded once through [`Row`]. What uses them
//! (the compositions in the catalogue: "supersede the card's tokens, insert
//! the new one, write its events") is an `async fn` over a [`Db`], written
//! once and run by both backends: on PostgreSQL over a transaction or a
//! pooled client; on SQLite over a connection of the writer thread or of the
//! reader pool, where every future is ready on its first poll (rusqlite is
//! synchronous), so [`run_now`] completes it on the calling thread.

use std::future::Future;
use std::pin::Pin;

use crate::domain::time::Timestamp;

/// One statement in both dialects. Most are the same text but for the
/// placeholders ([`sql!`]); where the dialects really differ, each has its
/// own ([`sql_each!`]). An empty text is a statement the dialect does not
/// need (it is not sent; it affects no row and returns none).
#[derive(Debug, Clone, Copy)]
pub struct Sql {
    pub pg: &'static str,
    pub lite: &'static str,
}

/// `text` with every `$` made `?` (SQLite's numbered parameters): `N` is its length.
pub const fn sqlite_text<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = if bytes[i] == b'$' { b'?' } else { bytes[i] };
        i += 1;
    }
    out
}

/// A statement both dialects share, written with PostgreSQL's `$1`.
macro_rules! sql {
    ($text:expr) => {{
        const PG: &str = $text;
        const BYTES: [u8; PG.len()] = $crate::store::db::sqlite_text::<{ PG.len() }>(PG);
        const LITE: &str = match ::core::str::from_utf8(&BYTES) {
            Ok(s) => s,
            Err(_) => panic!("a statement is not UTF-8"),
        };
        $crate::store::db::Sql { pg: PG, lite: LITE }
    }};
}

/// A statement whose dialects differ; the SQLite text is written with `$1`
/// as well (or empty: not needed there).
macro_rules! sql_each {
    (pg: $pg:expr, sqlite: $lite:expr $(,)?) => {{
        const LITE_PG: &str = $lite;
        const BYTES: [u8; LITE_PG.len()] =
            $crate::store::db::sqlite_text::<{ LITE_PG.len() }>(LITE_PG);
        const LITE: &str = match ::core::str::from_utf8(&BYTES) {
            Ok(s) => s,
            Err(_) => panic!("a statement is not UTF-8"),
        };
        $crate::store::db::Sql {
            pg: $pg,
            lite: LITE,
        }
    }};
}

pub(crate) use {sql, sql_each};

/// A parameter, bound the same way on both databases. Integers are `BIGINT`
/// (PostgreSQL) or `INTEGER` (SQLite) columns; flags are `BOOLEAN` or 0/1.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
    Bool(bool),
    Null,
}

/// `From` each type for one variant: by `Into` (the integers), or by a
/// reference's own coercion (`&String` to `&str`, `&Vec<u8>` to `&[u8]`).
macro_rules! arg_from {
    (into $variant:ident: $($t:ty),*) => {$(
        impl<'a> From<$t> for Arg<'a> {
            fn from(v: $t) -> Self {
                Arg::$variant(v.into())
            }
        }
    )*};
    (ref $variant:ident: $($t:ty),*) => {$(
        impl<'a> From<$t> for Arg<'a> {
            fn from(v: $t) -> Self {
                Arg::$variant(v)
            }
        }
    )*};
}
arg_from!(into Int: i64, u32, u16);
arg_from!(into Bool: bool);
arg_from!(ref Text: &'a str, &'a String);
arg_from!(ref Bytes: &'a [u8], &'a Vec<u8>);
impl<'a, const N: usize> From<&'a [u8; N]> for Arg<'a> {
    fn from(v: &'a [u8; N]) -> Self {
        Arg::Bytes(v)
    }
}
impl<'a, T> From<Option<T>> for Arg<'a>
where
    T: Into<Arg<'a>>,
{
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}
impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_ref().map_or(Arg::Null, |s| Arg::Text(s))
    }
}
impl<'a> From<&'a Option<Vec<u8>>> for Arg<'a> {
    fn from(v: &'a Option<Vec<u8>>) -> Self {
        v.as_ref().map_or(Arg::Null, |s| Arg::Bytes(s))
    }
}

/// A parameter that owns its value: what an operation keeps when it may run
/// again, or on another thread.
#[derive(Debug, Clone)]
pub enum Val {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
    Null,
}

impl Val {
    pub fn arg(&self) -> Arg<'_> {
        match self {
            Val::Int(v) => Arg::Int(*v),
            Val::Text(s) => Arg::Text(s),
            Val::Bytes(b) => Arg::Bytes(b),
            Val::Bool(b) => Arg::Bool(*b),
            Val::Null => Arg::Null,
        }
    }
}

impl From<Arg<'_>> for Val {
    fn from(a: Arg<'_>) -> Self {
        match a {
            Arg::Int(v) => Val::Int(v),
            Arg::Text(s) => Val::Text(s.to_owned()),
            Arg::Bytes(b) => Val::Bytes(b.to_vec()),
            Arg::Bool(b) => Val::Bool(b),
            Arg::Null => Val::Null,
        }
    }
}

/// `Vec<Val>` from values of any type an [`Arg`] is made from.
macro_rules! vals {
    ($($v:expr),* $(,)?) => {
        vec![$($crate::store::db::Val::from($crate::store::db::Arg::from($v))),*]
    };
}
pub(crate) use vals;

/// `[Arg; N]` from values of any type an [`Arg`] is made from.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        [$($crate::store::db::Arg::from($v)),*]
    };
}
pub(crate) use args;

/// What goes wrong below the store: the database's own error (kept whole, so
/// its code and constraint name reach [`super::StoreError`]), or a value that
/// does not decode.
#[derive(Debug)]
pub enum DbError {
    Sqlite(rusqlite::Error),
    Postgres(tokio_postgres::Error),
    /// A stored value this version cannot read (column named).
    Decode(String),
    /// A composition that should have been synchronous waited (a bug).
    NotReady,
    /// A compare-and-set kept losing to concurrent changes of this row.
    Lost(&'static str),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Sqlite(e) => e.fmt(f),
            DbError::Postgres(e) => match e.as_db_error() {
                Some(db) => db.fmt(f),
                None => e.fmt(f),
            },
            DbError::Decode(what) => write!(f, "bad {what} in the database"),
            DbError::NotReady => f.write_str("a database call did not complete"),
            DbError::Lost(what) => write!(f, "{what} kept changing concurrently; try again"),
        }
    }
}

impl std::error::Error for DbError {}

pub type DbResult<T> = Result<T, DbError>;

/// A value that does not decode.
pub fn bad(what: &str) -> DbError {
    DbError::Decode(what.to_owned())
}

/// A compare-and-set on `what` kept losing.
pub fn lost(what: &'static str) -> DbError {
    DbError::Lost(what)
}

/// One value of a result row as the database gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'r> {
    Null,
    Int(i64),
    Text(&'r str),
    Bytes(&'r [u8]),
    Bool(bool),
}

/// A result row's values by position.
pub trait Cells {
    fn cell(&self, idx: usize) -> DbResult<Cell<'_>>;
}

/// A result row, read by position, with the conversions both databases share.
#[derive(Clone, Copy)]
pub struct Row<'r> {
    cells: &'r dyn Cells,
    /// Added to every index (a join reads a table's columns after another's).
    at: usize,
}

impl std::fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be sealed data: never printed.
        f.debug_struct("Row")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl<'r> Row<'r> {
    pub fn new(cells: &'r dyn Cells) -> Self {
        Row { cells, at: 0 }
    }

    /// The same row, with column `at` read as column 0.
    pub fn from(self, at: usize) -> Self {
        Row {
            cells: self.cells,
            at: self.at + at,
        }
    }

    pub fn cell(&self, idx: usize) -> DbResult<Cell<'r>> {
        self.cells.cell(self.at + idx)
    }

    pub fn is_null(&self, idx: usize) -> DbResult<bool> {
        Ok(matches!(self.cell(idx)?, Cell::Null))
    }

    pub fn opt_i64(&self, idx: usize) -> DbResult<Option<i64>> {
        match self.cell(idx)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(v)),
            Cell::Bool(b) => Ok(Some(i64::from(b))),
            _ => Err(bad("integer")),
        }
    }

    pub fn i64(&self, idx: usize) -> DbResult<i64> {
        self.opt_i64(idx)?.ok_or_else(|| bad("integer (null)"))
    }

    pub fn time(&self, idx: usize) -> DbResult<Timestamp> {
        self.i64(idx)
    }

    pub fn opt_time(&self, idx: usize) -> DbResult<Option<Timestamp>> {
        self.opt_i64(idx)
    }

    pub fn opt_u32(&self, idx: usize) -> DbResult<Option<u32>> {
        self.opt_i64(idx)?
            .map(|v| u32::try_from(v).map_err(|_| bad("integer out of range")))
            .transpose()
    }

    pub fn u32(&self, idx: usize) -> DbResult<u32> {
        self.opt_u32(idx)?.ok_or_else(|| bad("integer (null)"))
    }

    pub fn u64(&self, idx: usize) -> DbResult<u64> {
        u64::try_from(self.i64(idx)?).map_err(|_| bad("count"))
    }

    pub fn bool(&self, idx: usize) -> DbResult<bool> {
        match self.cell(idx)? {
            Cell::Bool(b) => Ok(b),
            Cell::Int(v) => Ok(v != 0),
            _ => Err(bad("flag")),
        }
    }

    pub fn opt_str(&self, idx: usize) -> DbResult<Option<&'r str>> {
        match self.cell(idx)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s)),
            _ => Err(bad("text")),
        }
    }

    pub fn str(&self, idx: usize) -> DbResult<&'r str> {
        self.opt_str(idx)?.ok_or_else(|| bad("text (null)"))
    }

    /// A text column read by `parse` (`KeyKind::parse`…); `what` names it
    /// when the text is none of the values `parse` knows.
    pub fn parse<T>(
        &self,
        idx: usize,
        parse: fn(&str) -> Option<T>,
        what: &'static str,
    ) -> DbResult<T> {
        parse(self.str(idx)?).ok_or_else(|| bad(what))
    }

    pub fn string(&self, idx: usize) -> DbResult<String> {
        self.str(idx).map(str::to_owned)
    }

    pub fn opt_string(&self, idx: usize) -> DbResult<Option<String>> {
        Ok(self.opt_str(idx)?.map(str::to_owned))
    }

    pub fn opt_bytes(&self, idx: usize) -> DbResult<Option<Vec<u8>>> {
        match self.cell(idx)? {
            Cell::Null => Ok(None),
            Cell::Bytes(b) => Ok(Some(b.to_vec())),
            _ => Err(bad("bytes")),
        }
    }

    pub fn bytes(&self, idx: usize) -> DbResult<Vec<u8>> {
        self.opt_bytes(idx)?.ok_or_else(|| bad("bytes (null)"))
    }

    /// A 32-byte value (a hash).
    pub fn bytes32(&self, idx: usize) -> DbResult<[u8; 32]> {
        match self.cell(idx)? {
            Cell::Bytes(b) => b.try_into().map_err(|_| bad("hash")),
            _ => Err(bad("hash")),
        }
    }
}

pub type DbFuture<'a, T> = Pin<Box<dyn Future<Output = DbResult<T>> + Send + 'a>>;

/// Called with each result row in turn.
pub type EachRow<'a> = dyn FnMut(Row<'_>) -> DbResult<()> + Send + 'a;

/// A statement's parameters, in order.
pub type Args<'a> = &'a [Arg<'a>];

/// A connection or transaction of either database.
pub trait Db: Send {
    /// Which of a statement's two texts this database runs.
    fn text(&self, sql: &Sql) -> &'static str;
    /// Runs one text of a statement; how many rows it changed.
    fn exec_text<'a>(&'a mut self, text: &'static str, args: Args<'a>) -> DbFuture<'a, u64>;
    /// Runs one text of a query and hands each row to `each`, in order.
    fn query_text<'a>(
        &'a mut self,
        text: &'static str,
        args: Args<'a>,
        each: &'a mut EachRow<'a>,
    ) -> DbFuture<'a, ()>;
    /// Runs statements with no parameters, one after another (a migration).
    fn batch<'a>(&'a mut self, sql: &'a str) -> DbFuture<'a, ()>;

    /// Runs a statement; how many rows it changed. An empty text (a statement
    /// only the other dialect needs) is not sent: no rows.
    fn exec<'a>(&'a mut self, sql: &'a Sql, args: Args<'a>) -> DbFuture<'a, u64> {
        match self.text(sql) {
            "" => Box::pin(std::future::ready(Ok(0))),
            text => self.exec_text(text, args),
        }
    }
}

/// Every row: [`rows`]' `most`.
pub const ALL: usize = usize::MAX;

/// The rows, decoded: the first `most` of them (the others are not decoded).
/// An empty text is not sent (no rows), as [`Db::exec`].
pub async fn rows<T: Send>(
    db: &mut dyn Db,
    sql: &Sql,
    args: Args<'_>,
    decode: fn(Row<'_>) -> DbResult<T>,
    most: usize,
) -> DbResult<Vec<T>> {
    let mut out = Vec::new();
    let mut each = |r: Row<'_>| {
        if out.len() < most {
            out.push(decode(r)?);
        }
        Ok(())
    };
    match db.text(sql) {
        "" => {}
        text => db.query_text(text, args, &mut each).await?,
    }
    Ok(out)
}

/// The first row, decoded (`None`: no row).
pub async fn first<T: Send>(
    db: &mut dyn Db,
    sql: &Sql,
    args: Args<'_>,
    decode: fn(Row<'_>) -> DbResult<T>,
) -> DbResult<Option<T>> {
    Ok(rows(db, sql, args, decode, 1).await?.pop())
}

/// A store operation: a function of the database and of the data it was given,
/// written once in the catalogue. A backend may run it more than once
/// (PostgreSQL runs a transaction again after a serialization failure), so it
/// borrows its data rather than consuming it.
pub type Op<D, T> = for<'a> fn(&'a mut dyn Db, &'a D) -> DbFuture<'a, T>;

/// Completes a future that never waits: a composition over a SQLite
/// connection, whose calls are all synchronous. One that does wait is a bug,
/// reported as [`DbError::NotReady`] rather than blocking.
pub fn run_now<T>(future: impl Future<Output = DbResult<T>>) -> DbResult<T> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => Err(DbError::NotReady),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_the_same_in_both_dialects() {
        const Q: Sql = sql!("SELECT a FROM t WHERE b = $1 AND c = $2 OR d = $1");
        assert_eq!(Q.pg, "SELECT a FROM t WHERE b = $1 AND c = $2 OR d = $1");
        assert_eq!(Q.lite, "SELECT a FROM t WHERE b = ?1 AND c = ?2 OR d = ?1");
        const E: Sql = sql_each!(pg: "SELECT 1 FOR UPDATE", sqlite: "SELECT $1");
        assert_eq!((E.pg, E.lite), ("SELECT 1 FOR UPDATE", "SELECT ?1"));
    }

    #[test]
    fn a_future_that_waits_is_refused_not_blocked_on() {
        assert!(matches!(run_now(async { Ok(7) }), Ok(7)));
        let pending = std::future::pending::<DbResult<()>>();
        assert!(matches!(run_now(pending), Err(DbError::NotReady)));
    }
}
