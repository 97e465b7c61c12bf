//! What every table of keys wrapped by the master key shares (issuer key sets,
//! PIN verification keys, key block protection keys): a key is inserted with
//! its audit record, read by id (within its program, where keys are a
//! program's), and listed newest first, one program's or all.

use super::outbox;
use super::page::{self, Page};
use crate::store::backend::Backend;
use crate::store::db::{DbResult, Row, Sql, Val};
use crate::store::error::StoreFuture;
use crate::store::rows::AuditEntry;

/// A table's statements, made by [`key_table!`].
#[derive(Debug)]
pub struct KeyTable<T: 'static> {
    pub insert: Sql,
    /// `$1` the id, then `$2` the program where keys are a program's.
    pub one: Sql,
    pub all: Page,
    /// One program's keys (`$1` the program), where keys are a program's.
    pub program: Option<Page>,
    pub decode: fn(Row<'_>) -> DbResult<T>,
    /// A row's values, in the columns' order.
    pub encode: fn(&T) -> Vec<Val>,
    pub id: fn(&T) -> &str,
}

/// The statements of table `$table`, whose columns (the insert's and the
/// decoder's order) the macro `$cols` names, `$values` the insert's
/// placeholders, `$decode` and `$encode` a row from and to its columns;
/// `program` where its keys are a program's (a `program_id` column).
macro_rules! key_table {
    ($table:literal, $cols:ident, $values:literal, $decode:path, $encode:path, program) => {
        $crate::store::catalogue::key_tables::key_table!(@ $table, $cols, $values, $decode, $encode,
            " AND program_id = $2",
            Some($crate::store::catalogue::page::Page {
                lookup: $crate::store::db::sql!(concat!(
                    "SELECT seq FROM ", $table, " WHERE id = $1 AND program_id = $2"
                )),
                list: $crate::store::db::sql!(concat!(
                    "SELECT ", $cols!(), " FROM ", $table,
                    " WHERE program_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
                )),
            }))
    };
    ($table:literal, $cols:ident, $values:literal, $decode:path, $encode:path) => {
        $crate::store::catalogue::key_tables::key_table!(@ $table, $cols, $values, $decode, $encode, "", None)
    };
    (@ $table:literal, $cols:ident, $values:literal, $decode:path, $encode:path, $scope:literal, $program:expr) => {
        $crate::store::catalogue::key_tables::KeyTable {
            insert: $crate::store::db::sql!(concat!(
                "INSERT INTO ", $table, " (", $cols!(), ") VALUES (", $values, ")"
            )),
            one: $crate::store::db::sql!(concat!(
                "SELECT ", $cols!(), " FROM ", $table, " WHERE id = $1", $scope
            )),
            all: $crate::store::catalogue::page::Page {
                lookup: $crate::store::db::sql!(concat!("SELECT seq FROM ", $table, " WHERE id = $1")),
                list: $crate::store::db::sql!(concat!(
                    "SELECT ", $cols!(), " FROM ", $table,
                    " WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
                )),
            },
            program: $program,
            decode: $decode,
            encode: $encode,
            id: |row| &row.id,
        }
    };
}
pub(crate) use key_table;

/// A row of a table of keys.
pub trait KeyRow: Send + Sized + 'static {
    fn table() -> &'static KeyTable<Self>;
}

pub trait KeyTableStore: Backend {
    /// A new key, with its audit record, in one transaction.
    fn insert_key<K: KeyRow>(&self, key: K, audit: AuditEntry) -> impl StoreFuture<()> {
        let table = K::table();
        let inserted = outbox::exec_audited(self, &table.insert, (table.encode)(&key), audit);
        async move { inserted.await.map(drop) }
    }

    /// The key with this id: the program's, where keys are a program's
    /// (`program_id` is then required), else the operator's.
    fn get_key<K: KeyRow>(
        &self,
        program_id: Option<&str>,
        id: &str,
    ) -> impl StoreFuture<Option<K>> {
        let table = K::table();
        let mut key = vec![Val::Text(id.to_owned())];
        key.extend(program_id.map(|p| Val::Text(p.to_owned())));
        self.first_row(&table.one, key, table.decode)
    }

    /// A page of keys newest first, one program's (where keys are a
    /// program's) or all; `None` when `starting_after` names none of them.
    fn list_keys<K: KeyRow>(
        &self,
        program_id: Option<&str>,
        limit: u32,
        starting_after: Option<&str>,
    ) -> impl StoreFuture<Option<(Vec<K>, bool)>> {
        let table = K::table();
        let (page, scope) = match (program_id, &table.program) {
            (Some(p), Some(page)) => (page, vec![Val::Text(p.to_owned())]),
            _ => (&table.all, vec![]),
        };
        page::read_in(self, page, scope, starting_after, limit, table.decode)
    }

    /// Every key, page after page (one program's or all), for the
    /// operator's commands and maintenance passes.
    fn every_key<K: KeyRow>(&self, program_id: Option<&str>) -> impl StoreFuture<Vec<K>> {
        page::every(
            move |after| async move { self.list_keys::<K>(program_id, 100, after.as_deref()).await },
            |k: &K| (K::table().id)(k).to_owned(),
        )
    }
}

impl<B: Backend> KeyTableStore for B {}
