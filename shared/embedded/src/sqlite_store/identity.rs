//! [`IdentityLinks`] in the store's SQLite file (schema version 3): the
//! links from every id a user was seen by to the id their conversation is
//! keyed by, and the number a user known by BSUID shared.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::super::{corrupt, SqliteContext};
use super::SqliteStore;
use domain::error::Result;
use domain::identity::IdentityLinks;
use domain::UserId;

/// Added in place to a file of version 2: two new tables, and the number a
/// call request was given (see [`upgrade_v3`]). A number-keyed conversation
/// needs no link: nothing else changes.
pub(super) const SCHEMA_V3: &str = "
CREATE TABLE IF NOT EXISTS identity_links (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS user_phones (
    user_id TEXT PRIMARY KEY,
    phone TEXT NOT NULL,
    at_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// What `CREATE ... IF NOT EXISTS` cannot say: `call_requests.phone`, added
/// once (SQLite has no `ADD COLUMN IF NOT EXISTS`). Runs at every open, after
/// the schema steps; a file that has the column is left as it is.
pub(super) fn upgrade_v3(conn: &rusqlite::Connection) -> Result<()> {
    let has_phone = conn
        .prepare("SELECT 1 FROM pragma_table_info('call_requests') WHERE name = 'phone'")
        .and_then(|mut s| s.exists([]))
        .ctx("schema 3: call_requests columns")?;
    if !has_phone {
        conn.execute_batch("ALTER TABLE call_requests ADD COLUMN phone TEXT")
            .ctx("schema 3: call_requests.phone")?;
    }
    Ok(())
}

fn user_from(context: &str, s: Option<String>) -> Result<Option<UserId>> {
    s.map(|s| UserId::parse(&s).map_err(|e| corrupt(context, e)))
        .transpose()
}

#[async_trait]
impl IdentityLinks for SqliteStore {
    async fn link_of(&self, id: &UserId) -> Result<Option<UserId>> {
        let id = id.clone();
        self.db
            .call(move |conn| {
                let user = conn
                    .prepare_cached("SELECT user_id FROM identity_links WHERE id = ?1")
                    .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)).optional())
                    .ctx("link_of")?;
                user_from("identity link", user)
            })
            .await
    }

    async fn link_if_absent(&self, id: &UserId, user: &UserId, at_ms: i64) -> Result<UserId> {
        let (id, user) = (id.clone(), user.clone());
        self.db
            .call(move |conn| {
                // One statement: the insert, or the link already there.
                let linked: String = conn
                    .prepare_cached(
                        "INSERT INTO identity_links (id, user_id, at_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT(id) DO UPDATE SET user_id = user_id
                         RETURNING user_id",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![id.as_str(), user.as_str(), at_ms], |r| r.get(0))
                    })
                    .ctx("link_if_absent")?;
                UserId::parse(&linked).map_err(|e| corrupt("identity link", e))
            })
            .await
    }

    async fn relink(&self, id: &UserId, user: &UserId, at_ms: i64) -> Result<()> {
        let (id, user) = (id.clone(), user.clone());
        self.db
            .call(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO identity_links (id, user_id, at_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id, at_ms = excluded.at_ms",
                )
                .and_then(|mut s| s.execute(params![id.as_str(), user.as_str(), at_ms]))
                .ctx("relink")?;
                Ok(())
            })
            .await
    }

    async fn phone_of(&self, user: &UserId) -> Result<Option<UserId>> {
        let user = user.clone();
        self.db
            .call(move |conn| {
                let phone = conn
                    .prepare_cached("SELECT phone FROM user_phones WHERE user_id = ?1")
                    .and_then(|mut s| s.query_row([user.as_str()], |r| r.get(0)).optional())
                    .ctx("phone_of")?;
                user_from("user phone", phone)
            })
            .await
    }

    async fn set_phone(&self, user: &UserId, phone: &UserId, at_ms: i64) -> Result<()> {
        let (user, phone) = (user.clone(), phone.clone());
        self.db
            .call(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO user_phones (user_id, phone, at_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT(user_id) DO UPDATE SET phone = excluded.phone, at_ms = excluded.at_ms",
                )
                .and_then(|mut s| s.execute(params![user.as_str(), phone.as_str(), at_ms]))
                .ctx("set_phone")?;
                Ok(())
            })
            .await
    }
}
