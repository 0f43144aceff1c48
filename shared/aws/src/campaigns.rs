//! [`CampaignStore`] on the store's DynamoDB table (single-table design).
//!
//! | item     | pk                     | sk             | gsi1pk / gsi1sk                           |
//! |----------|------------------------|----------------|-------------------------------------------|
//! | campaign | `CAMP#{id}`            | `META`         | `CAMPS` / `{created_at_ms:013}#{id}`      |
//! | contact  | `CAMP#{id}#{upload}`   | `ROW#{row:07}` | while waiting: `CAMPDUE#{id}#{upload}` / `{next_at_ms:013}#{row:07}`; while calling: `CAMPCALLING#{id}#{upload}` / `{row:07}` |
//! | opt-out  | `OPTOUT#{phone}`       | `OPTOUT`       | `OPTOUTS` / `{at_ms:013}#{phone}`         |
//! | touch    | `TOUCH#{phone}`        | `TOUCH`        |                                           |
//! | staged   | `CAMP#{id}#STAGE#{upload}#{n:05}` | `CHUNK` |                                   |
//!
//! - A contact is its JSON `record` with its `version`; every move is one
//!   transaction: the contact put on `version = previous`, and the
//!   campaign's count per state moved (`n_{state}` attributes) on the
//!   condition that the contact's upload is still the campaign's.
//! - An upload is staged first: its contacts in chunks of
//!   [`CHUNK_CONTACTS`], each one gzipped JSON item (a 100,000-contact file
//!   is a hundred items, written in a second or two), and the campaign item
//!   records the import (`import_*` attributes, on `state = draft`).
//!   [`CampaignStore::import_step`] then writes chunk after chunk as
//!   contact items under the new `upload` id (batches of 25), each chunk's
//!   progress one conditional update, so that the work can stop at any
//!   point (a request's time budget, a crash) and go on in the next step
//!   (the dispatcher's tick). After the last chunk, one conditional update
//!   switches the campaign to the upload; the earlier upload's items and
//!   the chunks are deleted after the switch (a crash leaves them unread,
//!   not wrong).
//! - `due_contacts` reads the sparse `gsi1` (eventually consistent): a
//!   contact just claimed may still be listed; the claim's condition is what
//!   guards. `counts` is one consistent read of the campaign item.
//!
//! Limits: a contact is a few KB (its variables, attempts and replies are
//! bounded by the callers), far below the 400 KB item limit.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, Put, PutRequest, TransactWriteItem, Update,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;

use super::dynamodb_items::{key, n, s, Item};
use super::dynamodb_put::put;
use super::{conditional, query_all, sdk_error};
use domain::campaign::{
    Campaign, CampaignContact, CampaignState, ContactState, ImportState, OptOut, Touch,
};
use domain::error::{Error, Result};
use domain::ports::CampaignStore;
use domain::UserId;

const SERVICE: &str = "dynamodb";
const GSI1: &str = "gsi1";
const CAMPS: &str = "CAMPS";
const OPTOUTS: &str = "OPTOUTS";
/// BatchWriteItem's own limit.
const BATCH: usize = 25;
/// BatchGetItem's own limit.
const BATCH_GET: usize = 100;
/// Contacts per staged chunk: a few dozen KB gzipped, far below the item
/// limit even with wide rows.
pub const CHUNK_CONTACTS: usize = 1000;
/// Batches of an upload in flight at once.
const BATCHES_AT_ONCE: usize = 8;

#[derive(Debug, Clone)]
pub struct DynamoCampaigns {
    client: Client,
    table: String,
}

impl DynamoCampaigns {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoCampaigns {
            client,
            table: table.into(),
        }
    }
}

fn campaign_key(id: &str) -> Item {
    key(format!("CAMP#{id}"), "META")
}

fn contacts_pk(id: &str, upload: &str) -> String {
    format!("CAMP#{id}#{upload}")
}

fn row_sk(row: u32) -> String {
    format!("ROW#{row:07}")
}

fn count_attr(state: ContactState) -> String {
    format!("n_{}", state.as_str())
}

/// A staged upload's count of contacts in `state`, summed chunk by chunk.
fn import_count_attr(state: ContactState) -> String {
    format!("import_n_{}", state.as_str())
}

fn chunk_key(id: &str, upload: &str, n: u64) -> Item {
    key(format!("CAMP#{id}#STAGE#{upload}#{n:05}"), "CHUNK")
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(bytes)
        .and_then(|()| z.finish())
        .map_err(|e| Error::dependency(SERVICE, "compressing a chunk", false, e))
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| bad("staged chunk", e))?;
    Ok(out)
}

/// What the campaign item says of an upload being written.
struct Staged {
    upload: String,
    total: u64,
    chunks: u64,
    next: u64,
    written: u64,
}

fn staged_of(item: &Item) -> Option<Staged> {
    let num = |name: &str| num_of(item, name).and_then(|v| u64::try_from(v).ok());
    Some(Staged {
        upload: str_of(item, "import_upload")?.to_string(),
        total: num("import_total")?,
        chunks: num("import_chunks")?,
        next: num("import_next")?,
        written: num("import_written")?,
    })
}

impl Staged {
    fn state(&self) -> ImportState {
        ImportState {
            upload: self.upload.clone(),
            total: self.total,
            written: self.written,
        }
    }
}

/// The `REMOVE` list of every import attribute.
fn import_attrs() -> String {
    let mut names: Vec<String> = [
        "import_upload",
        "import_total",
        "import_chunks",
        "import_next",
        "import_written",
    ]
    .map(String::from)
    .to_vec();
    names.extend(ContactState::ALL.into_iter().map(import_count_attr));
    names.join(", ")
}

fn opt_out_key(phone: &UserId) -> Item {
    key(format!("OPTOUT#{phone}"), "OPTOUT")
}

fn touch_key(phone: &UserId) -> Item {
    key(format!("TOUCH#{phone}"), "TOUCH")
}

fn bad(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::dependency(
        SERVICE,
        format!("{what}: {detail}"),
        false,
        std::io::Error::other("unreadable item"),
    )
}

fn str_of<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn num_of(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn campaign_item(c: &Campaign) -> Result<Item> {
    let mut item = campaign_key(&c.id);
    item.insert("id".into(), s(&c.id));
    item.insert("spec".into(), s(serde_json::to_string(&c.spec)?));
    item.insert("state".into(), s(c.state.as_str()));
    if let Some(u) = &c.upload {
        item.insert("upload".into(), s(u));
    }
    item.insert(
        "contacts".into(),
        n(i64::try_from(c.contacts).unwrap_or(i64::MAX)),
    );
    item.insert("created_at_ms".into(), n(c.created_at_ms));
    item.insert("updated_at_ms".into(), n(c.updated_at_ms));
    item.insert("gsi1pk".into(), s(CAMPS));
    item.insert(
        "gsi1sk".into(),
        s(format!("{:013}#{}", c.created_at_ms.max(0), c.id)),
    );
    Ok(item)
}

fn campaign_from(item: &Item) -> Result<Campaign> {
    let what = "campaign item";
    let spec = str_of(item, "spec").ok_or_else(|| bad(what, "no spec"))?;
    let state = str_of(item, "state").ok_or_else(|| bad(what, "no state"))?;
    Ok(Campaign {
        id: str_of(item, "id")
            .ok_or_else(|| bad(what, "no id"))?
            .to_string(),
        spec: serde_json::from_str(spec).map_err(|e| bad(what, e))?,
        state: CampaignState::parse(state).ok_or_else(|| bad(what, format!("state {state:?}")))?,
        upload: str_of(item, "upload").map(str::to_string),
        contacts: num_of(item, "contacts")
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0),
        created_at_ms: num_of(item, "created_at_ms")
            .ok_or_else(|| bad(what, "no created_at_ms"))?,
        updated_at_ms: num_of(item, "updated_at_ms")
            .ok_or_else(|| bad(what, "no updated_at_ms"))?,
        import: staged_of(item).map(|s| s.state()),
    })
}

fn contact_item(c: &CampaignContact, upload: &str) -> Result<Item> {
    let mut item = key(contacts_pk(&c.campaign_id, upload), row_sk(c.row));
    item.insert("record".into(), s(serde_json::to_string(c)?));
    item.insert(
        "version".into(),
        n(i64::try_from(c.version).unwrap_or(i64::MAX)),
    );
    item.insert("state".into(), s(c.state.as_str()));
    if let (true, Some(next)) = (c.state.is_waiting(), c.next_at_ms) {
        item.insert(
            "gsi1pk".into(),
            s(format!("CAMPDUE#{}#{upload}", c.campaign_id)),
        );
        item.insert(
            "gsi1sk".into(),
            s(format!("{:013}#{:07}", next.max(0), c.row)),
        );
    } else if c.state == ContactState::Calling {
        item.insert(
            "gsi1pk".into(),
            s(format!("CAMPCALLING#{}#{upload}", c.campaign_id)),
        );
        item.insert("gsi1sk".into(), s(format!("{:07}", c.row)));
    }
    Ok(item)
}

fn contact_from(item: &Item) -> Result<CampaignContact> {
    let json = str_of(item, "record").ok_or_else(|| bad("campaign contact", "no record"))?;
    serde_json::from_str(json).map_err(|e| bad("campaign contact", e))
}

fn build<T>(r: std::result::Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T> {
    r.map_err(|e| Error::dependency(SERVICE, "building a request", false, e))
}

impl DynamoCampaigns {
    async fn get(&self, key: Item, context: &str) -> Result<Option<Item>> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, context, e))?
            .item)
    }

    /// Writes (or deletes) `requests` in batches of 25, a few batches at a
    /// time, until DynamoDB has processed every one.
    async fn batch_write(&self, requests: Vec<WriteRequest>, context: &str) -> Result<()> {
        use futures::{stream, StreamExt, TryStreamExt};
        let batches: Vec<Vec<WriteRequest>> = requests.chunks(BATCH).map(<[_]>::to_vec).collect();
        stream::iter(batches)
            .map(|batch| async move {
                let mut pending = batch;
                let mut rounds = 0u32;
                while !pending.is_empty() {
                    let out = self
                        .client
                        .batch_write_item()
                        .request_items(self.table.clone(), pending)
                        .send()
                        .await
                        .map_err(|e| sdk_error(SERVICE, context, e))?;
                    pending = out
                        .unprocessed_items
                        .and_then(|mut m| m.remove(&self.table))
                        .unwrap_or_default();
                    rounds += 1;
                    if !pending.is_empty() {
                        if rounds > 10 {
                            return Err(Error::dependency(
                                SERVICE,
                                format!("{context}: items left unprocessed"),
                                true,
                                std::io::Error::other("throttled"),
                            ));
                        }
                        // Throttled: back off before the rest.
                        tokio::time::sleep(std::time::Duration::from_millis(
                            50 * u64::from(rounds),
                        ))
                        .await;
                    }
                }
                Ok::<_, Error>(())
            })
            .buffer_unordered(BATCHES_AT_ONCE)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Every item of one partition (its keys only).
    async fn keys_of(&self, pk: &str) -> Result<Vec<Item>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .projection_expression("pk, sk");
        query_all(query, "listing an old upload").await
    }

    /// Runs a transaction; `false` when a condition failed.
    async fn transact(&self, items: Vec<TransactWriteItem>, context: &str) -> Result<bool> {
        let err = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(true),
            Err(e) => e,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
            err.as_service_error()
        {
            let failed = c
                .cancellation_reasons()
                .iter()
                .any(|r| r.code() == Some("ConditionalCheckFailed"));
            // Another claim of the same contact at the same moment is the
            // race the condition decides: the loser simply lost.
            let conflict = c
                .cancellation_reasons()
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"));
            if failed || conflict {
                return Ok(false);
            }
        }
        Err(sdk_error(SERVICE, context, err))
    }

    async fn query_gsi(
        &self,
        pk: &str,
        upto: Option<String>,
        forward: bool,
        limit: usize,
        context: &str,
    ) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        while items.len() < limit {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .expression_attribute_values(":pk", s(pk))
                .scan_index_forward(forward)
                .limit(i32::try_from((limit - items.len()).min(1000)).unwrap_or(1000))
                .set_exclusive_start_key(start);
            q = match &upto {
                Some(u) => q
                    .key_condition_expression("gsi1pk = :pk AND gsi1sk <= :upto")
                    .expression_attribute_values(":upto", s(u)),
                None => q.key_condition_expression("gsi1pk = :pk"),
            };
            let out = q.send().await.map_err(|e| sdk_error(SERVICE, context, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    /// A contact of a given upload (the caller read which one is current).
    async fn contact_of_upload(
        &self,
        id: &str,
        upload: &str,
        row: u32,
    ) -> Result<Option<CampaignContact>> {
        self.get(
            key(contacts_pk(id, upload), row_sk(row)),
            "reading a contact",
        )
        .await?
        .map(|item| contact_from(&item))
        .transpose()
    }

    async fn current_upload(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .get(campaign_key(id), "reading a campaign")
            .await?
            .and_then(|item| str_of(&item, "upload").map(str::to_string)))
    }
}

#[async_trait]
impl CampaignStore for DynamoCampaigns {
    async fn create_campaign(&self, campaign: &Campaign) -> Result<()> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(campaign_item(campaign)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        if !conditional(put, SERVICE, "creating a campaign")? {
            return Err(Error::Conflict(format!("campaign {} exists", campaign.id)));
        }
        Ok(())
    }

    async fn campaign(&self, id: &str) -> Result<Option<Campaign>> {
        self.get(campaign_key(id), "reading a campaign")
            .await?
            .map(|item| campaign_from(&item))
            .transpose()
    }

    async fn campaigns(&self, limit: usize) -> Result<Vec<Campaign>> {
        self.query_gsi(CAMPS, None, false, limit, "listing campaigns")
            .await?
            .iter()
            .map(campaign_from)
            .collect()
    }

    async fn set_campaign_state(
        &self,
        id: &str,
        from: &[CampaignState],
        to: CampaignState,
        at_ms: i64,
    ) -> Result<bool> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(campaign_key(id)))
            .update_expression("SET #state = :to, updated_at_ms = :at")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":at", n(at_ms));
        let mut allowed = Vec::new();
        for (i, f) in from.iter().enumerate() {
            let name = format!(":f{i}");
            update = update.expression_attribute_values(name.clone(), s(f.as_str()));
            allowed.push(name);
        }
        if allowed.is_empty() {
            return Ok(false);
        }
        let result = update
            .condition_expression(format!(
                "attribute_exists(pk) AND #state IN ({})",
                allowed.join(", ")
            ))
            .send()
            .await;
        conditional(result, SERVICE, "moving a campaign")
    }

    async fn stage_contacts(
        &self,
        id: &str,
        upload: &str,
        contacts: &[CampaignContact],
        at_ms: i64,
    ) -> Result<bool> {
        let Some(item) = self.get(campaign_key(id), "reading a campaign").await? else {
            return Ok(false);
        };
        if campaign_from(&item)?.state != CampaignState::Draft {
            return Ok(false);
        }
        if let Some(earlier) = staged_of(&item) {
            self.drop_staged(id, &earlier).await?;
        }
        let mut puts = Vec::new();
        for (i, chunk) in contacts.chunks(CHUNK_CONTACTS).enumerate() {
            let mut item = chunk_key(id, upload, i as u64);
            let data = gzip(&serde_json::to_vec(chunk)?)?;
            item.insert("data".into(), AttributeValue::B(data.into()));
            item.insert("count".into(), n(chunk.len() as i64));
            puts.push(
                WriteRequest::builder()
                    .put_request(build(PutRequest::builder().set_item(Some(item)).build())?)
                    .build(),
            );
        }
        let chunks = puts.len() as u64;
        self.batch_write(puts, "staging an upload").await?;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(campaign_key(id)))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":draft", s(CampaignState::Draft.as_str()))
            .expression_attribute_values(":upload", s(upload))
            .expression_attribute_values(":total", n(contacts.len() as i64))
            .expression_attribute_values(":chunks", n(chunks as i64))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":at", n(at_ms));
        let mut set = vec![
            "import_upload = :upload".to_string(),
            "import_total = :total".to_string(),
            "import_chunks = :chunks".to_string(),
            "import_next = :zero".to_string(),
            "import_written = :zero".to_string(),
            "updated_at_ms = :at".to_string(),
        ];
        for state in ContactState::ALL {
            set.push(format!("{} = :zero", import_count_attr(state)));
        }
        update = update
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression("#state = :draft");
        if conditional(update.send().await, SERVICE, "staging an upload")? {
            return Ok(true);
        }
        let keys = (0..chunks).map(|i| chunk_key(id, upload, i)).collect();
        self.delete_keys(keys).await?;
        Ok(false)
    }

    async fn import_step(&self, id: &str, max: usize, at_ms: i64) -> Result<Option<ImportState>> {
        let Some(item) = self.get(campaign_key(id), "reading a campaign").await? else {
            return Ok(None);
        };
        let Some(mut staged) = staged_of(&item) else {
            return Ok(None);
        };
        let campaign = campaign_from(&item)?;
        if campaign.state != CampaignState::Draft {
            // Started or cancelled while it was written: never its contacts.
            self.drop_staged(id, &staged).await?;
            return Ok(None);
        }
        let mut done = 0usize;
        while staged.next < staged.chunks && done < max {
            let n_chunk = staged.next;
            let chunk = self
                .get(
                    chunk_key(id, &staged.upload, n_chunk),
                    "reading a staged chunk",
                )
                .await?
                .ok_or_else(|| bad("staged chunk", format!("chunk {n_chunk} is missing")))?;
            let data = chunk
                .get("data")
                .and_then(|v| v.as_b().ok())
                .ok_or_else(|| bad("staged chunk", "no data"))?;
            let contacts: Vec<CampaignContact> = serde_json::from_slice(&gunzip(data.as_ref())?)
                .map_err(|e| bad("staged chunk", e))?;
            let puts = contacts
                .iter()
                .map(|c| {
                    Ok(WriteRequest::builder()
                        .put_request(build(
                            PutRequest::builder()
                                .set_item(Some(contact_item(c, &staged.upload)?))
                                .build(),
                        )?)
                        .build())
                })
                .collect::<Result<Vec<_>>>()?;
            self.batch_write(puts, "writing an upload").await?;
            let mut counts: BTreeMap<ContactState, i64> = BTreeMap::new();
            for c in &contacts {
                *counts.entry(c.state).or_default() += 1;
            }
            let mut add = vec!["import_written :count".to_string()];
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(campaign_key(id)))
                .expression_attribute_values(":upload", s(&staged.upload))
                .expression_attribute_values(":n", n(n_chunk as i64))
                .expression_attribute_values(":next", n(n_chunk as i64 + 1))
                .expression_attribute_values(":count", n(contacts.len() as i64));
            for (state, count) in &counts {
                let value = format!(":c_{}", state.as_str());
                add.push(format!("{} {value}", import_count_attr(*state)));
                update = update.expression_attribute_values(value, n(*count));
            }
            let moved = update
                .update_expression(format!("SET import_next = :next ADD {}", add.join(", ")))
                .condition_expression("import_upload = :upload AND import_next = :n")
                .send()
                .await;
            if !conditional(moved, SERVICE, "recording an upload's progress")? {
                // Another step wrote this chunk first (or a new upload
                // replaced this one): where it stands now.
                return self.import_state(id).await;
            }
            staged.next += 1;
            staged.written += contacts.len() as u64;
            done += contacts.len().max(1);
        }
        if staged.next < staged.chunks {
            return Ok(Some(staged.state()));
        }
        self.switch_to_staged(id, &staged, campaign.upload, at_ms)
            .await
    }
    async fn due_contacts(
        &self,
        id: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<CampaignContact>> {
        let Some(upload) = self.current_upload(id).await? else {
            return Ok(Vec::new());
        };
        // `#9999999` sorts after every row of the same instant.
        let upto = format!("{:013}#9999999", now_ms.max(0));
        self.query_gsi(
            &format!("CAMPDUE#{id}#{upload}"),
            Some(upto),
            true,
            limit,
            "listing due contacts",
        )
        .await?
        .iter()
        .map(contact_from)
        .collect()
    }

    async fn calling_contacts(&self, id: &str, limit: usize) -> Result<Vec<CampaignContact>> {
        let Some(upload) = self.current_upload(id).await? else {
            return Ok(Vec::new());
        };
        self.query_gsi(
            &format!("CAMPCALLING#{id}#{upload}"),
            None,
            true,
            limit,
            "listing calling contacts",
        )
        .await?
        .iter()
        .map(contact_from)
        .collect()
    }

    async fn contact(&self, id: &str, row: u32) -> Result<Option<CampaignContact>> {
        let Some(upload) = self.current_upload(id).await? else {
            return Ok(None);
        };
        self.contact_of_upload(id, &upload, row).await
    }

    async fn contacts_page(
        &self,
        id: &str,
        after_row: Option<u32>,
        limit: usize,
    ) -> Result<Vec<CampaignContact>> {
        let Some(upload) = self.current_upload(id).await? else {
            return Ok(Vec::new());
        };
        let after = match after_row {
            Some(r) => row_sk(r),
            None => "ROW#".to_string(),
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk > :after")
            .expression_attribute_values(":pk", s(contacts_pk(id, &upload)))
            .expression_attribute_values(":after", s(after))
            .limit(i32::try_from(limit.min(1000)).unwrap_or(1000))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "listing contacts", e))?;
        out.items().iter().map(contact_from).collect()
    }

    async fn update_contact(&self, contact: &CampaignContact) -> Result<bool> {
        let id = &contact.campaign_id;
        let Some(upload) = self.current_upload(id).await? else {
            return Ok(false);
        };
        let Some(stored) = self.contact_of_upload(id, &upload, contact.row).await? else {
            return Ok(false);
        };
        if stored.version + 1 != contact.version {
            return Ok(false);
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(contact_item(contact, &upload)?))
            .condition_expression("version = :v")
            .expression_attribute_values(
                ":v",
                n(i64::try_from(stored.version).unwrap_or(i64::MAX)),
            );
        let mut items = vec![TransactWriteItem::builder()
            .put(build(put.build())?)
            .build()];
        // The campaign's counts move with the contact, on the same upload.
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(campaign_key(id)))
            .condition_expression("upload = :upload")
            .expression_attribute_values(":upload", s(upload.as_str()));
        if stored.state != contact.state {
            update = update
                .update_expression("ADD #old :minus, #new :plus")
                .expression_attribute_names("#old", count_attr(stored.state))
                .expression_attribute_names("#new", count_attr(contact.state))
                .expression_attribute_values(":minus", n(-1))
                .expression_attribute_values(":plus", n(1));
            items.push(
                TransactWriteItem::builder()
                    .update(build(update.build())?)
                    .build(),
            );
        } else {
            let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(campaign_key(id)))
                .condition_expression("upload = :upload")
                .expression_attribute_values(":upload", s(upload.as_str()));
            items.push(
                TransactWriteItem::builder()
                    .condition_check(build(check.build())?)
                    .build(),
            );
        }
        self.transact(items, "moving a contact").await
    }

    async fn counts(&self, id: &str) -> Result<BTreeMap<ContactState, u64>> {
        let Some(item) = self.get(campaign_key(id), "reading counts").await? else {
            return Ok(BTreeMap::new());
        };
        Ok(ContactState::ALL
            .into_iter()
            .filter_map(|state| {
                let v = num_of(&item, &count_attr(state))?;
                Some((state, u64::try_from(v).unwrap_or(0)))
            })
            .collect())
    }

    async fn opt_out(&self, entry: &OptOut) -> Result<()> {
        let mut item = opt_out_key(&entry.phone);
        item.insert("record".into(), s(serde_json::to_string(entry)?));
        item.insert("gsi1pk".into(), s(OPTOUTS));
        item.insert(
            "gsi1sk".into(),
            s(format!("{:013}#{}", entry.at_ms.max(0), entry.phone)),
        );
        put(&self.client, &self.table, item, "recording an opt-out").await
    }

    async fn remove_opt_out(&self, phone: &UserId) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(opt_out_key(phone)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "removing an opt-out", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn opted_out(&self, phone: &UserId) -> Result<Option<OptOut>> {
        let Some(item) = self.get(opt_out_key(phone), "reading an opt-out").await? else {
            return Ok(None);
        };
        let json = str_of(&item, "record").ok_or_else(|| bad("opt-out", "no record"))?;
        serde_json::from_str(json)
            .map(Some)
            .map_err(|e| bad("opt-out", e))
    }

    async fn opted_out_among(&self, phones: &[UserId]) -> Result<HashSet<UserId>> {
        use futures::{stream, StreamExt, TryStreamExt};
        let unique: HashSet<&UserId> = phones.iter().collect();
        let keys: Vec<Item> = unique.into_iter().map(opt_out_key).collect();
        let found: Vec<Vec<UserId>> = stream::iter(keys.chunks(BATCH_GET).map(<[_]>::to_vec))
            .map(|batch| self.opted_out_batch(batch))
            .buffer_unordered(BATCHES_AT_ONCE)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn opt_outs(&self, limit: usize) -> Result<Vec<OptOut>> {
        self.query_gsi(OPTOUTS, None, false, limit, "listing opt-outs")
            .await?
            .iter()
            .map(|item| {
                let json = str_of(item, "record").ok_or_else(|| bad("opt-out", "no record"))?;
                serde_json::from_str(json).map_err(|e| bad("opt-out", e))
            })
            .collect()
    }

    async fn touch(&self, touch: &Touch) -> Result<()> {
        let mut item = touch_key(&touch.phone);
        item.insert("campaign_id".into(), s(&touch.campaign_id));
        item.insert("row".into(), n(i64::from(touch.row)));
        item.insert("at_ms".into(), n(touch.at_ms));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR at_ms <= :at")
            .expression_attribute_values(":at", n(touch.at_ms))
            .send()
            .await;
        // A failed condition: a newer touch is there, and stays.
        conditional(put, SERVICE, "recording a campaign touch")?;
        Ok(())
    }

    async fn touch_of(&self, phone: &UserId) -> Result<Option<Touch>> {
        let Some(item) = self
            .get(touch_key(phone), "reading a campaign touch")
            .await?
        else {
            return Ok(None);
        };
        let (Some(campaign_id), Some(row), Some(at_ms)) = (
            str_of(&item, "campaign_id"),
            num_of(&item, "row").and_then(|r| u32::try_from(r).ok()),
            num_of(&item, "at_ms"),
        ) else {
            return Err(bad("campaign touch", "missing attributes"));
        };
        Ok(Some(Touch {
            phone: phone.clone(),
            campaign_id: campaign_id.to_string(),
            row,
            at_ms,
        }))
    }
}

impl DynamoCampaigns {
    /// The campaign switches to the staged upload, all chunks written: its
    /// counts are the ones summed chunk by chunk. Then the earlier upload's
    /// items and the chunks go.
    async fn switch_to_staged(
        &self,
        id: &str,
        staged: &Staged,
        earlier: Option<String>,
        at_ms: i64,
    ) -> Result<Option<ImportState>> {
        let mut set = vec![
            "upload = :upload".to_string(),
            "contacts = :total".to_string(),
            "updated_at_ms = :at".to_string(),
        ];
        for state in ContactState::ALL {
            set.push(format!(
                "{} = if_not_exists({}, :zero)",
                count_attr(state),
                import_count_attr(state)
            ));
        }
        let switched = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(campaign_key(id)))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":draft", s(CampaignState::Draft.as_str()))
            .expression_attribute_values(":upload", s(&staged.upload))
            .expression_attribute_values(":total", n(staged.total as i64))
            .expression_attribute_values(":chunks", n(staged.chunks as i64))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":at", n(at_ms))
            .update_expression(format!("SET {} REMOVE {}", set.join(", "), import_attrs()))
            .condition_expression(
                "#state = :draft AND import_upload = :upload AND import_next = :chunks",
            )
            .send()
            .await;
        if !conditional(switched, SERVICE, "switching to an upload")? {
            // Another step switched it, or the campaign left the draft
            // state (the next step drops the upload): where it stands.
            return self.import_state(id).await;
        }
        let chunks = (0..staged.chunks)
            .map(|i| chunk_key(id, &staged.upload, i))
            .collect();
        self.delete_keys(chunks).await?;
        if let Some(old) = earlier.filter(|old| *old != staged.upload) {
            let keys = self.keys_of(&contacts_pk(id, &old)).await?;
            self.delete_keys(keys).await?;
        }
        Ok(None)
    }

    /// Where the campaign's import stands.
    async fn import_state(&self, id: &str) -> Result<Option<ImportState>> {
        let item = self.get(campaign_key(id), "reading a campaign").await?;
        Ok(item.as_ref().and_then(staged_of).map(|s| s.state()))
    }

    /// Forgets an upload being written: the import attributes (while they
    /// are still this upload's), its chunks and the contacts written so far.
    async fn drop_staged(&self, id: &str, staged: &Staged) -> Result<()> {
        let removed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(campaign_key(id)))
            .expression_attribute_values(":upload", s(&staged.upload))
            .update_expression(format!("REMOVE {}", import_attrs()))
            .condition_expression("import_upload = :upload")
            .send()
            .await;
        // A failed condition: another upload is staged now; this one's
        // items go all the same.
        conditional(removed, SERVICE, "dropping an upload")?;
        let chunks = (0..staged.chunks)
            .map(|i| chunk_key(id, &staged.upload, i))
            .collect();
        self.delete_keys(chunks).await?;
        let written = self.keys_of(&contacts_pk(id, &staged.upload)).await?;
        self.delete_keys(written).await
    }

    /// One BatchGetItem of opt-out keys (until nothing is unprocessed):
    /// the numbers found.
    async fn opted_out_batch(&self, keys: Vec<Item>) -> Result<Vec<UserId>> {
        let mut found = Vec::new();
        let mut pending = keys;
        let mut rounds = 0u32;
        while !pending.is_empty() {
            let request = build(
                KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .projection_expression("pk")
                    .consistent_read(true)
                    .build(),
            )?;
            let out = self
                .client
                .batch_get_item()
                .request_items(self.table.clone(), request)
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, "reading opt-outs", e))?;
            for item in out
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default()
            {
                if let Some(phone) = str_of(&item, "pk")
                    .and_then(|pk| pk.strip_prefix("OPTOUT#"))
                    .and_then(|p| UserId::parse(p).ok())
                {
                    found.push(phone);
                }
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut m| m.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            rounds += 1;
            if !pending.is_empty() {
                if rounds > 10 {
                    return Err(Error::dependency(
                        SERVICE,
                        "reading opt-outs: keys left unprocessed",
                        true,
                        std::io::Error::other("throttled"),
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(rounds))).await;
            }
        }
        Ok(found)
    }

    async fn delete_keys(&self, keys: Vec<Item>) -> Result<()> {
        let deletes = keys
            .into_iter()
            .map(|k| {
                let k: HashMap<String, AttributeValue> = k
                    .into_iter()
                    .filter(|(name, _)| name == "pk" || name == "sk")
                    .collect();
                Ok(WriteRequest::builder()
                    .delete_request(build(DeleteRequest::builder().set_key(Some(k)).build())?)
                    .build())
            })
            .collect::<Result<Vec<_>>>()?;
        self.batch_write(deletes, "deleting an old upload").await
    }
}
