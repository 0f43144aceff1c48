//! [`AgentRecords`] on the store's table (the keys are in `dynamodb_items`).
//!
//! Every idempotent write is one conditional `PutItem` or `UpdateItem`; on a
//! failed condition the item that won comes back with the error
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), so no second read is
//! needed to say why.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::DynamoStore;
use crate::dynamodb_items::*;
use crate::dynamodb_put::{put, put_if_absent, put_if_absent_or_holder, PutOnce};
use crate::sdk_error;
use domain::error::{Error, Result};
use domain::ports::AgentRecords;
use domain::*;

impl DynamoStore {
    /// Every item of `wa_id`'s conversation whose sort key starts with
    /// `prefix` (consistent read: a record just saved is listed).
    async fn conversation_items(
        &self,
        user_id: &UserId,
        prefix: &str,
        context: &str,
    ) -> Result<Vec<Item>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(conv_pk(user_id)))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true);
        self.query_upto(query, usize::MAX, None, context).await
    }

    /// The usage recorded for `wa_id`'s turns, oldest first: for reports
    /// (and the records contract; the agent only writes usage).
    pub async fn usage(&self, user_id: &UserId) -> Result<Vec<TurnUsage>> {
        let mut usage = self
            .conversation_items(user_id, USAGE_PREFIX, "reading usage")
            .await?
            .iter()
            .map(usage_from)
            .collect::<Result<Vec<_>>>()?;
        usage.sort_by(|a, b| (a.at_ms, &a.turn_id).cmp(&(b.at_ms, &b.turn_id)));
        Ok(usage)
    }
}

#[async_trait]
impl AgentRecords for DynamoStore {
    async fn save_lead(&self, lead: &Lead) -> Result<bool> {
        put_if_absent(&self.client, &self.table, lead_item(lead), "saving a lead").await
    }

    async fn leads(&self, user_id: &UserId) -> Result<Vec<Lead>> {
        // Keyed by id, so sorted here: a user has a handful.
        let mut leads = self
            .conversation_items(user_id, LEAD_PREFIX, "reading leads")
            .await?
            .iter()
            .map(lead_from)
            .collect::<Result<Vec<_>>>()?;
        leads.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(leads)
    }

    async fn book(&self, appointment: &Appointment) -> Result<BookOutcome> {
        let holder = match put_if_absent_or_holder(
            &self.client,
            &self.table,
            appointment_item(appointment),
            "booking an appointment",
        )
        .await?
        {
            PutOnce::Written => return Ok(BookOutcome::Booked),
            PutOnce::Taken(Some(holder)) => holder,
            // An emulator without ALL_OLD: read the slot (appointments are
            // never deleted, so it is there).
            PutOnce::Taken(None) => self
                .get(slot_key(appointment.start_ms), "reading a slot")
                .await?
                .ok_or_else(|| Error::Conflict("slot held but not readable".into()))?,
        };
        let holder_id = Reader::new(&holder, "appointment").str("id")?;
        Ok(if holder_id == appointment.id {
            BookOutcome::AlreadyBooked
        } else {
            BookOutcome::Taken
        })
    }

    async fn appointments_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Appointment>> {
        // DynamoDB refuses BETWEEN with the bounds the wrong way round.
        let Some((lo, hi)) = appt_gsi1sk_bounds(from_ms, to_ms) else {
            return Ok(Vec::new());
        };
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :appts AND gsi1sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":appts", s(APPTS))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi));
        self.query_upto(query, usize::MAX, None, "reading appointments")
            .await?
            .iter()
            .map(appointment_from)
            .collect()
    }

    async fn save_call_request(&self, request: &CallRequest) -> Result<bool> {
        put_if_absent(
            &self.client,
            &self.table,
            call_request_item(request),
            "saving a call request",
        )
        .await
    }

    async fn call_requests(&self, user_id: &UserId) -> Result<Vec<CallRequest>> {
        let mut requests = self
            .conversation_items(user_id, CALL_PREFIX, "reading call requests")
            .await?
            .iter()
            .map(call_request_from)
            .collect::<Result<Vec<_>>>()?;
        requests.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(requests)
    }

    async fn set_state(
        &self,
        user_id: &UserId,
        from: ConversationState,
        to: ConversationState,
    ) -> Result<bool> {
        let context = "changing a conversation's state";
        // `attribute_exists(pk)`: an update must not create a conversation.
        // record_inbound always writes a state; an item without one is read
        // as `bot`, as record_inbound's `if_not_exists` would start it.
        let mut condition = String::from("attribute_exists(pk) AND (#state = :from");
        if from == ConversationState::Bot {
            condition.push_str(" OR attribute_not_exists(#state)");
        }
        condition.push(')');
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(meta_key(user_id)))
            .update_expression("SET #state = :to")
            .condition_expression(condition)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(true),
            Err(err) => err,
        };
        let Some(UpdateItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        else {
            return Err(sdk_error("dynamodb", context, err));
        };
        // With ALL_OLD, no item means no conversation; an emulator without
        // it gets a consistent read.
        let exists = failed.item().is_some()
            || self
                .get(meta_key(user_id), "reading a conversation")
                .await?
                .is_some();
        if exists {
            Ok(false)
        } else {
            Err(Error::NotFound(format!(
                "conversation of {}",
                mask(user_id.as_str())
            )))
        }
    }

    async fn memory(&self, user_id: &UserId) -> Result<Memory> {
        self.get(memory_key(user_id), "reading memory")
            .await?
            .map(|item| memory_from(&item))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    async fn save_memory(&self, user_id: &UserId, memory: &Memory) -> Result<()> {
        // Last write wins: one user's turns run one at a time (FIFO group).
        put(
            &self.client,
            &self.table,
            memory_item(user_id, memory),
            "saving memory",
        )
        .await
    }

    async fn record_usage(&self, usage: &TurnUsage) -> Result<()> {
        // A retried turn's second record is dropped: the first is kept.
        put_if_absent(
            &self.client,
            &self.table,
            usage_item(usage),
            "recording usage",
        )
        .await?;
        Ok(())
    }
}
