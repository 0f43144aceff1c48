//! Takeover, release and messages through the admin handler, with the
//! SQLite store and escalation records and a recording WhatsApp sender.

use std::sync::{Arc, Mutex};

use admin::control::Control;
use admin::{handle_at, Deps};
use async_trait::async_trait;
use bytes::Bytes;
use chatwoot::ChatwootDesk;
use domain::handoff::{EscalationRecord, OpenEscalation};
use domain::ports::{AgentRecords, ConversationStore, DeskRef, EscalationRecords, MessageSender};
use domain::whatsapp::outbound::OutboundMessage;
use domain::Result;
use domain::{ConversationState, NewInbound, UserId};
use embedded::{SqliteEscalations, SqliteStore};
use secrecy::SecretString;
use test_support::memory::FixedClock;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const USER: &str = "5491155551234";
const NOW: i64 = 1_795_532_400_000;

#[derive(Default)]
struct Sender(Mutex<Vec<OutboundMessage>>);

#[async_trait]
impl MessageSender for Sender {
    async fn send(
        &self,
        _: &str,
        _: &UserId,
        msg: &OutboundMessage,
        _: Option<&str>,
    ) -> Result<String> {
        let mut v = self.0.lock().expect("lock");
        v.push(msg.clone());
        Ok(format!("wamid.AGENT{}", v.len()))
    }
    async fn mark_read(&self, _: &str, _: &str, _: bool) -> Result<()> {
        Ok(())
    }
}

struct H {
    deps: Deps,
    store: Arc<SqliteStore>,
    escalations: Arc<SqliteEscalations>,
    sender: Arc<Sender>,
    usage: Arc<test_support::memory::MemoryUsage>,
}

fn wa() -> UserId {
    UserId::parse(USER).expect("wa id")
}

async fn harness(with_control: bool) -> H {
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let escalations = Arc::new(SqliteEscalations::open_in_memory().expect("records"));
    let sender = Arc::new(Sender::default());
    let usage = Arc::new(test_support::memory::MemoryUsage::default());
    store
        .record_inbound(&NewInbound {
            wamid: "wamid.IN1".into(),
            user_id: wa(),
            phone_number_id: "111".into(),
            contact_name: None,
            kind: "text".into(),
            text: "hola".into(),
            payload: serde_json::json!({}),
            sent_at_ms: NOW - 1000,
            received_at_ms: NOW - 1000,
            starts_turn: true,
        })
        .await
        .expect("inbound");
    let control = with_control.then(|| Control {
        records: store.clone(),
        escalations: escalations.clone(),
        sender: sender.clone(),
        clock: Arc::new(FixedClock::at(NOW)),
        desk: None,
        reengage_template: Some(("hello_world".into(), "en_US".into())),
        usage: usage.clone(),
    });
    H {
        deps: Deps {
            store: store.clone(),
            identities: store.clone(),
            control,
            media_notes: Arc::new(embedded::SqliteMediaNotes::open_in_memory().expect("notes")),
            usage: usage.clone(),
            prices: Default::default(),
        },
        store,
        escalations,
        sender,
        usage,
    }
}

async fn call(h: &H, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .body(Bytes::from(body.to_string()))
        .expect("request");
    let resp = handle_at(&h.deps, req, NOW).await;
    let json = serde_json::from_slice(resp.body()).unwrap_or(serde_json::Value::Null);
    (resp.status().as_u16(), json)
}

async fn state(h: &H) -> ConversationState {
    h.store
        .conversation(&wa())
        .await
        .expect("reads")
        .expect("exists")
        .state
}

#[tokio::test]
async fn takeover_stops_the_bot_and_release_gives_it_back() {
    let h = harness(true).await;
    // An open escalation, as the escalation function leaves it.
    h.store
        .set_state(
            &wa(),
            ConversationState::Bot,
            ConversationState::PendingHuman,
        )
        .await
        .expect("state");
    let record = EscalationRecord {
        open: Some(OpenEscalation {
            id: "t:policy".into(),
            reasons: vec![],
            opened_at_ms: NOW,
            human_joined: false,
            no_human_told: false,
        }),
        ..Default::default()
    };
    assert!(h
        .escalations
        .save_escalation(&wa(), &record, 0)
        .await
        .expect("saves"));

    let (status, body) = call(
        &h,
        "POST",
        &format!("/admin/conversations/{USER}/takeover"),
        "",
    )
    .await;
    assert_eq!((status, body["state"].as_str()), (200, Some("human")));
    let (r, _) = h.escalations.escalation(&wa()).await.expect("record");
    assert!(r.open.expect("open").human_joined);
    // Again: nothing changes, still fine.
    let (status, _) = call(
        &h,
        "POST",
        &format!("/admin/conversations/{USER}/takeover"),
        "",
    )
    .await;
    assert_eq!(status, 200);

    let (status, body) = call(
        &h,
        "POST",
        &format!("/admin/conversations/{USER}/release/"),
        "",
    )
    .await;
    assert_eq!((status, body["state"].as_str()), (200, Some("bot")));
    assert_eq!(state(&h).await, ConversationState::Bot);
    let (r, _) = h.escalations.escalation(&wa()).await.expect("record");
    assert!(r.open.is_none());
}

#[tokio::test]
async fn a_message_goes_out_as_a_person_and_takes_the_conversation_over() {
    let h = harness(true).await;
    let (status, body) = call(
        &h,
        "POST",
        &format!("/admin/conversations/{USER}/messages"),
        r#"{"text":"Hola, soy Marta del equipo."}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "human");
    assert_eq!(body["wamids"][0], "wamid.AGENT1");
    assert_eq!(h.sender.0.lock().expect("lock").len(), 1);
    let transcript = h.store.recent_messages(&wa(), 10).await.expect("messages");
    assert!(transcript.iter().any(|m| m.text.contains("soy Marta")));
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let h = harness(true).await;
    let path = format!("/admin/conversations/{USER}/messages");
    for body in [
        "",
        "{",
        r#"{"text":""}"#,
        r#"{"text":"  "}"#,
        r#"{"txt":"x"}"#,
    ] {
        let (status, _) = call(&h, "POST", &path, body).await;
        assert_eq!(status, 400, "{body:?}");
    }
    let long = format!(
        r#"{{"text":"{}"}}"#,
        "a".repeat(admin::control::MAX_TEXT_CHARS + 1)
    );
    assert_eq!(call(&h, "POST", &path, &long).await.0, 400);
    assert_eq!(call(&h, "GET", &path, "").await.0, 404);
    assert_eq!(
        call(&h, "POST", "/admin/conversations/12/takeover", "")
            .await
            .0,
        400
    );
    assert_eq!(
        call(
            &h,
            "POST",
            "/admin/conversations/5491100000000/takeover",
            ""
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(
            &h,
            "POST",
            &format!("/admin/conversations/{USER}/explode"),
            ""
        )
        .await
        .0,
        404
    );
    assert!(h.sender.0.lock().expect("lock").is_empty());
    assert_eq!(state(&h).await, ConversationState::Bot);
    // Without control configured, the routes are not there.
    let bare = harness(false).await;
    assert_eq!(
        call(
            &bare,
            "POST",
            &format!("/admin/conversations/{USER}/takeover"),
            ""
        )
        .await
        .0,
        404
    );
}

/// Outside the 24-hour window free text is refused (WhatsApp would fail it
/// with 131047); the re-engagement template goes out instead, as a person.
#[tokio::test]
async fn outside_the_window_the_reengagement_template_goes_out_instead_of_text() {
    let mut h = harness(true).await;
    let late = |path: &str, body: &str| {
        http::Request::builder()
            .method("POST")
            .uri(path.to_string())
            .body(Bytes::from(body.to_string()))
            .expect("request")
    };
    // A day and a minute after the user's last message.
    let later = NOW + 24 * 3_600_000 + 60_000;
    if let Some(c) = h.deps.control.as_mut() {
        c.clock = Arc::new(FixedClock::at(later));
    }
    let text = handle_at(
        &h.deps,
        late(
            &format!("/admin/conversations/{USER}/messages"),
            r#"{"text":"¿Seguís ahí?"}"#,
        ),
        later,
    )
    .await;
    assert_eq!(text.status(), 400);
    let error: serde_json::Value = serde_json::from_slice(text.body()).expect("json");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("24-hour window")),
        "{error}"
    );
    assert!(h.sender.0.lock().expect("lock").is_empty());

    let sent = handle_at(
        &h.deps,
        late(&format!("/admin/conversations/{USER}/reengage"), ""),
        later,
    )
    .await;
    assert_eq!(sent.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(sent.body()).expect("json");
    assert_eq!(body["state"], "human");
    assert_eq!(body["wamids"][0], "wamid.AGENT1");
    let out = h.sender.0.lock().expect("lock").clone();
    assert_eq!(out, vec![OutboundMessage::template("hello_world", "en_US")]);
    let transcript = h.store.recent_messages(&wa(), 10).await.expect("messages");
    assert!(
        transcript.iter().any(|m| m.kind == "template"),
        "{transcript:?}"
    );
    // The template is what Meta charges for: counted in the usage.
    let used = h.usage.all();
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0].counters["templates_sent"], 1);
}

#[tokio::test]
async fn without_a_template_reengage_is_refused_and_changes_nothing() {
    let mut h = harness(true).await;
    if let Some(c) = h.deps.control.as_mut() {
        c.reengage_template = None;
    }
    let (status, body) = call(
        &h,
        "POST",
        &format!("/admin/conversations/{USER}/reengage"),
        "",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]
        .as_str()
        .is_some_and(|e| e.contains("CHARLA_REENGAGE_TEMPLATE")));
    assert!(h.sender.0.lock().expect("lock").is_empty());
    assert_eq!(state(&h).await, ConversationState::Bot);
}

// ------------------------------------------------------------- with Chatwoot

/// A conversation people have, opened in the desk as conversation 57.
async fn escalated_in_the_desk(h: &H) {
    h.store
        .set_state(&wa(), ConversationState::Bot, ConversationState::Human)
        .await
        .expect("state");
    let record = EscalationRecord {
        open: Some(OpenEscalation {
            id: "t:policy".into(),
            reasons: vec![],
            opened_at_ms: NOW,
            human_joined: true,
            no_human_told: false,
        }),
        desk: Some(DeskRef {
            conversation_id: 57,
            contact_id: 31,
        }),
        ..Default::default()
    };
    assert!(h
        .escalations
        .save_escalation(&wa(), &record, 0)
        .await
        .expect("saves"));
}

fn chatwoot(server: &MockServer) -> Arc<ChatwootDesk> {
    let mut policy = ChatwootDesk::DEFAULT_POLICY;
    policy.max_attempts = 1;
    Arc::new(
        ChatwootDesk::new(&server.uri(), 3, 7, SecretString::from("cw-token"), policy)
            .expect("desk"),
    )
}

#[tokio::test]
async fn a_release_resolves_the_chatwoot_conversation_with_a_note() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/accounts/3/conversations/57/messages"))
        .and(header("api_access_token", "cw-token"))
        .and(body_json(serde_json::json!({
            "content": admin::control::RELEASE_NOTE, "message_type": "outgoing", "private": true
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": 1})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/accounts/3/conversations/57/toggle_status"))
        .and(body_json(serde_json::json!({"status": "resolved"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "meta": {}, "payload": {"success": true, "current_status": "resolved", "conversation_id": 57}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let mut h = harness(true).await;
    if let Some(c) = h.deps.control.as_mut() {
        c.desk = Some(chatwoot(&server));
    }
    escalated_in_the_desk(&h).await;
    let release = format!("/admin/conversations/{USER}/release");
    let (status, body) = call(&h, "POST", &release, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "bot");
    assert_eq!(body["desk"], "resolved");
    // Released already: the desk is not asked again (the mocks expect one).
    let (status, body) = call(&h, "POST", &release, "").await;
    assert_eq!((status, body.get("desk")), (200, None));
}

#[tokio::test]
async fn a_desk_that_refuses_leaves_the_conversation_with_people() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(serde_json::json!({"error": "bad token"})),
        )
        .mount(&server)
        .await;
    let mut h = harness(true).await;
    if let Some(c) = h.deps.control.as_mut() {
        c.desk = Some(chatwoot(&server));
    }
    escalated_in_the_desk(&h).await;
    let (status, _) = call(
        &h,
        "POST",
        &format!("/admin/conversations/{USER}/release"),
        "",
    )
    .await;
    assert!(status >= 500, "{status}");
    // Nothing changed here: the release can be asked again.
    assert_eq!(state(&h).await, ConversationState::Human);
    let (r, _) = h.escalations.escalation(&wa()).await.expect("record");
    assert!(r.open.is_some());
}

/// A user known by number whose BSUID appeared: either id in the path is
/// the same conversation.
#[tokio::test]
async fn a_user_is_found_by_their_number_or_their_bsuid() {
    use domain::identity::{self, SeenUser};
    let h = harness(true).await;
    let bsuid = "AR.1502576394655843";
    let seen = SeenUser::from_raw(Some(USER), Some(bsuid)).expect("seen");
    identity::resolve(h.store.as_ref(), &seen, NOW)
        .await
        .expect("resolve");
    for id in [USER, bsuid] {
        let (status, body) = call(&h, "GET", &format!("/admin/conversations/{id}"), "").await;
        assert_eq!(status, 200, "{id}: {body}");
        assert_eq!(body["user_id"], USER, "{id}: {body}");
    }
    let (status, body) = call(
        &h,
        "POST",
        &format!("/admin/conversations/{bsuid}/takeover"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(state(&h).await, ConversationState::Human);
    let (status, _) = call(&h, "GET", "/admin/conversations/AR.1111111111", "").await;
    assert_eq!(status, 404);
    let (status, _) = call(&h, "GET", "/admin/conversations/ar.bad", "").await;
    assert_eq!(status, 400);
}
