//! [`AgentRecords`] in the store's SQLite file (schema version 2).
//!
//! Each idempotent write is one `INSERT ... ON CONFLICT DO NOTHING` on the
//! record's key, so a retried turn records nothing twice; the one connection
//! thread runs each call alone.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::super::{corrupt, query_all, to_i64, SqliteContext};
use super::SqliteStore;
use domain::error::{Error, Result};
use domain::ports::AgentRecords;
use domain::*;

/// The agent's records. Leads and call requests are keyed by `(wa_id, id)`,
/// like the DynamoDB store, which keeps them in the conversation's partition.
/// Appointments are keyed by their slot start: the key is the guard against
/// double booking.
pub(super) const SCHEMA_V2: &str = "
CREATE TABLE IF NOT EXISTS leads (
    wa_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    interest TEXT NOT NULL,
    notes TEXT,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (wa_id, id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS appointments (
    start_ms INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    wa_id TEXT NOT NULL,
    end_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS call_requests (
    wa_id TEXT NOT NULL,
    id TEXT NOT NULL,
    phone_number_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    when_ms INTEGER,
    language TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (wa_id, id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS memories (
    wa_id TEXT PRIMARY KEY,
    summary TEXT NOT NULL,
    summarized_until_ms INTEGER NOT NULL,
    language TEXT
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS turn_usage (
    wa_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    model_calls INTEGER NOT NULL,
    tool_calls INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (wa_id, turn_id)
) WITHOUT ROWID;
";

fn user_id_from(context: &str, s: &str) -> Result<UserId> {
    UserId::parse(s).map_err(|e| corrupt(context, e))
}

/// Counts are stored as SQLite integers (i64); a negative one is not ours.
fn count_from<T: TryFrom<i64>>(context: &str, name: &str, v: i64) -> Result<T> {
    T::try_from(v).map_err(|_| corrupt(context, format!("{name} is {v}")))
}

type LeadRow = (String, String, String, String, Option<String>, i64);

fn lead_from(r: LeadRow) -> Result<Lead> {
    let (id, user_id, name, interest, notes, created_at_ms) = r;
    Ok(Lead {
        id,
        user_id: user_id_from("lead row", &user_id)?,
        name,
        interest,
        notes,
        created_at_ms,
    })
}

type AppointmentRow = (String, String, i64, i64, String, i64);

fn appointment_from(r: AppointmentRow) -> Result<Appointment> {
    let (id, user_id, start_ms, end_ms, topic, created_at_ms) = r;
    Ok(Appointment {
        id,
        user_id: user_id_from("appointment row", &user_id)?,
        start_ms,
        end_ms,
        topic,
        created_at_ms,
    })
}

impl SqliteStore {
    /// The usage recorded for `wa_id`'s turns, oldest first: for reports
    /// (and the records contract; the agent only writes usage).
    pub async fn usage(&self, user_id: &UserId) -> Result<Vec<TurnUsage>> {
        let user_id = user_id.clone();
        self.db
            .call(move |conn| {
                let rows = query_all(
                    conn,
                    "usage",
                    "SELECT turn_id, model, input_tokens, output_tokens, model_calls,
                            tool_calls, at_ms
                     FROM turn_usage WHERE wa_id = ?1 ORDER BY at_ms, turn_id",
                    [user_id.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, i64>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    },
                )?;
                let ctx = "usage row";
                rows.into_iter()
                    .map(|(turn_id, model, input, output, calls, tools, at_ms)| {
                        Ok(TurnUsage {
                            turn_id,
                            user_id: user_id.clone(),
                            model,
                            usage: Usage {
                                input_tokens: count_from(ctx, "input_tokens", input)?,
                                output_tokens: count_from(ctx, "output_tokens", output)?,
                            },
                            model_calls: count_from(ctx, "model_calls", calls)?,
                            tool_calls: count_from(ctx, "tool_calls", tools)?,
                            at_ms,
                        })
                    })
                    .collect()
            })
            .await
    }
}

#[async_trait]
impl AgentRecords for SqliteStore {
    async fn save_lead(&self, lead: &Lead) -> Result<bool> {
        let lead = lead.clone();
        self.db
            .call(move |conn| {
                let n = conn
                    .prepare_cached(
                        "INSERT INTO leads (wa_id, id, name, interest, notes, created_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT(wa_id, id) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            lead.user_id.as_str(),
                            lead.id,
                            lead.name,
                            lead.interest,
                            lead.notes,
                            lead.created_at_ms,
                        ])
                    })
                    .ctx("save_lead")?;
                Ok(n == 1)
            })
            .await
    }

    async fn leads(&self, user_id: &UserId) -> Result<Vec<Lead>> {
        let user_id = user_id.clone();
        self.db
            .call(move |conn| {
                query_all(
                    conn,
                    "leads",
                    "SELECT id, wa_id, name, interest, notes, created_at_ms FROM leads
                     WHERE wa_id = ?1 ORDER BY created_at_ms, id",
                    [user_id.as_str()],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    },
                )?
                .into_iter()
                .map(lead_from)
                .collect()
            })
            .await
    }

    async fn book(&self, appointment: &Appointment) -> Result<BookOutcome> {
        let a = appointment.clone();
        self.db
            .call(move |conn| {
                let tx = conn.savepoint()
                    .ctx("book")?;
                // The guard: the slot start is the key.
                let booked = tx
                    .prepare_cached(
                        "INSERT INTO appointments (start_ms, id, wa_id, end_ms, topic, created_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT(start_ms) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            a.start_ms,
                            a.id,
                            a.user_id.as_str(),
                            a.end_ms,
                            a.topic,
                            a.created_at_ms,
                        ])
                    })
                    .ctx("book")?
                    == 1;
                let outcome = if booked {
                    BookOutcome::Booked
                } else {
                    let holder: String = tx
                        .prepare_cached("SELECT id FROM appointments WHERE start_ms = ?1")
                        .and_then(|mut s| s.query_row([a.start_ms], |r| r.get(0)))
                        .ctx("book")?;
                    if holder == a.id {
                        BookOutcome::AlreadyBooked
                    } else {
                        BookOutcome::Taken
                    }
                };
                tx.commit().ctx("book")?;
                Ok(outcome)
            })
            .await
    }

    async fn appointments_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Appointment>> {
        self.db
            .call(move |conn| {
                query_all(
                    conn,
                    "appointments_between",
                    "SELECT id, wa_id, start_ms, end_ms, topic, created_at_ms FROM appointments
                     WHERE start_ms >= ?1 AND start_ms < ?2 ORDER BY start_ms",
                    [from_ms, to_ms],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    },
                )?
                .into_iter()
                .map(appointment_from)
                .collect()
            })
            .await
    }

    async fn save_call_request(&self, request: &CallRequest) -> Result<bool> {
        let c = request.clone();
        self.db
            .call(move |conn| {
                let n = conn
                    .prepare_cached(
                        "INSERT INTO call_requests (wa_id, id, phone_number_id, reason, when_ms,
                                                    language, state, created_at_ms, phone)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                         ON CONFLICT(wa_id, id) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            c.user_id.as_str(),
                            c.id,
                            c.phone_number_id,
                            c.reason,
                            c.when_ms,
                            c.language,
                            c.state.as_str(),
                            c.created_at_ms,
                            c.phone.as_ref().map(UserId::as_str),
                        ])
                    })
                    .ctx("save_call_request")?;
                Ok(n == 1)
            })
            .await
    }

    async fn call_requests(&self, user_id: &UserId) -> Result<Vec<CallRequest>> {
        let user_id = user_id.clone();
        self.db
            .call(move |conn| {
                let rows = query_all(
                    conn,
                    "call_requests",
                    "SELECT id, phone_number_id, reason, when_ms, language, state, created_at_ms,
                            phone
                     FROM call_requests WHERE wa_id = ?1 ORDER BY created_at_ms, id",
                    [user_id.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<i64>>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, i64>(6)?,
                            r.get::<_, Option<String>>(7)?,
                        ))
                    },
                )?;
                rows.into_iter()
                    .map(
                        |(
                            id,
                            phone_number_id,
                            reason,
                            when_ms,
                            language,
                            state,
                            created_at_ms,
                            phone,
                        )| {
                            Ok(CallRequest {
                                id,
                                user_id: user_id.clone(),
                                phone_number_id,
                                reason,
                                when_ms,
                                language,
                                state: CallRequestState::parse(&state).ok_or_else(|| {
                                    corrupt("call request row", format!("state {state:?}"))
                                })?,
                                created_at_ms,
                                phone: phone
                                    .map(|p| UserId::phone(p.as_str()))
                                    .transpose()
                                    .map_err(|e| corrupt("call request row", e))?,
                                campaign: None,
                            })
                        },
                    )
                    .collect()
            })
            .await
    }

    async fn set_state(
        &self,
        user_id: &UserId,
        from: ConversationState,
        to: ConversationState,
    ) -> Result<bool> {
        let user_id = user_id.clone();
        self.db
            .call(move |conn| {
                let changed = conn
                    .prepare_cached(
                        "UPDATE conversations SET state = ?3 WHERE wa_id = ?1 AND state = ?2",
                    )
                    .and_then(|mut s| {
                        s.execute(params![user_id.as_str(), from.as_str(), to.as_str()])
                    })
                    .ctx("set_state")?
                    == 1;
                if changed {
                    return Ok(true);
                }
                // Not changed: another state, or no conversation at all.
                let exists = conn
                    .prepare_cached("SELECT 1 FROM conversations WHERE wa_id = ?1")
                    .and_then(|mut s| {
                        s.query_row([user_id.as_str()], |r| r.get::<_, i64>(0))
                            .optional()
                    })
                    .ctx("set_state")?
                    .is_some();
                if exists {
                    Ok(false)
                } else {
                    Err(Error::NotFound(format!(
                        "conversation of {}",
                        mask(user_id.as_str())
                    )))
                }
            })
            .await
    }

    async fn memory(&self, user_id: &UserId) -> Result<Memory> {
        let user_id = user_id.clone();
        self.db
            .call(move |conn| {
                let row = conn
                    .prepare_cached(
                        "SELECT summary, summarized_until_ms, language FROM memories
                         WHERE wa_id = ?1",
                    )
                    .and_then(|mut s| {
                        s.query_row([user_id.as_str()], |r| {
                            Ok(Memory {
                                summary: r.get(0)?,
                                summarized_until_ms: r.get(1)?,
                                language: r.get(2)?,
                            })
                        })
                        .optional()
                    })
                    .ctx("memory")?;
                Ok(row.unwrap_or_default())
            })
            .await
    }

    async fn save_memory(&self, user_id: &UserId, memory: &Memory) -> Result<()> {
        let (user_id, m) = (user_id.clone(), memory.clone());
        self.db
            .call(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO memories (wa_id, summary, summarized_until_ms, language)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(wa_id) DO UPDATE SET
                        summary = excluded.summary,
                        summarized_until_ms = excluded.summarized_until_ms,
                        language = excluded.language",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        user_id.as_str(),
                        m.summary,
                        m.summarized_until_ms,
                        m.language
                    ])
                })
                .ctx("save_memory")?;
                Ok(())
            })
            .await
    }

    async fn record_usage(&self, usage: &TurnUsage) -> Result<()> {
        let u = usage.clone();
        self.db
            .call(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO turn_usage (wa_id, turn_id, model, input_tokens, output_tokens,
                                             model_calls, tool_calls, at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT(wa_id, turn_id) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        u.user_id.as_str(),
                        u.turn_id,
                        u.model,
                        to_i64(u.usage.input_tokens),
                        to_i64(u.usage.output_tokens),
                        u.model_calls,
                        u.tool_calls,
                        u.at_ms,
                    ])
                })
                .ctx("record_usage")?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::{migrate, open_connection};
    use super::super::{SCHEMA_V1, SCHEMA_VERSION};
    use super::*;
    use domain::ports::ConversationStore;
    use test_support::records_contract;

    // The records contract runs in tests/contracts.rs: test-support's
    // implementation of it is for this crate as a library.

    /// A `.charla/charla.db` written by the previous version (schema 1, no
    /// record tables) opens, keeps its conversations, and gains the tables.
    #[tokio::test]
    async fn a_version_1_file_upgrades_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("charla.db");
        {
            // Exactly what version 1 did on open, then a conversation.
            let mut conn = open_connection(Some(&path)).expect("open v1");
            migrate(&mut conn, "store", 1, SCHEMA_V1).expect("schema v1");
            conn.execute(
                "INSERT INTO conversations (wa_id, phone_number_id, contact_name, state,
                                            last_user_at_ms, last_message_at_ms, window_closed)
                 VALUES ('5491155551234', 'pn', 'Ana', 'bot', 1000, 1000, 0)",
                [],
            )
            .expect("v1 conversation");
        }
        let store = SqliteStore::open(&path).expect("open v2");
        assert_eq!(store.schema_version().await, SCHEMA_VERSION);
        let wa = UserId::parse("5491155551234").expect("valid");
        let c = store.conversation(&wa).await.expect("read").expect("kept");
        assert_eq!(c.contact_name.as_deref(), Some("Ana"));
        assert!(store
            .set_state(&wa, ConversationState::Bot, ConversationState::Human)
            .await
            .expect("set_state on an old conversation"));
        let lead = records_contract::lead(&wa, "t1:lead", 2_000);
        assert!(store.save_lead(&lead).await.expect("save"));
        drop(store);
        // Reopening the upgraded file changes nothing.
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.leads(&wa).await.expect("leads"), vec![lead]);
        let c = store.conversation(&wa).await.expect("read").expect("kept");
        assert_eq!(c.state, ConversationState::Human);
    }

    #[tokio::test]
    async fn a_file_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("charla.db");
        {
            let mut conn = open_connection(Some(&path)).expect("open");
            migrate(&mut conn, "store", SCHEMA_VERSION + 1, "").expect("future");
        }
        assert!(SqliteStore::open(&path).is_err());
    }
}
