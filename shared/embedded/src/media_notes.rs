//! [`MediaNotes`] in SQLite: one row per media message, in the store's file
//! (its own table, its own schema component, its own connection).

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use rusqlite::params;

use super::{migrate, open_connection, Db, SqliteContext};
use domain::error::{Error, Result};
use domain::media_pipeline::MediaNote;
use domain::ports::MediaNotes;

const DDL: &str = "CREATE TABLE IF NOT EXISTS media_notes (
    wamid TEXT PRIMARY KEY,
    note TEXT NOT NULL
);";

/// Media notes on one machine.
#[derive(Clone)]
pub struct SqliteMediaNotes {
    db: Db,
}

impl SqliteMediaNotes {
    /// Opens (or creates) the notes table in the file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::from_connection(open_connection(Some(path))?)
    }

    pub fn open_in_memory() -> Result<Self> {
        Self::from_connection(open_connection(None)?)
    }

    fn from_connection(mut conn: rusqlite::Connection) -> Result<Self> {
        migrate(&mut conn, "media", 1, DDL)?;
        Ok(SqliteMediaNotes { db: Db::new(conn)? })
    }
}

#[async_trait]
impl MediaNotes for SqliteMediaNotes {
    async fn record_note(&self, wamid: &str, note: &MediaNote) -> Result<()> {
        let wamid = wamid.to_string();
        let note = serde_json::to_string(note)?;
        self.db
            .call(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO media_notes (wamid, note) VALUES (?1, ?2)
                     ON CONFLICT (wamid) DO UPDATE SET note = excluded.note",
                )
                .and_then(|mut s| s.execute(params![wamid, note]))
                .ctx("record media note")?;
                Ok(())
            })
            .await
    }

    async fn notes(&self, wamids: &[String]) -> Result<HashMap<String, MediaNote>> {
        if wamids.is_empty() {
            return Ok(HashMap::new());
        }
        let wamids = wamids.to_vec();
        self.db
            .call(move |conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT note FROM media_notes WHERE wamid = ?1")
                    .ctx("media notes")?;
                let mut out = HashMap::new();
                for wamid in wamids {
                    let row: Option<String> = stmt
                        .query_row([&wamid], |r| r.get(0))
                        .map(Some)
                        .or_else(|e| match e {
                            rusqlite::Error::QueryReturnedNoRows => Ok(None),
                            e => Err(e),
                        })
                        .ctx("media note")?;
                    if let Some(json) = row {
                        let note: MediaNote = serde_json::from_str(&json)
                            .map_err(|e| Error::dependency("sqlite", "media note", false, e))?;
                        out.insert(wamid, note);
                    }
                }
                Ok(out)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notes_are_recorded_replaced_and_read_by_wamid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let notes = SqliteMediaNotes::open(&dir.path().join("charla.db")).expect("open");
        let a = MediaNote::Understood {
            description: "[a photo]".into(),
        };
        notes.record_note("w1", &a).await.expect("record");
        notes.record_note("w1", &a).await.expect("again");
        let got = notes
            .notes(&["w1".into(), "w2".into()])
            .await
            .expect("read");
        assert_eq!(got.len(), 1);
        assert_eq!(got["w1"], a);
        let b = MediaNote::Failed {
            summary: "too large".into(),
        };
        notes.record_note("w1", &b).await.expect("replace");
        // The same file opened again (a restart) keeps them.
        drop(notes);
        let again = SqliteMediaNotes::open(&dir.path().join("charla.db")).expect("reopen");
        assert_eq!(again.notes(&["w1".into()]).await.expect("read")["w1"], b);
    }
}
