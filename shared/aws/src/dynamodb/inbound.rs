//! Recording what users send, once: the wamid pointer is the dedup key
//! (Meta redelivers webhooks), written in the same transaction as the
//! message and the conversation.

use super::tx::{write_put, write_update, Tx};
use super::DynamoStore;
use crate::dynamodb_items::*;
use crate::sdk_error;
use domain::error::{Error, Result};
use domain::*;

pub(super) async fn record_inbound(store: &DynamoStore, msg: &NewInbound) -> Result<RecordOutcome> {
    let user_id = &msg.user_id;
    let at = msg.received_at_ms;
    let now_s = at.div_euclid(1000);
    let sk = msg_sk(at, &msg.wamid);

    let mut pointer = wamid_key(&msg.wamid);
    pointer.extend([
        ("wa_id".to_string(), s(user_id.as_str())),
        ("msg_sk".to_string(), s(sk.clone())),
        ("direction".to_string(), s(Direction::Inbound.as_str())),
        ("enqueued".to_string(), b(false)),
        (EXPIRES_AT.to_string(), n(now_s + DEDUP_TTL_SECS)),
    ]);
    // TTL deletes late (up to days): an expired pointer counts as absent.
    let pointer = write_put(
        store
            .put()
            .set_item(Some(pointer))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(now_s)),
    )?;

    let mut message = key(conv_pk(user_id), sk);
    message.extend([
        ("wamid".to_string(), s(&msg.wamid)),
        ("direction".to_string(), s(Direction::Inbound.as_str())),
        ("kind".to_string(), s(&msg.kind)),
        ("text".to_string(), s(&msg.text)),
        ("payload".to_string(), s(msg.payload.to_string())),
        ("at_ms".to_string(), n(at)),
        ("sent_at_ms".to_string(), n(msg.sent_at_ms)),
        ("answered".to_string(), b(false)),
        ("starts_turn".to_string(), b(msg.starts_turn)),
    ]);
    let message = write_put(store.put().set_item(Some(message)))?;

    // Created or refreshed, unless a later user message is already
    // recorded (Meta delivers out of order): then the times, name and
    // window stay as the later message left them.
    let mut set = String::from(
        "SET wa_id = :wa, phone_number_id = :pn, last_user_at_ms = :at, \
         last_message_at_ms = :at, window_closed = :false, gsi1pk = :convs, \
         gsi1sk = :g1, #state = if_not_exists(#state, :bot)",
    );
    let mut meta = store
        .update()
        .set_key(Some(meta_key(user_id)))
        .condition_expression("attribute_not_exists(last_user_at_ms) OR last_user_at_ms <= :at")
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":wa", s(user_id.as_str()))
        .expression_attribute_values(":pn", s(&msg.phone_number_id))
        .expression_attribute_values(":at", n(at))
        .expression_attribute_values(":false", b(false))
        .expression_attribute_values(":convs", s(CONVS))
        .expression_attribute_values(":g1", s(gsi1sk(at, user_id)))
        .expression_attribute_values(":bot", s(ConversationState::Bot.as_str()));
    if let Some(name) = &msg.contact_name {
        set.push_str(", contact_name = :name");
        meta = meta.expression_attribute_values(":name", s(name));
    }
    let meta = write_update(meta.update_expression(set))?;

    let mut tx = store
        .transact(
            vec![pointer.clone(), message.clone(), meta],
            "recording an inbound message",
        )
        .await?;
    if tx.failed_at(2) && !tx.failed_at(0) {
        // An older message arriving late: record it, leave the
        // conversation as it is.
        tx = store
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
    let pointer = store
        .get(wamid_key(&msg.wamid), "reading a wamid pointer")
        .await?;
    let enqueued = match &pointer {
        Some(p) => Reader::new(p, "wamid").bool_or("enqueued", false)?,
        None => false,
    };
    Ok(RecordOutcome::Duplicate { enqueued })
}

pub(super) async fn mark_enqueued(store: &DynamoStore, wamid: &str) -> Result<()> {
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
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
