//! [`EscalationRecords`] and [`Timers`] on one machine: the records in a
//! SQLite file (component `escalation`), the timers on a [`SqliteQueue`].

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::{corrupt, migrate, open_connection, query_all, to_i64, Db, SqliteContext, SqliteQueue};
use domain::error::Result;
use domain::handoff::{DecisionRecord, EscalationRecord};
use domain::ports::{DeskRef, EscalationRecords, QueueMessage, Timers};
use domain::UserId;

const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS escalations (
    wa_id TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS escalation_decisions (
    wa_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    record TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (wa_id, turn_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS escalation_claims (
    key TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS desk_conversations (
    desk_conversation_id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL,
    wa_id TEXT NOT NULL
);
";

/// The escalation function's records in a SQLite file (it may be the
/// store's: the tables are its own).
#[derive(Clone)]
pub struct SqliteEscalations {
    db: Db,
}

impl std::fmt::Debug for SqliteEscalations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEscalations").finish_non_exhaustive()
    }
}

impl SqliteEscalations {
    pub fn open(path: &Path) -> Result<Self> {
        Self::from_connection(open_connection(Some(path))?)
    }

    pub fn open_in_memory() -> Result<Self> {
        Self::from_connection(open_connection(None)?)
    }

    fn from_connection(mut conn: Connection) -> Result<Self> {
        migrate(&mut conn, "escalation", SCHEMA_VERSION, SCHEMA)?;
        Ok(SqliteEscalations { db: Db::new(conn)? })
    }
}

fn from_json<T: serde::de::DeserializeOwned>(context: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(context, e.to_string()))
}

#[async_trait]
impl EscalationRecords for SqliteEscalations {
    async fn escalation(&self, user_id: &UserId) -> Result<(EscalationRecord, u64)> {
        let user_id = user_id.clone();
        let row: Option<(String, i64)> = self
            .db
            .call(move |conn| {
                conn.prepare_cached("SELECT record, version FROM escalations WHERE wa_id = ?1")
                    .and_then(|mut s| {
                        s.query_row([user_id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()
                    })
                    .ctx("escalation")
            })
            .await?;
        match row {
            None => Ok((EscalationRecord::default(), 0)),
            Some((json, version)) => Ok((
                from_json("escalation", &json)?,
                u64::try_from(version).map_err(|_| corrupt("escalation", "negative version"))?,
            )),
        }
    }

    async fn save_escalation(
        &self,
        user_id: &UserId,
        record: &EscalationRecord,
        version: u64,
    ) -> Result<bool> {
        let (user_id, json) = (user_id.clone(), serde_json::to_string(record)?);
        let (expected, next) = (to_i64(version), to_i64(version.saturating_add(1)));
        self.db
            .call(move |conn| {
                let changed = if expected == 0 {
                    conn.prepare_cached(
                        "INSERT INTO escalations (wa_id, record, version) VALUES (?1, ?2, ?3)
                         ON CONFLICT (wa_id) DO NOTHING",
                    )
                    .and_then(|mut s| s.execute(params![user_id.as_str(), json, next]))
                } else {
                    conn.prepare_cached(
                        "UPDATE escalations SET record = ?2, version = ?4
                         WHERE wa_id = ?1 AND version = ?3",
                    )
                    .and_then(|mut s| s.execute(params![user_id.as_str(), json, expected, next]))
                }
                .ctx("save_escalation")?;
                Ok(changed == 1)
            })
            .await
    }

    async fn record_decision(&self, decision: &DecisionRecord) -> Result<()> {
        let json = serde_json::to_string(decision)?;
        let (user_id, turn_id, at) = (
            decision.user_id.clone(),
            decision.turn_id.clone(),
            decision.at_ms,
        );
        self.db
            .call(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO escalation_decisions (wa_id, turn_id, record, at_ms)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![user_id.as_str(), turn_id, json, at]))
                .ctx("record_decision")
                .map(|_| ())
            })
            .await
    }

    async fn decisions(&self, user_id: &UserId) -> Result<Vec<DecisionRecord>> {
        let user_id = user_id.clone();
        let rows: Vec<String> = self
            .db
            .call(move |conn| {
                query_all(
                    conn,
                    "decisions",
                    "SELECT record FROM escalation_decisions WHERE wa_id = ?1
                     ORDER BY at_ms, turn_id",
                    [user_id.as_str()],
                    |r| r.get(0),
                )
            })
            .await?;
        rows.iter().map(|j| from_json("decisions", j)).collect()
    }

    async fn claim(&self, key: &str, at_ms: i64) -> Result<bool> {
        let key = key.to_string();
        self.db
            .call(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO escalation_claims (key, at_ms) VALUES (?1, ?2)
                     ON CONFLICT (key) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![key, at_ms]))
                .ctx("claim")
                .map(|n| n == 1)
            })
            .await
    }

    async fn release(&self, key: &str) -> Result<()> {
        let key = key.to_string();
        self.db
            .call(move |conn| {
                conn.prepare_cached("DELETE FROM escalation_claims WHERE key = ?1")
                    .and_then(|mut s| s.execute([key]))
                    .ctx("release")
                    .map(|_| ())
            })
            .await
    }

    async fn claimed(&self, key: &str) -> Result<bool> {
        let key = key.to_string();
        self.db
            .call(move |conn| {
                conn.prepare_cached("SELECT 1 FROM escalation_claims WHERE key = ?1")
                    .and_then(|mut s| s.query_row([key], |r| r.get::<_, i64>(0)).optional())
                    .ctx("claimed")
                    .map(|r| r.is_some())
            })
            .await
    }

    async fn link_desk(&self, desk: &DeskRef, user_id: &UserId) -> Result<()> {
        let (conv, contact, user_id) = (
            to_i64(desk.conversation_id),
            to_i64(desk.contact_id),
            user_id.clone(),
        );
        self.db
            .call(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO desk_conversations (desk_conversation_id, contact_id, wa_id)
                     VALUES (?1, ?2, ?3)
                     ON CONFLICT (desk_conversation_id) DO UPDATE SET
                        contact_id = excluded.contact_id, wa_id = excluded.wa_id",
                )
                .and_then(|mut s| s.execute(params![conv, contact, user_id.as_str()]))
                .ctx("link_desk")
                .map(|_| ())
            })
            .await
    }

    async fn desk_owner(&self, desk_conversation_id: u64) -> Result<Option<UserId>> {
        let id = to_i64(desk_conversation_id);
        let owner: Option<String> = self
            .db
            .call(move |conn| {
                conn.prepare_cached(
                    "SELECT wa_id FROM desk_conversations WHERE desk_conversation_id = ?1",
                )
                .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
                .ctx("desk_owner")
            })
            .await?;
        owner
            .map(|s| UserId::parse(&s).map_err(|e| corrupt("desk_owner", e)))
            .transpose()
    }
}

/// Timers on a local queue. The queue's own delay (its settings) is the
/// timer's: one machine runs one profile, so one delay serves; a message
/// that comes too early is put back by its receiver.
#[derive(Debug, Clone)]
pub struct QueueTimers {
    queue: SqliteQueue,
}

impl QueueTimers {
    pub fn new(queue: SqliteQueue) -> Self {
        QueueTimers { queue }
    }
}

#[async_trait]
impl Timers for QueueTimers {
    async fn schedule(&self, body: &str, _delay_ms: u64) -> Result<()> {
        use domain::ports::Queue;
        // Timers are independent: each its own group, deduplicated on the body.
        let id = uuid::Uuid::new_v4().to_string();
        let dedup = {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(body.as_bytes()))
        };
        self.queue
            .send(&QueueMessage {
                group_id: id,
                dedup_id: dedup,
                body: body.to_string(),
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::escalation::Decision;

    fn wa() -> UserId {
        UserId::parse("5491155551234").expect("wa id")
    }

    #[tokio::test]
    async fn records_are_written_only_on_their_version() {
        let r = SqliteEscalations::open_in_memory().expect("opens");
        let (rec, v) = r.escalation(&wa()).await.expect("reads");
        assert_eq!((rec.clone(), v), (EscalationRecord::default(), 0));
        assert!(r.save_escalation(&wa(), &rec, 0).await.expect("saves"));
        // A second writer that read version 0 loses.
        assert!(!r.save_escalation(&wa(), &rec, 0).await.expect("saves"));
        let mut next = rec.clone();
        next.policy.escalations = 3;
        assert!(r.save_escalation(&wa(), &next, 1).await.expect("saves"));
        assert!(!r.save_escalation(&wa(), &next, 1).await.expect("saves"));
        let (got, v) = r.escalation(&wa()).await.expect("reads");
        assert_eq!((got.policy.escalations, v), (3, 2));
    }

    #[tokio::test]
    async fn claims_are_taken_once_and_can_be_given_back() {
        let r = SqliteEscalations::open_in_memory().expect("opens");
        assert!(r.claim("k", 1).await.expect("claims"));
        assert!(!r.claim("k", 2).await.expect("claims"));
        assert!(r.claimed("k").await.expect("reads"));
        r.release("k").await.expect("releases");
        assert!(!r.claimed("k").await.expect("reads"));
        assert!(r.claim("k", 3).await.expect("claims"));
    }

    #[tokio::test]
    async fn decisions_are_kept_once_per_turn_and_desks_map_back() {
        let r = SqliteEscalations::open_in_memory().expect("opens");
        let d = DecisionRecord {
            user_id: wa(),
            turn_id: "t1".into(),
            decision: Decision::default(),
            sentiment: Some("neutral".into()),
            negative: Some(0.1),
            at_ms: 10,
        };
        r.record_decision(&d).await.expect("records");
        r.record_decision(&d).await.expect("records again");
        assert_eq!(r.decisions(&wa()).await.expect("reads"), vec![d]);
        let desk = DeskRef {
            conversation_id: 42,
            contact_id: 7,
        };
        assert_eq!(r.desk_owner(42).await.expect("reads"), None);
        r.link_desk(&desk, &wa()).await.expect("links");
        r.link_desk(&desk, &wa()).await.expect("links again");
        assert_eq!(r.desk_owner(42).await.expect("reads"), Some(wa()));
    }
}
