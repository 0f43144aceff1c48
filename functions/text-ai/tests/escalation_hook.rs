//! What text-ai puts on the escalation queue: each answered turn with what
//! the responder noticed, and, while people have the conversation, the
//! user's messages (answered by nobody but them).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use domain::handoff::EscalationMessage;
use domain::media_pipeline::MediaNote;
use domain::ports::{
    AgentRecords, ConversationStore, MediaNotes, MessageSender, Responder, SystemClock, TurnInput,
    TurnNote,
};
use domain::whatsapp::outbound::OutboundMessage;
use domain::Result;
use domain::{ConversationState, NewInbound, TurnJob, UserId};
use embedded::SqliteStore;
use test_support::memory::MemoryQueue;
use text_ai::media_hold::MediaHold;
use text_ai::{handle_job, Deps, Outcome, Settings};

const USER: &str = "5491155551234";
const PHONE: &str = "106540352242922";

#[derive(Default)]
struct Sender(Mutex<usize>);

#[async_trait]
impl MessageSender for Sender {
    async fn send(
        &self,
        _: &str,
        _: &UserId,
        _: &OutboundMessage,
        _: Option<&str>,
    ) -> Result<String> {
        let mut n = self.0.lock().expect("lock");
        *n += 1;
        Ok(format!("wamid.OUT{n}"))
    }
    async fn mark_read(&self, _: &str, _: &str, _: bool) -> Result<()> {
        Ok(())
    }
}

/// Answers with its fallback, in Spanish.
struct Confused;

#[async_trait]
impl Responder for Confused {
    async fn respond(&self, _: &TurnInput) -> Result<Vec<OutboundMessage>> {
        Ok(OutboundMessage::texts("No entendí."))
    }
    async fn respond_noted(&self, t: &TurnInput) -> Result<(Vec<OutboundMessage>, TurnNote)> {
        Ok((
            self.respond(t).await?,
            TurnNote {
                language: "es".into(),
                fallback: true,
                ..TurnNote::default()
            },
        ))
    }
}

fn wa() -> UserId {
    UserId::parse(USER).expect("wa id")
}

fn now() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

async fn user_says(store: &SqliteStore, wamid: &str, body: &str) -> TurnJob {
    let at = now();
    store
        .record_inbound(&NewInbound {
            wamid: wamid.into(),
            user_id: wa(),
            phone_number_id: PHONE.into(),
            contact_name: None,
            kind: "text".into(),
            text: body.into(),
            payload: serde_json::json!({}),
            sent_at_ms: at,
            received_at_ms: at,
            starts_turn: true,
        })
        .await
        .expect("record");
    TurnJob {
        phone_number_id: PHONE.into(),
        user_id: wa(),
        wamid: wamid.into(),
        received_at_ms: at,
    }
}

fn deps(store: Arc<SqliteStore>, queue: Arc<MemoryQueue>, sender: Arc<Sender>) -> Deps {
    Deps {
        identities: store.clone(),
        campaigns: None,
        store,
        sender,
        responder: Arc::new(Confused),
        escalation_queue: queue,
        media: Default::default(),
        usage: Arc::new(test_support::memory::MemoryUsage::default()),
        clock: Arc::new(SystemClock),
        settings: Settings {
            debounce_ms: 0,
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn an_answered_turn_goes_to_the_escalation_queue_with_its_note() {
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let queue = Arc::new(MemoryQueue::default());
    let d = deps(store.clone(), queue.clone(), Arc::new(Sender::default()));
    let job = user_says(&store, "wamid.T1", "asdf qwer").await;
    assert_eq!(
        handle_job(&d, &job).await.expect("answered"),
        Outcome::Answered { parts: 1 }
    );
    let sent = queue.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].group_id, format!("{PHONE}:{USER}"));
    assert_eq!(sent[0].dedup_id, "wamid.T1:turn");
    match EscalationMessage::parse(&sent[0].body).expect("parses") {
        EscalationMessage::Turn(t) => {
            assert_eq!(t.turn_id, "wamid.T1");
            assert_eq!(t.text, "asdf qwer");
            assert_eq!(t.language, "es");
            assert!(t.fallback);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn while_people_have_it_messages_go_to_them_and_the_bot_stays_quiet() {
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let queue = Arc::new(MemoryQueue::default());
    let sender = Arc::new(Sender::default());
    let d = deps(store.clone(), queue.clone(), sender.clone());
    let first = user_says(&store, "wamid.P0", "hola").await;
    handle_job(&d, &first).await.expect("answered");
    store
        .set_state(&wa(), ConversationState::Bot, ConversationState::Human)
        .await
        .expect("state");
    let job = user_says(&store, "wamid.P1", "¿siguen ahí?").await;
    assert_eq!(
        handle_job(&d, &job).await.expect("handled"),
        Outcome::NotForTheBot
    );
    assert_eq!(*sender.0.lock().expect("lock"), 1, "no answer from the bot");
    let last = queue.messages().pop().expect("queued");
    assert_eq!(last.dedup_id, "wamid.P1:to-humans");
    match EscalationMessage::parse(&last.body).expect("parses") {
        EscalationMessage::UserMessage(m) => assert_eq!(m.text, "¿siguen ahí?"),
        other => panic!("{other:?}"),
    }
    // Theirs to answer: after a hand-back the bot does not answer it late.
    assert!(store
        .pending_inbound(&wa())
        .await
        .expect("pending")
        .is_empty());
    store
        .set_state(&wa(), ConversationState::Human, ConversationState::Bot)
        .await
        .expect("state");
    assert_eq!(
        handle_job(&d, &job).await.expect("handled"),
        Outcome::AlreadyAnswered
    );
}

/// The pipeline's notes, as the media function leaves them.
#[derive(Default)]
struct Notes(Mutex<std::collections::HashMap<String, MediaNote>>);

#[async_trait]
impl MediaNotes for Notes {
    async fn record_note(&self, wamid: &str, note: &MediaNote) -> Result<()> {
        self.0
            .lock()
            .expect("lock")
            .insert(wamid.into(), note.clone());
        Ok(())
    }
    async fn notes(
        &self,
        wamids: &[String],
    ) -> Result<std::collections::HashMap<String, MediaNote>> {
        let all = self.0.lock().expect("lock");
        Ok(wamids
            .iter()
            .filter_map(|w| all.get(w).map(|n| (w.clone(), n.clone())))
            .collect())
    }
}

#[tokio::test]
async fn people_get_the_pipelines_description_of_a_photo_not_image() {
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let queue = Arc::new(MemoryQueue::default());
    let sender = Arc::new(Sender::default());
    let notes = Arc::new(Notes::default());
    let mut d = deps(store.clone(), queue.clone(), sender.clone());
    d.media = MediaHold {
        notes: Some(notes.clone()),
        ..Default::default()
    };
    let first = user_says(&store, "wamid.M0", "hola").await;
    handle_job(&d, &first).await.expect("answered");
    store
        .set_state(&wa(), ConversationState::Bot, ConversationState::Human)
        .await
        .expect("state");
    let at = now();
    store
        .record_inbound(&NewInbound {
            wamid: "wamid.M1".into(),
            user_id: wa(),
            phone_number_id: PHONE.into(),
            contact_name: None,
            kind: "image".into(),
            text: "[image]".into(),
            payload: serde_json::json!({}),
            sent_at_ms: at,
            received_at_ms: at,
            starts_turn: true,
        })
        .await
        .expect("record");
    let job = TurnJob {
        phone_number_id: PHONE.into(),
        user_id: wa(),
        wamid: "wamid.M1".into(),
        received_at_ms: at,
    };
    let passed = |q: &MemoryQueue| {
        q.messages()
            .into_iter()
            .filter(|m| m.dedup_id.ends_with(":to-humans"))
            .count()
    };
    // Still in the works: held, nothing passed yet.
    assert_eq!(
        handle_job(&d, &job).await.expect("handled"),
        Outcome::HeldForMedia
    );
    assert_eq!(passed(&queue), 0);
    // Noted: passed with the description (the pipeline queued the turn again).
    let description = "[The user sent a photo (jpeg, 1200x900). Text in it: FACTURA 0001-42]";
    notes
        .record_note(
            "wamid.M1",
            &MediaNote::Understood {
                description: description.into(),
            },
        )
        .await
        .expect("note");
    assert_eq!(
        handle_job(&d, &job).await.expect("handled"),
        Outcome::NotForTheBot
    );
    let last = queue.messages().pop().expect("queued");
    match EscalationMessage::parse(&last.body).expect("parses") {
        EscalationMessage::UserMessage(m) => {
            assert_eq!(m.text, description);
            assert_eq!(m.message_type, "image");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(*sender.0.lock().expect("lock"), 1, "no answer from the bot");
}
