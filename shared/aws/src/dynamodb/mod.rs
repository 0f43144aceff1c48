//! [`ConversationStore`] on one DynamoDB table (single-table design; the
//! keys are in `dynamodb_items`).
//!
//! Every write that guards idempotency is a condition on the write itself
//! (`PutItem`/`UpdateItem` or one `TransactWriteItems`), never read-then-write.
//!
//! Service limits that shape this module:
//! - `TransactWriteItems`: at most 100 items, one operation per item;
//! - `TransactGetItems`: at most 100 items (25 before 2022, and moto still
//!   refuses more than 25, so reads go in chunks of 25);
//! - an item is at most 400 KB (the inbound payload is one message's JSON,
//!   a few KB at most);
//! - a `Query` page is at most 1 MB, so every query here follows
//!   `LastEvaluatedKey` until it has what it needs.
//!
//! One file per job; the trait's methods below say where each one lives.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use domain::error::Result;
use domain::ports::ConversationStore;
use domain::*;

mod identity;
mod inbound;
mod outbound;
mod reads;
mod records;
mod table;
mod turns;
mod tx;

/// Outbound wamid pointers live this long, so that late statuses still find
/// their message (Meta reports `read` whenever the user opens the chat).
pub const OUTBOUND_POINTER_TTL_SECS: i64 = 30 * 24 * 3600;
/// `pending_inbound` looks at this many of the newest messages. A turn
/// answers a burst; an unanswered message older than the last 100 messages
/// of its conversation is not pending any more.
pub const PENDING_SCAN: usize = 100;

/// The conversation store on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
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
}

#[async_trait]
impl ConversationStore for DynamoStore {
    async fn record_inbound(&self, msg: &NewInbound) -> Result<RecordOutcome> {
        inbound::record_inbound(self, msg).await
    }

    async fn mark_enqueued(&self, wamid: &str) -> Result<()> {
        inbound::mark_enqueued(self, wamid).await
    }

    async fn apply_status(&self, update: &StatusUpdate) -> Result<StatusOutcome> {
        outbound::apply_status(self, update).await
    }

    async fn close_window(&self, user_id: &UserId) -> Result<()> {
        outbound::close_window(self, user_id).await
    }

    async fn conversation(&self, user_id: &UserId) -> Result<Option<Conversation>> {
        reads::conversation(self, user_id).await
    }

    async fn pending_inbound(&self, user_id: &UserId) -> Result<Vec<StoredMessage>> {
        reads::pending_inbound(self, user_id).await
    }

    async fn recent_messages(&self, user_id: &UserId, limit: usize) -> Result<Vec<StoredMessage>> {
        reads::recent_messages(self, user_id, limit).await
    }

    async fn claim_turn(&self, turn: &TurnRecord) -> Result<ClaimOutcome> {
        turns::claim_turn(self, turn).await
    }

    async fn record_sent_part(
        &self,
        user_id: &UserId,
        turn_id: &str,
        index: usize,
        sent: &SentRecord,
    ) -> Result<()> {
        turns::record_sent_part(self, user_id, turn_id, index, sent).await
    }

    async fn complete_turn(
        &self,
        user_id: &UserId,
        turn_id: &str,
        inbound: &[String],
    ) -> Result<()> {
        turns::complete_turn(self, user_id, turn_id, inbound).await
    }

    async fn record_outbound(&self, user_id: &UserId, sent: &SentRecord) -> Result<()> {
        outbound::record_outbound(self, user_id, sent).await
    }

    async fn list_conversations(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Conversation>> {
        reads::list_conversations(self, limit, cursor).await
    }

    async fn transcript(
        &self,
        user_id: &UserId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<StoredMessage>> {
        reads::transcript(self, user_id, limit, cursor).await
    }
}
