//! [`ConversationStore`] on one DynamoDB table (single-table design; the
//! keys are in `dynamodb_items`).
//!
//! Every write that guards idempotency is a condition on the write itself
//! (`PutItem`/`UpdateItem` or one `TransactWriteItems`), never read-then-write.
//!
//! Service limits that shape this file:
//! - `TransactWriteItems`: at most 100 items, one operation per item;
//! - `TransactGetItems`: at most 100 items (25 before 2022, and moto still
//!   refuses more than 25, so reads go in chunks of 25);
//! - an item is at most 400 KB (the inbound payload is one message's JSON,
//!   a few KB at most);
//! - a `Query` page is at most 1 MB, so every query here follows
//!   `LastEvaluatedKey` until it has what it needs.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, ConditionCheck, Get, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ScalarAttributeType, TimeToLiveSpecification,
    TransactGetItem, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;

use super::dynamodb_items::*;

mod records;
use super::sdk_error;
use domain::error::{Error, Result};
use domain::ports::ConversationStore;
use domain::*;

/// Outbound wamid pointers live this long, so that late statuses still find
/// their message (Meta reports `read` whenever the user opens the chat).
pub const OUTBOUND_POINTER_TTL_SECS: i64 = 30 * 24 * 3600;
/// `pending_inbound` looks at this many of the newest messages. A turn
/// answers a burst; an unanswered message older than the last 100 messages
/// of its conversation is not pending any more.
pub const PENDING_SCAN: usize = 100;
/// DynamoDB's limit on items in one `TransactWriteItems`.
const TRANSACT_WRITE_MAX: usize = 100;
/// Items per `TransactGetItems`: DynamoDB takes 100, moto only 25 (the old
/// limit). A turn answers a handful of messages, so this costs nothing.
const TRANSACT_GET_MAX: usize = 25;
/// Our own limit on items per `Query` request (pages are followed).
const QUERY_PAGE_MAX: usize = 1_000;
/// A transaction cancelled because another one touched the same item
/// (`TransactionConflict`) is tried again this many times, with backoff.
const CONFLICT_RETRIES: u32 = 5;
/// How long `create_table` waits for the table to be `ACTIVE`.
const CREATE_TABLE_WAIT: Duration = Duration::from_secs(60);

const CCF: &str = "ConditionalCheckFailed";

/// The conversation store on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// How a transaction ended when it did not fail outright.
enum Tx {
    Done,
    /// Cancelled by a failed condition: one code per item, in order
    /// (`"None"` where the item was fine).
    Cancelled(Vec<String>),
}

impl Tx {
    fn failed_at(&self, index: usize) -> bool {
        matches!(self, Tx::Cancelled(codes) if codes.get(index).is_some_and(|c| c == CCF))
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::dependency("dynamodb", "building a request", false, e)
}

fn write_put(p: aws_sdk_dynamodb::types::builders::PutBuilder) -> Result<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .put(p.build().map_err(build_error)?)
        .build())
}

fn write_update(u: aws_sdk_dynamodb::types::builders::UpdateBuilder) -> Result<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .update(u.build().map_err(build_error)?)
        .build())
}

fn write_check(
    c: aws_sdk_dynamodb::types::builders::ConditionCheckBuilder,
) -> Result<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .condition_check(c.build().map_err(build_error)?)
        .build())
}

/// Sets `ProjectionExpression` to the message attributes and `extra` (through
/// names, as some of them are reserved words).
fn project_messages(q: QueryFluentBuilder, extra: &[&str]) -> QueryFluentBuilder {
    let mut q = q;
    let mut expr = Vec::with_capacity(MESSAGE_PROJECTION.len() + extra.len());
    for (i, name) in MESSAGE_PROJECTION.iter().chain(extra).enumerate() {
        let alias = format!("#p{i}");
        q = q.expression_attribute_names(alias.clone(), *name);
        expr.push(alias);
    }
    q.projection_expression(expr.join(", "))
}

fn small_jitter_ms() -> u64 {
    (uuid::Uuid::new_v4().as_u128() % 25) as u64
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table as template.yaml defines it (keys, `gsi1`,
    /// on-demand billing, TTL on `expires_at`) and waits until it is active.
    /// For emulators and tests; an existing table is left as it is.
    pub async fn create_table(&self) -> Result<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(build_error)
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(key(GSI1PK, KeyType::Hash)?)
            .key_schema(key(GSI1SK, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(build_error)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PK)?)
            .attribute_definitions(attr(SK)?)
            .attribute_definitions(attr(GSI1PK)?)
            .attribute_definitions(attr(GSI1SK)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .send()
            .await;
        let is_new = match created {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                false
            }
            Err(e) => {
                return Err(sdk_error(
                    "dynamodb",
                    format!("creating table {}", self.table),
                    e,
                ))
            }
        };
        self.client
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(CREATE_TABLE_WAIT)
            .await
            .map_err(|e| {
                Error::dependency(
                    "dynamodb",
                    format!("waiting for table {} to be active", self.table),
                    true,
                    e,
                )
            })?;
        if is_new {
            let ttl = TimeToLiveSpecification::builder()
                .attribute_name(EXPIRES_AT)
                .enabled(true)
                .build()
                .map_err(build_error)?;
            self.client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(ttl)
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb", format!("enabling TTL on {}", self.table), e))?;
        }
        Ok(())
    }

    fn put(&self) -> aws_sdk_dynamodb::types::builders::PutBuilder {
        Put::builder().table_name(&self.table)
    }

    fn update(&self) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder().table_name(&self.table)
    }

    /// Runs one transaction. A cancellation by a failed condition is an
    /// outcome (`Tx::Cancelled`), not an error; one caused by a concurrent
    /// transaction on the same item is tried again a few times.
    async fn transact(&self, items: Vec<TransactWriteItem>, context: &str) -> Result<Tx> {
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Tx::Done),
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
                err.as_service_error()
            else {
                return Err(sdk_error("dynamodb", context, err));
            };
            let codes: Vec<String> = cancel
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect();
            if codes.iter().any(|c| c == CCF) {
                return Ok(Tx::Cancelled(codes));
            }
            // TransactionConflict, ThrottlingError, ProvisionedThroughputExceeded:
            // all worth another try; a ValidationError is not.
            let retryable = codes.iter().any(|c| {
                matches!(
                    c.as_str(),
                    "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                )
            });
            if retryable && attempt < CONFLICT_RETRIES {
                attempt += 1;
                let backoff = 20u64 << attempt;
                tokio::time::sleep(Duration::from_millis(backoff + small_jitter_ms())).await;
                continue;
            }
            return Err(Error::dependency(
                "dynamodb",
                format!("{context}: transaction cancelled ({})", codes.join(", ")),
                retryable,
                err,
            ));
        }
    }

    async fn get(&self, key: Item, context: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", context, e))?;
        Ok(out.item)
    }

    /// Follows `LastEvaluatedKey` until `want` items or the end.
    async fn query_upto(
        &self,
        query: QueryFluentBuilder,
        want: usize,
        start: Option<Item>,
        context: &str,
    ) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = start;
        while items.len() < want {
            let page = (want - items.len()).min(QUERY_PAGE_MAX) as i32;
            let out = query
                .clone()
                .limit(page)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb", context, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        items.truncate(want);
        Ok(items)
    }

    /// A conversation's messages, newest first (consistent read).
    fn messages_newest_first(&self, wa_id: &WaId) -> QueryFluentBuilder {
        project_messages(self.messages_query(wa_id).scan_index_forward(false), &[])
    }

    fn messages_query(&self, wa_id: &WaId) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :msg)")
            .expression_attribute_values(":pk", s(conv_pk(wa_id)))
            .expression_attribute_values(":msg", s(MSG_PREFIX))
            .consistent_read(true)
    }

    /// Writes `items` plus a bump of the conversation's `last_message_at_ms`
    /// (placed last) for an outbound message at `at_ms`. The conversation
    /// must exist; a newer message already recorded keeps its time.
    /// A missing conversation is `NotFound`; other failed conditions are
    /// returned for the caller (the indexes of `items` are kept).
    async fn write_outbound(
        &self,
        wa_id: &WaId,
        at_ms: i64,
        items: Vec<TransactWriteItem>,
        context: &str,
    ) -> Result<Tx> {
        let meta_at = items.len();
        let mut with_bump = items.clone();
        with_bump.push(write_update(
            self.update()
                .set_key(Some(meta_key(wa_id)))
                .update_expression("SET last_message_at_ms = :at, gsi1sk = :g1")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(last_message_at_ms) OR last_message_at_ms <= :at)",
                )
                .expression_attribute_values(":at", n(at_ms))
                .expression_attribute_values(":g1", s(gsi1sk(at_ms, wa_id))),
        )?);
        let tx = self.transact(with_bump, context).await?;
        if !tx.failed_at(meta_at) || (0..meta_at).any(|i| tx.failed_at(i)) {
            return Ok(tx);
        }
        // Missing, or it has a newer message: only check that it exists.
        let mut with_check = items;
        with_check.push(write_check(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(meta_key(wa_id)))
                .condition_expression("attribute_exists(pk)"),
        )?);
        let tx = self.transact(with_check, context).await?;
        if tx.failed_at(meta_at) {
            return Err(Error::NotFound(format!(
                "conversation of {}",
                mask(wa_id.as_str())
            )));
        }
        Ok(tx)
    }

    fn outbound_items(
        &self,
        wa_id: &WaId,
        sent: &SentRecord,
        turn_id: Option<&str>,
        message_condition: Option<&str>,
    ) -> Result<Vec<TransactWriteItem>> {
        let sk = msg_sk(sent.at_ms, &sent.wamid);
        let mut message = key(conv_pk(wa_id), sk.clone());
        message.extend([
            ("wamid".to_string(), s(&sent.wamid)),
            (
                "direction".to_string(),
                s(direction_str(Direction::Outbound)),
            ),
            ("kind".to_string(), s(&sent.kind)),
            ("text".to_string(), s(&sent.text)),
            ("at_ms".to_string(), n(sent.at_ms)),
            ("delivery".to_string(), s(Delivery::Accepted.as_str())),
            ("delivery_rank".to_string(), n(Delivery::Accepted.rank())),
            ("delivery_at_ms".to_string(), n(sent.at_ms)),
            ("answered".to_string(), b(false)),
            ("starts_turn".to_string(), b(false)),
        ]);
        if let Some(turn_id) = turn_id {
            message.insert("turn_id".into(), s(turn_id));
        }
        let mut pointer = wamid_key(&sent.wamid);
        pointer.extend([
            ("wa_id".to_string(), s(wa_id.as_str())),
            ("msg_sk".to_string(), s(sk)),
            (
                "direction".to_string(),
                s(direction_str(Direction::Outbound)),
            ),
            (
                EXPIRES_AT.to_string(),
                n(sent.at_ms.div_euclid(1000) + OUTBOUND_POINTER_TTL_SECS),
            ),
        ]);
        let mut message = self.put().set_item(Some(message));
        if let Some(cond) = message_condition {
            message = message.condition_expression(cond);
        }
        Ok(vec![
            write_put(message)?,
            write_put(self.put().set_item(Some(pointer)))?,
        ])
    }

    /// The sort keys of `wamids`' inbound messages in `wa_id`'s conversation,
    /// through their pointers, then (for pointers already expired) through
    /// the newest messages.
    async fn inbound_sort_keys(&self, wa_id: &WaId, wamids: &[String]) -> Result<Vec<String>> {
        let mut wanted: Vec<&str> = wamids.iter().map(String::as_str).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut found = Vec::with_capacity(wanted.len());
        let mut missing = Vec::new();
        for chunk in wanted.chunks(TRANSACT_GET_MAX) {
            let mut gets = Vec::with_capacity(chunk.len());
            for wamid in chunk {
                let get = Get::builder()
                    .table_name(&self.table)
                    .set_key(Some(wamid_key(wamid)))
                    .build()
                    .map_err(build_error)?;
                gets.push(TransactGetItem::builder().get(get).build());
            }
            let out = self
                .client
                .transact_get_items()
                .set_transact_items(Some(gets))
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb", "reading message pointers", e))?;
            let responses = out.responses.unwrap_or_default();
            for (i, wamid) in chunk.iter().enumerate() {
                let pointer = responses.get(i).and_then(|r| r.item.as_ref());
                let sk = match pointer {
                    Some(p) => {
                        let r = Reader::new(p, "wamid");
                        let ours = r.str("wa_id")? == wa_id.as_str()
                            && r.str("direction")? == direction_str(Direction::Inbound);
                        ours.then(|| r.str("msg_sk").map(str::to_string))
                            .transpose()?
                    }
                    None => None,
                };
                match sk {
                    Some(sk) => found.push(sk),
                    None => missing.push(*wamid),
                }
            }
        }
        if !missing.is_empty() {
            let query = self.messages_query(wa_id).scan_index_forward(false);
            for item in self
                .query_upto(query, PENDING_SCAN, None, "reading messages")
                .await?
            {
                let r = Reader::new(&item, "message");
                if missing.contains(&r.str("wamid")?) {
                    found.push(r.str(SK)?.to_string());
                }
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl ConversationStore for DynamoStore {
    async fn record_inbound(&self, msg: &NewInbound) -> Result<RecordOutcome> {
        let wa_id = &msg.wa_id;
        let at = msg.received_at_ms;
        let now_s = at.div_euclid(1000);
        let sk = msg_sk(at, &msg.wamid);

        let mut pointer = wamid_key(&msg.wamid);
        pointer.extend([
            ("wa_id".to_string(), s(wa_id.as_str())),
            ("msg_sk".to_string(), s(sk.clone())),
            (
                "direction".to_string(),
                s(direction_str(Direction::Inbound)),
            ),
            ("enqueued".to_string(), b(false)),
            (EXPIRES_AT.to_string(), n(now_s + DEDUP_TTL_SECS)),
        ]);
        // TTL deletes late (up to days): an expired pointer counts as absent.
        let pointer = write_put(
            self.put()
                .set_item(Some(pointer))
                .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
                .expression_attribute_values(":now", n(now_s)),
        )?;

        let mut message = key(conv_pk(wa_id), sk);
        message.extend([
            ("wamid".to_string(), s(&msg.wamid)),
            (
                "direction".to_string(),
                s(direction_str(Direction::Inbound)),
            ),
            ("kind".to_string(), s(&msg.kind)),
            ("text".to_string(), s(&msg.text)),
            ("payload".to_string(), s(msg.payload.to_string())),
            ("at_ms".to_string(), n(at)),
            ("sent_at_ms".to_string(), n(msg.sent_at_ms)),
            ("answered".to_string(), b(false)),
            ("starts_turn".to_string(), b(msg.starts_turn)),
        ]);
        let message = write_put(self.put().set_item(Some(message)))?;

        // Created or refreshed, unless a later user message is already
        // recorded (Meta delivers out of order): then the times, name and
        // window stay as the later message left them.
        let mut set = String::from(
            "SET wa_id = :wa, phone_number_id = :pn, last_user_at_ms = :at, \
             last_message_at_ms = :at, window_closed = :false, gsi1pk = :convs, \
             gsi1sk = :g1, #state = if_not_exists(#state, :bot)",
        );
        let mut meta = self
            .update()
            .set_key(Some(meta_key(wa_id)))
            .condition_expression("attribute_not_exists(last_user_at_ms) OR last_user_at_ms <= :at")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":wa", s(wa_id.as_str()))
            .expression_attribute_values(":pn", s(&msg.phone_number_id))
            .expression_attribute_values(":at", n(at))
            .expression_attribute_values(":false", b(false))
            .expression_attribute_values(":convs", s(CONVS))
            .expression_attribute_values(":g1", s(gsi1sk(at, wa_id)))
            .expression_attribute_values(":bot", s(ConversationState::Bot.as_str()));
        if let Some(name) = &msg.contact_name {
            set.push_str(", contact_name = :name");
            meta = meta.expression_attribute_values(":name", s(name));
        }
        let meta = write_update(meta.update_expression(set))?;

        let mut tx = self
            .transact(
                vec![pointer.clone(), message.clone(), meta],
                "recording an inbound message",
            )
            .await?;
        if tx.failed_at(2) && !tx.failed_at(0) {
            // An older message arriving late: record it, leave the
            // conversation as it is.
            tx = self
                .transact(vec![pointer, message], "recording an inbound message")
                .await?;
        }
        if !tx.failed_at(0) {
            return match tx {
                Tx::Done => Ok(RecordOutcome::Recorded),
                Tx::Cancelled(codes) => Err(Error::dependency(
                    "dynamodb",
                    "recording an inbound message",
                    false,
                    format!("transaction cancelled: {}", codes.join(", ")),
                )),
            };
        }
        let pointer = self
            .get(wamid_key(&msg.wamid), "reading a wamid pointer")
            .await?;
        let enqueued = match &pointer {
            Some(p) => Reader::new(p, "wamid").bool_or("enqueued", false)?,
            None => false,
        };
        Ok(RecordOutcome::Duplicate { enqueued })
    }

    async fn mark_enqueued(&self, wamid: &str) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(wamid_key(wamid)))
            .update_expression("SET enqueued = :true")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":true", b(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::NotFound(
                    "no message recorded with this wamid".into(),
                ))
            }
            Err(e) => Err(sdk_error("dynamodb", "marking a message enqueued", e)),
        }
    }

    async fn apply_status(&self, update: &StatusUpdate) -> Result<StatusOutcome> {
        let Some(pointer) = self
            .get(wamid_key(&update.wamid), "reading a wamid pointer")
            .await?
        else {
            return Ok(StatusOutcome::Unknown);
        };
        let r = Reader::new(&pointer, "wamid");
        if r.str("direction")? != direction_str(Direction::Outbound) {
            return Ok(StatusOutcome::Unknown);
        }
        let wa_id = WaId::parse(r.str("wa_id")?)
            .map_err(|e| Error::dependency("dynamodb", "unexpected wamid item", false, e))?;
        let mut set =
            String::from("SET delivery = :d, delivery_rank = :rank, delivery_at_ms = :at");
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(conv_pk(&wa_id), r.str("msg_sk")?)))
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(delivery_rank) OR delivery_rank < :rank)",
            )
            .expression_attribute_values(":d", s(update.delivery.as_str()))
            .expression_attribute_values(":rank", n(update.delivery.rank()))
            .expression_attribute_values(":at", n(update.at_ms));
        if let Some(code) = update.error_code {
            set.push_str(", error_code = :code");
            req = req.expression_attribute_values(":code", n(code));
        }
        match req.update_expression(set).send().await {
            Ok(_) => Ok(StatusOutcome::Applied),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(StatusOutcome::Stale)
            }
            Err(e) => Err(sdk_error("dynamodb", "applying a status", e)),
        }
    }

    async fn close_window(&self, wa_id: &WaId) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(meta_key(wa_id)))
            .update_expression("SET window_closed = :true")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":true", b(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // No conversation: no window to close.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error("dynamodb", "closing the window", e)),
        }
    }

    async fn conversation(&self, wa_id: &WaId) -> Result<Option<Conversation>> {
        self.get(meta_key(wa_id), "reading a conversation")
            .await?
            .map(|item| conversation_from(&item))
            .transpose()
    }

    async fn pending_inbound(&self, wa_id: &WaId) -> Result<Vec<StoredMessage>> {
        let items = self
            .query_upto(
                self.messages_newest_first(wa_id),
                PENDING_SCAN,
                None,
                "reading pending messages",
            )
            .await?;
        let mut pending = Vec::new();
        for item in items.iter().rev() {
            let m = message_from(item)?;
            if m.direction == Direction::Inbound && m.starts_turn && !m.answered {
                pending.push(m);
            }
        }
        Ok(pending)
    }

    async fn recent_messages(&self, wa_id: &WaId, limit: usize) -> Result<Vec<StoredMessage>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items = self
            .query_upto(
                self.messages_newest_first(wa_id),
                limit,
                None,
                "reading recent messages",
            )
            .await?;
        items.iter().rev().map(message_from).collect()
    }

    async fn claim_turn(&self, turn: &TurnRecord) -> Result<ClaimOutcome> {
        let record = serde_json::to_string(turn)
            .map_err(|e| Error::dependency("dynamodb", "encoding a turn", false, e))?;
        let mut item = turn_key(&turn.wa_id, &turn.turn_id);
        item.extend([
            ("record".to_string(), s(record)),
            ("sent_parts".to_string(), n(turn.sent_parts as i64)),
            ("state".to_string(), s(turn_state_str(turn.state))),
            ("created_at_ms".to_string(), n(turn.created_at_ms)),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(ClaimOutcome::Claimed),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                let existing = self
                    .get(turn_key(&turn.wa_id, &turn.turn_id), "reading a turn")
                    .await?
                    .ok_or_else(|| Error::Conflict("turn claimed but not readable".into()))?;
                Ok(ClaimOutcome::Existing(turn_from(&existing)?))
            }
            Err(e) => Err(sdk_error("dynamodb", "claiming a turn", e)),
        }
    }

    async fn record_sent_part(
        &self,
        wa_id: &WaId,
        turn_id: &str,
        index: usize,
        sent: &SentRecord,
    ) -> Result<()> {
        let context = "recording a sent part";
        let index = index as i64;
        let mut items = vec![write_update(
            self.update()
                .set_key(Some(turn_key(wa_id, turn_id)))
                .update_expression("SET sent_parts = :next")
                .condition_expression("sent_parts = :index")
                .expression_attribute_values(":next", n(index + 1))
                .expression_attribute_values(":index", n(index)),
        )?];
        items.extend(self.outbound_items(wa_id, sent, Some(turn_id), None)?);
        let tx = self
            .write_outbound(wa_id, sent.at_ms, items, context)
            .await?;
        if !tx.failed_at(0) {
            return match tx {
                Tx::Done => Ok(()),
                Tx::Cancelled(codes) => Err(Error::dependency(
                    "dynamodb",
                    context,
                    false,
                    format!("transaction cancelled: {}", codes.join(", ")),
                )),
            };
        }
        let turn = self
            .get(turn_key(wa_id, turn_id), "reading a turn")
            .await?
            .ok_or_else(|| Error::NotFound(format!("turn {turn_id}")))?;
        let sent_parts = Reader::new(&turn, "turn").i64("sent_parts")?;
        if sent_parts > index {
            // A retry of a part already recorded.
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "turn {turn_id} has {sent_parts} parts sent; part {index} is out of order"
            )))
        }
    }

    async fn complete_turn(&self, wa_id: &WaId, turn_id: &str, inbound: &[String]) -> Result<()> {
        let context = "completing a turn";
        let sort_keys = self.inbound_sort_keys(wa_id, inbound).await?;
        for chunk in sort_keys.chunks(TRANSACT_WRITE_MAX) {
            let mut items = Vec::with_capacity(chunk.len());
            for sk in chunk {
                items.push(write_update(
                    self.update()
                        .set_key(Some(key(conv_pk(wa_id), sk.clone())))
                        .update_expression("SET answered = :true")
                        .condition_expression("attribute_exists(pk)")
                        .expression_attribute_values(":true", b(true)),
                )?);
            }
            if let Tx::Cancelled(codes) = self.transact(items, context).await? {
                return Err(Error::dependency(
                    "dynamodb",
                    context,
                    false,
                    format!("a message of the turn is missing: {}", codes.join(", ")),
                ));
            }
        }
        // Last, so that a turn marked sent has its messages answered.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(turn_key(wa_id, turn_id)))
            .update_expression("SET #state = :sent")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sent", s(turn_state_str(TurnState::Sent)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::NotFound(format!("turn {turn_id}")))
            }
            Err(e) => Err(sdk_error("dynamodb", context, e)),
        }
    }

    async fn record_outbound(&self, wa_id: &WaId, sent: &SentRecord) -> Result<()> {
        let context = "recording an outbound message";
        // Recorded once: a second call must not reset a delivery state that
        // statuses have moved since.
        let items = self.outbound_items(wa_id, sent, None, Some("attribute_not_exists(pk)"))?;
        match self
            .write_outbound(wa_id, sent.at_ms, items, context)
            .await?
        {
            Tx::Done => Ok(()),
            tx if tx.failed_at(0) => Ok(()),
            Tx::Cancelled(codes) => Err(Error::dependency(
                "dynamodb",
                context,
                false,
                format!("transaction cancelled: {}", codes.join(", ")),
            )),
        }
    }

    async fn list_conversations(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Conversation>> {
        const KEY: &[&str] = &[PK, SK, GSI1PK, GSI1SK];
        let start = cursor
            .map(|c| decode_cursor(c, KEY, |k| k.get(GSI1PK).is_some_and(|v| v == CONVS)))
            .transpose()?;
        if limit == 0 {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :convs")
            .expression_attribute_values(":convs", s(CONVS))
            .scan_index_forward(false);
        // One more than asked, to know whether there is a next page.
        let mut items = self
            .query_upto(
                query,
                limit.saturating_add(1),
                start,
                "listing conversations",
            )
            .await?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|i| encode_cursor(i, KEY)).transpose()?
        } else {
            None
        };
        Ok(Page {
            items: items.iter().map(conversation_from).collect::<Result<_>>()?,
            next,
        })
    }

    async fn transcript(
        &self,
        wa_id: &WaId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<StoredMessage>> {
        const KEY: &[&str] = &[PK, SK];
        let pk = conv_pk(wa_id);
        let start = cursor
            .map(|c| {
                decode_cursor(c, KEY, |k| {
                    k.get(PK) == Some(&pk) && k.get(SK).is_some_and(|v| v.starts_with(MSG_PREFIX))
                })
            })
            .transpose()?;
        if limit == 0 {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        // The cursor needs `pk` and `sk`, so they are projected too.
        let query = project_messages(self.messages_query(wa_id).scan_index_forward(true), KEY);
        let mut items = self
            .query_upto(
                query,
                limit.saturating_add(1),
                start,
                "reading a transcript",
            )
            .await?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|i| encode_cursor(i, KEY)).transpose()?
        } else {
            None
        };
        Ok(Page {
            items: items.iter().map(message_from).collect::<Result<_>>()?,
            next,
        })
    }
}
