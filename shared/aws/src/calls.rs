//! [`CallRecords`] on the store's DynamoDB table (single-table design).
//!
//! Items:
//! - the record: `pk = CALL#{request_id}`, `sk = CALL`, the record as JSON
//!   in `record` and its `version` (the condition of every change);
//! - while scheduled, a due marker: `pk = CALLDUE`, `sk = {due_ms:013}#{id}`,
//!   written and removed in the same transaction as the record, so that
//!   `due` is one query (no scan, no extra index). One partition holds the
//!   markers: a few writes per call, far below a partition's 1,000 writes/s;
//! - applied provider events: `pk = CALLEVT#{key}`, `sk = EVT`, kept 30 days
//!   (TTL on `expires_at`), longer than any provider retries.
//!
//! Limits: a record is a few KB (summary and transcript bounded by
//! `CALL_TEXT_MAX` characters), far below the 400 KB item limit.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;

use super::dynamodb_items::{key, n, s, Item, EXPIRES_AT, SK};
use super::dynamodb_put::put_if_absent;
use super::sdk_error;
use domain::error::{Error, Result};
use domain::ports::CallRecords;
use domain::voice::CallRecord;

const SERVICE: &str = "dynamodb";
const DUE_PK: &str = "CALLDUE";
const EVENT_TTL_SECS: i64 = 30 * 24 * 3600;
/// `due` reads at most this many markers per call.
const DUE_PAGE_MAX: i32 = 100;

#[derive(Debug, Clone)]
pub struct DynamoCallRecords {
    client: Client,
    table: String,
}

fn record_key(id: &str) -> Item {
    key(format!("CALL#{id}"), "CALL")
}

fn due_key(r: &CallRecord) -> Option<Item> {
    let due = r.due_marker()?;
    Some(key(
        DUE_PK.to_string(),
        format!("{:013}#{}", due.max(0), r.request_id()),
    ))
}

fn record_item(r: &CallRecord) -> Result<Item> {
    let mut item = record_key(r.request_id());
    item.insert("record".into(), s(serde_json::to_string(r)?));
    item.insert("version".into(), AttributeValue::N(r.version.to_string()));
    Ok(item)
}

fn decode(item: &Item) -> Result<CallRecord> {
    let json = item
        .get("record")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| {
            Error::dependency(
                SERVICE,
                "call record without its JSON",
                false,
                "corrupt item",
            )
        })?;
    serde_json::from_str(json).map_err(|e| Error::dependency(SERVICE, "call record JSON", false, e))
}

fn build<T>(r: std::result::Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T> {
    r.map_err(|e| Error::dependency(SERVICE, "building a request", false, e))
}

impl DynamoCallRecords {
    /// The table is the store's (see `DynamoStore::create_table`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoCallRecords {
            client,
            table: table.into(),
        }
    }

    fn put(
        &self,
        item: Item,
        condition: Option<(&str, Option<(&str, AttributeValue)>)>,
    ) -> Result<TransactWriteItem> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some((expr, value)) = condition {
            put = put.condition_expression(expr);
            if let Some((name, v)) = value {
                put = put.expression_attribute_values(name, v);
            }
        }
        Ok(TransactWriteItem::builder()
            .put(build(put.build())?)
            .build())
    }

    fn delete(&self, key: Item) -> Result<TransactWriteItem> {
        let d = Delete::builder().table_name(&self.table).set_key(Some(key));
        Ok(TransactWriteItem::builder()
            .delete(build(d.build())?)
            .build())
    }

    /// Runs the transaction; `false` when the first item's condition failed.
    async fn transact(&self, items: Vec<TransactWriteItem>, context: &str) -> Result<bool> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(true),
            Err(e) => e,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
            err.as_service_error()
        {
            let first = c.cancellation_reasons().first().and_then(|r| r.code());
            if first == Some("ConditionalCheckFailed") {
                return Ok(false);
            }
        }
        Err(sdk_error(SERVICE, context, err))
    }
}

#[async_trait]
impl CallRecords for DynamoCallRecords {
    async fn create(&self, record: &CallRecord) -> Result<bool> {
        let mut items = vec![self.put(
            record_item(record)?,
            Some(("attribute_not_exists(pk)", None)),
        )?];
        if let Some(marker) = due_key(record) {
            items.push(self.put(marker, None)?);
        }
        self.transact(items, "creating a call record").await
    }

    async fn get(&self, request_id: &str) -> Result<Option<CallRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(record_key(request_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "reading a call record", e))?;
        out.item().map(decode).transpose()
    }

    async fn update(&self, prev: &CallRecord, next: &CallRecord) -> Result<bool> {
        let mut items = vec![self.put(
            record_item(next)?,
            Some((
                "version = :v",
                Some((":v", AttributeValue::N(prev.version.to_string()))),
            )),
        )?];
        let (old, new) = (due_key(prev), due_key(next));
        if old != new {
            if let Some(old) = old {
                items.push(self.delete(old)?);
            }
            if let Some(new) = new {
                items.push(self.put(new, None)?);
            }
        }
        self.transact(items, "updating a call record").await
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<CallRecord>> {
        // `#` sorts before every digit: all markers due at or before now.
        let upto = format!("{:013}$", now_ms.max(0));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk < :upto")
            .expression_attribute_values(":pk", s(DUE_PK))
            .expression_attribute_values(":upto", s(upto))
            .limit(DUE_PAGE_MAX)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "listing due calls", e))?;
        let mut due = Vec::new();
        for marker in out.items() {
            if due.len() >= limit {
                break;
            }
            let Some(id) = marker
                .get(SK)
                .and_then(|v| v.as_s().ok())
                .and_then(|sk| sk.split_once('#'))
                .map(|(_, id)| id.to_string())
            else {
                continue;
            };
            // A marker whose record moved on was removed with the move;
            // checking again costs nothing and keeps a stray one harmless.
            if let Some(r) = self.get(&id).await? {
                if due_key(&r).as_ref() == Some(marker) {
                    due.push(r);
                }
            }
        }
        Ok(due)
    }

    async fn mark_event(&self, event_key: &str, at_ms: i64) -> Result<bool> {
        let mut item = key(format!("CALLEVT#{event_key}"), "EVT");
        item.insert(EXPIRES_AT.into(), n(at_ms / 1000 + EVENT_TTL_SECS));
        put_if_absent(&self.client, &self.table, item, "marking a call event").await
    }
}
