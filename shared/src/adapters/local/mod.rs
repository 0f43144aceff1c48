//! The embedded one-machine defaults: real implementations, not test doubles.
//!
//! - [`SqliteStore`]: the conversation store, one SQLite file;
//! - [`SqliteQueue`]: durable FIFO queues with SQS FIFO semantics;
//! - [`FileArchive`]: raw payloads as files;
//! - [`Outbox`]: the message sender when no Graph API token is configured.

mod files;
mod outbox;
mod sqlite_queue;
mod sqlite_store;

pub use files::FileArchive;
pub use outbox::{Outbox, OutboxEntry, OutboxKind};
pub use sqlite_queue::{
    DeadLetter, QueueSettings, QueueStats, Received, SqliteQueue, QUEUE_DEDUP_WINDOW_MS,
};
pub use sqlite_store::SqliteStore;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension};

use crate::error::{Error, Result};

const SERVICE: &str = "sqlite";

/// How long a writer waits for another connection's write lock (a queue and
/// the store may share one file) before giving up with a retryable error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite failure as the shared error. Lock contention and I/O trouble may
/// pass; anything else (schema, constraint, corrupt file) will not.
fn sqlite_error(context: &str, e: rusqlite::Error) -> Error {
    let retryable = matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::OutOfMemory
        )
    );
    Error::dependency(SERVICE, context.to_string(), retryable, e)
}

/// Data in the file that does not make sense (written by a newer version, or
/// edited by hand): never retryable.
fn corrupt(context: &str, detail: impl Into<String>) -> Error {
    Error::dependency(SERVICE, context.to_string(), false, detail.into())
}

trait SqliteContext<T> {
    fn ctx(self, context: &str) -> Result<T>;
}

impl<T> SqliteContext<T> for rusqlite::Result<T> {
    fn ctx(self, context: &str) -> Result<T> {
        self.map_err(|e| sqlite_error(context, e))
    }
}

/// Opens a connection set up the way every local adapter relies on: WAL (readers
/// never block the writer), `synchronous=NORMAL` (a commit survives a process
/// kill; only a power loss may lose the last commits), a busy timeout, and
/// foreign keys on.
fn open_connection(path: Option<&Path>) -> Result<Connection> {
    let conn = match path {
        Some(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::dependency(SERVICE, format!("creating {}", dir.display()), false, e)
                })?;
            }
            Connection::open(p).ctx("open")?
        }
        None => Connection::open_in_memory().ctx("open in memory")?,
    };
    conn.busy_timeout(BUSY_TIMEOUT).ctx("busy_timeout")?;
    if path.is_some() {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .ctx("journal_mode")?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(corrupt("journal_mode", format!("WAL refused, got {mode}")));
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .ctx("synchronous")?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .ctx("foreign_keys")?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS charla_schema (
            component TEXT PRIMARY KEY,
            version INTEGER NOT NULL
        );",
    )
    .ctx("schema table")?;
    Ok(conn)
}

/// Applies `ddl` (idempotent: `IF NOT EXISTS`) and records `component`'s
/// schema version, for future migrations that are not. A per-component
/// version (rather than `PRAGMA user_version`) lets the store and the queues
/// share one file; a file from a newer version is refused rather than misread.
fn migrate(conn: &mut Connection, component: &str, version: i64, ddl: &str) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .ctx("migrate")?;
    let current: Option<i64> = tx
        .query_row(
            "SELECT version FROM charla_schema WHERE component = ?1",
            [component],
            |r| r.get(0),
        )
        .optional()
        .ctx("schema version")?;
    if let Some(v) = current.filter(|v| *v > version) {
        return Err(corrupt(
            "schema",
            format!("{component} schema version {v} is newer than this build's {version}"),
        ));
    }
    tx.execute_batch(ddl).ctx("create schema")?;
    tx.execute(
        "INSERT INTO charla_schema (component, version) VALUES (?1, ?2)
         ON CONFLICT(component) DO UPDATE SET version = excluded.version",
        rusqlite::params![component, version],
    )
    .ctx("schema version")?;
    tx.commit().ctx("migrate")
}

/// One connection behind a std mutex; every call runs on the blocking pool so
/// SQLite never stalls the async runtime.
#[derive(Clone)]
struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    fn new(conn: Connection) -> Self {
        Db {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic inside a call dropped its transaction, which rolled it
            // back: the connection is fine to use again.
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::dependency(SERVICE, "blocking task", true, e))?
    }
}

/// Milliseconds as SQLite integers, saturating rather than wrapping.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn usize_to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
