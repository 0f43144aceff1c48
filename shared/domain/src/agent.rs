//! What the agent's tools find and record: knowledge passages, customers,
//! leads, appointments, call and hand-off requests, and the conversation's
//! memory. Each record carries an idempotency key derived from the turn, so
//! a turn retried after a crash records nothing twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::chat::Usage;
use super::conversation::UserId;

/// A passage from the knowledge base, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub text: String,
    /// A file name, a URL, a document title: what the user can be told.
    pub source: String,
    /// Higher is better; comparable only within one search.
    pub score: f32,
}

/// A customer from the CRM (or the local CSV): the fields as the source
/// names them. `id` is the national ID or account number looked up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    /// Idempotency key: `{turn_id}:lead`.
    pub id: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub name: String,
    pub interest: String,
    pub notes: Option<String>,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    /// Idempotency key: `{turn_id}:appointment`.
    pub id: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    /// Start of the slot, UTC ms. One appointment per slot start.
    pub start_ms: i64,
    pub end_ms: i64,
    pub topic: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookOutcome {
    Booked,
    /// This appointment (same id) holds the slot already: a retry.
    AlreadyBooked,
    /// Someone else holds the slot.
    Taken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallRequestState {
    Requested,
    Scheduled,
    Calling,
    Done,
    Failed,
}

impl CallRequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallRequestState::Requested => "requested",
            CallRequestState::Scheduled => "scheduled",
            CallRequestState::Calling => "calling",
            CallRequestState::Done => "done",
            CallRequestState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "requested" => CallRequestState::Requested,
            "scheduled" => CallRequestState::Scheduled,
            "calling" => CallRequestState::Calling,
            "done" => CallRequestState::Done,
            "failed" => CallRequestState::Failed,
            _ => return None,
        })
    }
}

/// A user asked to be called (or the agent judged a call is the next step).
/// The body of a call-queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRequest {
    /// Idempotency key: `{turn_id}:call`.
    pub id: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub phone_number_id: String,
    pub reason: String,
    /// When the user asked to be called, UTC ms; `None`: as soon as possible.
    pub when_ms: Option<i64>,
    pub language: String,
    pub state: CallRequestState,
    pub created_at_ms: i64,
    /// The number the user gave in the chat to be called on: a user known
    /// only by username has none on record. `None`: the user's own number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<UserId>,
    /// A campaign's call (not asked for in a conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<crate::campaign::CampaignCall>,
}

/// The conversation goes to people. The body of an escalation-queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRequest {
    /// Idempotency key: `{turn_id}:handoff`.
    pub id: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub phone_number_id: String,
    pub reason: String,
    /// `playbook`, `tool`, later `policy`.
    pub source: String,
    pub created_at_ms: i64,
}

/// What the agent remembers of a long conversation beyond the recent turns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// A rolling summary of everything before `summarized_until_ms`.
    pub summary: String,
    pub summarized_until_ms: i64,
    /// The user's language as last detected (`es`, `en`, `pt`, ...).
    pub language: Option<String>,
}

/// What one turn cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnUsage {
    pub turn_id: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub model: String,
    pub usage: Usage,
    pub model_calls: u32,
    pub tool_calls: u32,
    pub at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_request_states_round_trip_as_strings() {
        let strings = ["requested", "scheduled", "calling", "done", "failed"];
        for (state, expected) in [
            CallRequestState::Requested,
            CallRequestState::Scheduled,
            CallRequestState::Calling,
            CallRequestState::Done,
            CallRequestState::Failed,
        ]
        .into_iter()
        .zip(strings)
        {
            assert_eq!(state.as_str(), expected);
            assert_eq!(CallRequestState::parse(state.as_str()), Some(state));
            // The stores' strings are the serde names.
            assert_eq!(
                serde_json::to_value(state).ok(),
                Some(serde_json::Value::from(expected))
            );
        }
        assert_eq!(CallRequestState::parse("Requested"), None);
    }
}
