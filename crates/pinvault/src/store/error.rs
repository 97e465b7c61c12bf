//! What the store answers when it cannot do what it was asked.

use super::db::DbError;

#[derive(Debug)]
pub enum StoreError {
    /// The database failed, is unreachable, did not answer in time, or holds
    /// a value this version cannot read. `source` is the database's own error
    /// where there is one.
    Database {
        message: String,
        source: Option<DbError>,
    },
    /// A write broke a rule of the schema (a unique column, a foreign key, a
    /// check): the constraint's name, as the schema gives it (PostgreSQL) or
    /// as SQLite reports it (`table.column`). Never shows the values.
    Constraint { constraint: String, source: DbError },
    /// A race was lost: the same change was made by someone else at the same
    /// moment, and the operation should be run again.
    Conflict(String),
}

impl StoreError {
    /// The database failed in a way that has no error of its own.
    pub fn database(message: impl Into<String>) -> Self {
        StoreError::Database {
            message: message.into(),
            source: None,
        }
    }

    /// The constraint a write broke, if that is what happened.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            StoreError::Constraint { constraint, .. } => Some(constraint),
            _ => None,
        }
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        if let DbError::Lost(_) = e {
            return StoreError::Conflict(e.to_string());
        }
        if let Some(constraint) = constraint_of(&e) {
            return StoreError::Constraint {
                constraint,
                source: e,
            };
        }
        StoreError::Database {
            message: e.to_string(),
            source: Some(e),
        }
    }
}

/// The name of the constraint a database error reports, if it is one.
fn constraint_of(e: &DbError) -> Option<String> {
    match e {
        DbError::Sqlite(rusqlite::Error::SqliteFailure(f, message))
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            // "UNIQUE constraint failed: cards.id", "FOREIGN KEY constraint failed".
            let m = message.as_deref().unwrap_or("constraint failed");
            Some(match m.split_once(": ") {
                Some((_, name)) => name.to_owned(),
                None => m.to_owned(),
            })
        }
        DbError::Postgres(e) => {
            let db = e.as_db_error()?;
            // Class 23: integrity constraint violation.
            db.code().code().starts_with("23").then(|| {
                db.constraint()
                    .map_or_else(|| db.code().code().to_owned(), str::to_owned)
            })
        }
        _ => None,
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Database { message, .. } => write!(f, "database: {message}"),
            // Not the database's message: PostgreSQL's detail repeats the values.
            StoreError::Constraint { constraint, .. } => {
                write!(f, "database: constraint {constraint} violated")
            }
            StoreError::Conflict(m) => write!(f, "conflict: {m}"),
        }
    }
}

impl std::error::Error for StoreError {
    /// The database's error for a failure; none for a constraint (its detail
    /// repeats the values that broke it).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Database {
                source: Some(e), ..
            } => Some(e),
            _ => None,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a store method returns: its answer once the database gave it, as a
/// future that may move between threads (the one return type of every store
/// method, named once).
pub trait StoreFuture<T>: std::future::Future<Output = StoreResult<T>> + Send {}

impl<T, F: std::future::Future<Output = StoreResult<T>> + Send> StoreFuture<T> for F {}
