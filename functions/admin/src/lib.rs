//! The admin API: conversations and their transcripts, read-only.
//!
//! Framework-neutral: [`handle`] takes and returns `http` types, so the
//! Lambda (lambda_http) and the local server (axum) call the same code.
//! Requests reach it only through the admin authorizer.
//!
//! - `GET /admin/conversations?limit=&cursor=`: most recent first;
//! - `GET /admin/conversations/{user_id}?limit=&cursor=`: the conversation and
//!   its messages, oldest first.
//!
//! `limit` defaults to 20 and is capped at 100; `cursor` is the `next` of the
//! previous page. Errors are `{"error": "..."}` with the status from
//! [`Error::status_code`]; server errors say nothing more.

#[cfg(feature = "aws")]
pub mod aws;
pub mod config;
pub mod control;
pub mod stats;

use domain::identity::{self, IdentityLinks};
use std::sync::Arc;

use bytes::Bytes;
use domain::error::{Error, Result};
use domain::ports::{
    AgentRecords, Clock, ConversationStore, EscalationRecords, HumanDesk, MediaNotes,
    MessageSender, SystemClock, UsageLedger,
};
use domain::usage::{Prices, Summary};
use domain::{media_pipeline, Conversation, Delivery, Direction, Page, StoredMessage, UserId};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use runtime::config::WhatsAppSecrets;
use runtime::observability::phone;
use serde::Serialize;
use serde_json::json;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
/// Cursors are opaque, but never this long.
const MAX_CURSOR_LEN: usize = 2048;

const LIST_PATH: &str = "/admin/conversations";
const STATS_PATH: &str = "/admin/stats";

pub struct Deps {
    pub store: Arc<dyn ConversationStore>,
    /// A number or BSUID in a path is the user it is linked to.
    pub identities: Arc<dyn IdentityLinks>,
    /// Takeover, release and messages ([`control`]); `None`: those routes
    /// answer 404.
    pub control: Option<control::Control>,
    /// What the media pipeline understood of a photo, document or voice
    /// note, shown with its message: what the agent saw.
    pub media_notes: Arc<dyn MediaNotes>,
    /// What was used: `/admin/stats`, and each conversation's turns and cost.
    pub usage: Arc<dyn UsageLedger>,
    pub prices: Prices,
}

/// The adapters admin runs on.
pub struct Ports {
    pub store: Arc<dyn ConversationStore>,
    pub identities: Arc<dyn IdentityLinks>,
    pub records: Arc<dyn AgentRecords>,
    pub escalations: Arc<dyn EscalationRecords>,
    /// `None` (no Graph API token): takeover, release and messages answer 404.
    pub sender: Option<Arc<dyn MessageSender>>,
    pub media_notes: Arc<dyn MediaNotes>,
    pub usage: Arc<dyn UsageLedger>,
    pub clock: Arc<dyn Clock>,
}

impl Deps {
    /// The one constructor, for Lambda and the one-process runner.
    pub fn new(
        settings: &config::Settings,
        secrets: &WhatsAppSecrets,
        ports: Ports,
    ) -> Result<Deps> {
        let desk = match &settings.chatwoot {
            Some(place) => Some(Arc::new(place.config(secrets)?.desk()?) as Arc<dyn HumanDesk>),
            None => None,
        };
        Ok(Deps {
            control: ports.sender.map(|sender| control::Control {
                records: ports.records,
                escalations: ports.escalations,
                sender,
                clock: ports.clock,
                desk,
                reengage_template: settings.reengage_template.clone(),
                usage: ports.usage.clone(),
            }),
            store: ports.store,
            identities: ports.identities,
            media_notes: ports.media_notes,
            usage: ports.usage,
            prices: settings.prices.clone(),
        })
    }
}

/// The user a path names: by the id their conversation is keyed by, or by
/// any other id linked to it (their number, their BSUID).
async fn user_in_path(deps: &Deps, raw: &str) -> Result<UserId> {
    let id = UserId::parse(raw).map_err(Error::Invalid)?;
    identity::user_of(deps.identities.as_ref(), &id).await
}

/// Answers one admin API request. Never fails: errors become responses.
pub async fn handle(deps: &Deps, req: Request<Bytes>) -> Response<Bytes> {
    handle_at(deps, req, SystemClock.now_ms()).await
}

/// [`handle`] at a given time (`window_open` depends on it).
pub async fn handle_at(deps: &Deps, req: Request<Bytes>, now_ms: i64) -> Response<Bytes> {
    // Only POST reaches the control routes; other methods there are the
    // read-only API's (404).
    let control_route = control::route(req.uri().path()).filter(|_| req.method() == Method::POST);
    if let Some((user_id, action)) = control_route {
        return match &deps.control {
            None => error_response(
                &Error::NotFound("conversation control is not configured".into()),
                action.name(),
            ),
            Some(c) => {
                let served = match user_in_path(deps, user_id).await {
                    Ok(user) => {
                        control::serve(c, deps.store.as_ref(), &user, action, req.body()).await
                    }
                    Err(e) => Err(e),
                };
                match served {
                    Ok(body) => json_response(StatusCode::OK, &body),
                    Err(e) => error_response(&e, action.name()),
                }
            }
        };
    }
    let head = req.method() == Method::HEAD;
    let mut response = match route(req.uri().path()) {
        None => error_response(&Error::NotFound("no such route".into()), "unknown"),
        Some(route) => {
            if req.method() != Method::GET && !head {
                method_not_allowed()
            } else {
                let name = route.name();
                match serve(deps, route, req.uri().query(), now_ms).await {
                    Ok(body) => json_response(StatusCode::OK, &body),
                    Err(e) => error_response(&e, name),
                }
            }
        }
    };
    if head {
        *response.body_mut() = Bytes::new();
    }
    response
}

enum Route<'a> {
    List,
    Conversation(&'a str),
    Stats,
}

impl Route<'_> {
    fn name(&self) -> &'static str {
        match self {
            Route::List => "list_conversations",
            Route::Conversation(_) => "get_conversation",
            Route::Stats => "stats",
        }
    }
}

fn route(path: &str) -> Option<Route<'_>> {
    let path = path.strip_suffix('/').unwrap_or(path);
    if path == STATS_PATH {
        return Some(Route::Stats);
    }
    if path == LIST_PATH {
        return Some(Route::List);
    }
    let rest = path.strip_prefix(LIST_PATH)?.strip_prefix('/')?;
    if rest.is_empty() || rest.contains('/') {
        return None;
    }
    Some(Route::Conversation(rest))
}

async fn serve(
    deps: &Deps,
    route: Route<'_>,
    query: Option<&str>,
    now_ms: i64,
) -> Result<serde_json::Value> {
    match route {
        // Its own query (`days`), not a page's.
        Route::Stats => stats::serve(deps.usage.as_ref(), &deps.prices, query, now_ms).await,
        Route::List => {
            let paging = Paging::parse(query)?;
            let page = deps
                .store
                .list_conversations(paging.limit, paging.cursor.as_deref())
                .await?;
            tracing::debug!(
                count = page.items.len(),
                more = page.next.is_some(),
                "listed conversations"
            );
            Ok(list_body(page, now_ms))
        }
        Route::Conversation(raw) => {
            let paging = Paging::parse(query)?;
            let user_id = user_in_path(deps, raw).await?;
            let conversation = deps
                .store
                .conversation(&user_id)
                .await?
                .ok_or_else(|| Error::NotFound("conversation".into()))?;
            let page = deps
                .store
                .transcript(&user_id, paging.limit, paging.cursor.as_deref())
                .await?;
            tracing::debug!(user_id = %phone(user_id.as_str()), count = page.items.len(), "read transcript");
            let media: Vec<String> = page
                .items
                .iter()
                .filter(|m| media_pipeline::is_media_kind(&m.kind))
                .map(|m| m.wamid.clone())
                .collect();
            let notes = if media.is_empty() {
                Default::default()
            } else {
                deps.media_notes.notes(&media).await?
            };
            // The turns logged over this page's messages: from its first
            // (the start, on the first page) to its last (on, on the last).
            let from = match paging.cursor {
                None => 0,
                Some(_) => page.items.first().map_or(0, |m| m.at_ms),
            };
            let to = match &page.next {
                None => i64::MAX,
                Some(_) => page.items.last().map_or(i64::MAX, |m| m.at_ms),
            };
            let turns = deps.usage.log(&user_id, from, to).await?;
            let used = deps.usage.conversation(&user_id).await?;
            let mut body = transcript_body(&conversation, page, &notes, now_ms);
            body["turns"] = json!(turns.iter().map(TurnView::new).collect::<Vec<_>>());
            body["usage"] = json!(Summary::of(&used, &deps.prices));
            body["currency"] = json!(deps.prices.currency);
            Ok(body)
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Paging {
    limit: usize,
    cursor: Option<String>,
}

impl Paging {
    fn parse(query: Option<&str>) -> Result<Paging> {
        let mut paging = Paging {
            limit: DEFAULT_LIMIT,
            cursor: None,
        };
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes());
        for (key, value) in pairs {
            match key.as_ref() {
                "limit" => {
                    let n: usize = value.trim().parse().map_err(|_| {
                        Error::Invalid(format!("limit must be a number from 1 to {MAX_LIMIT}"))
                    })?;
                    if n == 0 {
                        return Err(Error::Invalid(format!(
                            "limit must be a number from 1 to {MAX_LIMIT}"
                        )));
                    }
                    paging.limit = n.min(MAX_LIMIT);
                }
                "cursor" if value.is_empty() => paging.cursor = None,
                "cursor" => {
                    if value.len() > MAX_CURSOR_LEN {
                        return Err(Error::Invalid("bad cursor".into()));
                    }
                    paging.cursor = Some(value.into_owned());
                }
                _ => {}
            }
        }
        Ok(paging)
    }
}

#[derive(Serialize)]
struct ConversationView {
    user_id: String,
    contact_name: Option<String>,
    state: &'static str,
    phone_number_id: String,
    last_user_at: Option<String>,
    last_message_at: Option<String>,
    window_open: bool,
}

impl ConversationView {
    fn new(c: &Conversation, now_ms: i64) -> Self {
        ConversationView {
            user_id: c.user_id.to_string(),
            contact_name: c.contact_name.clone(),
            state: c.state.as_str(),
            phone_number_id: c.phone_number_id.clone(),
            last_user_at: rfc3339(c.last_user_at_ms),
            last_message_at: rfc3339(c.last_message_at_ms),
            window_open: c.window_open(now_ms),
        }
    }
}

#[derive(Serialize)]
struct MessageView {
    wamid: String,
    direction: &'static str,
    kind: String,
    text: String,
    at: Option<String>,
    delivery: Option<&'static str>,
    delivery_at: Option<String>,
    error_code: Option<i64>,
    /// Media: what the pipeline understood (the labels of a photo, the text
    /// of a document, the transcript of a voice note) or why it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    media: Option<MediaView>,
}

#[derive(Serialize)]
struct MediaView {
    /// `understood` or `failed`.
    result: &'static str,
    /// What the agent was given instead of the file.
    text: String,
}

impl MessageView {
    fn new(m: StoredMessage, note: Option<&media_pipeline::MediaNote>) -> Self {
        MessageView {
            media: note.map(|n| MediaView {
                result: match n {
                    media_pipeline::MediaNote::Understood { .. } => "understood",
                    media_pipeline::MediaNote::Failed { .. } => "failed",
                },
                text: n.text_for_responder(&m.kind),
            }),
            direction: match m.direction {
                Direction::Inbound => "inbound",
                Direction::Outbound => "outbound",
            },
            at: rfc3339(m.at_ms),
            delivery: m.delivery.map(Delivery::as_str),
            delivery_at: m.delivery_at_ms.and_then(rfc3339),
            error_code: m.error_code,
            wamid: m.wamid,
            kind: m.kind,
            text: m.text,
        }
    }
}

/// A logged turn in the transcript: who answered, with what tools, tokens
/// and latency, or why people were asked in.
#[derive(Serialize)]
struct TurnView<'a> {
    at: Option<String>,
    via: &'a str,
    tools: &'a [String],
    model_calls: u32,
    tokens_in: u64,
    tokens_out: u64,
    latency_ms: Option<u64>,
    escalation: Option<&'a str>,
}

impl<'a> TurnView<'a> {
    fn new(t: &'a domain::usage::TurnLog) -> Self {
        TurnView {
            at: rfc3339(t.at_ms),
            via: &t.via,
            tools: &t.tools,
            model_calls: t.model_calls,
            tokens_in: t.tokens_in,
            tokens_out: t.tokens_out,
            latency_ms: t.latency_ms,
            escalation: t.escalation.as_deref(),
        }
    }
}

/// Milliseconds since the epoch as RFC 3339 (UTC); `None` when out of range.
fn rfc3339(ms: i64) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| t.to_string())
}

fn list_body(page: Page<Conversation>, now_ms: i64) -> serde_json::Value {
    let conversations: Vec<ConversationView> = page
        .items
        .iter()
        .map(|c| ConversationView::new(c, now_ms))
        .collect();
    json!({ "conversations": conversations, "next": page.next })
}

fn transcript_body(
    conversation: &Conversation,
    page: Page<StoredMessage>,
    notes: &std::collections::HashMap<String, media_pipeline::MediaNote>,
    now_ms: i64,
) -> serde_json::Value {
    let mut body = json!(ConversationView::new(conversation, now_ms));
    let messages: Vec<MessageView> = page
        .items
        .into_iter()
        .map(|m| {
            let note = notes.get(&m.wamid);
            MessageView::new(m, note)
        })
        .collect();
    body["messages"] = json!(messages);
    body["next"] = json!(page.next);
    body
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Bytes> {
    runtime::http_answer::no_store(runtime::http_answer::json(status, body))
}

/// The error as `runtime::http_answer` maps it (logged under the route's
/// name), not cached.
fn error_response(e: &Error, route: &'static str) -> Response<Bytes> {
    runtime::http_answer::no_store(runtime::http_answer::error(e, route))
}

fn method_not_allowed() -> Response<Bytes> {
    let mut response = json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({ "error": "method not allowed" }),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use domain::{
        ClaimOutcome, NewInbound, RecordOutcome, SentRecord, StatusOutcome, StatusUpdate,
        TurnRecord, WINDOW_MS,
    };
    use embedded::SqliteStore;
    use serde_json::Value;

    const NOW: i64 = 1_732_147_200_000; // 2024-11-21T00:00:00Z
    const PHONE_ID: &str = "106540352242922";

    fn wa(n: u32) -> UserId {
        UserId::parse(&format!("54911555{n:05}")).expect("valid")
    }

    fn inbound(user_id: &UserId, wamid: &str, text: &str, at_ms: i64) -> NewInbound {
        NewInbound {
            wamid: wamid.into(),
            user_id: user_id.clone(),
            phone_number_id: PHONE_ID.into(),
            contact_name: Some("Ana".into()),
            kind: "text".into(),
            text: text.into(),
            payload: json!({ "type": "text", "text": { "body": text } }),
            sent_at_ms: at_ms,
            received_at_ms: at_ms,
            starts_turn: true,
        }
    }

    async fn store_with(conversations: u32) -> Arc<SqliteStore> {
        let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
        for i in 0..conversations {
            let at = NOW - WINDOW_MS * 2 + i64::from(i) * 60_000;
            let outcome = store
                .record_inbound(&inbound(&wa(i), &format!("wamid.in{i}"), "hola", at))
                .await
                .expect("recorded");
            assert_eq!(outcome, RecordOutcome::Recorded);
        }
        store
    }

    fn deps(store: Arc<dyn ConversationStore>) -> Deps {
        Deps {
            store,
            identities: Arc::new(test_support::memory::MemoryIdentities::default()),
            control: None,
            media_notes: Arc::new(embedded::SqliteMediaNotes::open_in_memory().expect("notes")),
            usage: Arc::new(test_support::memory::MemoryUsage::default()),
            prices: Prices::default(),
        }
    }

    fn get(uri: &str) -> Request<Bytes> {
        Request::builder()
            .method(Method::GET)
            .uri(uri)
            .body(Bytes::new())
            .expect("request")
    }

    async fn call(deps: &Deps, req: Request<Bytes>) -> (StatusCode, Value) {
        let response = handle_at(deps, req, NOW).await;
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
        let status = response.status();
        let body = if response.body().is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(response.body()).expect("json body")
        };
        (status, body)
    }

    #[tokio::test]
    async fn list_pages_through_conversations_most_recent_first() {
        let d = deps(store_with(5).await);
        let (status, first) = call(&d, get("/admin/conversations?limit=2")).await;
        assert_eq!(status, StatusCode::OK);
        let ids = |b: &Value| -> Vec<String> {
            b["conversations"]
                .as_array()
                .expect("array")
                .iter()
                .map(|c| c["user_id"].as_str().expect("user_id").to_string())
                .collect()
        };
        assert_eq!(ids(&first), vec![wa(4).to_string(), wa(3).to_string()]);
        let next = first["next"].as_str().expect("a next cursor").to_string();

        let uri = format!("/admin/conversations?limit=2&cursor={}", encode(&next));
        let (_, second) = call(&d, get(&uri)).await;
        assert_eq!(ids(&second), vec![wa(2).to_string(), wa(1).to_string()]);
        let next = second["next"].as_str().expect("a next cursor").to_string();

        let uri = format!("/admin/conversations?limit=2&cursor={}", encode(&next));
        let (_, last) = call(&d, get(&uri)).await;
        assert_eq!(ids(&last), vec![wa(0).to_string()]);
        assert_eq!(last["next"], Value::Null);
    }

    #[tokio::test]
    async fn list_shows_the_conversation_fields() {
        let store = store_with(0).await;
        store
            .record_inbound(&inbound(&wa(7), "wamid.A", "hola", NOW - 1_000))
            .await
            .expect("recorded");
        let d = deps(store);
        let (status, body) = call(&d, get("/admin/conversations")).await;
        assert_eq!(status, StatusCode::OK);
        let c = &body["conversations"][0];
        assert_eq!(c["user_id"], wa(7).to_string());
        assert_eq!(c["contact_name"], "Ana");
        assert_eq!(c["state"], "bot");
        assert_eq!(c["phone_number_id"], PHONE_ID);
        assert_eq!(c["last_user_at"], "2024-11-20T23:59:59Z");
        assert_eq!(c["last_message_at"], "2024-11-20T23:59:59Z");
        assert_eq!(c["window_open"], true);
        assert_eq!(body["next"], Value::Null);
    }

    #[tokio::test]
    async fn an_empty_store_lists_nothing() {
        let d = deps(store_with(0).await);
        let (status, body) = call(&d, get("/admin/conversations")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({ "conversations": [], "next": null }));
    }

    #[tokio::test]
    async fn limit_defaults_to_20_and_is_capped_at_100() {
        assert_eq!(Paging::parse(None).expect("ok").limit, DEFAULT_LIMIT);
        assert_eq!(
            Paging::parse(Some("limit=500")).expect("ok").limit,
            MAX_LIMIT
        );
        assert_eq!(Paging::parse(Some("limit=7&x=1")).expect("ok").limit, 7);
        let d = deps(store_with(25).await);
        let (_, body) = call(&d, get("/admin/conversations")).await;
        assert_eq!(body["conversations"].as_array().map(Vec::len), Some(20));
        assert!(body["next"].is_string());
    }

    #[tokio::test]
    async fn a_bad_limit_or_cursor_is_a_400() {
        let d = deps(store_with(1).await);
        for uri in [
            "/admin/conversations?limit=0",
            "/admin/conversations?limit=ten",
            "/admin/conversations?limit=-1",
            "/admin/conversations?cursor=not-a-cursor!",
            "/admin/conversations/5491155500000?limit=abc",
        ] {
            let (status, body) = call(&d, get(uri)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert!(body["error"].is_string(), "{uri}");
        }
    }

    #[tokio::test]
    async fn transcript_shows_messages_oldest_first_with_delivery() {
        let store = store_with(0).await;
        let user = wa(1);
        store
            .record_inbound(&inbound(&user, "wamid.in1", "hola", NOW - 10_000))
            .await
            .expect("recorded");
        store
            .record_outbound(
                &user,
                &SentRecord {
                    wamid: "wamid.out1".into(),
                    kind: "text".into(),
                    text: "¡Hola! ¿En qué te ayudo?".into(),
                    at_ms: NOW - 9_000,
                },
            )
            .await
            .expect("recorded");
        store
            .apply_status(&StatusUpdate {
                wamid: "wamid.out1".into(),
                delivery: Delivery::Failed,
                at_ms: NOW - 8_000,
                error_code: Some(131047),
            })
            .await
            .expect("applied");
        store
            .record_inbound(&inbound(&user, "wamid.in2", "¿sigues?", NOW - 5_000))
            .await
            .expect("recorded");
        let d = deps(store);

        let (status, body) = call(&d, get(&format!("/admin/conversations/{user}"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["user_id"], user.to_string());
        assert_eq!(body["state"], "bot");
        let messages = body["messages"].as_array().expect("messages");
        let wamids: Vec<&str> = messages
            .iter()
            .filter_map(|m| m["wamid"].as_str())
            .collect();
        assert_eq!(wamids, vec!["wamid.in1", "wamid.out1", "wamid.in2"]);
        let first = &messages[0];
        assert_eq!(first["direction"], "inbound");
        assert_eq!(first["kind"], "text");
        assert_eq!(first["text"], "hola");
        assert_eq!(first["at"], "2024-11-20T23:59:50Z");
        assert_eq!(first["delivery"], Value::Null);
        let out = &messages[1];
        assert_eq!(out["direction"], "outbound");
        assert_eq!(out["delivery"], "failed");
        assert_eq!(out["delivery_at"], "2024-11-20T23:59:52Z");
        assert_eq!(out["error_code"], 131047);
        assert_eq!(body["next"], Value::Null);
    }

    /// Operators see what the agent saw: a document's text, a voice note's
    /// transcript, or why the pipeline could not read it, beside the
    /// `[document: factura.pdf]` line.
    #[tokio::test]
    async fn transcript_shows_what_the_media_pipeline_understood() {
        let store = store_with(0).await;
        let user = wa(3);
        for (wamid, kind, text) in [
            ("wamid.doc", "document", "[document: factura.pdf]"),
            ("wamid.voice", "audio", "[audio]"),
            ("wamid.text", "text", "¿me la revisan?"),
        ] {
            let mut m = inbound(&user, wamid, text, NOW - 5_000);
            m.kind = kind.into();
            store.record_inbound(&m).await.expect("recorded");
        }
        let mut d = deps(store);
        let notes = Arc::new(embedded::SqliteMediaNotes::open_in_memory().expect("notes"));
        notes
            .record_note(
                "wamid.doc",
                &media_pipeline::MediaNote::Understood {
                    description: "Factura A 0003-00012345, total $ 48.200, vence 15/12".into(),
                },
            )
            .await
            .expect("note");
        notes
            .record_note(
                "wamid.voice",
                &media_pipeline::MediaNote::Failed {
                    summary: "the audio could not be transcribed".into(),
                },
            )
            .await
            .expect("note");
        d.media_notes = notes;
        let (status, body) = call(&d, get(&format!("/admin/conversations/{user}"))).await;
        assert_eq!(status, StatusCode::OK);
        let messages = body["messages"].as_array().expect("messages");
        let doc = messages
            .iter()
            .find(|m| m["wamid"] == "wamid.doc")
            .expect("doc");
        assert_eq!(doc["text"], "[document: factura.pdf]");
        assert_eq!(doc["media"]["result"], "understood");
        assert!(
            doc["media"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("48.200")),
            "{doc}"
        );
        let voice = messages
            .iter()
            .find(|m| m["wamid"] == "wamid.voice")
            .expect("voice");
        assert_eq!(voice["media"]["result"], "failed");
        let text = messages
            .iter()
            .find(|m| m["wamid"] == "wamid.text")
            .expect("text");
        assert!(text.get("media").is_none(), "{text}");
    }

    /// Operators see who answered each turn, with what, and what the
    /// conversation cost; and the day's numbers at `/admin/stats`.
    #[tokio::test]
    async fn transcript_shows_the_turns_and_the_cost_and_stats_the_day() {
        use domain::usage::{Sent, UsageEvent};
        let store = store_with(0).await;
        let user = wa(1);
        store
            .record_inbound(&inbound(
                &user,
                "wamid.in1",
                "quiero el plan plus",
                NOW - 10_000,
            ))
            .await
            .expect("recorded");
        let d = deps(store);
        let note = domain::ports::TurnNote {
            via: "model",
            model_calls: 2,
            model: "bedrock:anthropic.claude-3-haiku-20240307-v1:0".into(),
            tokens_in: 4_000,
            tokens_out: 200,
            tools: vec!["kb_search"],
            ..Default::default()
        };
        let sent = Sent {
            messages: 1,
            templates: 0,
        };
        let turn = UsageEvent::turn(&user, "wamid.in1", NOW - 9_000, &note, sent, 1_000);
        d.usage.add(&turn).await.expect("turn");
        let handoff = UsageEvent::escalation(&user, "e1", NOW - 8_000, "asked");
        d.usage.add(&handoff).await.expect("hand-off");
        let (status, body) = call(&d, get(&format!("/admin/conversations/{user}"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let turns = body["turns"].as_array().expect("turns");
        assert_eq!(turns.len(), 2, "{body}");
        assert_eq!(turns[0]["via"], "model");
        assert_eq!(turns[0]["tools"], json!(["kb_search"]));
        assert_eq!(turns[0]["tokens_in"], 4_000);
        assert_eq!(turns[0]["latency_ms"], 1_000);
        assert_eq!(turns[1]["escalation"], "asked");
        assert_eq!(body["usage"]["turns"], 1);
        assert_eq!(body["usage"]["escalations"]["asked"], 1);
        let cost = body["usage"]["cost"]["total"].as_f64().expect("cost");
        // 4,000 in at $0.25/M, 200 out at $1.25/M, one turn of AWS.
        assert!(
            (cost - (0.001 + 0.000_25 + 0.000_04)).abs() < 1e-9,
            "{cost}"
        );
        let (status, stats) = call(&d, get("/admin/stats?days=2")).await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        assert_eq!(stats["days"].as_array().map(Vec::len), Some(2));
        assert_eq!(stats["totals"]["turns"], 1);
        let (status, _) = call(&d, get("/admin/stats?days=0")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn transcript_pages_with_the_cursor() {
        let store = store_with(0).await;
        let user = wa(2);
        for i in 0..5 {
            store
                .record_inbound(&inbound(
                    &user,
                    &format!("wamid.m{i}"),
                    "x",
                    NOW - 50_000 + i * 1_000,
                ))
                .await
                .expect("recorded");
        }
        let d = deps(store);
        let mut seen = Vec::new();
        let mut uri = format!("/admin/conversations/{user}?limit=2");
        loop {
            let (status, body) = call(&d, get(&uri)).await;
            assert_eq!(status, StatusCode::OK);
            for m in body["messages"].as_array().expect("messages") {
                seen.push(m["wamid"].as_str().expect("wamid").to_string());
            }
            match body["next"].as_str() {
                Some(next) => {
                    uri = format!(
                        "/admin/conversations/{user}?limit=2&cursor={}",
                        encode(next)
                    )
                }
                None => break,
            }
        }
        assert_eq!(
            seen,
            vec!["wamid.m0", "wamid.m1", "wamid.m2", "wamid.m3", "wamid.m4"]
        );
    }

    #[tokio::test]
    async fn an_unknown_conversation_is_a_404() {
        let d = deps(store_with(1).await);
        let (status, body) = call(&d, get("/admin/conversations/5491199999999")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "not found: conversation");
    }

    #[tokio::test]
    async fn a_malformed_user_id_is_a_400() {
        let d = deps(store_with(1).await);
        for id in ["abc", "123", "0123456789", "%2F%2E%2E"] {
            let (status, body) = call(&d, get(&format!("/admin/conversations/{id}"))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{id}");
            assert!(body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("invalid input")));
        }
    }

    #[tokio::test]
    async fn other_methods_are_a_405() {
        let d = deps(store_with(1).await);
        for (method, uri) in [
            (Method::POST, "/admin/conversations"),
            (Method::DELETE, "/admin/conversations/5491155500000"),
            (Method::PUT, "/admin/conversations/"),
        ] {
            let req = Request::builder()
                .method(method.clone())
                .uri(uri)
                .body(Bytes::from_static(b"{}"))
                .expect("request");
            let response = handle_at(&d, req, NOW).await;
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {uri}"
            );
            assert_eq!(
                response.headers().get(header::ALLOW).map(|v| v.as_bytes()),
                Some(&b"GET, HEAD"[..])
            );
        }
    }

    #[tokio::test]
    async fn other_paths_are_a_404() {
        let d = deps(store_with(1).await);
        for uri in [
            "/",
            "/admin",
            "/admin/conversation",
            "/admin/conversationsx",
            "/admin/conversations/5491155500000/messages",
            "/webhooks/whatsapp",
        ] {
            let (status, _) = call(&d, get(uri)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        }
        let post = Request::builder()
            .method(Method::POST)
            .uri("/nowhere")
            .body(Bytes::new())
            .expect("request");
        assert_eq!(
            handle_at(&d, post, NOW).await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn head_answers_like_get_without_a_body() {
        let d = deps(store_with(1).await);
        let req = Request::builder()
            .method(Method::HEAD)
            .uri("/admin/conversations")
            .body(Bytes::new())
            .expect("request");
        let response = handle_at(&d, req, NOW).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.body().is_empty());
    }

    #[tokio::test]
    async fn a_store_failure_is_a_generic_5xx() {
        let d = deps(Arc::new(FailingStore));
        let (status, body) = call(&d, get("/admin/conversations")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, json!({ "error": "internal error" }));
        let (status, body) = call(&d, get("/admin/conversations/5491155500000")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, json!({ "error": "internal error" }));
    }

    #[tokio::test]
    async fn the_sample_event_paths_route() {
        let get_event: Value = serde_json::from_str(include_str!(
            "../../../events/apigw/admin_get_conversation.json"
        ))
        .expect("json");
        let list_event: Value = serde_json::from_str(include_str!(
            "../../../events/apigw/admin_list_conversations.json"
        ))
        .expect("json");
        for event in [get_event, list_event] {
            let path = event["rawPath"].as_str().expect("rawPath");
            assert!(route(path).is_some(), "{path}");
        }
    }

    fn encode(s: &str) -> String {
        form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }

    /// Every call fails as a dependency outage would.
    struct FailingStore;

    fn outage<T>() -> Result<T> {
        Err(Error::dependency(
            "dynamodb",
            "table unreachable (secret detail)",
            true,
            "connection reset",
        ))
    }

    #[async_trait]
    impl ConversationStore for FailingStore {
        async fn record_inbound(&self, _: &NewInbound) -> Result<RecordOutcome> {
            outage()
        }
        async fn mark_enqueued(&self, _: &str) -> Result<()> {
            outage()
        }
        async fn apply_status(&self, _: &StatusUpdate) -> Result<StatusOutcome> {
            outage()
        }
        async fn close_window(&self, _: &UserId) -> Result<()> {
            outage()
        }
        async fn conversation(&self, _: &UserId) -> Result<Option<Conversation>> {
            outage()
        }
        async fn pending_inbound(&self, _: &UserId) -> Result<Vec<StoredMessage>> {
            outage()
        }
        async fn recent_messages(&self, _: &UserId, _: usize) -> Result<Vec<StoredMessage>> {
            outage()
        }
        async fn claim_turn(&self, _: &TurnRecord) -> Result<ClaimOutcome> {
            outage()
        }
        async fn record_sent_part(
            &self,
            _: &UserId,
            _: &str,
            _: usize,
            _: &SentRecord,
        ) -> Result<()> {
            outage()
        }
        async fn complete_turn(&self, _: &UserId, _: &str, _: &[String]) -> Result<()> {
            outage()
        }
        async fn record_outbound(&self, _: &UserId, _: &SentRecord) -> Result<()> {
            outage()
        }
        async fn list_conversations(
            &self,
            _: usize,
            _: Option<&str>,
        ) -> Result<Page<Conversation>> {
            outage()
        }
        async fn transcript(
            &self,
            _: &UserId,
            _: usize,
            _: Option<&str>,
        ) -> Result<Page<StoredMessage>> {
            outage()
        }
    }
}
