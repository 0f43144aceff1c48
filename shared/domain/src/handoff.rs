//! What the escalation function receives and keeps: the messages of the
//! escalation queue (hand-off requests, turns the bot answered, user
//! messages for the humans, the no-human timer) and the per-conversation
//! record of an open escalation. Plain types, no I/O.

use serde::{Deserialize, Serialize};

use super::agent::HandoffRequest;
use super::conversation::UserId;
use super::escalation::{Decision, EscalationState, Reason};
use crate::error::{Error, Result};
use crate::ports::DeskRef;

/// Longest queue body the escalation function reads (SQS's limit is 256 KiB;
/// a turn's text is bounded by WhatsApp's 4096 characters per message).
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Longest user text a turn event carries; the rest is cut.
pub const MAX_TURN_TEXT_CHARS: usize = 8000;

/// A turn the bot answered: what the policy weighs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnEvent {
    /// The turn's id (its first wamid).
    pub turn_id: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub phone_number_id: String,
    /// The user's words in the turn, joined.
    pub text: String,
    /// The conversation's language as the agent decided it (`es`, `pt`...).
    pub language: String,
    /// The bot answered with its fallback (did not understand).
    #[serde(default)]
    pub fallback: bool,
    /// The playbook intent the turn matched, if any.
    #[serde(default)]
    pub intent: Option<String>,
    pub at_ms: i64,
}

/// A user message that arrived while people have the conversation: it goes
/// to them, not to the bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMessageEvent {
    pub wamid: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub phone_number_id: String,
    /// Meta's message type (`text`, `image`...).
    pub message_type: String,
    pub text: String,
    pub at_ms: i64,
}

/// "Has a person answered yet?", checked when the profile's limit is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoHumanCheck {
    /// The escalation it belongs to: a check of an older one does nothing.
    pub escalation_id: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub phone_number_id: String,
}

/// The body of an escalation-queue (or timer-queue) message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EscalationMessage {
    /// From the playbook or the `handoff_to_human` tool. Its body has no
    /// `kind` (the agent sends it as is); it reads either way.
    Handoff(HandoffRequest),
    Turn(TurnEvent),
    UserMessage(UserMessageEvent),
    NoHumanCheck(NoHumanCheck),
}

/// The tagged form, for reading.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Tagged {
    Handoff(HandoffRequest),
    Turn(TurnEvent),
    UserMessage(UserMessageEvent),
    NoHumanCheck(NoHumanCheck),
}

impl EscalationMessage {
    /// Reads a queue body: a tagged message, or an untagged
    /// [`HandoffRequest`] as the agent sends it. Anything else is
    /// `Error::Invalid` (it will never parse: the queue dead-letters it).
    pub fn parse(body: &str) -> Result<Self> {
        if body.len() > MAX_EVENT_BYTES {
            return Err(Error::Invalid(format!(
                "escalation message of {} bytes (at most {MAX_EVENT_BYTES})",
                body.len()
            )));
        }
        let value: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| Error::Invalid(format!("escalation message is not JSON: {e}")))?;
        let tagged = value.get("kind").is_some();
        let parsed = if tagged {
            serde_json::from_value::<Tagged>(value).map(|t| match t {
                Tagged::Handoff(h) => EscalationMessage::Handoff(h),
                Tagged::Turn(t) => EscalationMessage::Turn(t),
                Tagged::UserMessage(m) => EscalationMessage::UserMessage(m),
                Tagged::NoHumanCheck(c) => EscalationMessage::NoHumanCheck(c),
            })
        } else {
            serde_json::from_value::<HandoffRequest>(value).map(EscalationMessage::Handoff)
        };
        parsed.map_err(|e| Error::Invalid(format!("not an escalation message: {e}")))
    }

    pub fn to_body(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    pub fn user_id(&self) -> &UserId {
        match self {
            EscalationMessage::Handoff(h) => &h.user_id,
            EscalationMessage::Turn(t) => &t.user_id,
            EscalationMessage::UserMessage(m) => &m.user_id,
            EscalationMessage::NoHumanCheck(c) => &c.user_id,
        }
    }

    /// The FIFO group: the same as the agent's (business number and user),
    /// so one user's escalation messages are handled in order.
    pub fn group_id(&self) -> String {
        let number = match self {
            EscalationMessage::Handoff(h) => &h.phone_number_id,
            EscalationMessage::Turn(t) => &t.phone_number_id,
            EscalationMessage::UserMessage(m) => &m.phone_number_id,
            EscalationMessage::NoHumanCheck(c) => &c.phone_number_id,
        };
        format!("{number}:{}", self.user_id())
    }

    /// The queue's dedup id: a resend of the same thing is dropped.
    pub fn dedup_id(&self) -> String {
        match self {
            EscalationMessage::Handoff(h) => h.id.clone(),
            EscalationMessage::Turn(t) => format!("{}:turn", t.turn_id),
            EscalationMessage::UserMessage(m) => format!("{}:to-humans", m.wamid),
            EscalationMessage::NoHumanCheck(c) => format!("{}:no-human", c.escalation_id),
        }
    }
}

/// An escalation that people have not closed yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenEscalation {
    /// `{turn_id}:handoff` (agent) or `{turn_id}:policy`.
    pub id: String,
    pub reasons: Vec<Reason>,
    pub opened_at_ms: i64,
    /// A person answered (desk or admin API).
    #[serde(default)]
    pub human_joined: bool,
    /// The user was told nobody is free and offered a call-back.
    #[serde(default)]
    pub no_human_told: bool,
}

/// What the escalation function keeps per conversation. Written only by a
/// conditional write on its version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EscalationRecord {
    /// The policy's streaks and last decision.
    pub policy: EscalationState,
    /// The conversation in the help desk, once there is one.
    pub desk: Option<DeskRef>,
    pub open: Option<OpenEscalation>,
}

/// A decision of the policy on one turn, kept for the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub turn_id: String,
    pub decision: Decision,
    /// The sentiment label and negative score, when known.
    pub sentiment: Option<String>,
    pub negative: Option<f32>,
    pub at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wa() -> UserId {
        UserId::parse("5491155551234").expect("wa id")
    }

    #[test]
    fn an_agents_handoff_request_reads_untagged() {
        let body = r#"{"id":"wamid.A:handoff","wa_id":"5491155551234","phone_number_id":"111","reason":"angry","source":"tool","created_at_ms":1}"#;
        match EscalationMessage::parse(body).expect("parses") {
            EscalationMessage::Handoff(h) => {
                assert_eq!(h.id, "wamid.A:handoff");
                assert_eq!(h.source, "tool");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let messages = vec![
            EscalationMessage::Turn(TurnEvent {
                turn_id: "wamid.T".into(),
                user_id: wa(),
                phone_number_id: "111".into(),
                text: "hola".into(),
                language: "es".into(),
                fallback: true,
                intent: Some("prices".into()),
                at_ms: 5,
            }),
            EscalationMessage::UserMessage(UserMessageEvent {
                wamid: "wamid.U".into(),
                user_id: wa(),
                phone_number_id: "111".into(),
                message_type: "text".into(),
                text: "sigo esperando".into(),
                at_ms: 6,
            }),
            EscalationMessage::NoHumanCheck(NoHumanCheck {
                escalation_id: "wamid.T:policy".into(),
                user_id: wa(),
                phone_number_id: "111".into(),
            }),
            EscalationMessage::Handoff(HandoffRequest {
                id: "x:handoff".into(),
                user_id: wa(),
                phone_number_id: "111".into(),
                reason: "r".into(),
                source: "tool".into(),
                created_at_ms: 1,
            }),
        ];
        for m in messages {
            let body = m.to_body().expect("serialises");
            assert_eq!(EscalationMessage::parse(&body).expect("parses"), m);
            assert_eq!(m.group_id(), "111:5491155551234");
        }
    }

    #[test]
    fn bad_bodies_are_invalid_not_panics() {
        for body in [
            "",
            "null",
            "[]",
            "{}",
            r#"{"kind":"turn"}"#,
            r#"{"kind":"nope","wa_id":"5491155551234"}"#,
            r#"{"kind":"turn","turn_id":"t","wa_id":"12","phone_number_id":"1","text":"","language":"es","at_ms":1}"#,
        ] {
            assert!(
                matches!(EscalationMessage::parse(body), Err(Error::Invalid(_))),
                "{body:?}"
            );
        }
        let big = format!(
            r#"{{"kind":"turn","text":"{}"}}"#,
            "a".repeat(MAX_EVENT_BYTES)
        );
        assert!(matches!(
            EscalationMessage::parse(&big),
            Err(Error::Invalid(_))
        ));
    }
}
