//! The conversation store in one SQLite file.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{corrupt, migrate, open_connection, usize_to_i64, Db, SqliteContext};
use domain::error::{Error, Result};
use domain::ports::{Clock, ConversationStore, SystemClock};
use domain::*;

mod identity;
mod records;

/// The schema is the steps below, each idempotent (`IF NOT EXISTS`): all of
/// them run at every open, so a file at an older version gains the later
/// steps in place, and the recorded version moves to this one.
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &[&str] = &[SCHEMA_V1, records::SCHEMA_V2, identity::SCHEMA_V3];

/// Conversations, messages, dedup, turns.
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS conversations (
    wa_id TEXT PRIMARY KEY,
    phone_number_id TEXT NOT NULL,
    contact_name TEXT,
    state TEXT NOT NULL DEFAULT 'bot',
    last_user_at_ms INTEGER NOT NULL,
    last_message_at_ms INTEGER NOT NULL,
    window_closed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS conversations_recent
    ON conversations (last_message_at_ms, wa_id);

CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    wamid TEXT NOT NULL UNIQUE,
    wa_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    payload TEXT,
    at_ms INTEGER NOT NULL,
    delivery TEXT,
    delivery_rank INTEGER,
    delivery_at_ms INTEGER,
    error_code INTEGER,
    answered INTEGER NOT NULL DEFAULT 0,
    starts_turn INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_conversation
    ON messages (wa_id, at_ms, seq);
CREATE INDEX IF NOT EXISTS messages_pending
    ON messages (wa_id, at_ms, seq)
    WHERE direction = 'inbound' AND starts_turn = 1 AND answered = 0;

CREATE TABLE IF NOT EXISTS dedup (
    wamid TEXT PRIMARY KEY,
    expires_at_ms INTEGER NOT NULL,
    enqueued INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_expiry ON dedup (expires_at_ms);

CREATE TABLE IF NOT EXISTS turns (
    wa_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    record TEXT NOT NULL,
    sent_parts INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (wa_id, turn_id)
) WITHOUT ROWID;
";

const DEDUP_TTL_MS: i64 = DEDUP_TTL_SECS * 1000;
/// Expired dedup rows are pruned every this many recorded messages, a bounded
/// batch at a time, so no single write pays for a big clean-up.
const PRUNE_EVERY: u64 = 4096;
const PRUNE_BATCH: i64 = 5000;

const MESSAGE_COLUMNS: &str = "wamid, direction, kind, text, at_ms, delivery, delivery_at_ms, \
                               error_code, answered, starts_turn, seq";

/// The conversation store for one machine. Cheap to clone (one shared
/// connection).
#[derive(Clone)]
pub struct SqliteStore {
    db: Db,
    recorded: Arc<AtomicU64>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the store in the file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::from_connection(open_connection(Some(path))?)
    }

    /// A store that lives as long as the value: for handler tests and
    /// benchmarks.
    pub fn open_in_memory() -> Result<Self> {
        Self::from_connection(open_connection(None)?)
    }

    fn from_connection(mut conn: Connection) -> Result<Self> {
        migrate(&mut conn, "store", SCHEMA_VERSION, &SCHEMA.concat())?;
        identity::upgrade_v3(&conn)?;
        prune_dedup(&conn, SystemClock.now_ms())?;
        Ok(SqliteStore {
            db: Db::new(conn)?,
            recorded: Arc::new(AtomicU64::new(0)),
        })
    }
}

#[cfg(test)]
impl SqliteStore {
    /// The schema version the file records (upgrade tests).
    pub(crate) async fn schema_version(&self) -> i64 {
        self.db
            .call(|conn| {
                conn.query_row(
                    "SELECT version FROM charla_schema WHERE component = 'store'",
                    [],
                    |r| r.get(0),
                )
                .ctx("schema version")
            })
            .await
            .expect("schema version")
    }
}

fn prune_dedup(conn: &Connection, now_ms: i64) -> Result<usize> {
    conn.prepare_cached(
        "DELETE FROM dedup WHERE wamid IN
            (SELECT wamid FROM dedup WHERE expires_at_ms <= ?1 LIMIT ?2)",
    )
    .and_then(|mut s| s.execute(params![now_ms, PRUNE_BATCH]))
    .ctx("prune dedup")
}

/// A message row as stored, before its text columns are checked.
struct MessageRow {
    wamid: String,
    direction: String,
    kind: String,
    text: String,
    at_ms: i64,
    delivery: Option<String>,
    delivery_at_ms: Option<i64>,
    error_code: Option<i64>,
    answered: bool,
    starts_turn: bool,
    seq: i64,
}

impl MessageRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(MessageRow {
            wamid: r.get(0)?,
            direction: r.get(1)?,
            kind: r.get(2)?,
            text: r.get(3)?,
            at_ms: r.get(4)?,
            delivery: r.get(5)?,
            delivery_at_ms: r.get(6)?,
            error_code: r.get(7)?,
            answered: r.get(8)?,
            starts_turn: r.get(9)?,
            seq: r.get(10)?,
        })
    }

    fn into_message(self) -> Result<StoredMessage> {
        let direction = Direction::parse(&self.direction)
            .ok_or_else(|| corrupt("message row", format!("direction {:?}", self.direction)))?;
        let delivery = match self.delivery.as_deref() {
            None => None,
            Some(d) => Some(
                Delivery::parse(d)
                    .ok_or_else(|| corrupt("message row", format!("delivery {d:?}")))?,
            ),
        };
        Ok(StoredMessage {
            wamid: self.wamid,
            direction,
            kind: self.kind,
            text: self.text,
            at_ms: self.at_ms,
            delivery,
            delivery_at_ms: self.delivery_at_ms,
            error_code: self.error_code,
            answered: self.answered,
            starts_turn: self.starts_turn,
        })
    }
}

fn query_messages(
    conn: &Connection,
    context: &str,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<MessageRow>> {
    let mut stmt = conn.prepare_cached(sql).ctx(context)?;
    let rows = stmt
        .query_map(params, MessageRow::from_row)
        .ctx(context)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .ctx(context)?;
    Ok(rows)
}

fn into_messages(rows: Vec<MessageRow>) -> Result<Vec<StoredMessage>> {
    rows.into_iter().map(MessageRow::into_message).collect()
}

struct ConversationRow {
    user_id: String,
    phone_number_id: String,
    contact_name: Option<String>,
    state: String,
    last_user_at_ms: i64,
    last_message_at_ms: i64,
    window_closed: bool,
}

const CONVERSATION_COLUMNS: &str = "wa_id, phone_number_id, contact_name, state, \
                                    last_user_at_ms, last_message_at_ms, window_closed";

impl ConversationRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(ConversationRow {
            user_id: r.get(0)?,
            phone_number_id: r.get(1)?,
            contact_name: r.get(2)?,
            state: r.get(3)?,
            last_user_at_ms: r.get(4)?,
            last_message_at_ms: r.get(5)?,
            window_closed: r.get(6)?,
        })
    }

    fn into_conversation(self) -> Result<Conversation> {
        Ok(Conversation {
            user_id: UserId::parse(&self.user_id).map_err(|e| corrupt("conversation row", e))?,
            phone_number_id: self.phone_number_id,
            contact_name: self.contact_name,
            state: ConversationState::parse(&self.state)
                .ok_or_else(|| corrupt("conversation row", format!("state {:?}", self.state)))?,
            last_user_at_ms: self.last_user_at_ms,
            last_message_at_ms: self.last_message_at_ms,
            window_closed: self.window_closed,
        })
    }
}

/// Cursors are opaque to callers: base64 of the last key returned.
fn encode_cursor(a: i64, b: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{a}:{b}"))
}

fn decode_cursor(cursor: &str) -> Result<(i64, String)> {
    let bad = || Error::Invalid("bad cursor".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (a, b) = text.split_once(':').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.to_string()))
}

/// Inserts an outbound message (once per wamid) and moves the conversation's
/// last message time forward.
fn insert_outbound(conn: &Connection, user_id: &str, sent: &SentRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO messages (wamid, wa_id, direction, kind, text, at_ms, delivery,
                               delivery_rank, delivery_at_ms, answered, starts_turn)
         VALUES (?1, ?2, 'outbound', ?3, ?4, ?5, ?6, ?7, ?5, 0, 0)
         ON CONFLICT(wamid) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            sent.wamid,
            user_id,
            sent.kind,
            sent.text,
            sent.at_ms,
            Delivery::Accepted.as_str(),
            Delivery::Accepted.rank(),
        ])
    })
    .ctx("insert outbound")?;
    conn.prepare_cached(
        "UPDATE conversations SET last_message_at_ms = max(last_message_at_ms, ?2)
         WHERE wa_id = ?1",
    )
    .and_then(|mut s| s.execute(params![user_id, sent.at_ms]))
    .ctx("touch conversation")?;
    Ok(())
}

fn record_inbound_tx(conn: &mut Connection, msg: &NewInbound) -> Result<RecordOutcome> {
    let tx = conn.savepoint().ctx("record_inbound")?;
    let now = msg.received_at_ms;
    // The guard: a row that exists and has not expired wins; an expired one
    // is taken over as if absent.
    let fresh = tx
        .prepare_cached(
            "INSERT INTO dedup (wamid, expires_at_ms, enqueued) VALUES (?1, ?2, 0)
             ON CONFLICT(wamid) DO UPDATE SET expires_at_ms = excluded.expires_at_ms, enqueued = 0
             WHERE dedup.expires_at_ms <= ?3",
        )
        .and_then(|mut s| s.execute(params![msg.wamid, now.saturating_add(DEDUP_TTL_MS), now]))
        .ctx("dedup")?
        == 1;
    if !fresh {
        let enqueued: bool = tx
            .prepare_cached("SELECT enqueued FROM dedup WHERE wamid = ?1")
            .and_then(|mut s| s.query_row([&msg.wamid], |r| r.get(0)))
            .ctx("dedup")?;
        tx.commit().ctx("record_inbound")?;
        return Ok(RecordOutcome::Duplicate { enqueued });
    }
    let payload =
        serde_json::to_string(&msg.payload).map_err(|e| Error::Invalid(format!("payload: {e}")))?;
    tx.prepare_cached(
        "INSERT INTO messages (wamid, wa_id, direction, kind, text, payload, at_ms,
                               answered, starts_turn)
         VALUES (?1, ?2, 'inbound', ?3, ?4, ?5, ?6, 0, ?7)
         ON CONFLICT(wamid) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            msg.wamid,
            msg.user_id.as_str(),
            msg.kind,
            msg.text,
            payload,
            now,
            msg.starts_turn,
        ])
    })
    .ctx("insert inbound")?;
    // A user message reopens the window, unless it is older than the last
    // one we know (a late redelivery says nothing about the window now).
    tx.prepare_cached(
        "INSERT INTO conversations (wa_id, phone_number_id, contact_name, state,
                                    last_user_at_ms, last_message_at_ms, window_closed)
         VALUES (?1, ?2, ?3, 'bot', ?4, ?4, 0)
         ON CONFLICT(wa_id) DO UPDATE SET
            phone_number_id = excluded.phone_number_id,
            contact_name = coalesce(excluded.contact_name, conversations.contact_name),
            window_closed = CASE WHEN excluded.last_user_at_ms >= conversations.last_user_at_ms
                                 THEN 0 ELSE conversations.window_closed END,
            last_user_at_ms = max(conversations.last_user_at_ms, excluded.last_user_at_ms),
            last_message_at_ms = max(conversations.last_message_at_ms, excluded.last_message_at_ms)",
    )
    .and_then(|mut s| {
        s.execute(params![
            msg.user_id.as_str(),
            msg.phone_number_id,
            msg.contact_name,
            now,
        ])
    })
    .ctx("upsert conversation")?;
    tx.commit().ctx("record_inbound")?;
    Ok(RecordOutcome::Recorded)
}

fn read_turn(conn: &Connection, user_id: &str, turn_id: &str) -> Result<Option<TurnRecord>> {
    let row: Option<(String, i64, String)> = conn
        .prepare_cached(
            "SELECT record, sent_parts, state FROM turns WHERE wa_id = ?1 AND turn_id = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![user_id, turn_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .ctx("read turn")?;
    let Some((json, sent_parts, state)) = row else {
        return Ok(None);
    };
    let mut record: TurnRecord =
        serde_json::from_str(&json).map_err(|e| corrupt("turn row", e.to_string()))?;
    // The columns are what later writes move; the JSON is the claim.
    record.sent_parts = usize::try_from(sent_parts)
        .map_err(|_| corrupt("turn row", format!("sent_parts {sent_parts}")))?;
    record.state =
        TurnState::parse(&state).ok_or_else(|| corrupt("turn row", format!("state {state:?}")))?;
    Ok(Some(record))
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn record_inbound(&self, msg: &NewInbound) -> Result<RecordOutcome> {
        let msg = msg.clone();
        let prune = self.recorded.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1;
        self.db
            .call(move |conn| {
                let outcome = record_inbound_tx(conn, &msg)?;
                if prune {
                    prune_dedup(conn, msg.received_at_ms)?;
                }
                Ok(outcome)
            })
            .await
    }

    async fn mark_enqueued(&self, wamid: &str) -> Result<()> {
        let wamid = wamid.to_string();
        self.db
            .call(move |conn| {
                conn.prepare_cached("UPDATE dedup SET enqueued = 1 WHERE wamid = ?1")
                    .and_then(|mut s| s.execute([&wamid]))
                    .ctx("mark_enqueued")?;
                Ok(())
            })
            .await
    }

    async fn apply_status(&self, update: &StatusUpdate) -> Result<StatusOutcome> {
        let update = update.clone();
        self.db
            .call(move |conn| {
                let rank = update.delivery.rank();
                // The guard: only a later state moves the row.
                let applied = conn
                    .prepare_cached(
                        "UPDATE messages SET delivery = ?2, delivery_rank = ?3, delivery_at_ms = ?4,
                                error_code = coalesce(?5, error_code)
                         WHERE wamid = ?1 AND direction = 'outbound' AND delivery_rank < ?3",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            update.wamid,
                            update.delivery.as_str(),
                            rank,
                            update.at_ms,
                            update.error_code,
                        ])
                    })
                    .ctx("apply_status")?
                    == 1;
                if applied {
                    return Ok(StatusOutcome::Applied);
                }
                let known = conn
                    .prepare_cached(
                        "SELECT 1 FROM messages WHERE wamid = ?1 AND direction = 'outbound'",
                    )
                    .and_then(|mut s| s.exists([&update.wamid]))
                    .ctx("apply_status")?;
                Ok(if known {
                    StatusOutcome::Stale
                } else {
                    StatusOutcome::Unknown
                })
            })
            .await
    }

    async fn close_window(&self, user_id: &UserId) -> Result<()> {
        let user_id = user_id.clone();
        self.db
            .call(move |conn| {
                conn.prepare_cached("UPDATE conversations SET window_closed = 1 WHERE wa_id = ?1")
                    .and_then(|mut s| s.execute([user_id.as_str()]))
                    .ctx("close_window")?;
                Ok(())
            })
            .await
    }

    async fn conversation(&self, user_id: &UserId) -> Result<Option<Conversation>> {
        let user_id = user_id.clone();
        self.db
            .call(move |conn| {
                let sql =
                    format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE wa_id = ?1");
                let row = conn
                    .prepare_cached(&sql)
                    .and_then(|mut s| {
                        s.query_row([user_id.as_str()], ConversationRow::from_row)
                            .optional()
                    })
                    .ctx("conversation")?;
                row.map(ConversationRow::into_conversation).transpose()
            })
            .await
    }

    async fn pending_inbound(&self, user_id: &UserId) -> Result<Vec<StoredMessage>> {
        let user_id = user_id.clone();
        self.db
            .call(move |conn| {
                let sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages
                     WHERE wa_id = ?1 AND direction = 'inbound' AND starts_turn = 1 AND answered = 0
                     ORDER BY at_ms, seq"
                );
                into_messages(query_messages(
                    conn,
                    "pending_inbound",
                    &sql,
                    [user_id.as_str()],
                )?)
            })
            .await
    }

    async fn recent_messages(&self, user_id: &UserId, limit: usize) -> Result<Vec<StoredMessage>> {
        let user_id = user_id.clone();
        self.db
            .call(move |conn| {
                let sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE wa_id = ?1
                     ORDER BY at_ms DESC, seq DESC LIMIT ?2"
                );
                let mut rows = query_messages(
                    conn,
                    "recent_messages",
                    &sql,
                    params![user_id.as_str(), usize_to_i64(limit)],
                )?;
                rows.reverse();
                into_messages(rows)
            })
            .await
    }

    async fn claim_turn(&self, turn: &TurnRecord) -> Result<ClaimOutcome> {
        let turn = turn.clone();
        let json = serde_json::to_string(&turn)?;
        self.db
            .call(move |conn| {
                let tx = conn.savepoint()
                    .ctx("claim_turn")?;
                let claimed = tx
                    .prepare_cached(
                        "INSERT INTO turns (wa_id, turn_id, record, sent_parts, state, created_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT(wa_id, turn_id) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            turn.user_id.as_str(),
                            turn.turn_id,
                            json,
                            usize_to_i64(turn.sent_parts),
                            turn.state.as_str(),
                            turn.created_at_ms,
                        ])
                    })
                    .ctx("claim_turn")?
                    == 1;
                let outcome = if claimed {
                    ClaimOutcome::Claimed
                } else {
                    let existing = read_turn(&tx, turn.user_id.as_str(), &turn.turn_id)?
                        .ok_or_else(|| corrupt("claim_turn", "turn vanished"))?;
                    ClaimOutcome::Existing(existing)
                };
                tx.commit().ctx("claim_turn")?;
                Ok(outcome)
            })
            .await
    }

    async fn record_sent_part(
        &self,
        user_id: &UserId,
        turn_id: &str,
        index: usize,
        sent: &SentRecord,
    ) -> Result<()> {
        let (user_id, turn_id, sent) = (user_id.clone(), turn_id.to_string(), sent.clone());
        self.db
            .call(move |conn| {
                let tx = conn.savepoint().ctx("record_sent_part")?;
                // max(): a late retry of an earlier part never moves it back.
                let found = tx
                    .prepare_cached(
                        "UPDATE turns SET sent_parts = max(sent_parts, ?3)
                         WHERE wa_id = ?1 AND turn_id = ?2",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            user_id.as_str(),
                            turn_id,
                            usize_to_i64(index.saturating_add(1))
                        ])
                    })
                    .ctx("record_sent_part")?
                    == 1;
                if !found {
                    return Err(Error::NotFound(format!("turn {turn_id}")));
                }
                insert_outbound(&tx, user_id.as_str(), &sent)?;
                tx.commit().ctx("record_sent_part")
            })
            .await
    }

    async fn complete_turn(
        &self,
        user_id: &UserId,
        turn_id: &str,
        inbound: &[String],
    ) -> Result<()> {
        let (user_id, turn_id, inbound) = (user_id.clone(), turn_id.to_string(), inbound.to_vec());
        self.db
            .call(move |conn| {
                let tx = conn.savepoint().ctx("complete_turn")?;
                tx.prepare_cached(
                    "UPDATE turns SET state = 'sent' WHERE wa_id = ?1 AND turn_id = ?2",
                )
                .and_then(|mut s| s.execute(params![user_id.as_str(), turn_id]))
                .ctx("complete_turn")?;
                {
                    let mut answer = tx
                        .prepare_cached(
                            "UPDATE messages SET answered = 1
                             WHERE wamid = ?1 AND wa_id = ?2 AND direction = 'inbound'",
                        )
                        .ctx("complete_turn")?;
                    for wamid in &inbound {
                        answer
                            .execute(params![wamid, user_id.as_str()])
                            .ctx("complete_turn")?;
                    }
                }
                tx.commit().ctx("complete_turn")
            })
            .await
    }

    async fn record_outbound(&self, user_id: &UserId, sent: &SentRecord) -> Result<()> {
        let (user_id, sent) = (user_id.clone(), sent.clone());
        self.db
            .call(move |conn| {
                let tx = conn.savepoint().ctx("record_outbound")?;
                insert_outbound(&tx, user_id.as_str(), &sent)?;
                tx.commit().ctx("record_outbound")
            })
            .await
    }

    async fn list_conversations(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Conversation>> {
        let after = cursor.map(decode_cursor).transpose()?;
        let limit = limit.max(1);
        self.db
            .call(move |conn| {
                // One more than asked tells whether there is a next page.
                let fetch = usize_to_i64(limit.saturating_add(1));
                let rows = match &after {
                    None => {
                        let sql = format!(
                            "SELECT {CONVERSATION_COLUMNS} FROM conversations
                             ORDER BY last_message_at_ms DESC, wa_id DESC LIMIT ?1"
                        );
                        let mut stmt = conn.prepare_cached(&sql).ctx("list_conversations")?;
                        let rows = stmt
                            .query_map([fetch], ConversationRow::from_row)
                            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
                            .ctx("list_conversations")?;
                        rows
                    }
                    Some((at, wa)) => {
                        let sql = format!(
                            "SELECT {CONVERSATION_COLUMNS} FROM conversations
                             WHERE (last_message_at_ms, wa_id) < (?1, ?2)
                             ORDER BY last_message_at_ms DESC, wa_id DESC LIMIT ?3"
                        );
                        let mut stmt = conn.prepare_cached(&sql).ctx("list_conversations")?;
                        let rows = stmt
                            .query_map(params![at, wa, fetch], ConversationRow::from_row)
                            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
                            .ctx("list_conversations")?;
                        rows
                    }
                };
                let more = rows.len() > limit;
                let items = rows
                    .into_iter()
                    .take(limit)
                    .map(ConversationRow::into_conversation)
                    .collect::<Result<Vec<_>>>()?;
                let next = match items.last() {
                    Some(last) if more => Some(encode_cursor(
                        last.last_message_at_ms,
                        last.user_id.as_str(),
                    )),
                    _ => None,
                };
                Ok(Page { items, next })
            })
            .await
    }

    async fn transcript(
        &self,
        user_id: &UserId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<StoredMessage>> {
        let (at, seq) = match cursor.map(decode_cursor).transpose()? {
            Some((at, seq)) => (
                at,
                seq.parse::<i64>()
                    .map_err(|_| Error::Invalid("bad cursor".into()))?,
            ),
            None => (i64::MIN, i64::MIN),
        };
        let user_id = user_id.clone();
        let limit = limit.max(1);
        self.db
            .call(move |conn| {
                let sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages
                     WHERE wa_id = ?1 AND (at_ms, seq) > (?2, ?3)
                     ORDER BY at_ms, seq LIMIT ?4"
                );
                let mut rows = query_messages(
                    conn,
                    "transcript",
                    &sql,
                    params![
                        user_id.as_str(),
                        at,
                        seq,
                        usize_to_i64(limit.saturating_add(1))
                    ],
                )?;
                let more = rows.len() > limit;
                rows.truncate(limit);
                let next = match rows.last() {
                    Some(last) if more => Some(encode_cursor(last.at_ms, &last.seq.to_string())),
                    _ => None,
                };
                Ok(Page {
                    items: into_messages(rows)?,
                    next,
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::store_contract;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_memory_store_keeps_the_contract() {
        let store = SqliteStore::open_in_memory().expect("open");
        store_contract::run_all(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn file_store_keeps_the_contract() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("nested/charla.db")).expect("open");
        store_contract::run_all(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_store_keeps_the_identity_contract() {
        let store = SqliteStore::open_in_memory().expect("open");
        test_support::identity_contract::run_all(&store).await;
    }

    /// A file written before BSUIDs (schema 2) opens in place: its
    /// number-keyed conversations are where they were, and gain the links.
    #[tokio::test]
    async fn a_version_2_file_upgrades_in_place() {
        use domain::identity::{self, SeenUser};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("charla.db");
        let wa = store_contract::fresh_user_id();
        let m = store_contract::inbound(&wa, SystemClock.now_ms(), true);
        {
            let mut conn = open_connection(Some(&path)).expect("open v2");
            migrate(
                &mut conn,
                "store",
                2,
                &[SCHEMA_V1, records::SCHEMA_V2].concat(),
            )
            .expect("v2 schema");
            let version: i64 = conn
                .query_row(
                    "SELECT version FROM charla_schema WHERE component = 'store'",
                    [],
                    |r| r.get(0),
                )
                .expect("version");
            assert_eq!(version, 2);
            let tables: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'identity_links'",
                    [],
                    |r| r.get(0),
                )
                .expect("tables");
            assert_eq!(tables, 0, "version 2 has no links");
        }
        {
            let store = SqliteStore::open(&path).expect("upgrade");
            store.record_inbound(&m).await.expect("record");
        }
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.schema_version().await, SCHEMA_VERSION);
        let bsuid = test_support::identity_contract::fresh_bsuid();
        let seen = SeenUser {
            phone: Some(wa.clone()),
            bsuid: Some(bsuid.clone()),
        };
        let user = identity::resolve(&store, &seen, 1)
            .await
            .expect("resolve")
            .user;
        assert_eq!(user, wa, "the number-keyed history stays the user's");
        assert!(store.conversation(&user).await.expect("read").is_some());
        // call_requests gained its phone column.
        use domain::ports::AgentRecords;
        let mut request = test_support::records_contract::call_request(&bsuid, "t:call", 1);
        request.phone = Some(wa.clone());
        assert!(store.save_call_request(&request).await.expect("save"));
        assert_eq!(
            store.call_requests(&bsuid).await.expect("list"),
            vec![request]
        );
    }

    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("charla.db");
        let wa = store_contract::fresh_user_id();
        // Near now: opening prunes dedup rows expired by the wall clock.
        let m = store_contract::inbound(&wa, SystemClock.now_ms(), true);
        {
            let store = SqliteStore::open(&path).expect("open");
            assert_eq!(
                store.record_inbound(&m).await.expect("record"),
                RecordOutcome::Recorded
            );
            store.mark_enqueued(&m.wamid).await.expect("mark");
        }
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(
            store.record_inbound(&m).await.expect("record again"),
            RecordOutcome::Duplicate { enqueued: true }
        );
        let c = store.conversation(&wa).await.expect("read").expect("kept");
        assert_eq!(c.contact_name.as_deref(), Some("Ana"));
        assert_eq!(store.pending_inbound(&wa).await.expect("pending").len(), 1);
    }

    #[tokio::test]
    async fn expired_dedup_is_treated_as_absent() {
        let store = SqliteStore::open_in_memory().expect("open");
        let wa = store_contract::fresh_user_id();
        let mut m = store_contract::inbound(&wa, 1_000_000, true);
        assert_eq!(
            store.record_inbound(&m).await.expect("record"),
            RecordOutcome::Recorded
        );
        store.mark_enqueued(&m.wamid).await.expect("mark");
        m.received_at_ms += DEDUP_TTL_MS - 1;
        assert_eq!(
            store.record_inbound(&m).await.expect("within ttl"),
            RecordOutcome::Duplicate { enqueued: true }
        );
        m.received_at_ms += 1;
        assert_eq!(
            store.record_inbound(&m).await.expect("expired"),
            RecordOutcome::Recorded
        );
        // The message itself is still there once.
        let page = store.transcript(&wa, 10, None).await.expect("transcript");
        assert_eq!(page.items.len(), 1);
    }

    #[tokio::test]
    async fn pruning_removes_only_expired_dedup_rows() {
        let store = SqliteStore::open_in_memory().expect("open");
        let wa = store_contract::fresh_user_id();
        let old = store_contract::inbound(&wa, 1_000, true);
        let new = store_contract::inbound(&wa, 2 * DEDUP_TTL_MS, true);
        store.record_inbound(&old).await.expect("record");
        store.record_inbound(&new).await.expect("record");
        let count = |store: &SqliteStore| {
            let store = store.clone();
            async move {
                store
                    .db
                    .call(|c| {
                        c.query_row("SELECT count(*) FROM dedup", [], |r| r.get::<_, i64>(0))
                            .ctx("count")
                    })
                    .await
                    .expect("count")
            }
        };
        assert_eq!(count(&store).await, 2);
        let removed = store
            .db
            .call(|c| prune_dedup(c, 2 * DEDUP_TTL_MS))
            .await
            .expect("prune");
        assert_eq!(removed, 1);
        assert_eq!(count(&store).await, 1);
    }

    #[tokio::test]
    async fn bad_cursors_are_invalid_input() {
        let store = SqliteStore::open_in_memory().expect("open");
        let wa = store_contract::fresh_user_id();
        for bad in ["!!!", "bm90LWEtY3Vyc29y", ""] {
            assert!(matches!(
                store.transcript(&wa, 5, Some(bad)).await,
                Err(Error::Invalid(_))
            ));
            assert!(matches!(
                store.list_conversations(5, Some(bad)).await,
                Err(Error::Invalid(_))
            ));
        }
    }

    #[tokio::test]
    async fn a_part_of_an_unknown_turn_is_refused() {
        let store = SqliteStore::open_in_memory().expect("open");
        let wa = store_contract::fresh_user_id();
        let r = store
            .record_sent_part(&wa, "nope", 0, &store_contract::sent(1, "x"))
            .await;
        assert!(matches!(r, Err(Error::NotFound(_))));
        assert!(store
            .transcript(&wa, 5, None)
            .await
            .expect("read")
            .items
            .is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_writers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("c.db")).expect("open");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let wa = store_contract::fresh_user_id();
                for i in 0..50 {
                    let m = store_contract::inbound(&wa, 1_700_000_000_000 + i, true);
                    assert_eq!(
                        store.record_inbound(&m).await.expect("record"),
                        RecordOutcome::Recorded
                    );
                }
                wa
            }));
        }
        for t in tasks {
            let wa = t.await.expect("task");
            assert_eq!(store.pending_inbound(&wa).await.expect("pending").len(), 50);
        }
    }
}
