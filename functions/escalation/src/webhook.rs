//! Chatwoot's webhook: `POST /webhooks/chatwoot?token=<CHATWOOT_WEBHOOK_TOKEN>`.
//!
//! Chatwoot's settings take only a URL, so the secret travels in it; it is
//! compared in constant time, and anything else gets 401 and changes
//! nothing. Then:
//! - an agent's public reply goes to the user on WhatsApp (the conversation
//!   becomes `human`); private notes and the contact's own messages stay
//!   in the desk;
//! - `resolved` hands the conversation back to the bot and closes the
//!   escalation;
//! - Chatwoot repeats webhooks: each is claimed on its dedup key before it is
//!   acted on, so a repeat is answered 200 and does nothing. A claim is given
//!   back when the action failed, and the 5xx lets Chatwoot try again.
//!
//! Framework-neutral (`http` types): the Lambda and the local server call it.

use std::sync::Arc;

use bytes::Bytes;
use chatwoot::webhook::{check_webhook_token, ChatwootEvent, WebhookPayload};
use domain::ports::{
    send_and_record, AgentRecords, Clock, ConversationStore, EscalationRecords, MessageSender,
};
use domain::whatsapp::outbound::OutboundMessage;
use domain::{ConversationState, UserId};
use domain::{Error, Result};
use http::{Method, Request, Response, StatusCode};
use runtime::observability::{self, phone};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tracing::{info, warn};

/// Chatwoot's payloads are a few KB; anything past this is not one.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub struct WebhookDeps {
    /// `CHATWOOT_WEBHOOK_TOKEN`; `None`: every call is refused.
    pub token: Option<SecretString>,
    pub store: Arc<dyn ConversationStore>,
    pub records: Arc<dyn AgentRecords>,
    pub escalations: Arc<dyn EscalationRecords>,
    pub sender: Arc<dyn MessageSender>,
    pub clock: Arc<dyn Clock>,
}

impl WebhookDeps {
    /// The one constructor: the token from the secrets, the rest ports.
    pub fn new(
        secrets: &runtime::config::WhatsAppSecrets,
        store: Arc<dyn ConversationStore>,
        records: Arc<dyn AgentRecords>,
        escalations: Arc<dyn EscalationRecords>,
        sender: Arc<dyn MessageSender>,
        clock: Arc<dyn Clock>,
    ) -> WebhookDeps {
        if secrets.chatwoot_webhook_token.is_none() {
            // Not fatal: every call gets 401 until the secret has one.
            warn!("no Chatwoot webhook token: every Chatwoot webhook is refused");
        }
        WebhookDeps {
            token: secrets.chatwoot_webhook_token.clone(),
            store,
            records,
            escalations,
            sender,
            clock,
        }
    }
}

/// What a webhook came to (the response body says it too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    Sent,
    HandedBack,
    Duplicate,
    Ignored(&'static str),
}

impl WebhookOutcome {
    fn as_str(&self) -> &'static str {
        match self {
            WebhookOutcome::Sent => "sent",
            WebhookOutcome::HandedBack => "handed_back",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Ignored(why) => why,
        }
    }
}

fn respond(status: StatusCode, body: serde_json::Value) -> Response<Bytes> {
    runtime::http_answer::json(status, &body)
}

fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// Answers one webhook call. Never fails: errors become responses.
pub async fn handle(deps: &WebhookDeps, req: Request<Bytes>) -> Response<Bytes> {
    if req.method() != Method::POST {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "method not allowed"}),
        );
    }
    let given = query_token(req.uri().query());
    if let Err(e) = check_webhook_token(
        deps.token.as_ref().map(|t| t.expose_secret()),
        given.as_deref(),
    ) {
        // 4xx are not errors of ours: logged at info, never with the token.
        info!(reason = %e, "chatwoot webhook refused");
        observability::count(observability::Metric::ChatwootWebhookRefused, 1);
        return respond(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}));
    }
    if req.body().len() > MAX_BODY_BYTES {
        return respond(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "payload too large"}),
        );
    }
    let payload = match WebhookPayload::parse(req.body()) {
        Ok(p) => p,
        Err(e) => {
            info!(error = %e, "chatwoot webhook not understood");
            return respond(
                StatusCode::BAD_REQUEST,
                json!({"error": "not a Chatwoot webhook payload"}),
            );
        }
    };
    match act(deps, &payload).await {
        Ok(outcome) => respond(StatusCode::OK, json!({"result": outcome.as_str()})),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status.is_server_error() {
                tracing::error!(error = %e, "chatwoot webhook failed");
                respond(status, json!({"error": "internal error"}))
            } else {
                info!(error = %e, "chatwoot webhook refused");
                respond(status, json!({"error": e.to_string()}))
            }
        }
    }
}

/// Whose conversation a desk conversation is: ours by the link the
/// hand-off made; else the contact's phone, if we know that user.
async fn owner(
    deps: &WebhookDeps,
    conversation_id: u64,
    contact: Option<UserId>,
) -> Result<Option<UserId>> {
    if let Some(w) = deps.escalations.desk_owner(conversation_id).await? {
        return Ok(Some(w));
    }
    match contact {
        Some(w) if deps.store.conversation(&w).await?.is_some() => Ok(Some(w)),
        _ => Ok(None),
    }
}

async fn act(deps: &WebhookDeps, payload: &WebhookPayload) -> Result<WebhookOutcome> {
    let event = payload.event();
    let (conversation_id, contact) = match &event {
        ChatwootEvent::AgentReply {
            conversation_id,
            user_id,
            ..
        }
        | ChatwootEvent::Resolved {
            conversation_id,
            user_id,
        } => (*conversation_id, user_id.clone()),
        ChatwootEvent::PrivateNote { .. } => return Ok(WebhookOutcome::Ignored("private_note")),
        ChatwootEvent::ContactMessage { .. } => return Ok(WebhookOutcome::Ignored("incoming")),
        ChatwootEvent::StatusChanged { .. } => return Ok(WebhookOutcome::Ignored("status")),
        ChatwootEvent::Ignored { .. } => return Ok(WebhookOutcome::Ignored("ignored")),
    };
    let Some(user_id) = owner(deps, conversation_id, contact).await? else {
        return Ok(WebhookOutcome::Ignored("not_ours"));
    };
    let Some(key) = payload.dedup_key() else {
        return Ok(WebhookOutcome::Ignored("no_id"));
    };
    if !deps.escalations.claim(&key, deps.clock.now_ms()).await? {
        observability::count(observability::Metric::ChatwootWebhookDuplicate, 1);
        return Ok(WebhookOutcome::Duplicate);
    }
    let result = match &event {
        ChatwootEvent::AgentReply { content, .. } => agent_reply(deps, &user_id, content).await,
        _ => hand_back(deps, &user_id).await,
    };
    if result.is_err() {
        // Not done: a retry of the same webhook may try again.
        if let Err(e) = deps.escalations.release(&key).await {
            warn!(error = %e, "could not release a webhook claim");
        }
    }
    result
}

/// A person's reply, sent to the user as is. People have the conversation
/// now, whatever its state was.
pub async fn agent_reply(
    deps: &WebhookDeps,
    user_id: &UserId,
    text: &str,
) -> Result<WebhookOutcome> {
    let conv = deps
        .store
        .conversation(user_id)
        .await?
        .ok_or_else(|| Error::NotFound("conversation".into()))?;
    take_over(
        deps.records.as_ref(),
        deps.escalations.as_ref(),
        &conv.user_id,
        conv.state,
    )
    .await?;
    for msg in OutboundMessage::texts(text) {
        send_and_record(
            deps.sender.as_ref(),
            deps.store.as_ref(),
            deps.clock.as_ref(),
            &conv.phone_number_id,
            user_id,
            &msg,
        )
        .await?;
    }
    info!(user_id = %phone(user_id.as_str()), "agent reply sent");
    observability::count(observability::Metric::AgentReplySent, 1);
    Ok(WebhookOutcome::Sent)
}

/// `state` -> human (conditional), and the open escalation marked answered.
pub async fn take_over(
    records: &dyn AgentRecords,
    escalations: &dyn EscalationRecords,
    user_id: &UserId,
    state: ConversationState,
) -> Result<()> {
    if state != ConversationState::Human {
        records
            .set_state(user_id, state, ConversationState::Human)
            .await?;
    }
    crate::update_escalation(escalations, user_id, |r| match &mut r.open {
        Some(o) if !o.human_joined => {
            o.human_joined = true;
            true
        }
        _ => false,
    })
    .await
}

/// People are done: the bot answers again, the escalation is closed.
pub async fn hand_back(deps: &WebhookDeps, user_id: &UserId) -> Result<WebhookOutcome> {
    release(deps.records.as_ref(), deps.escalations.as_ref(), user_id).await?;
    info!(user_id = %phone(user_id.as_str()), "handed back to the bot");
    observability::count(observability::Metric::HandedBack, 1);
    Ok(WebhookOutcome::HandedBack)
}

/// pending_human or human -> bot (conditional writes), the open escalation
/// closed. Already `bot`: nothing changes.
pub async fn release(
    records: &dyn AgentRecords,
    escalations: &dyn EscalationRecords,
    user_id: &UserId,
) -> Result<()> {
    for from in [ConversationState::Human, ConversationState::PendingHuman] {
        if records
            .set_state(user_id, from, ConversationState::Bot)
            .await?
        {
            break;
        }
    }
    crate::update_escalation(escalations, user_id, |r| r.open.take().is_some()).await
}
