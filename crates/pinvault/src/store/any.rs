//! The database chosen at start (`--database-url`): one type for the rest of
//! the program, so the server and the commands are compiled once rather than
//! once per backend. It hands each operation to the backend it holds; the
//! operations themselves are the catalogue's, the same for both.

use super::backend::Backend;
use super::db::Op;
use super::error::StoreResult;
use super::read_cache::ReadCache;
use super::{PgStore, SqliteStore};

#[derive(Debug, Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl AnyStore {
    /// The backend's name, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Postgres(_) => "postgres",
        }
    }

    /// Everything committed so far, on disk (a SQLite store opened with
    /// [`super::Durability::AtSync`]; PostgreSQL's commits are durable each,
    /// `synchronous_commit` being on). Blocks: call it off the async threads.
    pub fn sync(&self) -> StoreResult<()> {
        match self {
            AnyStore::Sqlite(s) => s.sync(),
            AnyStore::Postgres(_) => Ok(()),
        }
    }
}

/// The same call on whichever backend `$store` holds.
macro_rules! each {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            AnyStore::Sqlite($s) => $call,
            AnyStore::Postgres($s) => $call,
        }
    };
}

impl Backend for AnyStore {
    async fn write<D, T>(&self, data: D, op: Op<D, T>) -> StoreResult<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        each!(self, s => s.write(data, op).await)
    }

    async fn read<D, T>(&self, data: D, op: Op<D, T>) -> StoreResult<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        each!(self, s => s.read(data, op).await)
    }

    async fn read_short<D, T>(&self, data: D, op: Op<D, T>) -> StoreResult<T>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        each!(self, s => s.read_short(data, op).await)
    }

    fn read_cache(&self) -> Option<&ReadCache> {
        each!(self, s => s.read_cache())
    }

    fn look_before_writing(&self) -> bool {
        each!(self, s => s.look_before_writing())
    }
}
