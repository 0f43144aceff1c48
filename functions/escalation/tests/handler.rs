//! The escalation handler and Chatwoot's webhook with the local adapters
//! (SQLite store and records, the lexicon) and recording fakes for the
//! outside (WhatsApp, the desk, notifiers, timers), on the sample events.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use bytes::Bytes;
use domain::escalation::{EscalationNotice, Reason, TranscriptLine};
use domain::handoff::EscalationMessage;
use domain::ports::{
    AgentRecords, ConversationStore, DeskRef, EscalationRecords, HumanDesk, MessageSender,
    Notifier, Timers,
};
use domain::whatsapp::outbound::OutboundMessage;
use domain::{Conversation, ConversationState, NewInbound, UserId};
use domain::{Error, Result};
use embedded::{LexiconSentiment, SqliteEscalations, SqliteStore};
use escalation::webhook::{self, WebhookDeps};
use escalation::{handle_batch, handle_message, Deps, Outcome, Settings};
use test_support::memory::{FixedClock, MemoryQueue, MemoryUsage};

const USER: &str = "5491155551234";
const PHONE: &str = "106540352242922";
/// Tuesday 2026-11-24 12:00 in Buenos Aires: open.
const OPEN_NOW: i64 = 1_795_532_400_000;
const TOKEN: &str = "cw-secret-token";

fn event(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../events/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("sample event")
}

fn wa() -> UserId {
    UserId::parse(USER).expect("wa id")
}

#[derive(Default)]
struct Sender {
    sent: Mutex<Vec<OutboundMessage>>,
    fail: Mutex<bool>,
}

impl Sender {
    fn texts(&self) -> Vec<String> {
        self.sent
            .lock()
            .expect("lock")
            .iter()
            .map(|m| m.summary())
            .collect()
    }
}

#[async_trait]
impl MessageSender for Sender {
    async fn send(
        &self,
        _: &str,
        _: &UserId,
        msg: &OutboundMessage,
        _: Option<&str>,
    ) -> Result<String> {
        if *self.fail.lock().expect("lock") {
            return Err(Error::dependency("graph", "send", true, "down"));
        }
        let mut sent = self.sent.lock().expect("lock");
        sent.push(msg.clone());
        Ok(format!("wamid.OUT{}", sent.len()))
    }
    async fn mark_read(&self, _: &str, _: &str, _: bool) -> Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct Desk {
    opened: Mutex<Vec<(Vec<TranscriptLine>, Vec<Reason>)>>,
    incoming: Mutex<Vec<String>>,
}

#[async_trait]
impl HumanDesk for Desk {
    async fn open_handoff(
        &self,
        _: &Conversation,
        transcript: &[TranscriptLine],
        reasons: &[Reason],
    ) -> Result<DeskRef> {
        self.opened
            .lock()
            .expect("lock")
            .push((transcript.to_vec(), reasons.to_vec()));
        Ok(DeskRef {
            conversation_id: 57,
            contact_id: 31,
        })
    }
    async fn post_incoming(&self, _: &DeskRef, text: &str) -> Result<()> {
        self.incoming.lock().expect("lock").push(text.to_string());
        Ok(())
    }
    async fn resolve(&self, _: &DeskRef, _: &str) -> Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct Notices(Mutex<Vec<EscalationNotice>>);

#[async_trait]
impl Notifier for Notices {
    async fn notify(&self, notice: &EscalationNotice) -> Result<()> {
        self.0.lock().expect("lock").push(notice.clone());
        Ok(())
    }
}

#[derive(Default)]
struct Clockwork(Mutex<Vec<(String, u64)>>);

#[async_trait]
impl Timers for Clockwork {
    async fn schedule(&self, body: &str, delay_ms: u64) -> Result<()> {
        self.0
            .lock()
            .expect("lock")
            .push((body.to_string(), delay_ms));
        Ok(())
    }
}

struct H {
    deps: Deps,
    store: Arc<SqliteStore>,
    escalations: Arc<SqliteEscalations>,
    sender: Arc<Sender>,
    desk: Arc<Desk>,
    notices: Arc<Notices>,
    timers: Arc<Clockwork>,
    calls: Arc<MemoryQueue>,
    usage: Arc<MemoryUsage>,
    clock: Arc<FixedClock>,
}

fn settings() -> Settings {
    let profile = agent::Profile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../profiles/demo/agent.toml"
    )))
    .expect("demo profile");
    let mut s = Settings::from_profile(&profile).expect("settings");
    s.admin_conversation_url = Some("https://admin.example/conversations/".into());
    s
}

async fn harness() -> H {
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let escalations = Arc::new(SqliteEscalations::open_in_memory().expect("records"));
    let (sender, desk, notices, timers) = (
        Arc::new(Sender::default()),
        Arc::new(Desk::default()),
        Arc::new(Notices::default()),
        Arc::new(Clockwork::default()),
    );
    let calls = Arc::new(MemoryQueue::default());
    let clock = Arc::new(FixedClock::at(OPEN_NOW));
    let usage = Arc::new(MemoryUsage::default());
    store
        .record_inbound(&NewInbound {
            wamid: "wamid.IN1".into(),
            user_id: wa(),
            phone_number_id: PHONE.into(),
            contact_name: Some("Lucía".into()),
            kind: "text".into(),
            text: "me cobraron dos veces".into(),
            payload: serde_json::json!({}),
            sent_at_ms: OPEN_NOW - 1000,
            received_at_ms: OPEN_NOW - 1000,
            starts_turn: true,
        })
        .await
        .expect("inbound");
    H {
        deps: Deps {
            store: store.clone(),
            records: store.clone(),
            escalations: escalations.clone(),
            sentiment: Arc::new(LexiconSentiment),
            notifiers: vec![notices.clone()],
            desk: Some(desk.clone()),
            sender: sender.clone(),
            timers: Some(timers.clone()),
            call_queue: Some(calls.clone()),
            usage: usage.clone(),
            clock: clock.clone(),
            settings: settings(),
        },
        store,
        escalations,
        sender,
        desk,
        notices,
        timers,
        calls,
        usage,
        clock,
    }
}

impl H {
    async fn state(&self) -> ConversationState {
        self.store
            .conversation(&wa())
            .await
            .expect("reads")
            .expect("exists")
            .state
    }
    fn webhook(&self) -> WebhookDeps {
        WebhookDeps {
            token: Some(TOKEN.to_string().into()),
            store: self.store.clone(),
            records: self.store.clone(),
            escalations: self.escalations.clone(),
            sender: self.sender.clone(),
            clock: self.clock.clone(),
        }
    }
}

async fn run(h: &H, name: &str) -> Result<Outcome> {
    handle_message(&h.deps, &EscalationMessage::parse(&event(name))?).await
}

#[tokio::test]
async fn an_angry_turn_escalates_once_even_when_redelivered() {
    let h = harness().await;
    let outcome = run(&h, "escalation/turn_angry.json")
        .await
        .expect("handled");
    assert_eq!(
        outcome,
        Outcome::Escalated {
            id: "wamid.ANGRY1:policy".into()
        }
    );
    assert_eq!(h.state().await, ConversationState::PendingHuman);
    // Redelivered: the same decision, nothing told or notified twice.
    run(&h, "escalation/turn_angry.json").await.expect("again");
    let opened = h.desk.opened.lock().expect("lock").clone();
    assert_eq!(opened.len(), 1);
    assert!(opened[0].0.iter().any(|l| l.text.contains("dos veces")));
    assert!(
        opened[0].1.iter().any(|r| r.code() == "very_negative"),
        "{:?}",
        opened[0].1
    );
    let notices = h.notices.0.lock().expect("lock").clone();
    assert_eq!(notices.len(), 1);
    assert_eq!(
        notices[0].admin_url.as_deref(),
        Some("https://admin.example/conversations/5491155551234")
    );
    let texts = h.sender.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("15 minutos"), "{}", texts[0]);
    assert_eq!(h.timers.0.lock().expect("lock").len(), 1);
    assert_eq!(h.timers.0.lock().expect("lock")[0].1, 5 * 60_000);
    let decisions = h.escalations.decisions(&wa()).await.expect("decisions");
    assert_eq!(decisions.len(), 1);
    assert!(decisions[0].decision.escalate);
    assert_eq!(decisions[0].sentiment.as_deref(), Some("negative"));
    // Counted once, by its first reason, and shown in the timeline.
    let used = h.usage.all();
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0].counters["escalation.very_negative"], 1);
    let logged = used[0].log.as_ref().and_then(|l| l.escalation.as_deref());
    assert_eq!(logged, Some("very_negative"));
}

#[tokio::test]
async fn a_calm_turn_keeps_the_bot_and_is_recorded() {
    let h = harness().await;
    let outcome = run(&h, "escalation/turn_calm.json").await.expect("handled");
    assert_eq!(outcome, Outcome::Kept);
    assert_eq!(h.state().await, ConversationState::Bot);
    assert!(h.sender.texts().is_empty());
    assert!(h.notices.0.lock().expect("lock").is_empty());
    let decisions = h.escalations.decisions(&wa()).await.expect("decisions");
    assert_eq!(decisions.len(), 1);
    assert!(!decisions[0].decision.escalate);
}

#[tokio::test]
async fn an_agents_handoff_notifies_without_telling_the_user_again() {
    let h = harness().await;
    // The agent moved the state itself before enqueueing.
    h.store
        .set_state(
            &wa(),
            ConversationState::Bot,
            ConversationState::PendingHuman,
        )
        .await
        .expect("state");
    let outcome = run(&h, "escalation/handoff_request.json")
        .await
        .expect("handled");
    assert!(matches!(outcome, Outcome::Escalated { .. }));
    assert!(
        h.sender.texts().is_empty(),
        "the agent told the user already"
    );
    let notices = h.notices.0.lock().expect("lock").clone();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].reasons[0].code(), "requested");
    // Redelivered: nothing again.
    run(&h, "escalation/handoff_request.json")
        .await
        .expect("again");
    assert_eq!(h.notices.0.lock().expect("lock").len(), 1);
    // Handed back without closing it (the state moved by hand): the next
    // escalation replaces the stale one and people are told again.
    h.store
        .set_state(
            &wa(),
            ConversationState::PendingHuman,
            ConversationState::Bot,
        )
        .await
        .expect("state");
    let again = run(&h, "escalation/turn_angry.json")
        .await
        .expect("handled");
    assert_eq!(
        again,
        Outcome::Escalated {
            id: "wamid.ANGRY1:policy".into()
        }
    );
    assert_eq!(h.notices.0.lock().expect("lock").len(), 2);
    let (record, _) = h.escalations.escalation(&wa()).await.expect("record");
    assert_eq!(record.open.expect("open").id, "wamid.ANGRY1:policy");
}

#[tokio::test]
async fn user_messages_reach_the_desk_once_while_people_have_it() {
    let h = harness().await;
    // While the bot has it: nothing to pass on.
    assert_eq!(
        run(&h, "escalation/user_message.json")
            .await
            .expect("handled"),
        Outcome::Nothing
    );
    run(&h, "escalation/turn_angry.json")
        .await
        .expect("escalated");
    for _ in 0..2 {
        assert_eq!(
            run(&h, "escalation/user_message.json")
                .await
                .expect("handled"),
            Outcome::PassedOn
        );
    }
    assert_eq!(
        h.desk.incoming.lock().expect("lock").clone(),
        vec!["¿Siguen ahí?".to_string()]
    );
}

#[tokio::test]
async fn nobody_answering_in_time_offers_a_call_back_once() {
    let h = harness().await;
    run(&h, "escalation/turn_angry.json")
        .await
        .expect("escalated");
    let told = h.sender.texts().len();
    // Early: put back for the time left.
    h.clock.advance(60_000);
    assert_eq!(
        run(&h, "escalation/no_human_check.json")
            .await
            .expect("handled"),
        Outcome::NotYet
    );
    assert_eq!(
        h.timers.0.lock().expect("lock").last().expect("timer").1,
        4 * 60_000
    );
    h.clock.advance(4 * 60_000);
    assert_eq!(
        run(&h, "escalation/no_human_check.json")
            .await
            .expect("handled"),
        Outcome::ToldNoHuman
    );
    assert_eq!(
        run(&h, "escalation/no_human_check.json")
            .await
            .expect("handled"),
        Outcome::Nothing
    );
    let sent = h.sender.sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), told + 1);
    match sent.last().expect("sent") {
        OutboundMessage::Buttons { buttons, .. } => {
            assert_eq!(buttons[0].id, escalation::CALL_ME_BUTTON_ID)
        }
        other => panic!("{other:?}"),
    }
    // The escalation stays open.
    assert_eq!(h.state().await, ConversationState::PendingHuman);
    // The user taps "Llámenme": a call request on the call queue.
    let tap = event("escalation/user_message.json").replace("¿Siguen ahí?", "Llámenme");
    let outcome = handle_message(&h.deps, &EscalationMessage::parse(&tap).expect("parses"))
        .await
        .expect("handled");
    assert_eq!(outcome, Outcome::CallRequested);
    assert_eq!(h.calls.messages().len(), 1);
    let calls = h.store.call_requests(&wa()).await.expect("calls");
    assert_eq!(calls.len(), 1);
    // Tuesday noon is inside the calling hours: called now, and told so.
    assert_eq!(calls[0].when_ms, None);
    let told = h.sender.texts();
    assert!(
        told.last().is_some_and(|t| t.contains("en unos minutos")),
        "{told:?}"
    );
}

/// The call-back keeps to the calling hours, not the business's, and the
/// user is told when it goes out (issue 16).
#[tokio::test]
async fn a_call_back_outside_the_calling_hours_says_when_it_will_be() {
    let mut h = harness().await;
    h.deps.settings.calling_hours =
        domain::voice::CallingHours::parse("15:00-19:00").expect("hours");
    run(&h, "escalation/turn_angry.json")
        .await
        .expect("escalated");
    h.clock.advance(5 * 60_000);
    run(&h, "escalation/no_human_check.json")
        .await
        .expect("handled");
    let tap = event("escalation/user_message.json").replace("¿Siguen ahí?", "Llámenme");
    let outcome = handle_message(&h.deps, &EscalationMessage::parse(&tap).expect("parses"))
        .await
        .expect("handled");
    assert_eq!(outcome, Outcome::CallRequested);
    let calls = h.store.call_requests(&wa()).await.expect("calls");
    // 15:00 in Buenos Aires the same Tuesday.
    assert_eq!(calls[0].when_ms, Some(OPEN_NOW + 3 * 3_600_000));
    let told = h.sender.texts();
    let last = told.last().cloned().unwrap_or_default();
    assert!(last.contains("el martes 24 de noviembre, 15:00"), "{last}");
    assert!(last.contains("horario de llamadas"), "{last}");
}

#[tokio::test]
async fn a_human_who_answered_in_time_stops_the_no_human_message() {
    let h = harness().await;
    run(&h, "escalation/turn_angry.json")
        .await
        .expect("escalated");
    let w = h.webhook();
    let resp = webhook::handle(&w, post(&event("chatwoot/message_created_outgoing.json"))).await;
    assert_eq!(resp.status(), 200);
    h.clock.advance(10 * 60_000);
    assert_eq!(
        run(&h, "escalation/no_human_check.json")
            .await
            .expect("handled"),
        Outcome::Nothing
    );
}

#[tokio::test]
async fn a_bad_message_fails_alone_in_its_batch() {
    let h = harness().await;
    let event: SqsEvent = serde_json::from_str(&event("escalation/sqs_batch.json")).expect("event");
    let response = handle_batch(&h.deps, event).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert_eq!(failed, vec!["m-bad".to_string()]);
    assert_eq!(h.state().await, ConversationState::PendingHuman);
    assert!(matches!(
        EscalationMessage::parse(&self::event("escalation/not_an_escalation.json")),
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn a_failed_send_is_retried_without_repeating_what_was_done() {
    let h = harness().await;
    *h.sender.fail.lock().expect("lock") = true;
    let err = run(&h, "escalation/turn_angry.json")
        .await
        .expect_err("send fails");
    assert!(err.is_retryable());
    *h.sender.fail.lock().expect("lock") = false;
    run(&h, "escalation/turn_angry.json")
        .await
        .expect("retried");
    assert_eq!(h.desk.opened.lock().expect("lock").len(), 1);
    assert_eq!(h.notices.0.lock().expect("lock").len(), 1);
    assert_eq!(h.sender.texts().len(), 1);
}

// ------------------------------------------------------------------ webhook

fn post_to(uri: &str, body: &str) -> http::Request<Bytes> {
    http::Request::builder()
        .method("POST")
        .uri(uri)
        .body(Bytes::from(body.to_string()))
        .expect("request")
}

fn post(body: &str) -> http::Request<Bytes> {
    post_to(&format!("/webhooks/chatwoot?token={TOKEN}"), body)
}

#[tokio::test]
async fn a_forged_or_tokenless_webhook_changes_nothing() {
    let h = harness().await;
    run(&h, "escalation/turn_angry.json")
        .await
        .expect("escalated");
    let before = h.sender.texts().len();
    let w = h.webhook();
    let body = event("chatwoot/conversation_status_changed_resolved.json");
    for uri in [
        "/webhooks/chatwoot",
        "/webhooks/chatwoot?token=",
        "/webhooks/chatwoot?token=wrong",
        "/webhooks/chatwoot?token=cw-secret-tokeN",
    ] {
        let resp = webhook::handle(&w, post_to(uri, &body)).await;
        assert_eq!(resp.status(), 401, "{uri}");
    }
    let reply = event("chatwoot/message_created_outgoing.json");
    let resp = webhook::handle(&w, post_to("/webhooks/chatwoot?token=nope", &reply)).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(h.state().await, ConversationState::PendingHuman);
    assert_eq!(h.sender.texts().len(), before);
    // No token configured: everything is refused.
    let mut open = h.webhook();
    open.token = None;
    assert_eq!(webhook::handle(&open, post(&body)).await.status(), 401);
}

#[tokio::test]
async fn agents_replies_go_out_once_notes_stay_private_and_resolve_hands_back() {
    let h = harness().await;
    run(&h, "escalation/turn_angry.json")
        .await
        .expect("escalated");
    let before = h.sender.texts().len();
    let w = h.webhook();
    let reply = event("chatwoot/message_created_outgoing.json");
    let resp = webhook::handle(&w, post(&reply)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(h.state().await, ConversationState::Human);
    // Chatwoot repeats itself: the same message id, answered once.
    let resp = webhook::handle(&w, post(&reply)).await;
    assert_eq!(resp.status(), 200);
    assert!(String::from_utf8_lossy(resp.body()).contains("duplicate"));
    for name in [
        "chatwoot/message_created_private_note.json",
        "chatwoot/message_created_incoming.json",
    ] {
        assert_eq!(webhook::handle(&w, post(&event(name))).await.status(), 200);
    }
    let texts = h.sender.texts();
    assert_eq!(texts.len(), before + 1, "{texts:?}");
    assert!(texts.last().expect("sent").contains("doble cobro"));
    let resp = webhook::handle(
        &w,
        post(&event("chatwoot/conversation_status_changed_resolved.json")),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(h.state().await, ConversationState::Bot);
    let (record, _) = h.escalations.escalation(&wa()).await.expect("record");
    assert!(record.open.is_none());
}

#[tokio::test]
async fn bad_webhook_bodies_get_clear_errors() {
    let h = harness().await;
    let w = h.webhook();
    assert_eq!(webhook::handle(&w, post("{not json")).await.status(), 400);
    assert_eq!(webhook::handle(&w, post("[1,2]")).await.status(), 400);
    let big = format!(
        "{{\"event\":\"x\",\"pad\":\"{}\"}}",
        "a".repeat(webhook::MAX_BODY_BYTES)
    );
    assert_eq!(webhook::handle(&w, post(&big)).await.status(), 413);
    let get = http::Request::builder()
        .method("GET")
        .uri(format!("/webhooks/chatwoot?token={TOKEN}"))
        .body(Bytes::new())
        .expect("request");
    assert_eq!(webhook::handle(&w, get).await.status(), 405);
    // A reply in a desk conversation that is not ours is ignored.
    let other = event("chatwoot/message_created_outgoing.json")
        .replace("\"id\": 57", "\"id\": 9999")
        .replace("5491155551234", "5491100000000");
    let resp = webhook::handle(&w, post(&other)).await;
    assert_eq!(resp.status(), 200);
    assert!(h.sender.texts().is_empty());
}

#[tokio::test]
async fn a_failed_send_gives_the_webhook_claim_back() {
    let h = harness().await;
    run(&h, "escalation/turn_angry.json")
        .await
        .expect("escalated");
    let before = h.sender.texts().len();
    let w = h.webhook();
    let reply = event("chatwoot/message_created_outgoing.json");
    *h.sender.fail.lock().expect("lock") = true;
    assert_eq!(webhook::handle(&w, post(&reply)).await.status(), 503);
    *h.sender.fail.lock().expect("lock") = false;
    assert_eq!(webhook::handle(&w, post(&reply)).await.status(), 200);
    assert_eq!(h.sender.texts().len(), before + 1);
}

#[tokio::test]
async fn outside_business_hours_the_user_is_told_the_next_opening() {
    let h = harness().await;
    // Sunday 2026-11-29 12:00 in Buenos Aires: closed all day.
    h.clock.advance(5 * 24 * 3600 * 1000);
    run(&h, "escalation/turn_angry.json")
        .await
        .expect("escalated");
    let texts = h.sender.texts();
    assert_eq!(texts.len(), 1);
    assert!(texts[0].contains("fuera de horario"), "{}", texts[0]);
    assert!(texts[0].contains("lunes 30 de noviembre"), "{}", texts[0]);
}

#[tokio::test]
async fn a_turn_in_a_conversation_people_have_is_not_weighed() {
    let h = harness().await;
    h.store
        .set_state(&wa(), ConversationState::Bot, ConversationState::Human)
        .await
        .expect("state");
    assert_eq!(
        run(&h, "escalation/turn_angry.json")
            .await
            .expect("handled"),
        Outcome::Nothing
    );
    assert!(h.sender.texts().is_empty());
    assert!(h.notices.0.lock().expect("lock").is_empty());
}
