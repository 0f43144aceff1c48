//! Media in turns (issue 4): a media message holds its user's turn until
//! the media pipeline noted it, the responder reads the note, and the hold
//! is bounded. Local store and notes (SQLite), the outbox as sender.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use domain::media_pipeline::MediaNote;
use domain::ports::{ConversationStore, MediaNotes, Responder, TurnInput};
use domain::whatsapp::outbound::OutboundMessage;
use domain::Result;
use domain::{NewInbound, TurnJob, UserId};
use embedded::{Outbox, SqliteMediaNotes, SqliteStore};
use test_support::memory::{FixedClock, MemoryQueue};
use text_ai::media_hold::MediaHold;
use text_ai::{handle_job, Deps, Outcome, Settings};

const USER: &str = "5491155550404";
const PHONE: &str = "106540352242922";
const NOW: i64 = 1_795_000_000_000;

#[derive(Default)]
struct Seen(Mutex<Vec<TurnInput>>);

#[async_trait]
impl Responder for Seen {
    async fn respond(&self, turn: &TurnInput) -> Result<Vec<OutboundMessage>> {
        self.0.lock().expect("lock").push(turn.clone());
        Ok(OutboundMessage::texts("ok"))
    }
}

struct H {
    deps: Deps,
    store: Arc<SqliteStore>,
    notes: Arc<SqliteMediaNotes>,
    seen: Arc<Seen>,
    clock: Arc<FixedClock>,
    _dir: tempfile::TempDir,
}

fn harness() -> H {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let notes = Arc::new(SqliteMediaNotes::open_in_memory().expect("notes"));
    let seen = Arc::new(Seen::default());
    let clock = Arc::new(FixedClock::at(NOW));
    let deps = Deps {
        store: store.clone(),
        identities: store.clone(),
        campaigns: None,
        sender: Arc::new(Outbox::open(dir.path()).expect("outbox")),
        responder: seen.clone(),
        escalation_queue: Arc::new(MemoryQueue::default()),
        media: MediaHold {
            notes: Some(notes.clone()),
            hold_ms: 60_000,
        },
        usage: Arc::new(test_support::memory::MemoryUsage::default()),
        clock: clock.clone(),
        settings: Settings {
            debounce_ms: 0,
            ..Default::default()
        },
    };
    H {
        deps,
        store,
        notes,
        seen,
        clock,
        _dir: dir,
    }
}

async fn user_sent(h: &H, wamid: &str, kind: &str, text: &str, at_ms: i64) {
    h.store
        .record_inbound(&NewInbound {
            wamid: wamid.into(),
            user_id: UserId::parse(USER).expect("wa id"),
            phone_number_id: PHONE.into(),
            contact_name: None,
            kind: kind.into(),
            text: text.into(),
            payload: serde_json::Value::Null,
            sent_at_ms: at_ms,
            received_at_ms: at_ms,
            starts_turn: true,
        })
        .await
        .expect("recorded");
}

fn job(wamid: &str) -> TurnJob {
    TurnJob {
        phone_number_id: PHONE.into(),
        user_id: UserId::parse(USER).expect("wa id"),
        wamid: wamid.into(),
        received_at_ms: NOW,
    }
}

#[tokio::test]
async fn a_question_after_a_photo_waits_for_the_photo_and_is_answered_with_it() {
    let h = harness();
    user_sent(&h, "wamid.PHOTO", "image", "[image]", NOW - 2_000).await;
    user_sent(&h, "wamid.Q", "text", "¿cuánto debo?", NOW - 1_000).await;
    assert_eq!(
        handle_job(&h.deps, &job("wamid.Q")).await.expect("held"),
        Outcome::HeldForMedia
    );
    assert!(h.seen.0.lock().expect("lock").is_empty());

    h.notes
        .record_note(
            "wamid.PHOTO",
            &MediaNote::Understood {
                description: "[The user sent a photo. Text in it: Total 52.300]".into(),
            },
        )
        .await
        .expect("noted");
    // The pipeline's release job is keyed by the first pending message.
    assert_eq!(
        handle_job(&h.deps, &job("wamid.PHOTO"))
            .await
            .expect("answered"),
        Outcome::Answered { parts: 1 }
    );
    let seen = h.seen.0.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    let texts: Vec<&str> = seen[0]
        .new_messages
        .iter()
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(
        texts,
        vec![
            "[The user sent a photo. Text in it: Total 52.300]",
            "¿cuánto debo?"
        ]
    );
    // Later turns see the description in the history too.
    user_sent(&h, "wamid.NEXT", "text", "gracias", NOW).await;
    handle_job(&h.deps, &job("wamid.NEXT"))
        .await
        .expect("answered");
    let seen = h.seen.0.lock().expect("lock").clone();
    assert!(seen[1]
        .history
        .iter()
        .any(|m| m.text.contains("Total 52.300")));
}

#[tokio::test]
async fn the_hold_is_bounded_and_text_only_turns_are_not_held() {
    let h = harness();
    user_sent(&h, "wamid.T", "text", "hola", NOW - 1_000).await;
    assert_eq!(
        handle_job(&h.deps, &job("wamid.T"))
            .await
            .expect("answered"),
        Outcome::Answered { parts: 1 }
    );
    // A photo whose pipeline never reported back.
    user_sent(&h, "wamid.LOST", "image", "[image] mi factura", NOW - 1_000).await;
    assert_eq!(
        handle_job(&h.deps, &job("wamid.LOST")).await.expect("held"),
        Outcome::HeldForMedia
    );
    h.clock.advance(61_000);
    assert_eq!(
        handle_job(&h.deps, &job("wamid.LOST"))
            .await
            .expect("answered"),
        Outcome::Answered { parts: 1 }
    );
    let seen = h.seen.0.lock().expect("lock").clone();
    assert_eq!(seen[1].new_messages[0].text, "[image] mi factura");
}
