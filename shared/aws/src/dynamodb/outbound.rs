//! What we send and what becomes of it: outbound messages (with their
//! wamid pointers, for statuses), delivery statuses that only move forward,
//! and the closed customer-service window.

use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};

use super::tx::{write_check, write_put, write_update, Tx};
use super::{DynamoStore, OUTBOUND_POINTER_TTL_SECS};
use crate::dynamodb_items::*;
use crate::sdk_error;
use domain::error::{Error, Result};
use domain::*;

impl DynamoStore {
    /// Writes `items` plus a bump of the conversation's `last_message_at_ms`
    /// (placed last) for an outbound message at `at_ms`. The conversation
    /// must exist; a newer message already recorded keeps its time.
    /// A missing conversation is `NotFound`; other failed conditions are
    /// returned for the caller (the indexes of `items` are kept).
    pub(super) async fn write_outbound(
        &self,
        user_id: &UserId,
        at_ms: i64,
        items: Vec<TransactWriteItem>,
        context: &str,
    ) -> Result<Tx> {
        let meta_at = items.len();
        let mut with_bump = items.clone();
        with_bump.push(write_update(
            self.update()
                .set_key(Some(meta_key(user_id)))
                .update_expression("SET last_message_at_ms = :at, gsi1sk = :g1")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(last_message_at_ms) OR last_message_at_ms <= :at)",
                )
                .expression_attribute_values(":at", n(at_ms))
                .expression_attribute_values(":g1", s(gsi1sk(at_ms, user_id))),
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
                .set_key(Some(meta_key(user_id)))
                .condition_expression("attribute_exists(pk)"),
        )?);
        let tx = self.transact(with_check, context).await?;
        if tx.failed_at(meta_at) {
            return Err(Error::NotFound(format!(
                "conversation of {}",
                mask(user_id.as_str())
            )));
        }
        Ok(tx)
    }

    pub(super) fn outbound_items(
        &self,
        user_id: &UserId,
        sent: &SentRecord,
        turn_id: Option<&str>,
        message_condition: Option<&str>,
    ) -> Result<Vec<TransactWriteItem>> {
        let sk = msg_sk(sent.at_ms, &sent.wamid);
        let mut message = key(conv_pk(user_id), sk.clone());
        message.extend([
            ("wamid".to_string(), s(&sent.wamid)),
            ("direction".to_string(), s(Direction::Outbound.as_str())),
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
            ("wa_id".to_string(), s(user_id.as_str())),
            ("msg_sk".to_string(), s(sk)),
            ("direction".to_string(), s(Direction::Outbound.as_str())),
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
}

pub(super) async fn record_outbound(
    store: &DynamoStore,
    user_id: &UserId,
    sent: &SentRecord,
) -> Result<()> {
    let context = "recording an outbound message";
    // Recorded once: a second call must not reset a delivery state that
    // statuses have moved since.
    let items = store.outbound_items(user_id, sent, None, Some("attribute_not_exists(pk)"))?;
    match store
        .write_outbound(user_id, sent.at_ms, items, context)
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

pub(super) async fn apply_status(
    store: &DynamoStore,
    update: &StatusUpdate,
) -> Result<StatusOutcome> {
    let Some(pointer) = store
        .get(wamid_key(&update.wamid), "reading a wamid pointer")
        .await?
    else {
        return Ok(StatusOutcome::Unknown);
    };
    let r = Reader::new(&pointer, "wamid");
    if r.str("direction")? != Direction::Outbound.as_str() {
        return Ok(StatusOutcome::Unknown);
    }
    let user_id = UserId::parse(r.str("wa_id")?)
        .map_err(|e| Error::dependency("dynamodb", "unexpected wamid item", false, e))?;
    let mut set = String::from("SET delivery = :d, delivery_rank = :rank, delivery_at_ms = :at");
    let mut req = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(key(conv_pk(&user_id), r.str("msg_sk")?)))
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

pub(super) async fn close_window(store: &DynamoStore, user_id: &UserId) -> Result<()> {
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(meta_key(user_id)))
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
