//! A turn's lifecycle: claimed once (the lock against a redelivered
//! batch), its parts recorded in order as they are sent, then completed
//! with its inbound messages marked answered.

use aws_sdk_dynamodb::types::{Get, TransactGetItem};

use super::tx::{build_error, write_update, Tx};
use super::{DynamoStore, PENDING_SCAN};
use crate::dynamodb_items::*;
use crate::dynamodb_put::put_if_absent;
use crate::sdk_error;
use domain::error::{Error, Result};
use domain::*;

/// DynamoDB's limit on items in one `TransactWriteItems`.
const TRANSACT_WRITE_MAX: usize = 100;
/// Items per `TransactGetItems`: DynamoDB takes 100, moto only 25 (the old
/// limit). A turn answers a handful of messages, so this costs nothing.
const TRANSACT_GET_MAX: usize = 25;

pub(super) async fn claim_turn(store: &DynamoStore, turn: &TurnRecord) -> Result<ClaimOutcome> {
    let record = serde_json::to_string(turn)
        .map_err(|e| Error::dependency("dynamodb", "encoding a turn", false, e))?;
    let mut item = turn_key(&turn.user_id, &turn.turn_id);
    item.extend([
        ("record".to_string(), s(record)),
        ("sent_parts".to_string(), n(turn.sent_parts as i64)),
        ("state".to_string(), s(turn.state.as_str())),
        ("created_at_ms".to_string(), n(turn.created_at_ms)),
    ]);
    if put_if_absent(&store.client, &store.table, item, "claiming a turn").await? {
        return Ok(ClaimOutcome::Claimed);
    }
    // Claimed before (a redelivery, or another worker): say by whom and how far.
    let existing = store
        .get(turn_key(&turn.user_id, &turn.turn_id), "reading a turn")
        .await?
        .ok_or_else(|| Error::Conflict("turn claimed but not readable".into()))?;
    Ok(ClaimOutcome::Existing(turn_from(&existing)?))
}

pub(super) async fn record_sent_part(
    store: &DynamoStore,
    user_id: &UserId,
    turn_id: &str,
    index: usize,
    sent: &SentRecord,
) -> Result<()> {
    let context = "recording a sent part";
    let index = index as i64;
    let mut items = vec![write_update(
        store
            .update()
            .set_key(Some(turn_key(user_id, turn_id)))
            .update_expression("SET sent_parts = :next")
            .condition_expression("sent_parts = :index")
            .expression_attribute_values(":next", n(index + 1))
            .expression_attribute_values(":index", n(index)),
    )?];
    items.extend(store.outbound_items(user_id, sent, Some(turn_id), None)?);
    let tx = store
        .write_outbound(user_id, sent.at_ms, items, context)
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
    let turn = store
        .get(turn_key(user_id, turn_id), "reading a turn")
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

pub(super) async fn complete_turn(
    store: &DynamoStore,
    user_id: &UserId,
    turn_id: &str,
    inbound: &[String],
) -> Result<()> {
    let context = "completing a turn";
    let sort_keys = store.inbound_sort_keys(user_id, inbound).await?;
    for chunk in sort_keys.chunks(TRANSACT_WRITE_MAX) {
        let mut items = Vec::with_capacity(chunk.len());
        for sk in chunk {
            items.push(write_update(
                store
                    .update()
                    .set_key(Some(key(conv_pk(user_id), sk.clone())))
                    .update_expression("SET answered = :true")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":true", b(true)),
            )?);
        }
        if let Tx::Cancelled(codes) = store.transact(items, context).await? {
            return Err(Error::dependency(
                "dynamodb",
                context,
                false,
                format!("a message of the turn is missing: {}", codes.join(", ")),
            ));
        }
    }
    // Last, so that a turn marked sent has its messages answered.
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(turn_key(user_id, turn_id)))
        .update_expression("SET #state = :sent")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":sent", s(TurnState::Sent.as_str()))
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

impl DynamoStore {
    /// The sort keys of `wamids`' inbound messages in `wa_id`'s conversation,
    /// through their pointers, then (for pointers already expired) through
    /// the newest messages.
    async fn inbound_sort_keys(&self, user_id: &UserId, wamids: &[String]) -> Result<Vec<String>> {
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
                        let ours = r.str("wa_id")? == user_id.as_str()
                            && r.str("direction")? == Direction::Inbound.as_str();
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
            let query = self.messages_query(user_id).scan_index_forward(false);
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
