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
//! Header `api_access_token` on every call. Like the other HTTP adapters:
//! one client, timeouts, and retries with backoff and jitter for 429, 5xx,
//! connect errors and timeouts only. Chatwoot has no idempotency keys, so a
//! POST retried after a 5xx that had in fact succeeded may post a message
//! twice; contacts and conversations are found again instead of duplicated.

use http_client as common;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use domain::error::{Error, Result};
use domain::escalation::{transcript_text, Reason, TranscriptLine};
use domain::ports::{DeskRef, HumanDesk};
use domain::{mask, Conversation};

const SERVICE: &str = "chatwoot";

/// Longest note posted; a longer transcript keeps its last lines. Chatwoot
/// accepts far more, but agents read the top and the end.
pub const MAX_NOTE_CHARS: usize = 20_000;

/// Timeouts and retries of a [`ChatwootDesk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatwootSettings {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Tries per request, the first included (at least 1).
    pub max_attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// One request, retries included. A hand-off makes up to seven.
    pub max_elapsed: Duration,
}

impl Default for ChatwootSettings {
    fn default() -> Self {
        ChatwootSettings {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_attempts: 3,
            min_delay: Duration::from_millis(300),
            max_delay: Duration::from_secs(3),
            max_elapsed: Duration::from_secs(25),
        }
    }
}

pub struct ChatwootDesk {
    http: reqwest::Client,
    /// `{base}/api/v1/accounts/{account}/`.
    account_url: Url,
    inbox_id: u64,
    api_token: SecretString,
    settings: ChatwootSettings,
}

impl std::fmt::Debug for ChatwootDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatwootDesk")
            .field("account_url", &self.account_url.as_str())
            .field("inbox_id", &self.inbox_id)
            .field("api_token", &"[redacted]")
            .field("settings", &self.settings)
            .finish()
    }
}

impl ChatwootDesk {
    /// `base_url` is the Chatwoot installation (`https://app.chatwoot.com`);
    /// `inbox_id` an API-channel inbox of `account_id`.
    pub fn new(
        base_url: &str,
        account_id: u64,
        inbox_id: u64,
        api_token: SecretString,
        settings: ChatwootSettings,
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
        let mut account_url = base;
        if let Ok(mut path) = account_url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "v1", "accounts", &account_id.to_string(), ""]);
        }
        let http = common::client(SERVICE, settings.connect_timeout, settings.request_timeout)?;
        Ok(ChatwootDesk {
            http,
            account_url,
            inbox_id,
            api_token,
            settings,
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.account_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn backoff(&self) -> ExponentialBuilder {
        let s = &self.settings;
        common::backoff(s.min_delay, s.max_delay, s.max_attempts, s.max_elapsed)
    }

    /// One API call, retried while it fails retryably. Returns the final
    /// status (any that is not 429 or 5xx) and the body as JSON (`Null` when
    /// empty or not JSON).
    async fn call(
        &self,
        op: &'static str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let attempt = || async {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header("api_access_token", self.api_token.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| common::transport_error(SERVICE, e))?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| common::transport_error(SERVICE, e))?;
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                return Err(status_error(op, status));
            }
            let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok((status, value))
        };
        let call = attempt
            .retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(Error::is_retryable)
            .notify(|e: &Error, delay: Duration| {
                tracing::warn!(op, error = %e, delay_ms = delay.as_millis() as u64, "chatwoot call failed, retrying");
            });
        match tokio::time::timeout(self.settings.max_elapsed, call).await {
            Ok(r) => r,
            Err(elapsed) => Err(Error::dependency(
                SERVICE,
                format!("{op}: gave up after {:?}", self.settings.max_elapsed),
                true,
                elapsed,
            )),
        }
    }

    /// A call that must answer 2xx.
    async fn call_ok(
        &self,
        op: &'static str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value> {
        let (status, value) = self.call(op, method, url, body).await?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(status_error(op, status))
        }
    }

    /// The contact of `wa_id` and its source id in our inbox, found or made.
    async fn contact(&self, conversation: &Conversation) -> Result<(u64, String)> {
        let wa_id = conversation.wa_id.as_str();
        if let Some(found) = self.find_contact(wa_id).await? {
            return self.with_source_id(found).await;
        }
        let name = conversation
            .contact_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("WhatsApp {}", mask(wa_id)));
        let body = json!({
            "inbox_id": self.inbox_id,
            "name": name,
            "phone_number": format!("+{wa_id}"),
            "identifier": wa_id,
        });
        let (status, value) = self
            .call(
                "create contact",
                Method::POST,
                self.url(&["contacts"]),
                Some(&body),
            )
            .await?;
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            // Taken: created by a concurrent hand-off. Find it again.
            let found = self
                .find_contact(wa_id)
                .await?
                .ok_or_else(|| status_error("create contact", status))?;
            return self.with_source_id(found).await;
        }
        if !status.is_success() {
            return Err(status_error("create contact", status));
        }
        let payload = &value["payload"];
        let contact_id = id_of(&payload["contact"]["id"])
            .ok_or_else(|| unexpected("create contact", "no contact id"))?;
        match payload["contact_inbox"]["source_id"].as_str() {
            Some(source) if !source.is_empty() => Ok((contact_id, source.to_string())),
            _ => self.with_source_id(payload["contact"].clone()).await,
        }
    }

    /// The contact (as JSON) whose identifier or phone number is `wa_id`.
    async fn find_contact(&self, wa_id: &str) -> Result<Option<Value>> {
        let mut url = self.url(&["contacts", "search"]);
        url.query_pairs_mut().append_pair("q", wa_id);
        let value = self
            .call_ok("search contacts", Method::GET, url, None)
            .await?;
        let phone = format!("+{wa_id}");
        let found = value["payload"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| {
                c["identifier"].as_str() == Some(wa_id)
                    || c["phone_number"].as_str() == Some(&phone)
            })
            .cloned();
        Ok(found)
    }

    /// The contact's id and its source id in our inbox, creating the contact
    /// inbox when the contact has none there.
    async fn with_source_id(&self, contact: Value) -> Result<(u64, String)> {
        let contact_id =
            id_of(&contact["id"]).ok_or_else(|| unexpected("search contacts", "no contact id"))?;
        let existing = contact["contact_inboxes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|ci| id_of(&ci["inbox"]["id"]) == Some(self.inbox_id))
            .and_then(|ci| ci["source_id"].as_str())
            .filter(|s| !s.is_empty());
        if let Some(source) = existing {
            return Ok((contact_id, source.to_string()));
        }
        let body = json!({ "inbox_id": self.inbox_id });
        let value = self
            .call_ok(
                "create contact inbox",
                Method::POST,
                self.url(&["contacts", &contact_id.to_string(), "contact_inboxes"]),
                Some(&body),
            )
            .await?;
        let source = value["source_id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| unexpected("create contact inbox", "no source_id"))?;
        Ok((contact_id, source.to_string()))
    }

    /// A conversation of the contact in our inbox that people have not
    /// resolved yet.
    async fn open_conversation(&self, contact_id: u64) -> Result<Option<u64>> {
        let value = self
            .call_ok(
                "list contact conversations",
                Method::GET,
                self.url(&["contacts", &contact_id.to_string(), "conversations"]),
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
        self.call_ok(
            op,
            Method::POST,
            self.url(&["conversations", &conversation_id.to_string(), "messages"]),
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
                    .call_ok(
                        "create conversation",
                        Method::POST,
                        self.url(&["conversations"]),
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
        self.call_ok(
            "open conversation",
            Method::POST,
            self.url(&[
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
            user = %mask(conversation.wa_id.as_str()),
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
        self.call_ok(
            "resolve conversation",
            Method::POST,
            self.url(&[
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

/// The private note: why, then the conversation so far (its last lines if
/// it is long).
pub fn handoff_note(reasons: &[Reason], transcript: &[TranscriptLine]) -> String {
    let mut head = String::from("Escalated by Charla.\nReasons:\n");
    for r in reasons {
        head.push_str(&format!("- {r}\n"));
    }
    head.push_str("\nConversation so far:\n");
    let budget = MAX_NOTE_CHARS.saturating_sub(head.chars().count());
    let mut kept: Vec<String> = Vec::new();
    let mut used = 0;
    for line in transcript.iter().rev() {
        let text = transcript_text(std::slice::from_ref(line));
        let n = text.chars().count();
        if used + n > budget {
            kept.push("[...]\n".to_string());
            break;
        }
        used += n;
        kept.push(text);
    }
    kept.reverse();
    head + &kept.concat()
}

/// Chatwoot ids are numbers (some payloads send them as strings).
fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn status_error(op: &'static str, status: StatusCode) -> Error {
    let retryable = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    Error::dependency(
        SERVICE,
        format!("{op}: HTTP {}", status.as_u16()),
        retryable,
        common::UnexpectedStatus(status.as_u16()),
    )
}

fn unexpected(op: &'static str, what: &'static str) -> Error {
    Error::dependency(SERVICE, format!("{op}: unexpected answer"), false, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::escalation::KeywordCategory;
    use domain::{ConversationState, WaId};
    use wiremock::matchers::{body_json, header, method, path, query_param};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    const TOKEN: &str = "cw-test-token";
    const ACCOUNTS: &str = "/api/v1/accounts/3";

    fn fast() -> ChatwootSettings {
        ChatwootSettings {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_attempts: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(20),
        }
    }

    fn desk(server: &MockServer) -> ChatwootDesk {
        ChatwootDesk::new(&server.uri(), 3, 2, SecretString::from(TOKEN), fast()).expect("desk")
    }

    fn conversation() -> Conversation {
        Conversation {
            wa_id: WaId::parse("5491155551234").expect("wa id"),
            phone_number_id: "106540352242922".into(),
            contact_name: Some("Lucía".into()),
            state: ConversationState::PendingHuman,
            last_user_at_ms: 1,
            last_message_at_ms: 1,
            window_closed: false,
        }
    }

    fn transcript() -> Vec<TranscriptLine> {
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

    fn reasons() -> Vec<Reason> {
        vec![Reason::Keyword {
            category: KeywordCategory::Legal,
            word: "abogado".into(),
            language: "es".into(),
        }]
    }

    fn p(s: &str) -> String {
        format!("{ACCOUNTS}{s}")
    }

    async fn mount_note_and_open(server: &MockServer, conversation_id: u64) {
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
    async fn a_known_contact_with_an_open_conversation_is_reused() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/search")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "payload": [
                { "id": 30, "identifier": "999", "phone_number": "+5491155559999" },
                { "id": 31, "identifier": null, "phone_number": "+5491155551234",
                  "contact_inboxes": [ { "source_id": "src-31", "inbox": { "id": 2 } } ] }
            ] })),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/31/conversations")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({ "payload": [ { "id": 57, "inbox_id": 2, "status": "pending" } ] }),
            ))
            .expect(1)
            .mount(&server)
            .await;
        mount_note_and_open(&server, 57).await;
        let desk_ref = desk(&server)
            .open_handoff(&conversation(), &transcript(), &reasons())
            .await
            .expect("hand-off");
        assert_eq!(desk_ref.conversation_id, 57);
        let requests = server.received_requests().await.expect("recorded");
        assert!(
            !requests
                .iter()
                .any(|r| r.url.path() == p("/contacts") || r.url.path() == p("/conversations")),
            "nothing created"
        );
    }

    #[tokio::test]
    async fn a_contact_without_our_inbox_gets_a_contact_inbox() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/search")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "payload": [
                { "id": 31, "identifier": "5491155551234",
                  "contact_inboxes": [ { "source_id": "other", "inbox": { "id": 9 } } ] }
            ] })),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p("/contacts/31/contact_inboxes")))
            .and(body_json(json!({ "inbox_id": 2 })))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "source_id": "src-new", "inbox": { "id": 2 } })),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/31/conversations")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "payload": [] })))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p("/conversations")))
            .and(body_json(json!({ "source_id": "src-new", "inbox_id": 2, "contact_id": 31, "status": "open" })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": 58 })))
            .expect(1)
            .mount(&server)
            .await;
        mount_note_and_open(&server, 58).await;
        let desk_ref = desk(&server)
            .open_handoff(&conversation(), &transcript(), &reasons())
            .await
            .expect("hand-off");
        assert_eq!(desk_ref.conversation_id, 58);
    }

    #[tokio::test]
    async fn a_contact_created_meanwhile_is_found_again_after_a_422() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/search")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "payload": [] })))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/search")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "payload": [
                { "id": 31, "identifier": "5491155551234",
                  "contact_inboxes": [ { "source_id": "src-31", "inbox": { "id": 2 } } ] }
            ] })),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p("/contacts")))
            .respond_with(
                ResponseTemplate::new(422)
                    .set_body_json(json!({ "message": "Phone number has already been taken" })),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p("/contacts/31/conversations")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({ "payload": [ { "id": 57, "inbox_id": 2, "status": "open" } ] }),
            ))
            .mount(&server)
            .await;
        mount_note_and_open(&server, 57).await;
        let desk_ref = desk(&server)
            .open_handoff(&conversation(), &transcript(), &reasons())
            .await
            .expect("hand-off");
        assert_eq!(desk_ref.contact_id, 31);
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

    #[tokio::test]
    async fn throttling_and_server_errors_are_retried() {
        for status in [429, 500, 503] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(status))
                .up_to_n_times(2)
                .expect(2)
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": 1 })))
                .expect(1)
                .mount(&server)
                .await;
            let r = DeskRef {
                conversation_id: 57,
                contact_id: 31,
            };
            desk(&server)
                .post_incoming(&r, "hola")
                .await
                .expect("posted after retries");
        }
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        for status in [400, 401, 403, 404, 422] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(status))
                .expect(1)
                .mount(&server)
                .await;
            let r = DeskRef {
                conversation_id: 57,
                contact_id: 31,
            };
            let err = desk(&server)
                .post_incoming(&r, "hola")
                .await
                .expect_err("refused");
            assert!(!err.is_retryable(), "{status}: {err:?}");
            assert!(err.to_string().contains(&status.to_string()), "{err}");
        }
    }

    #[tokio::test]
    async fn endless_throttling_is_a_retryable_error_after_max_attempts() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429))
            .expect(3)
            .mount(&server)
            .await;
        let err = desk(&server)
            .open_handoff(&conversation(), &transcript(), &reasons())
            .await
            .expect_err("throttled");
        assert!(err.is_retryable(), "{err:?}");
    }

    #[tokio::test]
    async fn the_token_is_sent_on_every_call_and_never_printed() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        let d = desk(&server);
        d.post_incoming(
            &DeskRef {
                conversation_id: 1,
                contact_id: 1,
            },
            "x",
        )
        .await
        .expect("posted");
        let requests: Vec<Request> = server.received_requests().await.expect("recorded");
        assert!(requests.iter().all(|r| r
            .headers
            .get("api_access_token")
            .and_then(|v| v.to_str().ok())
            == Some(TOKEN)));
        assert!(!format!("{d:?}").contains(TOKEN));
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
            d.url(&["conversations", "5", "messages"]).as_str(),
            "https://cw.example.com/base/api/v1/accounts/7/conversations/5/messages"
        );
    }

    #[test]
    fn a_long_transcript_keeps_its_last_lines() {
        let lines: Vec<TranscriptLine> = (0..100)
            .map(|i| TranscriptLine {
                from: "user".into(),
                text: format!("{i:03} {}", "x".repeat(500)),
                at_ms: i,
            })
            .collect();
        let note = handoff_note(&reasons(), &lines);
        assert!(note.chars().count() <= MAX_NOTE_CHARS + 10);
        assert!(note.contains("[...]"));
        assert!(note.contains("099 "));
        assert!(!note.contains("000 "));
    }
}
