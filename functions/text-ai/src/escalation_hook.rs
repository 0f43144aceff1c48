//! What text-ai tells the escalation function: every answered turn (for
//! the policy) and, while people have the conversation, the user's messages
//! (for them).

use std::sync::Arc;

use domain::handoff::{EscalationMessage, TurnEvent, UserMessageEvent, MAX_TURN_TEXT_CHARS};
use domain::ports::{Queue, QueueMessage, TurnNote};
use domain::{Conversation, StoredMessage, TurnRecord};
use domain::{Error, Result};

async fn send(queue: &Arc<dyn Queue>, msg: &EscalationMessage) -> Result<()> {
    queue
        .send(&QueueMessage {
            group_id: msg.group_id(),
            dedup_id: msg.dedup_id(),
            body: msg.to_body()?,
        })
        .await
}

/// The turn the bot just answered, with what the responder noticed.
pub async fn turn_answered(
    queue: &Arc<dyn Queue>,
    turn: &TurnRecord,
    messages: &[StoredMessage],
    note: &TurnNote,
    now_ms: i64,
) -> Result<()> {
    let text: String = messages
        .iter()
        .map(|m| m.text.as_str())
        .filter(|t| !t.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        .chars()
        .take(MAX_TURN_TEXT_CHARS)
        .collect();
    let event = EscalationMessage::Turn(TurnEvent {
        turn_id: turn.turn_id.clone(),
        user_id: turn.user_id.clone(),
        phone_number_id: turn.phone_number_id.clone(),
        text,
        language: note.language.clone(),
        fallback: note.fallback,
        intent: note.intent.clone(),
        at_ms: now_ms,
    });
    send(queue, &event).await
}

/// Each of the user's messages, for the people who have the conversation.
pub async fn pass_to_humans(
    queue: &Arc<dyn Queue>,
    conversation: &Conversation,
    messages: &[StoredMessage],
) -> Result<()> {
    for m in messages {
        let event = EscalationMessage::UserMessage(UserMessageEvent {
            wamid: m.wamid.clone(),
            user_id: conversation.user_id.clone(),
            phone_number_id: conversation.phone_number_id.clone(),
            message_type: m.kind.clone(),
            text: m.text.chars().take(MAX_TURN_TEXT_CHARS).collect(),
            at_ms: m.at_ms,
        });
        send(queue, &event).await?;
    }
    Ok(())
}

/// Marking messages answered without a turn: the DynamoDB store says the
/// turn record is missing after it marked the messages; that is fine here.
pub fn no_turn_is_fine(e: Error) -> Result<()> {
    match e {
        Error::NotFound(_) => Ok(()),
        e => Err(e),
    }
}
