//! The embedded one-machine defaults of the one-process runner (never in a
//! Lambda binary): real implementations, not test doubles.
//!
//! - [`SqliteStore`]: the conversation store, one SQLite file;
//! - [`SqliteQueue`]: durable FIFO queues with SQS FIFO semantics;
//! - [`FileArchive`]: raw payloads as files;
//! - [`Journal`]: webhooks appended to a file before the 200, applied later;
//! - [`Outbox`]: the message sender when no Graph API token is configured;
//! - [`LexiconSentiment`]: sentiment for es, en and pt from a word list.
//! - [`FileMediaStore`]: users' media as files, with [`LocalImages`] and
//!   [`LocalDocuments`] reading them (no speech: [`NoSpeech`]).

mod call_records;
mod campaigns;
mod escalations;
mod files;
mod journal;
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
pub use journal::{Backlog, Entry, Journal, JournalSettings, Position};
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
    // Every adapter of a file shares its connection (see [`Db`]): room for
    // all of their statements.
    conn.set_prepared_statement_cache_capacity(256);
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
enum Job {
    /// A call, run inside the thread's group transaction; what it returns
    /// is handed back once that transaction has committed.
    Call(Box<dyn FnOnce(&mut Connection) -> Reply + Send>),
    /// Run on its own, outside any transaction (a checkpoint cannot run
    /// inside one).
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// Hands a call's result to its caller; `Some(why)` when the group's
/// commit failed, which fails every call of the group.
type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// Calls committed together at most: bounds the time the first caller of a
/// group waits for the others' work.
const MAX_GROUP: usize = 512;

/// One connection per database file, owned by its own thread, which runs
/// the calls one after another. Callers wait on a oneshot, never on a lock:
/// with a mutex and the blocking pool, a burst of webhooks meant a thread
/// per request all parked on one futex.
///
/// Group commit: the calls waiting when the thread is free run in one
/// transaction (each call's own transactions become savepoints in it), and
/// their results are handed back only after its COMMIT. A caller never sees
/// success before its writes are committed, so the promise is the same as
/// one transaction per call, for one commit (one WAL append) per group.
///
/// Every adapter opened on the same file shares the one connection and
/// thread (see [`Db::new`]): with a connection each, writers of one file
/// waited for each other in SQLite's busy handler, which sleeps 1 to 100 ms
/// at a time, the tail of the webhook-to-reply latency. A file database
/// also gets a [`Checkpointer`]. The thread ends when the last clone is
/// dropped.
#[derive(Clone)]
struct Db {
    shared: Arc<Shared>,
}

struct Shared {
    jobs: mpsc::Sender<Job>,
    _checkpointer: Option<Checkpointer>,
}

/// The open files' connections, by path, while something holds them.
static OPEN: std::sync::Mutex<Vec<(PathBuf, std::sync::Weak<Shared>)>> =
    std::sync::Mutex::new(Vec::new());

impl Db {
    /// The thread for `conn`'s file: the one already running for that file
    /// in this process (`conn`, set up and migrated, is then closed), or a
    /// new one that owns `conn`. An in-memory database always gets its own.
    fn new(conn: Connection) -> Result<Self> {
        let path = conn
            .path()
            .filter(|p| !p.is_empty())
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p)));
        let Some(path) = path else {
            return Ok(Db {
                shared: Arc::new(Self::start(conn, None)?),
            });
        };
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(shared) = open
            .iter()
            .find(|(p, _)| *p == path)
            .and_then(|(_, weak)| weak.upgrade())
        {
            return Ok(Db { shared });
        }
        let shared = Arc::new(Self::start(conn, Some(&path))?);
        open.push((path, Arc::downgrade(&shared)));
        Ok(Db { shared })
    }

    fn start(conn: Connection, path: Option<&Path>) -> Result<Shared> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let file = path.is_some();
        std::thread::Builder::new()
            .name("sqlite".into())
            .spawn(move || {
                if file {
                    lower_thread_priority();
                }
                let mut conn = conn;
                while let Ok(first) = queue.recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match queue.try_recv() {
                            Ok(job) => group.push(job),
                            Err(_) => break,
                        }
                    }
                    run_group(&mut conn, group);
                }
            })
            .map_err(|e| Error::dependency(SERVICE, "connection thread", false, e))?;
        let checkpointer = match path {
            Some(path) => Some(Checkpointer::start(path, jobs.clone())?),
            None => None,
        };
        Ok(Shared {
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
        let job = Job::Call(Box::new(move |conn| {
            let out = f(conn);
            Box::new(move |failed: Option<&str>| {
                let out = match failed {
                    None => out,
                    Some(why) => Err(Error::dependency(SERVICE, "commit", true, why.to_string())),
                };
                // The caller may have gone (a cancelled request): nothing to do.
                let _ = done.send(out);
            })
        }));
        self.shared
            .jobs
            .send(job)
            .map_err(|_| Error::dependency(SERVICE, "connection thread", false, "stopped"))?;
        result.await.map_err(|_| {
            // Dropped unanswered: it panicked, or its transaction could not begin.
            Error::dependency(
                SERVICE,
                "connection thread",
                true,
                "the call did not complete",
            )
        })?
    }
}

/// The niceness of the threads that work behind the webhooks' 200s.
const BACKGROUND_NICENESS: i32 = 10;

/// Lowers the calling thread's priority, for the work behind the webhooks'
/// 200s (the SQLite threads; the runner's runtime for the journal's
/// applier, answering, calls and campaigns). It then yields the CPU to
/// what answers Meta (HTTP, the signature, the journal's append): under a
/// flood, webhooks are accepted at the machine's pace and processed behind,
/// rather than both slowed. A niceness only matters when the cores are
/// busy: idle CPU is used all the same.
pub fn lower_thread_priority() {
    let me = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(me), BACKGROUND_NICENESS) {
        tracing::debug!(error = %e, "the thread's niceness was not set");
    }
}

/// Runs `group` in order: each run of calls in one transaction, answered
/// after its commit; a job that must run alone, between them.
fn run_group(conn: &mut Connection, group: Vec<Job>) {
    let mut replies: Vec<Reply> = Vec::new();
    let mut open = false;
    for job in group {
        match job {
            Job::Call(call) => {
                if !open {
                    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                        // The call is dropped unrun: its caller sees it fail
                        // (retryable), as a busy file failed it before.
                        tracing::warn!(error = %e, "sqlite: could not begin a transaction");
                        drop(call);
                        continue;
                    }
                    open = true;
                }
                // A panic inside a call dropped its savepoints, which rolled
                // its writes back; its caller sees the call fail (the reply
                // was never made), and the group goes on.
                if let Ok(reply) = std::panic::catch_unwind(AssertUnwindSafe(|| call(conn))) {
                    replies.push(reply);
                }
            }
            Job::Alone(job) => {
                if open {
                    commit(conn, &mut replies);
                    open = false;
                }
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(conn)));
            }
        }
    }
    if open {
        commit(conn, &mut replies);
    }
}

/// Commits the group's transaction, then answers its calls. Any failure
/// (including SQLite having rolled the transaction back by itself on an
/// I/O error or a full disk) fails every call of the group: none is told
/// "done" for a write that may not have been kept.
fn commit(conn: &mut Connection, replies: &mut Vec<Reply>) {
    let failed = if conn.is_autocommit() {
        Some("the transaction was rolled back".to_string())
    } else {
        conn.execute_batch("COMMIT").err().map(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            e.to_string()
        })
    };
    for reply in replies.drain(..) {
        reply(failed.as_deref());
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
/// WAL has grown, a RESTART checkpoint is queued on the writers' own
/// connection, between two groups: no write is under way there, only the
/// few pages written since the passive one are left to copy, and the WAL
/// starts over from its beginning. (A second PASSIVE one there could still
/// lose the race with this thread's and leave the WAL growing on a busy
/// machine.) RESTART rather than TRUNCATE: the WAL's file is written over in
/// place (cut back to `journal_size_limit` if it grew past it), not emptied
/// and grown again block by block (the truncate alone was 2% of the
/// runner's time under a flood). Stops when dropped.
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
                lower_thread_priority();
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
                    let job = Job::Alone(Box::new(|conn| {
                        if let Err(e) = conn
                            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                            .ctx("checkpoint")
                        {
                            tracing::warn!(error = %e, "sqlite checkpoint failed; retrying later");
                        }
                    }));
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
        conn.execute_batch("CREATE TABLE IF NOT EXISTS t (v BLOB NOT NULL)")
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

    #[tokio::test]
    async fn adapters_of_one_file_share_its_connection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("one.db");
        let (a, b) = (db_at(&path), db_at(&path));
        // A TEMP table is seen by its own connection only.
        a.call(|c| c.execute_batch("CREATE TEMP TABLE mine (v)").ctx("temp"))
            .await
            .expect("create");
        b.call(|c| c.execute_batch("INSERT INTO mine VALUES (1)").ctx("insert"))
            .await
            .expect("the same connection");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_call_is_committed_before_its_answer_and_fails_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("group.db");
        let db = db_at(&path);
        // Another connection, as another process would see the file.
        let other = Arc::new(std::sync::Mutex::new(
            Connection::open(&path).expect("reader"),
        ));
        let calls: Vec<_> = (0..200i64)
            .map(|i| {
                let (db, other) = (db.clone(), other.clone());
                tokio::spawn(async move {
                    let inserted = db
                        .call(move |c| {
                            // Each call's own transaction, a savepoint in the group's.
                            let tx = c.savepoint().ctx("savepoint")?;
                            tx.execute("INSERT INTO t (v) VALUES (?1)", [i])
                                .ctx("insert")?;
                            if i % 10 == 0 {
                                // Dropped uncommitted: rolled back, alone.
                                return Err(corrupt("test", "refused"));
                            }
                            tx.commit().ctx("release")
                        })
                        .await;
                    let seen: i64 = other
                        .lock()
                        .expect("reader")
                        .query_row("SELECT count(*) FROM t WHERE v = ?1", [i], |r| r.get(0))
                        .expect("read");
                    (i, inserted.is_ok(), seen)
                })
            })
            .collect();
        for call in calls {
            let (i, ok, seen) = call.await.expect("task");
            assert_eq!(ok, i % 10 != 0, "call {i}");
            assert_eq!(seen, i64::from(ok), "call {i} answered before its commit");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_steady_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db_at(&dir.path().join("wal.db"));
        let wal = dir.path().join("wal.db-wal");
        // Back-to-back writes never leave a moment in which a PASSIVE
        // checkpoint has caught up: only the writer-side checkpoint lets the
        // WAL start over (and be cut back) while they go on.
        // Generous bounds for a busy machine (the SQLite threads run niced,
        // behind every other test); a pass stops at the first cut.
        let (mut largest, mut cut) = (0, false);
        let until = std::time::Instant::now() + 240 * CHECKPOINT_EVERY;
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
