//! [`UsageLedger`] in SQLite: counters per conversation and per day, and
//! the events that made them (their ids keep a retried add from counting
//! twice; their log entries are the transcript's timeline). One transaction
//! per event, so counts are exact.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::params;

use super::{migrate, open_connection, query_all, Db, SqliteContext};
use domain::error::{Error, Result};
use domain::ports::UsageLedger;
use domain::usage::{key, Counters, TurnLog, UsageEvent};
use domain::UserId;

const DDL: &str = "
CREATE TABLE IF NOT EXISTS usage_events (
    user_id TEXT NOT NULL,
    id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    log TEXT,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX IF NOT EXISTS usage_events_by_time ON usage_events (user_id, at_ms);
-- scope: 'day:YYYY-MM-DD' or 'user:<id>'
CREATE TABLE IF NOT EXISTS usage_counters (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (scope, name)
);
CREATE TABLE IF NOT EXISTS usage_day_users (
    day TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (day, user_id)
);";

/// Usage on one machine.
#[derive(Clone)]
pub struct SqliteUsage {
    db: Db,
}

impl SqliteUsage {
    /// Opens (or creates) the usage tables in the file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::from_connection(open_connection(Some(path))?)
    }

    pub fn open_in_memory() -> Result<Self> {
        Self::from_connection(open_connection(None)?)
    }

    fn from_connection(mut conn: rusqlite::Connection) -> Result<Self> {
        migrate(&mut conn, "usage", 1, DDL)?;
        Ok(SqliteUsage { db: Db::new(conn)? })
    }
}

fn counters_of(conn: &rusqlite::Connection, scope: &str) -> Result<Counters> {
    Ok(query_all(
        conn,
        "usage counters",
        "SELECT name, n FROM usage_counters WHERE scope = ?1",
        [scope],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    )?
    .into_iter()
    .map(|(k, n)| (k, n.max(0) as u64))
    .collect())
}

#[async_trait]
impl UsageLedger for SqliteUsage {
    async fn add(&self, event: &UsageEvent) -> Result<()> {
        let event = event.clone();
        let log = event.log.as_ref().map(serde_json::to_string).transpose()?;
        self.db
            .call(move |conn| {
                let tx = conn.savepoint().ctx("usage transaction")?;
                let new = tx
                    .prepare_cached(
                        "INSERT INTO usage_events (user_id, id, at_ms, log) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![event.user_id.as_str(), event.id, event.at_ms, log])
                    })
                    .ctx("usage event")?;
                if new == 0 {
                    return Ok(());
                }
                let day = event.day();
                let day_scope = format!("day:{day}");
                let user_scope = format!("user:{}", event.user_id.as_str());
                {
                    let mut add = tx
                        .prepare_cached(
                            "INSERT INTO usage_counters (scope, name, n) VALUES (?1, ?2, ?3)
                             ON CONFLICT (scope, name) DO UPDATE SET n = n + excluded.n",
                        )
                        .ctx("usage counters")?;
                    for (name, n) in &event.counters {
                        let n = i64::try_from(*n).unwrap_or(i64::MAX);
                        for scope in [&day_scope, &user_scope] {
                            add.execute(params![scope, name, n]).ctx("usage counter")?;
                        }
                    }
                    let first_today = tx
                        .prepare_cached(
                            "INSERT INTO usage_day_users (day, user_id) VALUES (?1, ?2)
                             ON CONFLICT DO NOTHING",
                        )
                        .and_then(|mut s| s.execute(params![day, event.user_id.as_str()]))
                        .ctx("usage day user")?;
                    if first_today == 1 {
                        add.execute(params![day_scope, key::CONVERSATIONS, 1])
                            .ctx("usage conversations")?;
                    }
                }
                tx.commit().ctx("usage commit")?;
                Ok(())
            })
            .await
    }

    async fn days(&self, from: &str, to: &str) -> Result<Vec<(String, Counters)>> {
        let (from, to) = (format!("day:{from}"), format!("day:{to}"));
        self.db
            .call(move |conn| {
                let rows = query_all(
                    conn,
                    "usage days",
                    "SELECT scope, name, n FROM usage_counters
                     WHERE scope >= ?1 AND scope <= ?2 ORDER BY scope",
                    params![from, to],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )?;
                let mut days: Vec<(String, Counters)> = Vec::new();
                for (scope, name, n) in rows {
                    let day = scope.trim_start_matches("day:").to_string();
                    if days.last().map(|(d, _)| d != &day).unwrap_or(true) {
                        days.push((day, Counters::new()));
                    }
                    if let Some((_, c)) = days.last_mut() {
                        c.insert(name, n.max(0) as u64);
                    }
                }
                Ok(days)
            })
            .await
    }

    async fn conversation(&self, user_id: &UserId) -> Result<Counters> {
        let scope = format!("user:{}", user_id.as_str());
        self.db.call(move |conn| counters_of(conn, &scope)).await
    }

    async fn log(&self, user_id: &UserId, from_ms: i64, to_ms: i64) -> Result<Vec<TurnLog>> {
        let user = user_id.as_str().to_string();
        self.db
            .call(move |conn| {
                query_all(
                    conn,
                    "usage log",
                    "SELECT log FROM usage_events
                     WHERE user_id = ?1 AND at_ms >= ?2 AND at_ms <= ?3 AND log IS NOT NULL
                     ORDER BY at_ms",
                    params![user, from_ms, to_ms],
                    |r| r.get::<_, String>(0),
                )?
                .iter()
                .map(|json| {
                    serde_json::from_str(json)
                        .map_err(|e| Error::dependency("sqlite", "usage log", false, e))
                })
                .collect()
            })
            .await
    }
}
