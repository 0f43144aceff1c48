//! Working a conversation without Chatwoot (write scope, through the
//! authorizer):
//! - `POST /admin/conversations/{user_id}/takeover`: people have it (`human`),
//!   the bot stops answering;
//! - `POST /admin/conversations/{user_id}/release`: back to the bot, the open
//!   escalation closed, and its help-desk conversation (Chatwoot) resolved;
//! - `POST /admin/conversations/{user_id}/messages` with `{"text": "..."}`:
//!   sent to the user as a person (taking the conversation over first);
//!   inside the 24-hour window only;
//! - `POST /admin/conversations/{user_id}/reengage`: the re-engagement
//!   template (`CHARLA_REENGAGE_TEMPLATE`), the one message WhatsApp allows
//!   outside the window, sent as a person (taking the conversation over
//!   first, so the bot stays out of the answer).
//!
//! States change only by conditional writes; answers say the state after.

use std::sync::Arc;

use domain::error::{Error, Result};
use domain::handoff::EscalationRecord;
use domain::ports::{
    send_and_record, AgentRecords, Clock, ConversationStore, EscalationRecords, HumanDesk,
    MessageSender,
};
use domain::whatsapp::outbound::OutboundMessage;
use domain::{ConversationState, UserId};
use serde::Deserialize;
use serde_json::json;

/// WhatsApp's limit for one text message.
pub const MAX_TEXT_CHARS: usize = 4096;
const WRITE_TRIES: usize = 3;

pub struct Control {
    pub records: Arc<dyn AgentRecords>,
    pub escalations: Arc<dyn EscalationRecords>,
    pub sender: Arc<dyn MessageSender>,
    pub clock: Arc<dyn Clock>,
    /// The help desk (Chatwoot) when configured: a release resolves the
    /// desk's conversation, so agents do not keep working a conversation
    /// the bot has again.
    pub desk: Option<Arc<dyn HumanDesk>>,
    /// The re-engagement template, (name, language); `None`: `reengage`
    /// answers 400.
    pub reengage_template: Option<(String, String)>,
    /// What people send is counted with the rest.
    pub usage: Arc<dyn domain::ports::UsageLedger>,
}

/// Sends `messages` as a person, recorded in the transcript, and counts
/// them in the usage (a template is what Meta charges for); their wamids.
async fn send(
    control: &Control,
    store: &dyn ConversationStore,
    conversation: &domain::Conversation,
    user_id: &UserId,
    messages: Vec<OutboundMessage>,
) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for msg in &messages {
        let id = send_and_record(
            control.sender.as_ref(),
            store,
            control.clock.as_ref(),
            &conversation.phone_number_id,
            user_id,
            msg,
        )
        .await?;
        ids.push(id);
    }
    if let Some(first) = ids.first() {
        let sent = domain::usage::Sent::of(&messages);
        let event = domain::usage::UsageEvent::sent(user_id, first, control.clock.now_ms(), sent);
        runtime::usage::record(control.usage.as_ref(), &event).await;
    }
    Ok(ids)
}

/// The private note agents find in the desk when a release came from here.
pub const RELEASE_NOTE: &str =
    "Handed back to the bot from the admin API: this conversation is resolved here.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Takeover,
    Release,
    Message,
    Reengage,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Takeover => "takeover",
            Action::Release => "release",
            Action::Message => "send_message",
            Action::Reengage => "reengage",
        }
    }
}

/// `/admin/conversations/{user_id}/{action}`, if the path is one.
pub fn route(path: &str) -> Option<(&str, Action)> {
    let rest = path
        .strip_suffix('/')
        .unwrap_or(path)
        .strip_prefix("/admin/conversations/")?;
    let (user_id, action) = rest.split_once('/')?;
    let action = match action {
        "takeover" => Action::Takeover,
        "release" => Action::Release,
        "messages" => Action::Message,
        "reengage" => Action::Reengage,
        _ => return None,
    };
    (!user_id.is_empty()).then_some((user_id, action))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    text: String,
}

async fn update(
    escalations: &dyn EscalationRecords,
    user_id: &UserId,
    change: impl Fn(&mut EscalationRecord) -> bool,
) -> Result<()> {
    for _ in 0..WRITE_TRIES {
        let (mut record, version) = escalations.escalation(user_id).await?;
        if !change(&mut record) {
            return Ok(());
        }
        if escalations
            .save_escalation(user_id, &record, version)
            .await?
        {
            return Ok(());
        }
    }
    Err(Error::dependency(
        "escalation",
        "the escalation record kept changing",
        true,
        "conditional write lost",
    ))
}

/// Moves the state to `to` from any of `from` (one conditional write each).
async fn move_state(
    records: &dyn AgentRecords,
    user_id: &UserId,
    from: &[ConversationState],
    to: ConversationState,
) -> Result<()> {
    for &f in from {
        if records.set_state(user_id, f, to).await? {
            return Ok(());
        }
    }
    Ok(())
}

pub async fn serve(
    control: &Control,
    store: &dyn ConversationStore,
    user_id: &UserId,
    action: Action,
    body: &[u8],
) -> Result<serde_json::Value> {
    // Known before anything changes: a refusal leaves the state as it was.
    let template = match (action, &control.reengage_template) {
        (Action::Reengage, Some((name, language))) => {
            Some(OutboundMessage::template(name.clone(), language.clone()))
        }
        (Action::Reengage, None) => {
            return Err(Error::Invalid(
                "no re-engagement template is configured (CHARLA_REENGAGE_TEMPLATE)".into(),
            ))
        }
        _ => None,
    };
    let message = match action {
        Action::Message => {
            let m: MessageBody = serde_json::from_slice(body)
                .map_err(|e| Error::Invalid(format!("expected {{\"text\": \"...\"}}: {e}")))?;
            let text = m.text.trim().to_string();
            if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
                return Err(Error::Invalid(format!(
                    "text must have 1 to {MAX_TEXT_CHARS} characters"
                )));
            }
            Some(text)
        }
        _ => None,
    };
    let conversation = store
        .conversation(user_id)
        .await?
        .ok_or_else(|| Error::NotFound("conversation".into()))?;
    if conversation.state == ConversationState::Closed {
        return Err(Error::Invalid("the conversation is closed".into()));
    }
    use ConversationState::*;
    let mut wamid = None;
    let mut desk_resolved = false;
    match action {
        Action::Release => {
            // The desk first: if it fails, nothing has changed here and the
            // release can be asked again. (Chatwoot's "resolved" webhook then
            // finds the bot with it already: nothing more happens.)
            let (record, _) = control.escalations.escalation(user_id).await?;
            let with_people = record.open.is_some() || conversation.state != Bot;
            if let (Some(desk), Some(desk_ref), true) = (&control.desk, &record.desk, with_people) {
                desk.resolve(desk_ref, RELEASE_NOTE).await?;
                desk_resolved = true;
            }
            move_state(
                control.records.as_ref(),
                user_id,
                &[Human, PendingHuman],
                Bot,
            )
            .await?;
            update(control.escalations.as_ref(), user_id, |r| {
                r.open.take().is_some()
            })
            .await?;
        }
        Action::Takeover | Action::Message | Action::Reengage => {
            move_state(
                control.records.as_ref(),
                user_id,
                &[Bot, PendingHuman],
                Human,
            )
            .await?;
            update(control.escalations.as_ref(), user_id, |r| {
                match &mut r.open {
                    Some(o) if !o.human_joined => {
                        o.human_joined = true;
                        true
                    }
                    _ => false,
                }
            })
            .await?;
        }
    }
    if let Some(text) = message {
        if !conversation.window_open(control.clock.now_ms()) {
            return Err(Error::Invalid(
                "the 24-hour window is closed: only templates can be sent".into(),
            ));
        }
        wamid = Some(
            send(
                control,
                store,
                &conversation,
                user_id,
                OutboundMessage::texts(&text),
            )
            .await?,
        );
    }
    if let Some(msg) = template {
        wamid = Some(send(control, store, &conversation, user_id, vec![msg]).await?);
    }
    let state = store
        .conversation(user_id)
        .await?
        .map(|c| c.state)
        .unwrap_or(conversation.state);
    tracing::info!(
        action = action.name(),
        state = state.as_str(),
        "conversation worked"
    );
    let mut out = json!({"user_id": user_id.as_str(), "state": state.as_str()});
    if let Some(ids) = wamid {
        out["wamids"] = json!(ids);
    }
    if desk_resolved {
        out["desk"] = json!("resolved");
    }
    Ok(out)
}
