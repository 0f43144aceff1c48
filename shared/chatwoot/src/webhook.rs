//! Chatwoot webhook payloads (account, inbox or agent-bot webhooks): the
//! fields Charla acts on, typed; everything else kept as JSON. Chatwoot's
//! payloads differ between versions and event kinds, so a field of an
//! unexpected type reads as absent rather than failing the whole payload.
//!
//! What matters to the hand-off:
//! - `message_created`, `message_type: outgoing`, not `private`: a human
//!   agent answered; the text goes to the user on WhatsApp;
//! - `message_created` private notes and `incoming` messages (the ones
//!   Charla posts itself): nothing to do;
//! - `conversation_status_changed` to `resolved` (or the older
//!   `conversation_resolved`): people are done; the bot takes over again.
//!
//! The webhook URL carries `?token=...`; [`check_webhook_token`] compares it
//! in constant time.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use domain::conversation::UserId;
use domain::error::{Error, Result};
use domain::signature::secrets_equal;

/// Reads `T`, or its default when the JSON holds something else there.
fn lenient<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    let v = Value::deserialize(d)?;
    Ok(serde_json::from_value(v).unwrap_or_default())
}

/// An id as Chatwoot sends it: a number, or a number in a string (older
/// payloads and the docs' samples).
fn lenient_id<'de, D>(d: D) -> std::result::Result<Option<u64>, D::Error>
where
    D: Deserializer<'de>,
{
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A webhook payload. For message events the top level is the message; for
/// conversation events it is the conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookPayload {
    #[serde(default, deserialize_with = "lenient")]
    pub event: String,
    /// The message's id (message events) or the conversation's (conversation
    /// events).
    #[serde(default, deserialize_with = "lenient_id")]
    pub id: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    pub content: Option<String>,
    /// `incoming`, `outgoing`, `activity`, `template`.
    #[serde(default, deserialize_with = "lenient")]
    pub message_type: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub private: bool,
    /// Conversation events: `open`, `pending`, `resolved`, `snoozed`.
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub sender: Option<Sender>,
    #[serde(default, deserialize_with = "lenient")]
    pub conversation: Option<WebhookConversation>,
    /// Conversation events: the contact is `meta.sender`.
    #[serde(default, deserialize_with = "lenient")]
    pub meta: Option<ConversationMeta>,
    /// Conversation events: when it changed (seconds).
    #[serde(default, deserialize_with = "lenient")]
    pub timestamp: Option<i64>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sender {
    #[serde(default, deserialize_with = "lenient_id")]
    pub id: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    pub name: Option<String>,
    /// `user` (an agent), `contact`, `agent_bot`.
    #[serde(default, rename = "type", deserialize_with = "lenient")]
    pub kind: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookConversation {
    /// The display id: the one in the dashboard and the API paths.
    #[serde(default, deserialize_with = "lenient_id")]
    pub id: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient_id")]
    pub inbox_id: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    pub meta: Option<ConversationMeta>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationMeta {
    /// The contact.
    #[serde(default, deserialize_with = "lenient")]
    pub sender: Option<Contact>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    #[serde(default, deserialize_with = "lenient_id")]
    pub id: Option<u64>,
    /// Charla sets it to the user's wa_id when it creates the contact.
    #[serde(default, deserialize_with = "lenient")]
    pub identifier: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub phone_number: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Contact {
    /// The WhatsApp user: the identifier if it is one, else the phone number.
    pub fn user_id(&self) -> Option<UserId> {
        [&self.identifier, &self.phone_number]
            .into_iter()
            .flatten()
            .find_map(|s| UserId::parse(s).ok())
    }
}

/// What a webhook means for Charla.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatwootEvent {
    /// A human agent's public reply: send it to the user.
    AgentReply {
        message_id: u64,
        conversation_id: u64,
        user_id: Option<UserId>,
        content: String,
    },
    /// An agent's private note: for people only.
    PrivateNote {
        message_id: u64,
        conversation_id: u64,
    },
    /// A contact message: the ones Charla posts itself come back this way.
    ContactMessage {
        message_id: u64,
        conversation_id: u64,
    },
    /// People are done: the bot takes over again.
    Resolved {
        conversation_id: u64,
        user_id: Option<UserId>,
    },
    /// Another status change (open, pending, snoozed).
    StatusChanged {
        conversation_id: u64,
        status: String,
    },
    /// Anything else (other events, activity messages, payloads without
    /// the ids to act on).
    Ignored { event: String },
}

impl WebhookPayload {
    /// Reads a webhook body. Fails only on what is not a JSON object.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let value: Value = serde_json::from_slice(body)?;
        if !value.is_object() {
            return Err(Error::Invalid("chatwoot webhook: not a JSON object".into()));
        }
        Ok(serde_json::from_value(value)?)
    }

    /// The contact: `conversation.meta.sender` (message events) or
    /// `meta.sender` (conversation events).
    pub fn contact(&self) -> Option<&Contact> {
        self.conversation
            .as_ref()
            .and_then(|c| c.meta.as_ref())
            .and_then(|m| m.sender.as_ref())
            .or_else(|| self.meta.as_ref().and_then(|m| m.sender.as_ref()))
    }

    fn conversation_id(&self) -> Option<u64> {
        match self.event.as_str() {
            "message_created" | "message_updated" => self.conversation.as_ref().and_then(|c| c.id),
            _ => self.id,
        }
    }

    fn conversation_status(&self) -> Option<&str> {
        self.status
            .as_deref()
            .or_else(|| self.conversation.as_ref().and_then(|c| c.status.as_deref()))
    }

    /// What this payload asks Charla to do.
    pub fn event(&self) -> ChatwootEvent {
        let ignored = || ChatwootEvent::Ignored {
            event: self.event.clone(),
        };
        let Some(conversation_id) = self.conversation_id() else {
            return ignored();
        };
        let user_id = || self.contact().and_then(Contact::user_id);
        match self.event.as_str() {
            "message_created" => {
                let Some(message_id) = self.id else {
                    return ignored();
                };
                match self.message_type.as_deref() {
                    Some("outgoing") if self.private => ChatwootEvent::PrivateNote {
                        message_id,
                        conversation_id,
                    },
                    // A bot's own messages are not a person answering.
                    Some("outgoing")
                        if self.sender.as_ref().and_then(|s| s.kind.as_deref())
                            != Some("agent_bot") =>
                    {
                        match self.content.as_deref().map(str::trim) {
                            Some(text) if !text.is_empty() => ChatwootEvent::AgentReply {
                                message_id,
                                conversation_id,
                                user_id: user_id(),
                                content: text.to_string(),
                            },
                            // Attachments only: not sent on (yet).
                            _ => ignored(),
                        }
                    }
                    Some("incoming") => ChatwootEvent::ContactMessage {
                        message_id,
                        conversation_id,
                    },
                    _ => ignored(),
                }
            }
            "conversation_status_changed" | "conversation_resolved" => {
                match self.conversation_status() {
                    Some("resolved") => ChatwootEvent::Resolved {
                        conversation_id,
                        user_id: user_id(),
                    },
                    Some(status) => ChatwootEvent::StatusChanged {
                        conversation_id,
                        status: status.to_string(),
                    },
                    None => ignored(),
                }
            }
            _ => ignored(),
        }
    }

    /// A key that is the same when Chatwoot delivers the same thing twice:
    /// the message id for message events; the conversation, its status and
    /// the change's time for status events.
    pub fn dedup_key(&self) -> Option<String> {
        match self.event.as_str() {
            "message_created" => self.id.map(|id| format!("chatwoot:message:{id}")),
            "conversation_status_changed" | "conversation_resolved" => {
                let id = self.id?;
                let status = self.conversation_status().unwrap_or("");
                let at = self.timestamp.unwrap_or(0);
                Some(format!("chatwoot:status:{id}:{status}:{at}"))
            }
            _ => None,
        }
    }
}

/// Checks the `?token=` of a webhook call in constant time. Refuses when no
/// token is configured (an empty one counts as none) or none was given.
pub fn check_webhook_token(expected: Option<&str>, given: Option<&str>) -> Result<()> {
    let expected = expected
        .filter(|t| !t.is_empty())
        .ok_or(Error::Unauthorized("chatwoot webhook token not configured"))?;
    let given = given.ok_or(Error::Unauthorized("chatwoot webhook token missing"))?;
    if secrets_equal(expected.as_bytes(), given.as_bytes()) {
        Ok(())
    } else {
        Err(Error::Unauthorized("chatwoot webhook token does not match"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OUTGOING: &str = include_str!("../../../events/chatwoot/message_created_outgoing.json");
    const PRIVATE: &str =
        include_str!("../../../events/chatwoot/message_created_private_note.json");
    const INCOMING: &str = include_str!("../../../events/chatwoot/message_created_incoming.json");
    const RESOLVED: &str =
        include_str!("../../../events/chatwoot/conversation_status_changed_resolved.json");
    const DUPLICATE: &str =
        include_str!("../../../events/chatwoot/message_created_outgoing_duplicate.json");

    fn parse(s: &str) -> WebhookPayload {
        WebhookPayload::parse(s.as_bytes()).expect("parses")
    }

    fn wa() -> UserId {
        UserId::parse("5491155551234").expect("wa id")
    }

    #[test]
    fn an_agents_public_reply_goes_to_the_user() {
        let p = parse(OUTGOING);
        assert_eq!(
            p.event(),
            ChatwootEvent::AgentReply {
                message_id: 2041,
                conversation_id: 57,
                user_id: Some(wa()),
                content: "Hola Lucía, soy Marta. Ya veo el doble cobro, lo revierto hoy.".into(),
            }
        );
        // Unknown fields are kept, at every level.
        assert!(p.other.contains_key("account"));
        assert!(p.other.contains_key("content_attributes"));
        let conversation = p.conversation.as_ref().expect("conversation");
        assert!(conversation.other.contains_key("contact_inbox"));
        let back = serde_json::to_value(&p).expect("json");
        assert_eq!(back["account"]["id"], 3);
    }

    #[test]
    fn a_private_note_stays_with_people() {
        assert_eq!(
            parse(PRIVATE).event(),
            ChatwootEvent::PrivateNote {
                message_id: 2040,
                conversation_id: 57,
            }
        );
    }

    #[test]
    fn an_incoming_message_is_our_own_echo() {
        assert_eq!(
            parse(INCOMING).event(),
            ChatwootEvent::ContactMessage {
                message_id: 2042,
                conversation_id: 57,
            }
        );
    }

    #[test]
    fn resolved_hands_the_conversation_back() {
        let p = parse(RESOLVED);
        assert_eq!(
            p.event(),
            ChatwootEvent::Resolved {
                conversation_id: 57,
                user_id: Some(wa()),
            }
        );
        assert_eq!(
            p.dedup_key().as_deref(),
            Some("chatwoot:status:57:resolved:1763891400")
        );
    }

    #[test]
    fn a_redelivered_message_has_the_same_key() {
        let a = parse(OUTGOING);
        let b = parse(DUPLICATE);
        assert_ne!(a, b, "the samples differ in delivery details");
        assert_eq!(a.dedup_key(), b.dedup_key());
        assert_eq!(a.dedup_key().as_deref(), Some("chatwoot:message:2041"));
        assert_eq!(a.event(), b.event());
    }

    #[test]
    fn odd_shapes_read_as_absent_not_as_errors() {
        let p = parse(
            r#"{"event":"message_created","id":"2041","message_type":1,"private":"yes",
                "conversation":{"id":"57","meta":{"sender":{"identifier":"+5491155551234"}}},
                "content":"hola","sender":[]}"#,
        );
        assert_eq!(p.id, Some(2041));
        assert_eq!(p.message_type, None);
        assert!(!p.private);
        assert_eq!(
            p.event(),
            ChatwootEvent::Ignored {
                event: "message_created".into()
            }
        );
        let p = parse(
            r#"{"event":"message_created","id":1,"message_type":"outgoing","content":"hi","conversation":{"id":2}}"#,
        );
        assert_eq!(
            p.event(),
            ChatwootEvent::AgentReply {
                message_id: 1,
                conversation_id: 2,
                user_id: None,
                content: "hi".into()
            }
        );
        let bot = parse(
            r#"{"event":"message_created","id":1,"message_type":"outgoing","content":"hi","conversation":{"id":2},"sender":{"type":"agent_bot"}}"#,
        );
        assert!(matches!(bot.event(), ChatwootEvent::Ignored { .. }));
        assert!(matches!(parse("{}").event(), ChatwootEvent::Ignored { .. }));
        for bad in ["[]", "\"x\"", "nope", ""] {
            assert!(
                matches!(
                    WebhookPayload::parse(bad.as_bytes()),
                    Err(Error::Invalid(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_token_is_checked_and_none_configured_refuses() {
        assert!(check_webhook_token(Some("s3cret"), Some("s3cret")).is_ok());
        for (expected, given) in [
            (Some("s3cret"), Some("s3cret ")),
            (Some("s3cret"), None),
            (None, Some("s3cret")),
            (Some(""), Some("")),
        ] {
            let err = check_webhook_token(expected, given).expect_err("refused");
            assert_eq!(err.status_code(), 401);
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null)),
            prop_oneof![
                Just("message_created".to_string()),
                Just("conversation_status_changed".to_string()),
                Just("outgoing".to_string()),
                Just("resolved".to_string()),
                "\\PC{0,12}",
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let keys = prop_oneof![
                Just("event".to_string()),
                Just("id".to_string()),
                Just("message_type".to_string()),
                Just("private".to_string()),
                Just("conversation".to_string()),
                Just("meta".to_string()),
                Just("sender".to_string()),
                Just("status".to_string()),
                Just("content".to_string()),
                Just("identifier".to_string()),
                "[a-z_]{1,8}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(keys, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn random_json_never_panics(v in json_value()) {
            let body = serde_json::to_vec(&v).expect("json");
            if let Ok(p) = WebhookPayload::parse(&body) {
                let _ = p.event();
                let _ = p.dedup_key();
            }
        }

        #[test]
        fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = WebhookPayload::parse(&body);
        }
    }
}
