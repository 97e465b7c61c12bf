//! A small connection pool for tokio-postgres: at most `size` connections, idle
//! ones kept for reuse, a broken one dropped and replaced on the next checkout.
//! Each connection keeps the statements it has prepared (unless the statement
//! cache is off), so a statement costs one round trip, not a prepare and then
//! an execute.
//! Every connection gets the statement timeout (and an idle-in-transaction
//! timeout, so a node that stalls inside a transaction cannot hold row locks for
//! long) when it is opened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config};

use super::db::Statements;

use super::tls::PgTls;
use crate::store::{StoreError, StoreResult};

/// Connection settings a node operator can choose (`serve --db-pool-size`, …).
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Most connections this process opens to the database.
    pub pool_size: usize,
    /// Longest a statement may run on the server (`statement_timeout`).
    pub statement_timeout: Duration,
    /// Longest a request waits for a free connection, or for a new one to open.
    pub acquire_timeout: Duration,
    /// Keep prepared statements per connection (`--db-statement-cache`).
    pub statement_cache: bool,
}

impl Default for PgSettings {
    fn default() -> Self {
        PgSettings {
            pool_size: 16,
            statement_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            statement_cache: true,
        }
    }
}

pub(super) struct Pool {
    config: Config,
    tls: PgTls,
    settings: PgSettings,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
}

/// A connection and what it has prepared.
struct Conn {
    client: Client,
    statements: Statements,
}

/// A connection checked out of the pool; it goes back when dropped, unless it
/// was marked broken or its connection has closed.
pub(super) struct Pooled {
    conn: Option<Conn>,
    pool: Arc<Pool>,
    broken: bool,
    _permit: OwnedSemaphorePermit,
}

impl Pooled {
    /// The client, and its prepared statements (`None` with the cache off).
    pub(super) fn parts(&mut self) -> (&mut Client, Option<&mut Statements>) {
        let cache = self.pool.settings.statement_cache;
        // Present from checkout until drop.
        let conn = self.conn.as_mut().unwrap_or_else(|| unreachable!());
        (&mut conn.client, cache.then_some(&mut conn.statements))
    }

    /// The connection may be in an unknown state (an I/O error, a timeout in the
    /// middle of a statement): close it rather than hand it to the next request.
    pub(super) fn discard(&mut self) {
        self.broken = true;
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !self.broken && !conn.client.is_closed() {
                self.pool
                    .idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(conn);
            }
        }
    }
}

impl Pool {
    pub(super) fn new(mut config: Config, tls: PgTls, settings: PgSettings) -> Arc<Pool> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(settings.acquire_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("pinvault");
        }
        Arc::new(Pool {
            config,
            tls,
            permits: Arc::new(Semaphore::new(settings.pool_size.max(1))),
            settings,
            idle: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn settings(&self) -> &PgSettings {
        &self.settings
    }

    pub(super) async fn get(self: &Arc<Self>) -> StoreResult<Pooled> {
        let wait = self.settings.acquire_timeout;
        let permit = tokio::time::timeout(wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                StoreError::database(format!(
                    "no database connection free within {} ms (pool size {})",
                    wait.as_millis(),
                    self.settings.pool_size
                ))
            })?
            .map_err(|_| StoreError::database("connection pool closed"))?;
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match idle {
                Some(conn) if conn.client.is_closed() => continue,
                Some(conn) => return Ok(self.wrap(conn, permit)),
                None => break,
            }
        }
        let client = tokio::time::timeout(wait, self.connect())
            .await
            .map_err(|_| {
                StoreError::database(format!(
                    "the database did not accept a connection within {} ms",
                    wait.as_millis()
                ))
            })??;
        let conn = Conn {
            client,
            statements: HashMap::new(),
        };
        Ok(self.wrap(conn, permit))
    }

    fn wrap(self: &Arc<Self>, conn: Conn, permit: OwnedSemaphorePermit) -> Pooled {
        Pooled {
            conn: Some(conn),
            pool: self.clone(),
            broken: false,
            _permit: permit,
        }
    }

    async fn connect(&self) -> StoreResult<Client> {
        let (client, connection) = self.config.connect(self.tls.clone()).await.map_err(|e| {
            StoreError::database(format!("cannot connect: {}", self.tls.explain(&e)))
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "database connection closed");
            }
        });
        let ms = self.settings.statement_timeout.as_millis();
        client
            .batch_execute(&format!(
                "SET statement_timeout = {ms}; SET idle_in_transaction_session_timeout = {}",
                ms * 2
            ))
            .await
            .map_err(|e| {
                StoreError::database(format!(
                    "cannot set up the connection: {}",
                    self.tls.explain(&e)
                ))
            })?;
        Ok(client)
    }
}
