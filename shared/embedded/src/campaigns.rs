//! [`CampaignStore`] in SQLite (component `campaigns`, its own tables in the
//! store's file). A contact is kept whole as JSON beside the columns the
//! queries need; every move is one `UPDATE ... WHERE version = ?`, and an
//! upload replaces a draft's contacts in one transaction (staging is the
//! whole import here: [`CampaignStore::import_step`] has nothing to do).

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::{
    corrupt, migrate, open_connection, query_all, to_i64, usize_to_i64, Db, SqliteContext,
};
use domain::campaign::{
    Campaign, CampaignContact, CampaignSpec, CampaignState, ContactState, OptOut, Touch,
};
use domain::error::{Error, Result};
use domain::ports::CampaignStore;
use domain::UserId;

/// 2: `campaign_touches` and the `calling` index (added in place).
const SCHEMA_VERSION: i64 = 2;
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    upload TEXT,
    contacts INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS campaigns_recent ON campaigns (created_at_ms, id);

CREATE TABLE IF NOT EXISTS campaign_contacts (
    campaign_id TEXT NOT NULL,
    upload TEXT NOT NULL,
    row INTEGER NOT NULL,
    state TEXT NOT NULL,
    next_at_ms INTEGER,
    version INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (campaign_id, upload, row)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS campaign_contacts_due
    ON campaign_contacts (campaign_id, upload, next_at_ms, row)
    WHERE state IN ('pending', 'scheduled');
CREATE INDEX IF NOT EXISTS campaign_contacts_calling
    ON campaign_contacts (campaign_id, upload, row)
    WHERE state = 'calling';

CREATE TABLE IF NOT EXISTS opt_outs (
    phone TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS opt_outs_recent ON opt_outs (at_ms);

CREATE TABLE IF NOT EXISTS campaign_touches (
    phone TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The current upload of a campaign, for the contact queries.
const CURRENT_UPLOAD: &str = "(SELECT upload FROM campaigns WHERE id = ?1)";

#[derive(Clone)]
pub struct SqliteCampaigns {
    db: Db,
}

impl std::fmt::Debug for SqliteCampaigns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCampaigns").finish_non_exhaustive()
    }
}

impl SqliteCampaigns {
    /// The contacts `sql` (a `SELECT record ...`) finds with `params`.
    async fn contacts_where(
        &self,
        what: &'static str,
        sql: String,
        params: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<CampaignContact>> {
        let rows: Vec<String> = self
            .db
            .call(move |conn| {
                query_all(conn, what, &sql, rusqlite::params_from_iter(params), |r| {
                    r.get(0)
                })
            })
            .await?;
        rows.iter().map(|j| contact_from(j)).collect()
    }

    pub fn open(path: &Path) -> Result<Self> {
        Self::from_connection(open_connection(Some(path))?)
    }

    pub fn open_in_memory() -> Result<Self> {
        Self::from_connection(open_connection(None)?)
    }

    fn from_connection(mut conn: rusqlite::Connection) -> Result<Self> {
        migrate(&mut conn, "campaigns", SCHEMA_VERSION, SCHEMA)?;
        Ok(SqliteCampaigns { db: Db::new(conn)? })
    }
}

type CampaignRow = (String, String, String, Option<String>, i64, i64, i64);

const CAMPAIGN_COLUMNS: &str = "id, spec, state, upload, contacts, created_at_ms, updated_at_ms";

fn campaign_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CampaignRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn campaign_from(row: CampaignRow) -> Result<Campaign> {
    let (id, spec, state, upload, contacts, created_at_ms, updated_at_ms) = row;
    let spec: CampaignSpec =
        serde_json::from_str(&spec).map_err(|e| corrupt("campaign row", e.to_string()))?;
    Ok(Campaign {
        id,
        spec,
        state: CampaignState::parse(&state)
            .ok_or_else(|| corrupt("campaign row", format!("state {state:?}")))?,
        upload,
        contacts: u64::try_from(contacts).map_err(|_| corrupt("campaign row", "contacts"))?,
        created_at_ms,
        updated_at_ms,
        // Written in one transaction at once: never part-way.
        import: None,
    })
}

fn contact_from(json: &str) -> Result<CampaignContact> {
    serde_json::from_str(json).map_err(|e| corrupt("campaign contact", e.to_string()))
}

fn opt_out_from(json: &str) -> Result<OptOut> {
    serde_json::from_str(json).map_err(|e| corrupt("opt-out", e.to_string()))
}

fn version(c: &CampaignContact) -> i64 {
    to_i64(c.version)
}

#[async_trait]
impl CampaignStore for SqliteCampaigns {
    async fn create_campaign(&self, campaign: &Campaign) -> Result<()> {
        let c = campaign.clone();
        let spec = serde_json::to_string(&c.spec)?;
        let created = self
            .db
            .call(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO campaigns (id, spec, state, upload, contacts, created_at_ms,
                                            updated_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        c.id,
                        spec,
                        c.state.as_str(),
                        c.upload,
                        to_i64(c.contacts),
                        c.created_at_ms,
                        c.updated_at_ms
                    ])
                })
                .ctx("create campaign")
            })
            .await?;
        if created == 1 {
            Ok(())
        } else {
            Err(Error::Conflict(format!("campaign {} exists", campaign.id)))
        }
    }

    async fn campaign(&self, id: &str) -> Result<Option<Campaign>> {
        let id = id.to_string();
        let row = self
            .db
            .call(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?1"
                ))
                .and_then(|mut s| s.query_row([id], campaign_row).optional())
                .ctx("read campaign")
            })
            .await?;
        row.map(campaign_from).transpose()
    }

    async fn campaigns(&self, limit: usize) -> Result<Vec<Campaign>> {
        let limit = usize_to_i64(limit);
        let rows = self
            .db
            .call(move |conn| {
                query_all(
                    conn,
                    "list campaigns",
                    &format!(
                        "SELECT {CAMPAIGN_COLUMNS} FROM campaigns
                         ORDER BY created_at_ms DESC, id DESC LIMIT ?1"
                    ),
                    [limit],
                    campaign_row,
                )
            })
            .await?;
        rows.into_iter().map(campaign_from).collect()
    }

    async fn set_campaign_state(
        &self,
        id: &str,
        from: &[CampaignState],
        to: CampaignState,
        at_ms: i64,
    ) -> Result<bool> {
        let id = id.to_string();
        let from: Vec<&'static str> = from.iter().map(|s| s.as_str()).collect();
        self.db
            .call(move |conn| {
                let current: Option<String> = conn
                    .prepare_cached("SELECT state FROM campaigns WHERE id = ?1")
                    .and_then(|mut s| s.query_row([&id], |r| r.get(0)).optional())
                    .ctx("campaign state")?;
                // One connection thread runs each call alone: the read and
                // the conditional write below cannot interleave with another.
                let Some(current) = current.filter(|c| from.contains(&c.as_str())) else {
                    return Ok(false);
                };
                conn.prepare_cached(
                    "UPDATE campaigns SET state = ?3, updated_at_ms = ?4
                     WHERE id = ?1 AND state = ?2",
                )
                .and_then(|mut s| s.execute(params![id, current, to.as_str(), at_ms]))
                .map(|n| n == 1)
                .ctx("set campaign state")
            })
            .await
    }

    /// SQLite writes the whole upload and switches in one transaction
    /// (100,000 contacts in about a second): nothing is left to a step.
    async fn stage_contacts(
        &self,
        id: &str,
        upload: &str,
        contacts: &[CampaignContact],
        at_ms: i64,
    ) -> Result<bool> {
        let (id, upload) = (id.to_string(), upload.to_string());
        let rows = contacts
            .iter()
            .map(|c| {
                Ok((
                    c.row,
                    c.state.as_str(),
                    c.next_at_ms,
                    version(c),
                    serde_json::to_string(c)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        self.db
            .call(move |conn| {
                let tx = conn.savepoint().ctx("upload")?;
                let draft: Option<String> = tx
                    .prepare_cached("SELECT state FROM campaigns WHERE id = ?1")
                    .and_then(|mut s| s.query_row([&id], |r| r.get(0)).optional())
                    .ctx("upload: campaign")?;
                if draft.as_deref() != Some(CampaignState::Draft.as_str()) {
                    return Ok(false);
                }
                tx.prepare_cached("DELETE FROM campaign_contacts WHERE campaign_id = ?1")
                    .and_then(|mut s| s.execute([&id]))
                    .ctx("upload: old contacts")?;
                {
                    let mut insert = tx
                        .prepare_cached(
                            "INSERT INTO campaign_contacts (campaign_id, upload, row, state,
                                                            next_at_ms, version, record)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        )
                        .ctx("upload: insert")?;
                    for (row, state, next, v, json) in &rows {
                        insert
                            .execute(params![id, upload, row, state, next, v, json])
                            .ctx("upload: contact")?;
                    }
                }
                tx.prepare_cached(
                    "UPDATE campaigns SET upload = ?2, contacts = ?3, updated_at_ms = ?4
                     WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id, upload, usize_to_i64(rows.len()), at_ms]))
                .ctx("upload: campaign")?;
                tx.commit().ctx("upload")?;
                Ok(true)
            })
            .await
    }

    async fn import_step(
        &self,
        _id: &str,
        _max: usize,
        _at_ms: i64,
    ) -> Result<Option<domain::campaign::ImportState>> {
        Ok(None)
    }

    async fn due_contacts(
        &self,
        id: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<CampaignContact>> {
        self.contacts_where(
            "due contacts",
            format!(
                "SELECT record FROM campaign_contacts
                 WHERE campaign_id = ?1 AND upload = {CURRENT_UPLOAD}
                   AND state IN ('pending', 'scheduled')
                   AND next_at_ms IS NOT NULL AND next_at_ms <= ?2
                 ORDER BY next_at_ms, row LIMIT ?3"
            ),
            vec![
                id.to_string().into(),
                now_ms.into(),
                usize_to_i64(limit).into(),
            ],
        )
        .await
    }

    async fn contact(&self, id: &str, row: u32) -> Result<Option<CampaignContact>> {
        let id = id.to_string();
        let json: Option<String> = self
            .db
            .call(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT record FROM campaign_contacts
                     WHERE campaign_id = ?1 AND upload = {CURRENT_UPLOAD} AND row = ?2"
                ))
                .and_then(|mut s| s.query_row(params![id, row], |r| r.get(0)).optional())
                .ctx("campaign contact")
            })
            .await?;
        json.as_deref().map(contact_from).transpose()
    }

    async fn contacts_page(
        &self,
        id: &str,
        after_row: Option<u32>,
        limit: usize,
    ) -> Result<Vec<CampaignContact>> {
        self.contacts_where(
            "contacts page",
            format!(
                "SELECT record FROM campaign_contacts
                 WHERE campaign_id = ?1 AND upload = {CURRENT_UPLOAD} AND row > ?2
                 ORDER BY row LIMIT ?3"
            ),
            vec![
                id.to_string().into(),
                after_row.map_or(-1, i64::from).into(),
                usize_to_i64(limit).into(),
            ],
        )
        .await
    }

    async fn calling_contacts(&self, id: &str, limit: usize) -> Result<Vec<CampaignContact>> {
        self.contacts_where(
            "calling contacts",
            format!(
                "SELECT record FROM campaign_contacts
                 WHERE campaign_id = ?1 AND upload = {CURRENT_UPLOAD} AND state = 'calling'
                 ORDER BY row LIMIT ?2"
            ),
            vec![id.to_string().into(), usize_to_i64(limit).into()],
        )
        .await
    }

    async fn update_contact(&self, contact: &CampaignContact) -> Result<bool> {
        let json = serde_json::to_string(contact)?;
        let c = contact.clone();
        let previous = version(contact) - 1;
        self.db
            .call(move |conn| {
                conn.prepare_cached(&format!(
                    "UPDATE campaign_contacts
                     SET state = ?3, next_at_ms = ?4, version = ?5, record = ?6
                     WHERE campaign_id = ?1 AND upload = {CURRENT_UPLOAD} AND row = ?2
                       AND version = ?7"
                ))
                .and_then(|mut s| {
                    s.execute(params![
                        c.campaign_id,
                        c.row,
                        c.state.as_str(),
                        c.next_at_ms,
                        version(&c),
                        json,
                        previous
                    ])
                })
                .map(|n| n == 1)
                .ctx("update campaign contact")
            })
            .await
    }

    async fn counts(&self, id: &str) -> Result<BTreeMap<ContactState, u64>> {
        let id = id.to_string();
        let rows: Vec<(String, i64)> = self
            .db
            .call(move |conn| {
                query_all(
                    conn,
                    "campaign counts",
                    &format!(
                        "SELECT state, count(*) FROM campaign_contacts
                         WHERE campaign_id = ?1 AND upload = {CURRENT_UPLOAD} GROUP BY state"
                    ),
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await?;
        rows.into_iter()
            .map(|(state, n)| {
                let state = ContactState::parse(&state)
                    .ok_or_else(|| corrupt("campaign contact", format!("state {state:?}")))?;
                Ok((state, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    async fn opt_out(&self, entry: &OptOut) -> Result<()> {
        let json = serde_json::to_string(entry)?;
        let (phone, at) = (entry.phone.as_str().to_string(), entry.at_ms);
        self.db
            .call(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO opt_outs (phone, at_ms, record) VALUES (?1, ?2, ?3)
                     ON CONFLICT(phone) DO UPDATE SET at_ms = excluded.at_ms,
                                                      record = excluded.record",
                )
                .and_then(|mut s| s.execute(params![phone, at, json]))
                .ctx("opt out")?;
                Ok(())
            })
            .await
    }

    async fn remove_opt_out(&self, phone: &UserId) -> Result<bool> {
        let phone = phone.as_str().to_string();
        self.db
            .call(move |conn| {
                conn.prepare_cached("DELETE FROM opt_outs WHERE phone = ?1")
                    .and_then(|mut s| s.execute([phone]))
                    .map(|n| n == 1)
                    .ctx("remove opt-out")
            })
            .await
    }

    async fn opted_out(&self, phone: &UserId) -> Result<Option<OptOut>> {
        let phone = phone.as_str().to_string();
        let json: Option<String> = self
            .db
            .call(move |conn| {
                conn.prepare_cached("SELECT record FROM opt_outs WHERE phone = ?1")
                    .and_then(|mut s| s.query_row([phone], |r| r.get(0)).optional())
                    .ctx("opted out")
            })
            .await?;
        json.as_deref().map(opt_out_from).transpose()
    }

    async fn opted_out_among(
        &self,
        phones: &[UserId],
    ) -> Result<std::collections::HashSet<UserId>> {
        let phones = phones.to_vec();
        self.db
            .call(move |conn| {
                let mut found = std::collections::HashSet::new();
                let mut q = conn
                    .prepare_cached("SELECT 1 FROM opt_outs WHERE phone = ?1")
                    .ctx("opted out")?;
                for p in phones {
                    if q.exists([p.as_str()]).ctx("opted out")? {
                        found.insert(p);
                    }
                }
                Ok(found)
            })
            .await
    }

    async fn opt_outs(&self, limit: usize) -> Result<Vec<OptOut>> {
        let limit = usize_to_i64(limit);
        let rows: Vec<String> = self
            .db
            .call(move |conn| {
                query_all(
                    conn,
                    "opt-outs",
                    "SELECT record FROM opt_outs ORDER BY at_ms DESC LIMIT ?1",
                    [limit],
                    |r| r.get(0),
                )
            })
            .await?;
        rows.iter().map(|j| opt_out_from(j)).collect()
    }

    async fn touch(&self, touch: &Touch) -> Result<()> {
        let t = touch.clone();
        self.db
            .call(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO campaign_touches (phone, campaign_id, row, at_ms)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(phone) DO UPDATE SET campaign_id = excluded.campaign_id,
                         row = excluded.row, at_ms = excluded.at_ms
                     WHERE excluded.at_ms >= campaign_touches.at_ms",
                )
                .and_then(|mut s| {
                    s.execute(params![t.phone.as_str(), t.campaign_id, t.row, t.at_ms])
                })
                .ctx("campaign touch")?;
                Ok(())
            })
            .await
    }

    async fn touch_of(&self, phone: &UserId) -> Result<Option<Touch>> {
        let key = phone.as_str().to_string();
        let row: Option<(String, u32, i64)> = self
            .db
            .call(move |conn| {
                conn.prepare_cached(
                    "SELECT campaign_id, row, at_ms FROM campaign_touches WHERE phone = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()
                })
                .ctx("campaign touch")
            })
            .await?;
        Ok(row.map(|(campaign_id, row, at_ms)| Touch {
            phone: phone.clone(),
            campaign_id,
            row,
            at_ms,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::campaign_contract;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_store_keeps_the_campaign_contract() {
        let store = SqliteCampaigns::open_in_memory().expect("open");
        campaign_contract::run_all(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_store_keeps_the_contract_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteCampaigns::open(&dir.path().join("charla.db")).expect("open");
        campaign_contract::run_all(&store).await;
    }
}
