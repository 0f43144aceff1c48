//! [`UsageLedger`] in the conversation table.
//!
//! - `pk = USAGE#DAYS`, `sk = {YYYY-MM-DD}`: a day's counters (one Query
//!   reads a month);
//! - `pk = CONV#{user}`, `sk = UTOTAL`: a conversation's counters;
//! - `pk = CONV#{user}`, `sk = ULOG#{at_ms:015}#{id}`: a log entry, in time
//!   order for the transcript;
//! - `pk = UEVENT#{user}#{id}`: the event was counted (put once).
//!
//! The conversation's item keeps the last day it was active (`last_day`),
//! set by the same update that adds to it: the update that changes it is
//! the user's first of the day, and counts the day's conversation.
//!
//! Counters are attributes `c:{name}`, added with `ADD` (no read first).
//! An event is counted after its put-once marker: a stop between the two
//! loses that event's counts rather than counting it twice. Every turn adds
//! to its day's one item, which DynamoDB takes up to about 1,000 times a
//! second.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;

use super::dynamodb_items::{conv_pk, key, n, s, Item, EXPIRES_AT};
use super::dynamodb_put::{put, put_if_absent};
use super::{query_all, sdk_error};
use domain::error::{Error, Result};
use domain::ports::UsageLedger;
use domain::usage::{key as counter, Counters, TurnLog, UsageEvent};
use domain::UserId;

const SERVICE: &str = "dynamodb";
const DAYS_PK: &str = "USAGE#DAYS";
const TOTAL_SK: &str = "UTOTAL";
const LOG_PREFIX: &str = "ULOG#";
const COUNTER: &str = "c:";
const LAST_DAY: &str = "last_day";
/// A retried handler comes back within hours.
const MARKER_TTL_SECS: i64 = 7 * 24 * 3600;
/// The timeline lives as long as media notes (the conversation's history).
const LOG_TTL_SECS: i64 = 400 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct DynamoUsage {
    client: Client,
    table: String,
}

impl DynamoUsage {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoUsage {
            client,
            table: table.into(),
        }
    }

    /// Adds `counters` to the item at `key` (created when absent). With
    /// `day`, sets `last_day` too and answers whether it was another day.
    async fn add_counters(
        &self,
        key: Item,
        counters: &Counters,
        day: Option<&str>,
        context: &str,
    ) -> Result<bool> {
        if counters.is_empty() && day.is_none() {
            return Ok(false);
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key));
        let mut parts = Vec::with_capacity(counters.len());
        for (i, (name, value)) in counters.iter().enumerate() {
            parts.push(format!("#c{i} :c{i}"));
            update = update
                .expression_attribute_names(format!("#c{i}"), format!("{COUNTER}{name}"))
                .expression_attribute_values(
                    format!(":c{i}"),
                    n(i64::try_from(*value).unwrap_or(i64::MAX)),
                );
        }
        let mut expression = String::new();
        if let Some(day) = day {
            expression = "SET #day = :day ".into();
            update = update
                .expression_attribute_names("#day", LAST_DAY)
                .expression_attribute_values(":day", s(day))
                // ALL_OLD rather than UPDATED_OLD: moto leaves out a SET
                // attribute's old value from UPDATED_OLD (DynamoDB does not).
                .return_values(ReturnValue::AllOld);
        }
        if !parts.is_empty() {
            expression.push_str(&format!("ADD {}", parts.join(", ")));
        }
        let out = update
            .update_expression(expression)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, context, e))?;
        let before = out.attributes.as_ref().and_then(|a| a.get(LAST_DAY));
        Ok(day.is_some()
            && !matches!(before, Some(AttributeValue::S(d)) if Some(d.as_str()) == day))
    }

    /// Every item of `pk` with a sort key in `[from, to]`, in order.
    async fn query_between(
        &self,
        pk: &str,
        from: &str,
        to: &str,
        context: &str,
    ) -> Result<Vec<Item>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to));
        query_all(query, context).await
    }

    async fn marker(&self, pk: String, now_secs: i64, context: &str) -> Result<bool> {
        let mut item = key(pk, "MARK");
        item.insert(EXPIRES_AT.into(), n(now_secs + MARKER_TTL_SECS));
        put_if_absent(&self.client, &self.table, item, context).await
    }
}

fn counters_from(item: &Item) -> Counters {
    item.iter()
        .filter_map(|(name, value)| {
            let name = name.strip_prefix(COUNTER)?;
            let AttributeValue::N(v) = value else {
                return None;
            };
            Some((name.to_string(), v.parse::<i64>().ok()?.max(0) as u64))
        })
        .collect()
}

fn corrupt(context: &str, detail: impl std::fmt::Display) -> Error {
    Error::dependency(SERVICE, context.to_string(), false, detail.to_string())
}

#[async_trait]
impl UsageLedger for DynamoUsage {
    async fn add(&self, event: &UsageEvent) -> Result<()> {
        let now_secs = jiff::Timestamp::now().as_second();
        let user = event.user_id.as_str();
        if !self
            .marker(
                format!("UEVENT#{user}#{}", event.id),
                now_secs,
                "usage event",
            )
            .await?
        {
            return Ok(());
        }
        if let Some(log) = &event.log {
            let mut item = key(
                conv_pk(&event.user_id),
                format!("{LOG_PREFIX}{:015}#{}", event.at_ms.max(0), event.id),
            );
            item.insert("log".into(), s(serde_json::to_string(log)?));
            item.insert(EXPIRES_AT.into(), n(now_secs + LOG_TTL_SECS));
            put(&self.client, &self.table, item, "usage log").await?;
        }
        let day = event.day();
        let first_today = self
            .add_counters(
                key(conv_pk(&event.user_id), TOTAL_SK),
                &event.counters,
                Some(&day),
                "usage of a conversation",
            )
            .await?;
        let mut day_counters = event.counters.clone();
        if first_today {
            day_counters.insert(counter::CONVERSATIONS.into(), 1);
        }
        self.add_counters(
            key(DAYS_PK.into(), day),
            &day_counters,
            None,
            "usage of a day",
        )
        .await
        .map(|_| ())
    }

    async fn days(&self, from: &str, to: &str) -> Result<Vec<(String, Counters)>> {
        self.query_between(DAYS_PK, from, to, "usage days")
            .await?
            .iter()
            .map(|item| match item.get("sk") {
                Some(AttributeValue::S(day)) => Ok((day.clone(), counters_from(item))),
                _ => Err(corrupt("usage days", "a day without its date")),
            })
            .collect()
    }

    async fn conversation(&self, user_id: &UserId) -> Result<Counters> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(conv_pk(user_id), TOTAL_SK)))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "usage of a conversation", e))?;
        Ok(got.item.as_ref().map(counters_from).unwrap_or_default())
    }

    async fn log(&self, user_id: &UserId, from_ms: i64, to_ms: i64) -> Result<Vec<TurnLog>> {
        // `~` sorts after every id character: the upper bound takes every id
        // at `to_ms`.
        let from = format!("{LOG_PREFIX}{:015}#", from_ms.max(0));
        let to = format!("{LOG_PREFIX}{:015}#~", to_ms.clamp(0, 999_999_999_999_999));
        self.query_between(&conv_pk(user_id), &from, &to, "usage log")
            .await?
            .iter()
            .map(|item| match item.get("log") {
                Some(AttributeValue::S(json)) => {
                    serde_json::from_str(json).map_err(|e| corrupt("usage log", e))
                }
                _ => Err(corrupt("usage log", "an entry without its log")),
            })
            .collect()
    }
}
