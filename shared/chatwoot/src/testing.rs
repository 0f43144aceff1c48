//! What the desk's tests share: a [`ChatwootDesk`] on a local fake of
//! Chatwoot, a conversation to hand off, and the calls that end a hand-off.

use std::time::Duration;

use domain::escalation::{KeywordCategory, Reason, TranscriptLine};
use domain::{Conversation, ConversationState, UserId};
use http_client::HttpPolicy;
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::note::handoff_note;
use crate::ChatwootDesk;

pub(crate) const TOKEN: &str = "cw-test-token";
pub(crate) const ACCOUNTS: &str = "/api/v1/accounts/3";

pub(crate) fn fast() -> HttpPolicy {
    HttpPolicy {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        max_attempts: 3,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_elapsed: Duration::from_secs(20),
    }
}

pub(crate) fn desk(server: &MockServer) -> ChatwootDesk {
    ChatwootDesk::new(&server.uri(), 3, 2, SecretString::from(TOKEN), fast()).expect("desk")
}

pub(crate) fn conversation() -> Conversation {
    Conversation {
        user_id: UserId::parse("5491155551234").expect("wa id"),
        phone_number_id: "106540352242922".into(),
        contact_name: Some("Lucía".into()),
        state: ConversationState::PendingHuman,
        last_user_at_ms: 1,
        last_message_at_ms: 1,
        window_closed: false,
    }
}

pub(crate) fn transcript() -> Vec<TranscriptLine> {
    vec![
        TranscriptLine {
            from: "user".into(),
            text: "me cobraron dos veces".into(),
            at_ms: 1,
        },
        TranscriptLine {
            from: "bot".into(),
            text: "Lo siento, ¿me pasás el número de factura?".into(),
            at_ms: 2,
        },
    ]
}

pub(crate) fn reasons() -> Vec<Reason> {
    vec![Reason::Keyword {
        category: KeywordCategory::Legal,
        word: "abogado".into(),
        language: "es".into(),
    }]
}

pub(crate) fn p(s: &str) -> String {
    format!("{ACCOUNTS}{s}")
}

pub(crate) async fn mount_note_and_open(server: &MockServer, conversation_id: u64) {
    let expected_note = json!({
        "content": handoff_note(&reasons(), &transcript()),
        "message_type": "outgoing",
        "private": true,
    });
    Mock::given(method("POST"))
        .and(path(p(&format!(
            "/conversations/{conversation_id}/messages"
        ))))
        .and(header("api_access_token", TOKEN))
        .and(body_json(expected_note))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "id": 900, "private": true })),
        )
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(p(&format!("/conversations/{conversation_id}/toggle_status"))))
        .and(header("api_access_token", TOKEN))
        .and(body_json(json!({ "status": "open" })))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "payload": { "success": true, "current_status": "open", "conversation_id": conversation_id } }),
        ))
        .expect(1)
        .mount(server)
        .await;
}
