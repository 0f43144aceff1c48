//! [`EscalationRecords`] in the store's DynamoDB table, and [`Timers`] on an
//! SQS standard queue.
//!
//! Items:
//! - `CONV#{wa_id}` / `ESCALATION`: the record as JSON and its `version`;
//!   written with `attribute_not_exists(pk)` (version 0) or `version = :v`;
//! - `CONV#{wa_id}` / `ESCDEC#{turn_id}`: one decision, put once;
//! - `CLAIM#{key}` / `CLAIM`: a once-only marker, put once, expires after
//!   [`CLAIM_TTL_SECS`] (longer than any redelivery);
//! - `DESK#{conversation id}` / `DESK`: whose desk conversation it is.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use super::dynamodb_items::{conv_pk, key, n, s, Item, EXPIRES_AT, PK, SK};
use super::dynamodb_put::{put, put_if_absent};
use super::{query_all, sdk_error};
use domain::error::{Error, Result};
use domain::handoff::{DecisionRecord, EscalationRecord};
use domain::ports::{DeskRef, EscalationRecords, Timers};
use domain::UserId;

/// Once-only markers outlive SQS's and Chatwoot's redeliveries by far.
pub const CLAIM_TTL_SECS: i64 = 30 * 24 * 3600;
const RECORD_SK: &str = "ESCALATION";
const DECISION_PREFIX: &str = "ESCDEC#";

#[derive(Debug, Clone)]
pub struct DynamoEscalations {
    client: Client,
    table: String,
}

impl DynamoEscalations {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoEscalations {
            client,
            table: table.into(),
        }
    }
}

fn corrupt(context: &str, detail: impl std::fmt::Display) -> Error {
    Error::dependency("dynamodb", context.to_string(), false, detail.to_string())
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

#[async_trait]
impl EscalationRecords for DynamoEscalations {
    async fn escalation(&self, user_id: &UserId) -> Result<(EscalationRecord, u64)> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(conv_pk(user_id), RECORD_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", "reading an escalation", e))?;
        let Some(item) = out.item else {
            return Ok((EscalationRecord::default(), 0));
        };
        let record = text(&item, "record").ok_or_else(|| corrupt("escalation", "no record"))?;
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| corrupt("escalation", "no version"))?;
        Ok((
            serde_json::from_str(record).map_err(|e| corrupt("escalation", e))?,
            version,
        ))
    }

    async fn save_escalation(
        &self,
        user_id: &UserId,
        record: &EscalationRecord,
        version: u64,
    ) -> Result<bool> {
        let mut item = key(conv_pk(user_id), RECORD_SK);
        item.insert("record".into(), s(serde_json::to_string(record)?));
        let next = i64::try_from(version.saturating_add(1)).unwrap_or(i64::MAX);
        item.insert("version".into(), n(next));
        let context = "saving an escalation";
        // Version 0 is "no record yet": the first save must create it.
        if version == 0 {
            return put_if_absent(&self.client, &self.table, item, context).await;
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(i64::try_from(version).unwrap_or(i64::MAX)));
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("dynamodb", context, e)),
        }
    }

    async fn record_decision(&self, d: &DecisionRecord) -> Result<()> {
        let mut item = key(
            conv_pk(&d.user_id),
            format!("{DECISION_PREFIX}{}", d.turn_id),
        );
        item.insert("record".into(), s(serde_json::to_string(d)?));
        item.insert("at_ms".into(), n(d.at_ms));
        // Put once: a redelivered turn keeps its first decision.
        put_if_absent(&self.client, &self.table, item, "recording a decision").await?;
        Ok(())
    }

    async fn decisions(&self, user_id: &UserId) -> Result<Vec<DecisionRecord>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(conv_pk(user_id)))
            .expression_attribute_values(":prefix", s(DECISION_PREFIX));
        let mut out = query_all(query, "reading decisions")
            .await?
            .iter()
            .map(|item| {
                let json = text(item, "record").ok_or_else(|| corrupt("decisions", "no record"))?;
                serde_json::from_str(json).map_err(|e| corrupt("decisions", e))
            })
            .collect::<Result<Vec<DecisionRecord>>>()?;
        out.sort_by(|a, b| (a.at_ms, &a.turn_id).cmp(&(b.at_ms, &b.turn_id)));
        Ok(out)
    }

    async fn claim(&self, claim_key: &str, at_ms: i64) -> Result<bool> {
        let mut item = key(format!("CLAIM#{claim_key}"), "CLAIM");
        item.insert("at_ms".into(), n(at_ms));
        item.insert(EXPIRES_AT.into(), n(at_ms / 1000 + CLAIM_TTL_SECS));
        put_if_absent(&self.client, &self.table, item, "claiming").await
    }

    async fn release(&self, claim_key: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("CLAIM#{claim_key}"), "CLAIM")))
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", "releasing a claim", e))?;
        Ok(())
    }

    async fn claimed(&self, claim_key: &str) -> Result<bool> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("CLAIM#{claim_key}"), "CLAIM")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", "reading a claim", e))?;
        Ok(out.item.is_some())
    }

    async fn link_desk(&self, desk: &DeskRef, user_id: &UserId) -> Result<()> {
        let mut item = key(format!("DESK#{}", desk.conversation_id), "DESK");
        item.insert("wa_id".into(), s(user_id.as_str()));
        item.insert(
            "contact_id".into(),
            n(i64::try_from(desk.contact_id).unwrap_or(i64::MAX)),
        );
        put(
            &self.client,
            &self.table,
            item,
            "linking a desk conversation",
        )
        .await
    }

    async fn desk_owner(&self, desk_conversation_id: u64) -> Result<Option<UserId>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("DESK#{desk_conversation_id}"), "DESK")))
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", "reading a desk conversation", e))?;
        out.item
            .as_ref()
            .and_then(|i| text(i, "wa_id"))
            .map(|w| UserId::parse(w).map_err(|e| corrupt("desk_owner", e)))
            .transpose()
    }
}

/// SQS's longest message delay.
pub const MAX_DELAY_SECS: u64 = 900;

/// Timers on an SQS standard queue: each message with its own
/// `DelaySeconds` (at most 15 minutes; the receiver puts back a timer
/// that came early).
#[derive(Debug, Clone)]
pub struct SqsTimers {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsTimers {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsTimers {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl Timers for SqsTimers {
    async fn schedule(&self, body: &str, delay_ms: u64) -> Result<()> {
        let secs = delay_ms.div_ceil(1000).min(MAX_DELAY_SECS);
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(i32::try_from(secs).unwrap_or(900))
            .send()
            .await
            .map_err(|e| sdk_error("sqs", "scheduling a timer", e))?;
        Ok(())
    }
}
