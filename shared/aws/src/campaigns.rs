//! [`CampaignStore`] on the store's DynamoDB table (single-table design).
//!
//! | item     | pk                     | sk             | gsi1pk / gsi1sk                           |
//! |----------|------------------------|----------------|-------------------------------------------|
//! | campaign | `CAMP#{id}`            | `META`         | `CAMPS` / `{created_at_ms:013}#{id}`      |
//! | contact  | `CAMP#{id}#{upload}`   | `ROW#{row:07}` | while waiting: `CAMPDUE#{id}#{upload}` / `{next_at_ms:013}#{row:07}` |
//! | opt-out  | `OPTOUT#{phone}`       | `OPTOUT`       | `OPTOUTS` / `{at_ms:013}#{phone}`         |
//! | touch    | `TOUCH#{phone}`        | `TOUCH`        |                                           |
//!
//! - A contact is its JSON `record` with its `version`; every move is one
//!   transaction: the contact put on `version = previous`, and the
//!   campaign's count per state moved (`n_{state}` attributes) on the
//!   condition that the contact's upload is still the campaign's.
//! - An upload writes the new contacts under a new `upload` id (batches of
//!   25), then switches the campaign to it with one conditional update
//!   (`state = draft`): the earlier upload's items are no longer read, and
//!   are deleted after the switch (a crash leaves them unread, not wrong).
//! - `due_contacts` reads the sparse `gsi1` (eventually consistent): a
//!   contact just claimed may still be listed; the claim's condition is what
//!   guards. `counts` is one consistent read of the campaign item.
//!
//! Limits: a contact is a few KB (its variables, attempts and replies are
//! bounded by the callers), far below the 400 KB item limit.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;

use super::dynamodb_items::{key, n, s, Item};
use super::dynamodb_put::put;
use super::sdk_error;
use domain::campaign::{Campaign, CampaignContact, CampaignState, ContactState, OptOut, Touch};
use domain::error::{Error, Result};
use domain::ports::CampaignStore;
use domain::UserId;

const SERVICE: &str = "dynamodb";
const GSI1: &str = "gsi1";
const CAMPS: &str = "CAMPS";
const OPTOUTS: &str = "OPTOUTS";
/// BatchWriteItem's own limit.
const BATCH: usize = 25;
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
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .projection_expression("pk, sk")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, "listing an old upload", e))?;
            keys.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(keys),
            }
        }
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
        match put {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(Error::Conflict(format!("campaign {} exists", campaign.id)))
            }
            Err(e) => Err(sdk_error(SERVICE, "creating a campaign", e)),
        }
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
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(SERVICE, "moving a campaign", e)),
        }
    }

    async fn replace_contacts(
        &self,
        id: &str,
        upload: &str,
        contacts: &[CampaignContact],
        at_ms: i64,
    ) -> Result<bool> {
        let Some(before) = self.campaign(id).await? else {
            return Ok(false);
        };
        if before.state != CampaignState::Draft {
            return Ok(false);
        }
        let puts = contacts
            .iter()
            .map(|c| {
                let item = contact_item(c, upload)?;
                Ok(WriteRequest::builder()
                    .put_request(build(PutRequest::builder().set_item(Some(item)).build())?)
                    .build())
            })
            .collect::<Result<Vec<_>>>()?;
        self.batch_write(puts, "writing an upload").await?;
        let mut counts: BTreeMap<ContactState, i64> = BTreeMap::new();
        for c in contacts {
            *counts.entry(c.state).or_default() += 1;
        }
        let mut set = vec![
            "upload = :upload".to_string(),
            "contacts = :contacts".to_string(),
            "updated_at_ms = :at".to_string(),
        ];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(campaign_key(id)))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":draft", s(CampaignState::Draft.as_str()))
            .expression_attribute_values(":upload", s(upload))
            .expression_attribute_values(
                ":contacts",
                n(i64::try_from(contacts.len()).unwrap_or(i64::MAX)),
            )
            .expression_attribute_values(":at", n(at_ms));
        for state in ContactState::ALL {
            let value = format!(":n_{}", state.as_str());
            set.push(format!("{} = {value}", count_attr(state)));
            update = update
                .expression_attribute_values(value, n(counts.get(&state).copied().unwrap_or(0)));
        }
        let switched = update
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression("#state = :draft")
            .send()
            .await;
        match switched {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                // Started meanwhile: the new items are never read; drop them.
                let keys = contacts
                    .iter()
                    .map(|c| key(contacts_pk(id, upload), row_sk(c.row)))
                    .collect();
                self.delete_keys(keys).await?;
                return Ok(false);
            }
            Err(e) => return Err(sdk_error(SERVICE, "switching to an upload", e)),
        }
        if let Some(old) = before.upload.filter(|old| old != upload) {
            let keys = self.keys_of(&contacts_pk(id, &old)).await?;
            self.delete_keys(keys).await?;
        }
        Ok(true)
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
        match put {
            Ok(_) => Ok(()),
            // A newer touch is there: it stays.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(SERVICE, "recording a campaign touch", e)),
        }
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
