//! Durable FIFO queues in SQLite, with the SQS FIFO semantics the handlers
//! rely on: per-group order, one message of a group in flight at a time,
//! visibility timeouts, deduplication within a window, and a dead-letter
//! queue after `max_receives` tries.
//!
//! Several named queues may share one file (and the store's file). Clone a
//! `SqliteQueue` to share it between a producer and its consumers: the
//! wake-up notification is per instance.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection};
use tokio::sync::Notify;

use super::{migrate, open_connection, to_i64, usize_to_i64, Db, SqliteContext};
use domain::error::{Error, Result};
use domain::ports::{Clock, Queue, QueueMessage, SystemClock};

/// Like SQS FIFO: a second send with the same dedup id within this window
/// is accepted and dropped.
pub const QUEUE_DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;
/// SQS's largest message body.
const MAX_BODY_BYTES: usize = 256 * 1024;
const SCHEMA_VERSION: i64 = 1;
const PRUNE_EVERY: u64 = 1024;
const PRUNE_BATCH: i64 = 5000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue_messages (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    group_id TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at_ms INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    dead INTEGER NOT NULL DEFAULT 0,
    dead_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS queue_groups ON queue_messages (queue, dead, group_id, id);
CREATE INDEX IF NOT EXISTS queue_order ON queue_messages (queue, dead, id);

CREATE TABLE IF NOT EXISTS queue_dedup (
    queue TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (queue, dedup_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS queue_dedup_expiry ON queue_dedup (expires_at_ms);
";

/// Whether a live message of `m`'s group was sent before it: only a group's
/// head (its oldest live message) may be delivered, and only when visible
/// (not delayed, not in flight). Scanning in id order and stopping at the
/// limit keeps a receive cheap when the heads are old, the usual case.
const EARLIER: &str = "
    SELECT 1 FROM queue_messages p
    WHERE p.queue = m.queue AND p.dead = 0 AND p.group_id = m.group_id AND p.id < m.id";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// Queues sharing a file are told apart by name.
    pub name: String,
    /// A sent message becomes visible this long after the send.
    pub delay_ms: u64,
    /// A received message is invisible this long unless deleted or released.
    pub visibility_timeout_ms: u64,
    /// A message received this many times without being deleted goes to the
    /// dead-letter queue on its next receive (at least 1).
    pub max_receives: u32,
}

/// A message handed to a consumer. Delete it when done, release it on failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub receipt: String,
    pub body: String,
    pub group_id: String,
    /// 1 on the first delivery.
    pub receive_count: u32,
    pub sent_at_ms: i64,
}

/// A message in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub body: String,
    pub group_id: String,
    pub receive_count: u32,
    pub sent_at_ms: i64,
    pub dead_at_ms: i64,
}

/// Counts for health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Live messages: waiting, delayed or in flight.
    pub messages: u64,
    pub in_flight: u64,
    pub dead_letters: u64,
}

/// One named queue (and its dead-letter queue) in a SQLite file.
#[derive(Clone)]
pub struct SqliteQueue {
    db: Db,
    settings: Arc<QueueSettings>,
    notify: Arc<Notify>,
    clock: Arc<dyn Clock>,
    sends: Arc<AtomicU64>,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SqliteQueue {
    /// Opens (or creates) the queue `settings.name` in the file at `path`.
    pub fn open(path: &Path, settings: QueueSettings) -> Result<Self> {
        Self::from_connection(open_connection(Some(path))?, settings)
    }

    /// A queue that lives as long as the value: for tests.
    pub fn open_in_memory(settings: QueueSettings) -> Result<Self> {
        Self::from_connection(open_connection(None)?, settings)
    }

    fn from_connection(mut conn: Connection, mut settings: QueueSettings) -> Result<Self> {
        if settings.name.trim().is_empty() {
            return Err(Error::Config("a queue needs a name".into()));
        }
        // SQS's smallest maxReceiveCount: 0 would dead-letter everything.
        settings.max_receives = settings.max_receives.max(1);
        migrate(&mut conn, "queue", SCHEMA_VERSION, SCHEMA)?;
        Ok(SqliteQueue {
            db: Db::new(conn)?,
            settings: Arc::new(settings),
            notify: Arc::new(Notify::new()),
            clock: Arc::new(SystemClock),
            sends: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Uses `clock` for delays, visibility and the dedup window (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    fn name(&self) -> String {
        self.settings.name.clone()
    }

    /// Up to `max` messages, at most one per group: the oldest of each group
    /// whose head is visible. Each is invisible for the visibility timeout.
    /// A message past `max_receives` goes to the dead-letter queue instead,
    /// and the next message of its group may be delivered in its place.
    pub async fn receive(&self, max: usize) -> Result<Vec<Received>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let (queue, now) = (self.name(), self.clock.now_ms());
        let visible_at = now.saturating_add(to_i64(self.settings.visibility_timeout_ms));
        let max_receives = i64::from(self.settings.max_receives);
        self.db
            .call(move |conn| {
                let tx = conn.savepoint()
                    .ctx("receive")?;
                let mut out = Vec::new();
                loop {
                    let heads: Vec<(i64, String, String, i64, i64)> = {
                        let mut stmt = tx
                            .prepare_cached(&format!(
                                "SELECT m.id, m.group_id, m.body, m.receive_count, m.sent_at_ms
                                 FROM queue_messages m
                                 WHERE m.queue = ?1 AND m.dead = 0 AND m.visible_at_ms <= ?2
                                   AND NOT EXISTS ({EARLIER})
                                 ORDER BY m.id LIMIT ?3"
                            ))
                            .ctx("receive")?;
                        let rows = stmt
                            .query_map(params![queue, now, usize_to_i64(max - out.len())], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                            })
                            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                            .ctx("receive")?;
                        rows
                    };
                    if heads.is_empty() {
                        break;
                    }
                    let mut moved = false;
                    for (id, group_id, body, count, sent_at_ms) in heads {
                        let count = count.saturating_add(1);
                        if count > max_receives {
                            tx.prepare_cached(
                                "UPDATE queue_messages SET dead = 1, dead_at_ms = ?2, receipt = NULL
                                 WHERE id = ?1",
                            )
                            .and_then(|mut s| s.execute(params![id, now]))
                            .ctx("dead-letter")?;
                            tracing::warn!(queue = %queue, "message moved to the dead-letter queue");
                            moved = true;
                            continue;
                        }
                        let receipt = format!("{id}:{}", uuid::Uuid::new_v4().simple());
                        tx.prepare_cached(
                            "UPDATE queue_messages
                             SET receive_count = ?2, visible_at_ms = ?3, receipt = ?4
                             WHERE id = ?1",
                        )
                        .and_then(|mut s| s.execute(params![id, count, visible_at, receipt]))
                        .ctx("receive")?;
                        out.push(Received {
                            receipt,
                            body,
                            group_id,
                            receive_count: u32::try_from(count).unwrap_or(u32::MAX),
                            sent_at_ms,
                        });
                    }
                    if !moved || out.len() >= max {
                        break;
                    }
                }
                tx.commit().ctx("receive")?;
                Ok(out)
            })
            .await
    }

    /// The consumer is done with the message. `false` when the receipt is
    /// no longer valid (the message was received again, or released).
    pub async fn delete(&self, receipt: &str) -> Result<bool> {
        let Some(id) = receipt_id(receipt) else {
            return Ok(false);
        };
        let (queue, receipt) = (self.name(), receipt.to_string());
        let deleted = self
            .db
            .call(move |conn| {
                conn.prepare_cached(
                    "DELETE FROM queue_messages WHERE id = ?1 AND queue = ?2 AND receipt = ?3",
                )
                .and_then(|mut s| s.execute(params![id, queue, receipt]))
                .ctx("delete")
            })
            .await?
            == 1;
        if deleted {
            // The group's next message may be deliverable now.
            self.notify.notify_waiters();
        }
        Ok(deleted)
    }

    /// The consumer failed: the message is visible again after `delay_ms`.
    /// `false` when the receipt is no longer valid.
    pub async fn release(&self, receipt: &str, delay_ms: u64) -> Result<bool> {
        let Some(id) = receipt_id(receipt) else {
            return Ok(false);
        };
        let (queue, receipt) = (self.name(), receipt.to_string());
        let visible_at = self.clock.now_ms().saturating_add(to_i64(delay_ms));
        let released = self
            .db
            .call(move |conn| {
                conn.prepare_cached(
                    "UPDATE queue_messages SET visible_at_ms = ?4, receipt = NULL
                     WHERE id = ?1 AND queue = ?2 AND receipt = ?3 AND dead = 0",
                )
                .and_then(|mut s| s.execute(params![id, queue, receipt, visible_at]))
                .ctx("release")
            })
            .await?
            == 1;
        if released {
            self.notify.notify_waiters();
        }
        Ok(released)
    }

    /// Makes every message still in flight visible again now. For a queue
    /// that one process owns, called at start: whoever held those messages
    /// died with the previous process, so waiting out their visibility
    /// timeout would only delay the answers.
    pub async fn recover_in_flight(&self) -> Result<usize> {
        let queue = self.name();
        let now = self.clock.now_ms();
        let recovered = self
            .db
            .call(move |conn| {
                conn.prepare_cached(
                    "UPDATE queue_messages SET visible_at_ms = ?2, receipt = NULL
                     WHERE queue = ?1 AND dead = 0 AND receipt IS NOT NULL",
                )
                .and_then(|mut s| s.execute(params![queue, now]))
                .ctx("recover in flight")
            })
            .await?;
        if recovered > 0 {
            self.notify.notify_waiters();
        }
        Ok(recovered)
    }

    /// The dead-letter queue, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        let queue = self.name();
        self.db
            .call(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT body, group_id, receive_count, sent_at_ms, coalesce(dead_at_ms, 0)
                         FROM queue_messages WHERE queue = ?1 AND dead = 1 ORDER BY id",
                    )
                    .ctx("dead_letters")?;
                let rows = stmt
                    .query_map([queue], |r| {
                        Ok(DeadLetter {
                            body: r.get(0)?,
                            group_id: r.get(1)?,
                            receive_count: u32::try_from(r.get::<_, i64>(2)?).unwrap_or(u32::MAX),
                            sent_at_ms: r.get(3)?,
                            dead_at_ms: r.get(4)?,
                        })
                    })
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .ctx("dead_letters")?;
                Ok(rows)
            })
            .await
    }

    /// Moves every dead letter back to the end of the queue, in their order,
    /// with a fresh receive count (like an SQS redrive). Returns how many.
    pub async fn redrive(&self) -> Result<usize> {
        let (queue, now) = (self.name(), self.clock.now_ms());
        let moved = self
            .db
            .call(move |conn| {
                let tx = conn.savepoint().ctx("redrive")?;
                // New ids: behind everything sent so far, as a re-send would be.
                let moved = tx
                    .execute(
                        "INSERT INTO queue_messages
                            (queue, group_id, dedup_id, body, sent_at_ms, visible_at_ms)
                         SELECT queue, group_id, dedup_id, body, sent_at_ms, ?2
                         FROM queue_messages WHERE queue = ?1 AND dead = 1 ORDER BY id",
                        params![queue, now],
                    )
                    .ctx("redrive")?;
                tx.execute(
                    "DELETE FROM queue_messages WHERE queue = ?1 AND dead = 1",
                    [&queue],
                )
                .ctx("redrive")?;
                tx.commit().ctx("redrive")?;
                Ok(moved)
            })
            .await?;
        if moved > 0 {
            self.notify.notify_waiters();
        }
        Ok(moved)
    }

    pub async fn stats(&self) -> Result<QueueStats> {
        let (queue, now) = (self.name(), self.clock.now_ms());
        self.db
            .call(move |conn| {
                let (messages, in_flight, dead): (i64, i64, i64) = conn
                    .prepare_cached(
                        "SELECT
                            coalesce(sum(dead = 0), 0),
                            coalesce(sum(dead = 0 AND receipt IS NOT NULL AND visible_at_ms > ?2), 0),
                            coalesce(sum(dead = 1), 0)
                         FROM queue_messages WHERE queue = ?1",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![queue, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    })
                    .ctx("stats")?;
                let n = |v: i64| u64::try_from(v).unwrap_or(0);
                Ok(QueueStats {
                    messages: n(messages),
                    in_flight: n(in_flight),
                    dead_letters: n(dead),
                })
            })
            .await
    }

    /// Live messages (waiting, delayed or in flight), not counting dead letters.
    pub async fn len(&self) -> Result<u64> {
        Ok(self.stats().await?.messages)
    }

    /// Whether more than `n` live messages wait: a bounded scan of the
    /// queue's index, cheap where counting them all is not.
    pub async fn more_than(&self, n: u64) -> Result<bool> {
        let (queue, n) = (self.name(), to_i64(n));
        self.db
            .call(move |conn| {
                conn.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM queue_messages INDEXED BY queue_order
                                    WHERE queue = ?1 AND dead = 0 LIMIT 1 OFFSET ?2)",
                )
                .and_then(|mut s| s.query_row(params![queue, n], |r| r.get(0)))
                .ctx("more_than")
            })
            .await
    }

    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// How long until some group's head becomes visible: zero when one is
    /// deliverable now, `None` when the queue is empty. An in-flight head
    /// counts at its visibility expiry, when it will be redelivered.
    pub async fn next_visible_in(&self) -> Result<Option<Duration>> {
        let (queue, now) = (self.name(), self.clock.now_ms());
        let at: Option<i64> = self
            .db
            .call(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT min(m.visible_at_ms) FROM queue_messages m
                     WHERE m.queue = ?1 AND m.dead = 0 AND NOT EXISTS ({EARLIER})"
                ))
                .and_then(|mut s| s.query_row([queue], |r| r.get(0)))
                .ctx("next_visible_in")
            })
            .await?;
        Ok(at.map(|at| Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0))))
    }

    /// Waits until a message may be deliverable: a send, delete, release or
    /// redrive on this queue (or a clone), the next delayed or in-flight head
    /// becoming visible, or `max` at the latest. Returns at once when a
    /// message is deliverable now.
    pub async fn wait(&self, max: Duration) -> Result<()> {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        // Registered before looking, so a send in between is not missed.
        notified.as_mut().enable();
        let sleep = self.next_visible_in().await?.map_or(max, |d| d.min(max));
        if sleep.is_zero() {
            return Ok(());
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(sleep) => {}
        }
        Ok(())
    }

    /// A wake-up handle for consumers that build their own wait loop.
    pub fn notify(&self) -> Arc<Notify> {
        Arc::clone(&self.notify)
    }
}

fn receipt_id(receipt: &str) -> Option<i64> {
    receipt.split_once(':').and_then(|(id, _)| id.parse().ok())
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, msg: &QueueMessage) -> Result<()> {
        if msg.group_id.is_empty() || msg.dedup_id.is_empty() {
            return Err(Error::Invalid(
                "a FIFO message needs a group id and a dedup id".into(),
            ));
        }
        if msg.body.len() > MAX_BODY_BYTES {
            return Err(Error::Invalid(format!(
                "queue message of {} bytes, the limit is {MAX_BODY_BYTES}",
                msg.body.len()
            )));
        }
        let (queue, msg, now) = (self.name(), msg.clone(), self.clock.now_ms());
        let visible_at = now.saturating_add(to_i64(self.settings.delay_ms));
        let prune = self.sends.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1;
        let accepted = self
            .db
            .call(move |conn| {
                let tx = conn.savepoint()
                    .ctx("send")?;
                // The guard: an unexpired dedup id wins and the send is dropped.
                let fresh = tx
                    .prepare_cached(
                        "INSERT INTO queue_dedup (queue, dedup_id, expires_at_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT(queue, dedup_id) DO UPDATE SET expires_at_ms = excluded.expires_at_ms
                         WHERE queue_dedup.expires_at_ms <= ?4",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            queue,
                            msg.dedup_id,
                            now.saturating_add(QUEUE_DEDUP_WINDOW_MS),
                            now
                        ])
                    })
                    .ctx("send dedup")?
                    == 1;
                if fresh {
                    tx.prepare_cached(
                        "INSERT INTO queue_messages
                            (queue, group_id, dedup_id, body, sent_at_ms, visible_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![queue, msg.group_id, msg.dedup_id, msg.body, now, visible_at])
                    })
                    .ctx("send")?;
                }
                if prune {
                    tx.prepare_cached(
                        "DELETE FROM queue_dedup WHERE (queue, dedup_id) IN
                            (SELECT queue, dedup_id FROM queue_dedup WHERE expires_at_ms <= ?1 LIMIT ?2)",
                    )
                    .and_then(|mut s| s.execute(params![now, PRUNE_BATCH]))
                    .ctx("prune queue dedup")?;
                }
                tx.commit().ctx("send")?;
                Ok(fresh)
            })
            .await?;
        if accepted {
            self.notify.notify_waiters();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use test_support::memory::FixedClock;

    fn settings(name: &str) -> QueueSettings {
        QueueSettings {
            name: name.into(),
            delay_ms: 0,
            visibility_timeout_ms: 30_000,
            max_receives: 3,
        }
    }

    fn msg(group: &str, body: &str) -> QueueMessage {
        QueueMessage {
            group_id: group.into(),
            dedup_id: uuid::Uuid::new_v4().to_string(),
            body: body.into(),
        }
    }

    fn bodies(r: &[Received]) -> Vec<&str> {
        r.iter().map(|m| m.body.as_str()).collect()
    }

    fn file_queue(dir: &tempfile::TempDir, s: QueueSettings) -> SqliteQueue {
        SqliteQueue::open(&dir.path().join("queues.db"), s).expect("open")
    }

    #[tokio::test]
    async fn a_group_is_delivered_in_order_one_at_a_time() {
        let q = SqliteQueue::open_in_memory(settings("text")).expect("open");
        for b in ["a1", "a2", "a3"] {
            q.send(&msg("A", b)).await.expect("send");
        }
        let first = q.receive(10).await.expect("receive");
        assert_eq!(bodies(&first), vec!["a1"]);
        assert_eq!(first[0].receive_count, 1);
        assert_eq!(first[0].group_id, "A");
        // In flight: nothing else of the group is delivered.
        assert!(q.receive(10).await.expect("receive").is_empty());
        assert_eq!(q.stats().await.expect("stats").in_flight, 1);
        assert!(q.delete(&first[0].receipt).await.expect("delete"));
        assert!(!q.delete(&first[0].receipt).await.expect("delete twice"));
        let second = q.receive(10).await.expect("receive");
        assert_eq!(bodies(&second), vec!["a2"]);
        assert!(q.delete(&second[0].receipt).await.expect("delete"));
        assert_eq!(bodies(&q.receive(10).await.expect("receive")), vec!["a3"]);
    }

    #[tokio::test]
    async fn more_than_counts_live_messages_of_its_queue_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = file_queue(&dir, settings("text"));
        let other = file_queue(&dir, settings("other"));
        for i in 0..3 {
            q.send(&msg(&format!("G{i}"), "m")).await.expect("send");
            other.send(&msg("O", "o")).await.expect("send");
        }
        assert!(q.more_than(2).await.expect("more_than"));
        assert!(!q.more_than(3).await.expect("more_than"));
        // A message that is done is not waiting.
        let got = q.receive(1).await.expect("receive");
        assert!(q.delete(&got[0].receipt).await.expect("delete"));
        assert!(!q.more_than(2).await.expect("more_than"));
        assert!(q.more_than(1).await.expect("more_than"));
    }

    #[tokio::test]
    async fn groups_are_independent() {
        let q = SqliteQueue::open_in_memory(settings("text")).expect("open");
        q.send(&msg("A", "a1")).await.expect("send");
        q.send(&msg("B", "b1")).await.expect("send");
        q.send(&msg("A", "a2")).await.expect("send");
        q.send(&msg("C", "c1")).await.expect("send");
        let got = q.receive(2).await.expect("receive");
        assert_eq!(
            bodies(&got),
            vec!["a1", "b1"],
            "oldest heads first, up to max"
        );
        let got = q.receive(10).await.expect("receive");
        assert_eq!(bodies(&got), vec!["c1"], "A and B are in flight");
    }

    #[tokio::test]
    async fn an_expired_visibility_timeout_redelivers() {
        let q = SqliteQueue::open_in_memory(QueueSettings {
            visibility_timeout_ms: 50,
            ..settings("text")
        })
        .expect("open");
        q.send(&msg("A", "a1")).await.expect("send");
        q.send(&msg("A", "a2")).await.expect("send");
        let first = q.receive(10).await.expect("receive");
        assert_eq!(first[0].receive_count, 1);
        assert!(q.receive(10).await.expect("receive").is_empty());
        let wait = q.next_visible_in().await.expect("next").expect("some");
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(50));
        tokio::time::sleep(Duration::from_millis(70)).await;
        let again = q.receive(10).await.expect("receive");
        assert_eq!(bodies(&again), vec!["a1"], "the same message, before a2");
        assert_eq!(again[0].receive_count, 2);
        // The first receipt no longer holds the message.
        assert!(!q.delete(&first[0].receipt).await.expect("stale delete"));
        assert!(q.delete(&again[0].receipt).await.expect("delete"));
    }

    #[tokio::test]
    async fn release_makes_it_visible_after_the_delay() {
        let q = SqliteQueue::open_in_memory(settings("text")).expect("open");
        q.send(&msg("A", "a1")).await.expect("send");
        let r = q.receive(1).await.expect("receive");
        assert!(q.release(&r[0].receipt, 60).await.expect("release"));
        assert!(!q.release(&r[0].receipt, 0).await.expect("released twice"));
        assert!(!q.delete(&r[0].receipt).await.expect("released receipt"));
        assert!(q.receive(1).await.expect("receive").is_empty());
        tokio::time::sleep(Duration::from_millis(80)).await;
        let r = q.receive(1).await.expect("receive");
        assert_eq!(r[0].receive_count, 2);
        assert!(!q.delete("garbage").await.expect("bad receipt"));
    }

    #[tokio::test]
    async fn too_many_receives_dead_letter_then_redrive() {
        let q = SqliteQueue::open_in_memory(QueueSettings {
            max_receives: 2,
            ..settings("text")
        })
        .expect("open");
        q.send(&msg("A", "poison")).await.expect("send");
        q.send(&msg("A", "a2")).await.expect("send");
        for n in 1..=2 {
            let r = q.receive(1).await.expect("receive");
            assert_eq!(bodies(&r), vec!["poison"]);
            assert_eq!(r[0].receive_count, n);
            q.release(&r[0].receipt, 0).await.expect("release");
        }
        // The third receive moves it aside and delivers the next one.
        let r = q.receive(1).await.expect("receive");
        assert_eq!(bodies(&r), vec!["a2"]);
        let dead = q.dead_letters().await.expect("dead letters");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].body, "poison");
        assert_eq!(dead[0].receive_count, 2);
        assert_eq!(
            q.stats().await.expect("stats"),
            QueueStats {
                messages: 1,
                in_flight: 1,
                dead_letters: 1
            }
        );
        q.delete(&r[0].receipt).await.expect("delete");
        assert_eq!(q.redrive().await.expect("redrive"), 1);
        assert!(q.dead_letters().await.expect("dead letters").is_empty());
        let r = q.receive(1).await.expect("receive");
        assert_eq!(bodies(&r), vec!["poison"]);
        assert_eq!(r[0].receive_count, 1, "a redriven message starts over");
        assert_eq!(q.redrive().await.expect("nothing to redrive"), 0);
    }

    #[tokio::test]
    async fn same_dedup_id_within_the_window_is_dropped() {
        let clock = Arc::new(FixedClock::at(1_000_000));
        let q = SqliteQueue::open_in_memory(settings("text"))
            .expect("open")
            .with_clock(clock.clone());
        let m = msg("A", "first");
        q.send(&m).await.expect("send");
        q.send(&QueueMessage {
            body: "second".into(),
            ..m.clone()
        })
        .await
        .expect("a duplicate is accepted");
        assert_eq!(q.len().await.expect("len"), 1);
        clock.advance(QUEUE_DEDUP_WINDOW_MS - 1);
        q.send(&m).await.expect("send");
        assert_eq!(q.len().await.expect("len"), 1);
        clock.advance(1);
        q.send(&m).await.expect("send after the window");
        assert_eq!(q.len().await.expect("len"), 2);
        // Dedup is per queue.
        let other = SqliteQueue::open_in_memory(settings("other")).expect("open");
        other.send(&m).await.expect("send");
        assert_eq!(other.len().await.expect("len"), 1);
    }

    #[tokio::test]
    async fn delay_is_honoured() {
        let q = SqliteQueue::open_in_memory(QueueSettings {
            delay_ms: 80,
            ..settings("text")
        })
        .expect("open");
        assert_eq!(q.next_visible_in().await.expect("next"), None);
        let sent = Instant::now();
        q.send(&msg("A", "later")).await.expect("send");
        assert!(q.receive(1).await.expect("receive").is_empty());
        let wait = q.next_visible_in().await.expect("next").expect("some");
        assert!(wait > Duration::from_millis(40) && wait <= Duration::from_millis(80));
        q.wait(Duration::from_secs(5)).await.expect("wait");
        let r = q.receive(1).await.expect("receive");
        assert_eq!(bodies(&r), vec!["later"]);
        assert!(sent.elapsed() >= Duration::from_millis(75));
        assert!(sent.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_consumer_wakes_on_send() {
        let q = SqliteQueue::open_in_memory(settings("text")).expect("open");
        let consumer = q.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            consumer.wait(Duration::from_secs(10)).await.expect("wait");
            consumer.receive(1).await.expect("receive")
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        q.send(&msg("A", "wake")).await.expect("send");
        let got = tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("woke before the timeout")
            .expect("task");
        assert_eq!(bodies(&got), vec!["wake"]);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delete_wakes_the_next_message_of_the_group() {
        let q = SqliteQueue::open_in_memory(settings("text")).expect("open");
        q.send(&msg("A", "a1")).await.expect("send");
        q.send(&msg("A", "a2")).await.expect("send");
        let first = q.receive(1).await.expect("receive");
        let consumer = q.clone();
        let task = tokio::spawn(async move {
            consumer.wait(Duration::from_secs(10)).await.expect("wait");
            consumer.receive(1).await.expect("receive")
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        q.delete(&first[0].receipt).await.expect("delete");
        let got = tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("woke before the timeout")
            .expect("task");
        assert_eq!(bodies(&got), vec!["a2"]);
    }

    #[tokio::test]
    async fn messages_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = QueueSettings {
            visibility_timeout_ms: 50,
            ..settings("text")
        };
        {
            let q = file_queue(&dir, s.clone());
            for b in ["a1", "a2"] {
                q.send(&msg("A", b)).await.expect("send");
            }
            q.send(&msg("B", "b1")).await.expect("send");
            // In flight when the process dies.
            assert_eq!(q.receive(1).await.expect("receive").len(), 1);
        }
        let q = file_queue(&dir, s);
        assert_eq!(q.len().await.expect("len"), 3);
        tokio::time::sleep(Duration::from_millis(70)).await;
        let got = q.receive(10).await.expect("receive");
        assert_eq!(bodies(&got), vec!["a1", "b1"]);
        assert_eq!(got[0].receive_count, 2);
    }

    #[tokio::test]
    async fn named_queues_share_a_file_independently() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = file_queue(&dir, settings("text"));
        let calls = file_queue(&dir, settings("calls"));
        text.send(&msg("A", "t1")).await.expect("send");
        calls.send(&msg("A", "c1")).await.expect("send");
        assert_eq!(
            bodies(&text.receive(10).await.expect("receive")),
            vec!["t1"]
        );
        assert_eq!(
            bodies(&calls.receive(10).await.expect("receive")),
            vec!["c1"]
        );
        assert_eq!(text.len().await.expect("len"), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_senders_keep_each_group_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = file_queue(&dir, settings("text"));
        // A second connection to the same file sends too.
        let q2 = file_queue(&dir, settings("text"));
        let mut tasks = Vec::new();
        for g in 0..8 {
            let q = if g % 2 == 0 { q.clone() } else { q2.clone() };
            tasks.push(tokio::spawn(async move {
                for i in 0..40 {
                    q.send(&msg(&format!("g{g}"), &format!("{g}:{i}")))
                        .await
                        .expect("send");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(q.len().await.expect("len"), 320);
        let mut next = [0u32; 8];
        let mut delivered = 0;
        while delivered < 320 {
            let got = q.receive(16).await.expect("receive");
            assert!(!got.is_empty(), "something is always deliverable");
            let mut groups: Vec<&str> = got.iter().map(|r| r.group_id.as_str()).collect();
            groups.sort_unstable();
            groups.dedup();
            assert_eq!(groups.len(), got.len(), "one message per group per receive");
            for r in got {
                let (g, i) = r.body.split_once(':').expect("body");
                let (g, i): (usize, u32) = (g.parse().expect("g"), i.parse().expect("i"));
                assert_eq!(i, next[g], "group {g} in send order");
                next[g] += 1;
                assert!(q.delete(&r.receipt).await.expect("delete"));
                delivered += 1;
            }
        }
        assert!(q.is_empty().await.expect("empty"));
    }

    #[tokio::test]
    async fn bad_messages_and_settings_are_refused() {
        assert!(matches!(
            SqliteQueue::open_in_memory(settings(" ")),
            Err(Error::Config(_))
        ));
        let q = SqliteQueue::open_in_memory(settings("text")).expect("open");
        assert!(matches!(
            q.send(&msg("", "x")).await,
            Err(Error::Invalid(_))
        ));
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        assert!(matches!(
            q.send(&msg("A", &big)).await,
            Err(Error::Invalid(_))
        ));
        assert!(q.receive(0).await.expect("receive").is_empty());
    }

    #[tokio::test]
    async fn recovering_in_flight_messages_makes_them_deliverable_at_once() {
        let q = SqliteQueue::open_in_memory(QueueSettings {
            name: "t".into(),
            delay_ms: 0,
            visibility_timeout_ms: 60_000,
            max_receives: 5,
        })
        .expect("queue");
        q.send(&QueueMessage {
            group_id: "g".into(),
            dedup_id: "d1".into(),
            body: "one".into(),
        })
        .await
        .expect("send");
        assert_eq!(q.receive(10).await.expect("receive").len(), 1);
        assert!(
            q.receive(10).await.expect("receive").is_empty(),
            "in flight"
        );
        assert_eq!(q.recover_in_flight().await.expect("recover"), 1);
        let again = q.receive(10).await.expect("receive");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].receive_count, 2);
    }
}
