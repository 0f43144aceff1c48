//! The behaviour every [`AgentRecords`] must show. The SQLite store, the
//! DynamoDB store and [`MemoryRecords`] run this same suite.
//!
//! Checks use fresh random `wa_id`s, ids and (for appointments, which are
//! not per user) a random far-future day, so all checks can share one store,
//! and one DynamoDB table across runs.
//!
//! Conventions the suite pins down:
//! - leads and call requests are idempotent on `(wa_id, id)`: a second save
//!   returns `false` and keeps the first record;
//! - `set_state` on a conversation that does not exist is `Error::NotFound`
//!   (never a silent `false`, never a created conversation);
//! - a new user message keeps the state `set_state` left (only the first
//!   message of a conversation starts it as `bot`);
//! - `memory` of a conversation with none saved is `Memory::default()`, and
//!   `save_memory` replaces the whole memory (last write wins: one user's
//!   turns run one at a time);
//! - usage recorded again for a turn keeps the first record.

use async_trait::async_trait;

use super::store_contract::fresh_user_id;
use crate::memory::MemoryRecords;
use domain::error::Error;
use domain::ports::ConversationStore;
use domain::ports::{AgentRecords, Clock, SystemClock};
use domain::*;

const DAY_MS: i64 = 24 * 3600 * 1000;
const HOUR_MS: i64 = 3600 * 1000;

/// A store under test, with the few things the suite needs that the port
/// does not offer: making a conversation exist, reading its state the way
/// the rest of the system does, and reading usage back.
#[async_trait]
pub trait Subject: Send + Sync {
    fn records(&self) -> &dyn AgentRecords;

    /// A user message from `wa_id`: creates the conversation (state `bot`)
    /// or refreshes it.
    async fn user_writes(&self, user_id: &UserId);

    /// The conversation's state as text-ai reads it; `None` when absent.
    async fn state(&self, user_id: &UserId) -> Option<ConversationState>;

    /// The usage recorded for `wa_id`'s turns.
    async fn usage(&self, user_id: &UserId) -> Vec<TurnUsage>;
}

/// A store that is both the conversation store and the records: the state
/// must be the one `ConversationStore::conversation` returns.
async fn user_writes_via_store(store: &dyn ConversationStore, user_id: &UserId) {
    store
        .record_inbound(&super::store_contract::inbound(user_id, now_ms(), true))
        .await
        .expect("record_inbound");
}

async fn state_via_store(
    store: &dyn ConversationStore,
    user_id: &UserId,
) -> Option<ConversationState> {
    store
        .conversation(user_id)
        .await
        .expect("conversation")
        .map(|c| c.state)
}

#[async_trait]
impl Subject for embedded::SqliteStore {
    fn records(&self) -> &dyn AgentRecords {
        self
    }
    async fn user_writes(&self, user_id: &UserId) {
        user_writes_via_store(self, user_id).await;
    }
    async fn state(&self, user_id: &UserId) -> Option<ConversationState> {
        state_via_store(self, user_id).await
    }
    async fn usage(&self, user_id: &UserId) -> Vec<TurnUsage> {
        embedded::SqliteStore::usage(self, user_id)
            .await
            .expect("usage")
    }
}

#[async_trait]
impl Subject for aws_adapters::DynamoStore {
    fn records(&self) -> &dyn AgentRecords {
        self
    }
    async fn user_writes(&self, user_id: &UserId) {
        user_writes_via_store(self, user_id).await;
    }
    async fn state(&self, user_id: &UserId) -> Option<ConversationState> {
        state_via_store(self, user_id).await
    }
    async fn usage(&self, user_id: &UserId) -> Vec<TurnUsage> {
        aws_adapters::DynamoStore::usage(self, user_id)
            .await
            .expect("usage")
    }
}

#[async_trait]
impl Subject for MemoryRecords {
    fn records(&self) -> &dyn AgentRecords {
        self
    }
    async fn user_writes(&self, user_id: &UserId) {
        self.user_writes(user_id);
    }
    async fn state(&self, user_id: &UserId) -> Option<ConversationState> {
        MemoryRecords::state(self, user_id)
    }
    async fn usage(&self, user_id: &UserId) -> Vec<TurnUsage> {
        MemoryRecords::usage(self, user_id)
    }
}

/// Runs every check, one after the other, on `subject`.
pub async fn run_all(subject: &dyn Subject) {
    leads_are_saved_once(subject).await;
    leads_are_listed_per_user_oldest_first(subject).await;
    a_slot_is_booked_once(subject).await;
    concurrent_bookings_of_one_slot_book_once(subject).await;
    appointments_between_is_the_range_in_order_across_days(subject).await;
    call_requests_are_saved_once_per_id(subject).await;
    set_state_moves_only_from_the_given_state(subject).await;
    concurrent_hand_offs_change_the_state_once(subject).await;
    set_state_of_an_unknown_conversation_is_not_found(subject).await;
    memory_is_the_default_until_saved(subject).await;
    usage_of_a_turn_is_kept_once(subject).await;
}

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

fn fresh_id(what: &str) -> String {
    format!("wamid.records.{}:{what}", uuid::Uuid::new_v4().simple())
}

/// Midnight UTC of a random day between 2033 and about 2170, so that no
/// two checks (or runs on one table) share slots.
fn fresh_day_ms() -> i64 {
    let day = i64::try_from(uuid::Uuid::new_v4().as_u128() % 50_000).expect("small");
    2_000_000_000_000 / DAY_MS * DAY_MS + day * DAY_MS
}

pub fn lead(user_id: &UserId, id: &str, at_ms: i64) -> Lead {
    Lead {
        id: id.to_string(),
        user_id: user_id.clone(),
        name: "Ana".into(),
        interest: "plan familiar".into(),
        notes: Some("prefiere la tarde".into()),
        created_at_ms: at_ms,
    }
}

pub fn appointment(user_id: &UserId, id: &str, start_ms: i64) -> Appointment {
    Appointment {
        id: id.to_string(),
        user_id: user_id.clone(),
        start_ms,
        end_ms: start_ms + HOUR_MS / 2,
        topic: "revisión".into(),
        created_at_ms: now_ms(),
    }
}

pub fn call_request(user_id: &UserId, id: &str, at_ms: i64) -> CallRequest {
    CallRequest {
        id: id.to_string(),
        user_id: user_id.clone(),
        phone_number_id: "pn-contract".into(),
        reason: "quiere hablar con ventas".into(),
        when_ms: Some(at_ms + HOUR_MS),
        language: "es".into(),
        state: CallRequestState::Requested,
        created_at_ms: at_ms,
        phone: None,
        campaign: None,
    }
}

pub fn turn_usage(user_id: &UserId, turn_id: &str, input_tokens: u64) -> TurnUsage {
    TurnUsage {
        turn_id: turn_id.to_string(),
        user_id: user_id.clone(),
        model: "bedrock:contract".into(),
        usage: Usage {
            input_tokens,
            output_tokens: 42,
        },
        model_calls: 2,
        tool_calls: 1,
        at_ms: now_ms(),
    }
}

pub async fn leads_are_saved_once(subject: &dyn Subject) {
    let store = subject.records();
    let wa = fresh_user_id();
    let first = lead(&wa, &fresh_id("lead"), now_ms());
    assert!(store.save_lead(&first).await.expect("save"));
    // A retried turn: same id, what the model said may differ.
    let retry = Lead {
        interest: "otra cosa".into(),
        created_at_ms: first.created_at_ms + 5_000,
        ..first.clone()
    };
    assert!(!store.save_lead(&retry).await.expect("save again"));
    assert_eq!(store.leads(&wa).await.expect("leads"), vec![first]);
}

pub async fn leads_are_listed_per_user_oldest_first(subject: &dyn Subject) {
    let store = subject.records();
    let (ana, bob) = (fresh_user_id(), fresh_user_id());
    let t = now_ms();
    // Ids that sort the other way round from their times.
    let newer = lead(&ana, &format!("a-{}", fresh_id("lead")), t + 1_000);
    let older = lead(&ana, &format!("b-{}", fresh_id("lead")), t);
    let other = lead(&bob, &fresh_id("lead"), t);
    for l in [&newer, &other, &older] {
        assert!(store.save_lead(l).await.expect("save"));
    }
    assert_eq!(store.leads(&ana).await.expect("leads"), vec![older, newer]);
    assert_eq!(store.leads(&bob).await.expect("leads"), vec![other]);
    assert!(store
        .leads(&fresh_user_id())
        .await
        .expect("leads")
        .is_empty());
}

pub async fn a_slot_is_booked_once(subject: &dyn Subject) {
    let store = subject.records();
    let (ana, bob) = (fresh_user_id(), fresh_user_id());
    let start = fresh_day_ms() + 10 * HOUR_MS;
    let mine = appointment(&ana, &fresh_id("appointment"), start);
    assert_eq!(store.book(&mine).await.expect("book"), BookOutcome::Booked);
    assert_eq!(
        store.book(&mine).await.expect("book again"),
        BookOutcome::AlreadyBooked,
        "the same appointment again is a retry"
    );
    let theirs = appointment(&bob, &fresh_id("appointment"), start);
    assert_eq!(
        store.book(&theirs).await.expect("book taken"),
        BookOutcome::Taken
    );
    // The loser changed nothing.
    assert_eq!(
        store
            .appointments_between(start, start + 1)
            .await
            .expect("between"),
        vec![mine]
    );
}

pub async fn concurrent_bookings_of_one_slot_book_once(subject: &dyn Subject) {
    let store = subject.records();
    for _ in 0..5 {
        let start = fresh_day_ms() + 9 * HOUR_MS;
        let a = appointment(&fresh_user_id(), &fresh_id("appointment"), start);
        let b = appointment(&fresh_user_id(), &fresh_id("appointment"), start);
        let (ra, rb) = tokio::join!(store.book(&a), store.book(&b));
        let outcomes = [ra.expect("book a"), rb.expect("book b")];
        assert!(
            outcomes.contains(&BookOutcome::Booked) && outcomes.contains(&BookOutcome::Taken),
            "one books, the other finds it taken: {outcomes:?}"
        );
        let held = store
            .appointments_between(start, start + 1)
            .await
            .expect("between");
        let winner = if outcomes[0] == BookOutcome::Booked {
            a
        } else {
            b
        };
        assert_eq!(held, vec![winner]);
    }
}

pub async fn appointments_between_is_the_range_in_order_across_days(subject: &dyn Subject) {
    let store = subject.records();
    let wa = fresh_user_id();
    let midnight = fresh_day_ms() + DAY_MS;
    let at = |offset_min: i64| midnight + offset_min * 60_000;
    // 22:00 and 23:00 of one day, 00:00, 00:30 and 01:00 of the next.
    let slots: Vec<Appointment> = [-120, -60, 0, 30, 60]
        .into_iter()
        .map(|m| appointment(&wa, &fresh_id("appointment"), at(m)))
        .collect();
    for i in [3, 0, 4, 2, 1] {
        assert_eq!(
            store.book(&slots[i]).await.expect("book"),
            BookOutcome::Booked
        );
    }
    // [23:00, 01:00): the start is in, the end is out.
    let found = store
        .appointments_between(at(-60), at(60))
        .await
        .expect("between");
    assert_eq!(found, slots[1..4].to_vec());
    assert!(store
        .appointments_between(at(61), at(120))
        .await
        .expect("between")
        .is_empty());
    assert!(store
        .appointments_between(at(0), at(0))
        .await
        .expect("empty range")
        .is_empty());
}

pub async fn call_requests_are_saved_once_per_id(subject: &dyn Subject) {
    let store = subject.records();
    let (ana, bob) = (fresh_user_id(), fresh_user_id());
    let t = now_ms();
    let first = call_request(&ana, &fresh_id("call"), t);
    // A number given in the chat (a user known by username) is kept.
    let second = CallRequest {
        when_ms: None,
        state: CallRequestState::Scheduled,
        phone: Some(fresh_user_id()),
        ..call_request(&ana, &fresh_id("call"), t + 1_000)
    };
    let other = call_request(&bob, &fresh_id("call"), t);
    assert!(store.save_call_request(&second).await.expect("save"));
    assert!(store.save_call_request(&first).await.expect("save"));
    assert!(store.save_call_request(&other).await.expect("save"));
    let retry = CallRequest {
        reason: "otra razón".into(),
        ..first.clone()
    };
    assert!(!store.save_call_request(&retry).await.expect("save again"));
    assert_eq!(
        store.call_requests(&ana).await.expect("list"),
        vec![first, second]
    );
    assert_eq!(store.call_requests(&bob).await.expect("list"), vec![other]);
}

pub async fn set_state_moves_only_from_the_given_state(subject: &dyn Subject) {
    use ConversationState::*;
    let store = subject.records();
    let wa = fresh_user_id();
    subject.user_writes(&wa).await;
    assert_eq!(subject.state(&wa).await, Some(Bot));

    assert!(store.set_state(&wa, Bot, PendingHuman).await.expect("set"));
    assert_eq!(subject.state(&wa).await, Some(PendingHuman));
    assert!(
        !store.set_state(&wa, Bot, PendingHuman).await.expect("set"),
        "not bot any more"
    );
    assert!(!store.set_state(&wa, Bot, Closed).await.expect("set"));
    assert_eq!(subject.state(&wa).await, Some(PendingHuman));

    // The user writes again while waiting for a person: still theirs.
    subject.user_writes(&wa).await;
    assert_eq!(subject.state(&wa).await, Some(PendingHuman));

    assert!(store
        .set_state(&wa, PendingHuman, Human)
        .await
        .expect("set"));
    assert_eq!(subject.state(&wa).await, Some(Human));
    assert!(store.set_state(&wa, Human, Bot).await.expect("set"));
    assert_eq!(subject.state(&wa).await, Some(Bot));
}

pub async fn concurrent_hand_offs_change_the_state_once(subject: &dyn Subject) {
    use ConversationState::*;
    let store = subject.records();
    let wa = fresh_user_id();
    subject.user_writes(&wa).await;
    let (a, b) = tokio::join!(
        store.set_state(&wa, Bot, PendingHuman),
        store.set_state(&wa, Bot, Human)
    );
    let (a, b) = (a.expect("set a"), b.expect("set b"));
    assert!(a != b, "exactly one changes it: {a} {b}");
    let want = if a { PendingHuman } else { Human };
    assert_eq!(subject.state(&wa).await, Some(want));
}

pub async fn set_state_of_an_unknown_conversation_is_not_found(subject: &dyn Subject) {
    use ConversationState::*;
    let wa = fresh_user_id();
    let r = subject.records().set_state(&wa, Bot, PendingHuman).await;
    assert!(matches!(r, Err(Error::NotFound(_))), "got {r:?}");
    assert_eq!(subject.state(&wa).await, None, "nothing was created");
}

pub async fn memory_is_the_default_until_saved(subject: &dyn Subject) {
    let store = subject.records();
    let (ana, bob) = (fresh_user_id(), fresh_user_id());
    assert_eq!(store.memory(&ana).await.expect("memory"), Memory::default());
    let first = Memory {
        summary: "Ana pregunta por el plan familiar.".into(),
        summarized_until_ms: now_ms(),
        language: Some("es".into()),
    };
    store.save_memory(&ana, &first).await.expect("save");
    assert_eq!(store.memory(&ana).await.expect("memory"), first);
    let second = Memory {
        summary: "Ana asks about the family plan; prefers English.".into(),
        summarized_until_ms: first.summarized_until_ms + 1_000,
        language: None,
    };
    store.save_memory(&ana, &second).await.expect("save");
    assert_eq!(store.memory(&ana).await.expect("memory"), second);
    assert_eq!(store.memory(&bob).await.expect("memory"), Memory::default());
}

pub async fn usage_of_a_turn_is_kept_once(subject: &dyn Subject) {
    let store = subject.records();
    let wa = fresh_user_id();
    let turn = fresh_id("turn");
    let first = turn_usage(&wa, &turn, 1_000);
    store.record_usage(&first).await.expect("record");
    store
        .record_usage(&turn_usage(&wa, &turn, 9_999))
        .await
        .expect("record again");
    let other = turn_usage(&wa, &fresh_id("turn"), 7);
    store.record_usage(&other).await.expect("record");
    let mut kept = subject.usage(&wa).await;
    kept.sort_by(|a, b| a.turn_id.cmp(&b.turn_id));
    let mut want = vec![first, other];
    want.sort_by(|a, b| a.turn_id.cmp(&b.turn_id));
    assert_eq!(kept, want);
    assert!(subject.usage(&fresh_user_id()).await.is_empty());
}
