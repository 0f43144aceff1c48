//! [`CallRecords`] in SQLite (component `calls`, its own tables in the
//! store's file). The record is kept whole as JSON beside the columns the
//! queries need; every change is one `UPDATE ... WHERE version = ?`.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::{corrupt, migrate, open_connection, query_all, Db, SqliteContext};
use domain::error::Result;
use domain::ports::CallRecords;
use domain::voice::CallRecord;

const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS call_records (
    request_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    due_at_ms INTEGER,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS call_records_due ON call_records (due_at_ms)
    WHERE due_at_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS call_events (
    key TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

#[derive(Clone)]
pub struct SqliteCallRecords {
    db: Db,
}

impl std::fmt::Debug for SqliteCallRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCallRecords").finish_non_exhaustive()
    }
}

impl SqliteCallRecords {
    pub fn open(path: &Path) -> Result<Self> {
        Self::from_connection(open_connection(Some(path))?)
    }

    pub fn open_in_memory() -> Result<Self> {
        Self::from_connection(open_connection(None)?)
    }

    fn from_connection(mut conn: rusqlite::Connection) -> Result<Self> {
        migrate(&mut conn, "calls", SCHEMA_VERSION, SCHEMA)?;
        Ok(SqliteCallRecords { db: Db::new(conn)? })
    }
}

/// The index holds [`CallRecord::due_marker`].
fn due_of(r: &CallRecord) -> Option<i64> {
    r.due_marker()
}

fn version(r: &CallRecord) -> i64 {
    i64::try_from(r.version).unwrap_or(i64::MAX)
}

fn decode(json: &str) -> Result<CallRecord> {
    serde_json::from_str(json).map_err(|e| corrupt("call record", e.to_string()))
}

#[async_trait]
impl CallRecords for SqliteCallRecords {
    async fn create(&self, record: &CallRecord) -> Result<bool> {
        let json = serde_json::to_string(record)?;
        let (id, v, due) = (
            record.request_id().to_string(),
            version(record),
            due_of(record),
        );
        self.db
            .call(move |c| {
                c.prepare_cached(
                    "INSERT INTO call_records (request_id, version, due_at_ms, record)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT(request_id) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![id, v, due, json]))
                .map(|n| n == 1)
                .ctx("create call record")
            })
            .await
    }

    async fn get(&self, request_id: &str) -> Result<Option<CallRecord>> {
        let id = request_id.to_string();
        let json: Option<String> = self
            .db
            .call(move |c| {
                c.prepare_cached("SELECT record FROM call_records WHERE request_id = ?1")
                    .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
                    .ctx("get call record")
            })
            .await?;
        json.as_deref().map(decode).transpose()
    }

    async fn update(&self, prev: &CallRecord, next: &CallRecord) -> Result<bool> {
        let json = serde_json::to_string(next)?;
        let (id, old, new, due) = (
            prev.request_id().to_string(),
            version(prev),
            version(next),
            due_of(next),
        );
        self.db
            .call(move |c| {
                c.prepare_cached(
                    "UPDATE call_records SET version = ?3, due_at_ms = ?4, record = ?5
                     WHERE request_id = ?1 AND version = ?2",
                )
                .and_then(|mut s| s.execute(params![id, old, new, due, json]))
                .map(|n| n == 1)
                .ctx("update call record")
            })
            .await
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<CallRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<String> = self
            .db
            .call(move |c| {
                query_all(
                    c,
                    "due call records",
                    "SELECT record FROM call_records WHERE due_at_ms IS NOT NULL
                     AND due_at_ms <= ?1 ORDER BY due_at_ms, request_id LIMIT ?2",
                    params![now_ms, limit],
                    |r| r.get(0),
                )
            })
            .await?;
        rows.iter().map(|j| decode(j)).collect()
    }

    async fn mark_event(&self, key: &str, at_ms: i64) -> Result<bool> {
        let key = key.to_string();
        self.db
            .call(move |c| {
                c.prepare_cached(
                    "INSERT INTO call_events (key, at_ms) VALUES (?1, ?2)
                     ON CONFLICT(key) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![key, at_ms]))
                .map(|n| n == 1)
                .ctx("mark call event")
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_call_records_pass_the_contract() {
        let records = SqliteCallRecords::open_in_memory().expect("open");
        test_support::calls_contract::run_all(&records).await;
    }

    #[tokio::test]
    async fn call_records_share_the_store_file_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("charla.db");
        let _store = super::super::SqliteStore::open(&path).expect("store");
        let r = test_support::calls_contract::record("t:call");
        {
            let records = SqliteCallRecords::open(&path).expect("open");
            assert!(records.create(&r).await.expect("create"));
        }
        let records = SqliteCallRecords::open(&path).expect("reopen");
        assert_eq!(records.get("t:call").await.expect("get"), Some(r));
    }
}
