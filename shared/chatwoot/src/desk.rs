//! [`HumanDesk`] on Chatwoot's application API, in an API-channel inbox.
//!
//! A hand-off, step by step (paths under `{base}/api/v1/accounts/{account}`):
//! 1. `GET contacts/search?q={wa_id}`: the contact whose `identifier` is the
//!    wa_id, or whose `phone_number` is `+{wa_id}`;
//! 2. none: `POST contacts` with `inbox_id`, `name`, `phone_number`
//!    (`+E164`) and `identifier` (the wa_id); the answer carries the contact
//!    and its `contact_inbox.source_id`. A 422 (another worker created it a
//!    moment ago) searches again;
//! 3. a found contact without a contact inbox in ours: `POST
//!    contacts/{id}/contact_inboxes`;
//! 4. `GET contacts/{id}/conversations`: one in our inbox that is not
//!    resolved is reused (a retried hand-off, or people still on it);
//!    otherwise `POST conversations` with `source_id`, `inbox_id`,
//!    `contact_id`, `status: open`;
//! 5. `POST conversations/{id}/messages`: the reasons and the transcript as
//!    a private note (`message_type: outgoing`, `private: true`), which the
//!    user never sees;
//! 6. `POST conversations/{id}/toggle_status` with `{"status":"open"}`.
//!
//! Later user messages: `POST conversations/{id}/messages` with
//! `message_type: incoming`.
//!
//! Contacts and conversations are found again instead of duplicated (the
//! contact lookup is in `contacts.rs`; one call, its retries and its errors
//! in `api.rs`).

use std::time::Duration;

use async_trait::async_trait;
use http_client::HttpPolicy;
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::api::{id_of, unexpected, ChatwootApi};
use domain::error::{Error, Result};
use domain::escalation::{Reason, TranscriptLine};
use domain::ports::{DeskRef, HumanDesk};
use domain::{mask, Conversation};

pub use crate::note::{handoff_note, MAX_NOTE_CHARS};

/// The [`HumanDesk`] on one API-channel inbox.
pub struct ChatwootDesk {
    pub(crate) api: ChatwootApi,
    pub(crate) inbox_id: u64,
}

impl std::fmt::Debug for ChatwootDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatwootDesk")
            .field("api", &self.api)
            .field("inbox_id", &self.inbox_id)
            .finish()
    }
}

impl ChatwootDesk {
    /// `max_elapsed` bounds one request, retries included; a hand-off makes
    /// up to seven.
    pub const DEFAULT_POLICY: HttpPolicy = HttpPolicy {
        connect_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(10),
        max_attempts: 3,
        min_delay: Duration::from_millis(300),
        max_delay: Duration::from_secs(3),
        max_elapsed: Duration::from_secs(25),
    };

    /// `base_url` is the Chatwoot installation (`https://app.chatwoot.com`);
    /// `inbox_id` an API-channel inbox of `account_id`.
    pub fn new(
        base_url: &str,
        account_id: u64,
        inbox_id: u64,
        api_token: SecretString,
        policy: HttpPolicy,
    ) -> Result<Self> {
        let trimmed = base_url.trim();
        let base = Url::parse(trimmed)
            .map_err(|e| Error::Config(format!("CHATWOOT_URL {trimmed:?}: {e}")))?;
        if !matches!(base.scheme(), "https" | "http")
            || base.cannot_be_a_base()
            || base.query().is_some()
        {
            return Err(Error::Config(format!(
                "CHATWOOT_URL must be an http(s) URL without a query, got {trimmed:?}"
            )));
        }
        if account_id == 0 || inbox_id == 0 {
            return Err(Error::Config(
                "CHATWOOT_ACCOUNT_ID and CHATWOOT_INBOX_ID must be positive".into(),
            ));
        }
        if api_token.expose_secret().trim().is_empty() {
            return Err(Error::Config("CHATWOOT_API_TOKEN is empty".into()));
        }
        Ok(ChatwootDesk {
            api: ChatwootApi::new(base, account_id, api_token, policy)?,
            inbox_id,
        })
    }

    /// A conversation of the contact in our inbox that people have not
    /// resolved yet.
    async fn open_conversation(&self, contact_id: u64) -> Result<Option<u64>> {
        let value = self
            .api
            .call_ok(
                "list contact conversations",
                Method::GET,
                self.api
                    .url(&["contacts", &contact_id.to_string(), "conversations"]),
                None,
            )
            .await?;
        Ok(value["payload"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| id_of(&c["inbox_id"]) == Some(self.inbox_id))
            .find(|c| c["status"].as_str() != Some("resolved"))
            .and_then(|c| id_of(&c["id"])))
    }

    async fn post_message(
        &self,
        conversation_id: u64,
        body: &Value,
        op: &'static str,
    ) -> Result<()> {
        self.api
            .call_ok(
                op,
                Method::POST,
                self.api
                    .url(&["conversations", &conversation_id.to_string(), "messages"]),
                Some(body),
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl HumanDesk for ChatwootDesk {
    async fn open_handoff(
        &self,
        conversation: &Conversation,
        transcript: &[TranscriptLine],
        reasons: &[Reason],
    ) -> Result<DeskRef> {
        let (contact_id, source_id) = self.contact(conversation).await?;
        let conversation_id = match self.open_conversation(contact_id).await? {
            Some(id) => id,
            None => {
                let body = json!({
                    "source_id": source_id,
                    "inbox_id": self.inbox_id,
                    "contact_id": contact_id,
                    "status": "open",
                });
                let value = self
                    .api
                    .call_ok(
                        "create conversation",
                        Method::POST,
                        self.api.url(&["conversations"]),
                        Some(&body),
                    )
                    .await?;
                id_of(&value["id"])
                    .ok_or_else(|| unexpected("create conversation", "no conversation id"))?
            }
        };
        let note = json!({
            "content": handoff_note(reasons, transcript),
            "message_type": "outgoing",
            "private": true,
        });
        self.post_message(conversation_id, &note, "post hand-off note")
            .await?;
        self.api
            .call_ok(
                "open conversation",
                Method::POST,
                self.api.url(&[
                    "conversations",
                    &conversation_id.to_string(),
                    "toggle_status",
                ]),
                Some(&json!({ "status": "open" })),
            )
            .await?;
        tracing::info!(
            conversation_id,
            contact_id,
            user = %mask(conversation.user_id.as_str()),
            "hand-off opened in chatwoot"
        );
        Ok(DeskRef {
            conversation_id,
            contact_id,
        })
    }

    async fn post_incoming(&self, desk: &DeskRef, text: &str) -> Result<()> {
        if text.trim().is_empty() {
            return Ok(());
        }
        let body = json!({
            "content": text,
            "message_type": "incoming",
            "private": false,
        });
        self.post_message(desk.conversation_id, &body, "post user message")
            .await
    }

    async fn resolve(&self, desk: &DeskRef, note: &str) -> Result<()> {
        let body = json!({
            "content": note,
            "message_type": "outgoing",
            "private": true,
        });
        self.post_message(desk.conversation_id, &body, "post hand-back note")
            .await?;
        self.api
            .call_ok(
                "resolve conversation",
                Method::POST,
                self.api.url(&[
                    "conversations",
                    &desk.conversation_id.to_string(),
                    "toggle_status",
                ]),
                Some(&json!({ "status": "resolved" })),
            )
            .await?;
        tracing::info!(
            conversation_id = desk.conversation_id,
            "chatwoot conversation resolved"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use wiremock::matchers::{body_json, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn a_new_user_gets_a_contact_a_conversation_a_private_note_and_is_opened() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/search")))
            .and(query_param("q", "5491155551234"))
            .and(header("api_access_token", TOKEN))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "meta": { "count": 0 }, "payload": [] })),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p("/contacts")))
            .and(header("api_access_token", TOKEN))
            .and(body_json(json!({
                "inbox_id": 2,
                "name": "Lucía",
                "phone_number": "+5491155551234",
                "identifier": "5491155551234",
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "payload": {
                    "contact": { "id": 31, "identifier": "5491155551234", "contact_inboxes": [] },
                    "contact_inbox": { "source_id": "src-31", "inbox": { "id": 2 } }
                }
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/31/conversations")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "payload": [
                { "id": 12, "inbox_id": 2, "status": "resolved" },
                { "id": 13, "inbox_id": 9, "status": "open" }
            ] })),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p("/conversations")))
            .and(body_json(json!({
                "source_id": "src-31",
                "inbox_id": 2,
                "contact_id": 31,
                "status": "open",
            })))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "id": 57, "inbox_id": 2, "status": "open" })),
            )
            .expect(1)
            .mount(&server)
            .await;
        mount_note_and_open(&server, 57).await;

        let desk_ref = desk(&server)
            .open_handoff(&conversation(), &transcript(), &reasons())
            .await
            .expect("hand-off");
        assert_eq!(
            desk_ref,
            DeskRef {
                conversation_id: 57,
                contact_id: 31
            }
        );
        // The note is private and carries the reasons and the transcript.
        let requests = server.received_requests().await.expect("recorded");
        let note: Value = requests
            .iter()
            .find(|r| r.url.path().ends_with("/messages"))
            .map(|r| serde_json::from_slice(&r.body).expect("json"))
            .expect("note posted");
        assert_eq!(note["private"], true);
        let content = note["content"].as_str().expect("content");
        assert!(content.contains("legal keyword \"abogado\""), "{content}");
        assert!(
            content.contains("[user] me cobraron dos veces"),
            "{content}"
        );
        assert!(content.contains("[bot] Lo siento"), "{content}");
    }

    #[tokio::test]
    async fn a_user_message_is_posted_as_incoming() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(p("/conversations/57/messages")))
            .and(header("api_access_token", TOKEN))
            .and(body_json(json!({ "content": "y cuándo lo veo?", "message_type": "incoming", "private": false })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": 901 })))
            .expect(1)
            .mount(&server)
            .await;
        let d = desk(&server);
        let r = DeskRef {
            conversation_id: 57,
            contact_id: 31,
        };
        d.post_incoming(&r, "y cuándo lo veo?")
            .await
            .expect("posted");
        d.post_incoming(&r, "   ").await.expect("nothing to post");
    }

    #[tokio::test]
    async fn a_hand_back_elsewhere_leaves_a_private_note_and_resolves() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(p("/conversations/57/messages")))
            .and(header("api_access_token", TOKEN))
            .and(body_json(json!({ "content": "Handed back to the bot from the admin API.", "message_type": "outgoing", "private": true })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": 902 })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p("/conversations/57/toggle_status")))
            .and(header("api_access_token", TOKEN))
            .and(body_json(json!({ "status": "resolved" })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "meta": {}, "payload": {"success": true, "current_status": "resolved", "conversation_id": 57}
            })))
            .expect(1)
            .mount(&server)
            .await;
        desk(&server)
            .resolve(
                &DeskRef {
                    conversation_id: 57,
                    contact_id: 31,
                },
                "Handed back to the bot from the admin API.",
            )
            .await
            .expect("resolved");
    }

    #[test]
    fn bad_configuration_is_refused() {
        let token = || SecretString::from(TOKEN);
        for url in ["chatwoot.example.com", "ftp://x", "https://x/?a=1"] {
            let err = ChatwootDesk::new(url, 1, 1, token(), fast()).expect_err(url);
            assert!(matches!(err, Error::Config(_)), "{url}: {err:?}");
        }
        assert!(ChatwootDesk::new("https://x", 0, 1, token(), fast()).is_err());
        assert!(ChatwootDesk::new("https://x", 1, 0, token(), fast()).is_err());
        assert!(ChatwootDesk::new("https://x", 1, 1, SecretString::from(" "), fast()).is_err());
        let d =
            ChatwootDesk::new("https://cw.example.com/base/", 7, 1, token(), fast()).expect("desk");
        assert_eq!(
            d.api.url(&["conversations", "5", "messages"]).as_str(),
            "https://cw.example.com/base/api/v1/accounts/7/conversations/5/messages"
        );
    }
}
