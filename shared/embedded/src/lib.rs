//! The embedded one-machine defaults of the one-process runner (never in a
//! Lambda binary): real implementations, not test doubles.
//!
//! - [`SqliteStore`]: the conversation store, one SQLite file;
//! - [`SqliteQueue`]: durable FIFO queues with SQS FIFO semantics;
//! - [`FileArchive`]: raw payloads as files;
//! - [`Outbox`]: the message sender when no Graph API token is configured;
//! - [`LexiconSentiment`]: sentiment for es, en and pt from a word list.
//! - [`FileMediaStore`]: users' media as files, with [`LocalImages`] and
//!   [`LocalDocuments`] reading them (no speech: [`NoSpeech`]).

mod call_records;
mod campaigns;
mod escalations;
mod files;
mod media_analysis;
mod media_notes;
mod media_store;
mod outbox;
mod sentiment;
mod sqlite_queue;
mod sqlite_store;
mod usage;

pub use call_records::SqliteCallRecords;
pub use campaigns::SqliteCampaigns;
pub use escalations::{QueueTimers, SqliteEscalations};
pub use files::FileArchive;
pub use media_analysis::{LocalDocuments, LocalImages, NoSpeech};
pub use media_notes::SqliteMediaNotes;
pub use media_store::FileMediaStore;
pub use outbox::{Outbox, OutboxEntry, OutboxKind};
pub use sentiment::LexiconSentiment;
pub use sqlite_queue::{
    DeadLetter, QueueSettings, QueueStats, Received, SqliteQueue, QUEUE_DEDUP_WINDOW_MS,
};
pub use sqlite_store::SqliteStore;
pub use usage::SqliteUsage;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension};
use tokio::sync::oneshot;

use domain::error::{Error, Result};

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

/// Every row `sql` selects, through `row`; any failure says `context`.
fn query_all<T>(
    conn: &rusqlite::Connection,
    context: &str,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).ctx(context)?;
    let rows = stmt
        .query_map(params, row)
        .ctx(context)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .ctx(context)?;
    Ok(rows)
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
/// foreign keys on. Checkpoints are left to [`Checkpointer`]: run inside a
/// commit they hold the connection through an fsync, which was the whole
/// tail of webhook latency on a virtual disk.
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
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .ctx("wal_autocheckpoint")?;
        // A burst can grow the WAL; it is cut back to this after a checkpoint.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .ctx("journal_size_limit")?;
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

/// Work for a connection's thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// One connection owned by its own thread, which runs the calls one after
/// another. Callers wait on a oneshot, never on a lock: with a mutex and the
/// blocking pool, a burst of webhooks meant a thread per request all parked
/// on one futex. A file database also gets a [`Checkpointer`]. The thread ends
/// when the last clone is dropped.
#[derive(Clone)]
struct Db {
    jobs: mpsc::Sender<Job>,
    _checkpointer: Option<Arc<Checkpointer>>,
}

impl Db {
    fn new(conn: Connection) -> Result<Self> {
        let path = conn.path().filter(|p| !p.is_empty()).map(PathBuf::from);
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(job) = queue.recv() {
                    // A panic inside a call dropped its transaction, which
                    // rolled it back; its caller sees the call fail, and the
                    // connection is fine for the next one.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                }
            })
            .map_err(|e| Error::dependency(SERVICE, "connection thread", false, e))?;
        let checkpointer = match path {
            Some(path) => Some(Arc::new(Checkpointer::start(&path, jobs.clone())?)),
            None => None,
        };
        Ok(Db {
            jobs,
            _checkpointer: checkpointer,
        })
    }

    async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have gone (a cancelled request): nothing to do.
            let _ = done.send(f(conn));
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::dependency(SERVICE, "connection thread", false, "stopped"))?;
        result.await.map_err(|_| {
            Error::dependency(SERVICE, "connection thread", true, "the call panicked")
        })?
    }
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL size kept after a checkpoint, in bytes.
const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

/// WAL size, in frames, past which the writers are paused for a moment so
/// that the WAL can start over (about 16 MB with 4 KB pages).
const WAL_RESTART_FRAMES: i64 = 4096;

/// Checkpoints a WAL database from its own connection and thread, so that the
/// writers' commits never wait for the fsync a checkpoint needs.
///
/// A PASSIVE checkpoint never blocks anyone, but under steady writes it never
/// catches up either, and the WAL only starts over once it has. So when the
/// WAL has grown, a TRUNCATE checkpoint is queued on the writers' own
/// connection, between two calls: no write is under way there, only the few
/// pages written since the passive one are left to copy, and the WAL starts
/// over from empty. (A second PASSIVE one there could still lose the race
/// with this thread's and leave the WAL growing on a busy machine.) Stops
/// when dropped.
struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    fn start(path: &Path, writer: mpsc::Sender<Job>) -> Result<Self> {
        let conn = Connection::open(path).ctx("open checkpointer")?;
        conn.busy_timeout(BUSY_TIMEOUT).ctx("busy_timeout")?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .ctx("journal_size_limit")?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                // Nothing is ever sent: the sender's drop is the signal.
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    let frames = match checkpoint(&conn) {
                        Ok(frames) => frames,
                        Err(e) => {
                            tracing::warn!(error = %e, "sqlite checkpoint failed; retrying later");
                            continue;
                        }
                    };
                    if frames < WAL_RESTART_FRAMES {
                        continue;
                    }
                    let job: Job = Box::new(|conn| {
                        if let Err(e) = conn
                            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                            .ctx("checkpoint")
                        {
                            tracing::warn!(error = %e, "sqlite checkpoint failed; retrying later");
                        }
                    });
                    if writer.send(job).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::dependency(SERVICE, "checkpoint thread", false, e))?;
        Ok(Checkpointer { _stop: stop })
    }
}

/// A PASSIVE checkpoint; returns the size of the WAL in frames.
fn checkpoint(conn: &Connection) -> Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
        .ctx("checkpoint")
}

/// Milliseconds as SQLite integers, saturating rather than wrapping.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn usize_to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_at(path: &Path) -> Db {
        let conn = open_connection(Some(path)).expect("open");
        conn.execute_batch("CREATE TABLE t (v BLOB NOT NULL)")
            .expect("table");
        Db::new(conn).expect("db")
    }

    #[tokio::test]
    async fn a_call_that_panics_fails_alone_and_the_connection_goes_on() {
        let db = Db::new(open_connection(None).expect("open")).expect("db");
        let failed = db
            .call(|_| -> Result<()> { panic!("a bug in one call") })
            .await;
        assert!(failed.is_err_and(|e| e.is_retryable()));
        let n: i64 = db
            .call(|c| c.query_row("SELECT 41 + 1", [], |r| r.get(0)).ctx("select"))
            .await
            .expect("the next call runs");
        assert_eq!(n, 42);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_steady_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db_at(&dir.path().join("wal.db"));
        let wal = dir.path().join("wal.db-wal");
        // Back-to-back writes never leave a moment in which a PASSIVE
        // checkpoint has caught up: only the writer-side checkpoint lets the
        // WAL start over (and be cut back) while they go on.
        // Generous bounds for a busy machine; a pass stops at the first cut.
        let (mut largest, mut cut) = (0, false);
        let until = std::time::Instant::now() + 40 * CHECKPOINT_EVERY;
        let most = 10 * u64::try_from(WAL_SIZE_LIMIT).expect("limit");
        while !cut && largest < most && std::time::Instant::now() < until {
            for _ in 0..50 {
                db.call(|c| {
                    c.execute("INSERT INTO t (v) VALUES (zeroblob(4000))", [])
                        .ctx("insert")
                })
                .await
                .expect("insert");
            }
            let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            cut = size < largest;
            largest = largest.max(size);
        }
        assert!(cut, "the WAL only grew, to {largest} bytes");
        assert!(largest > u64::try_from(WAL_SIZE_LIMIT).expect("limit"));
    }
}
