//! The behaviour every [`ConversationStore`] must show. Both the SQLite store
//! (`adapters::local`) and the DynamoDB store (`adapters::aws`) run this same
//! suite, so the handlers can rely on it whichever store they are given.
//!
//! Every check uses fresh random `wa_id`s and wamids, so all checks can share
//! one store (and one DynamoDB table, across runs). Times are near the wall
//! clock, so TTL-based expiry never kicks in during a run.
//!
//! Conventions the suite pins down:
//! - a stored inbound message's `at_ms` and the conversation's
//!   `last_user_at_ms` are the message's `received_at_ms` (not Meta's
//!   `sent_at_ms`);
//! - a conversation's `contact_name` is replaced by a newer known name and
//!   kept when a message carries none;
//! - an outbound message starts with `delivery == Some(Accepted)`;
//! - a status equal to or older than the known one is `Stale`.

use domain::ports::{Clock, ConversationStore, SystemClock};
use domain::whatsapp::outbound::{OutboundMessage, ReplyButton};
use domain::*;

/// Runs every check, one after the other, on `store`.
pub async fn run_all(store: &dyn ConversationStore) {
    record_inbound_is_deduplicated(store).await;
    duplicates_report_enqueue(store).await;
    concurrent_record_inbound_records_once(store).await;
    conversation_is_created_and_refreshed(store).await;
    window_reopens_on_new_inbound(store).await;
    pending_inbound_is_unanswered_turn_starters_oldest_first(store).await;
    recent_messages_are_bounded_and_oldest_first(store).await;
    claim_turn_is_atomic(store).await;
    concurrent_claims_claim_once(store).await;
    record_sent_part_is_idempotent(store).await;
    complete_turn_answers_inbound(store).await;
    apply_status_moves_forward_only(store).await;
    apply_status_records_failure(store).await;
    apply_status_of_unknown_wamid(store).await;
    record_outbound_appears_in_transcript(store).await;
    list_conversations_most_recent_first(store).await;
    transcript_pages_oldest_first(store).await;
}

/// A `wa_id` no other check (or run) uses: 12 digits, no leading zero.
pub fn fresh_user_id() -> UserId {
    let n = uuid::Uuid::new_v4().as_u128() % 100_000_000_000;
    UserId::parse(&format!("1{n:011}")).expect("generated wa_id is valid")
}

pub fn fresh_wamid() -> String {
    format!("wamid.contract.{}", uuid::Uuid::new_v4().simple())
}

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// A text message from `wa_id`, received at `at_ms` (Meta stamped it a bit
/// earlier, so a store using the wrong timestamp is caught).
pub fn inbound(user_id: &UserId, at_ms: i64, starts_turn: bool) -> NewInbound {
    let wamid = fresh_wamid();
    NewInbound {
        wamid: wamid.clone(),
        user_id: user_id.clone(),
        phone_number_id: "pn-contract".into(),
        contact_name: Some("Ana".into()),
        kind: if starts_turn { "text" } else { "reaction" }.into(),
        text: format!("hola {wamid}"),
        payload: serde_json::json!({ "id": wamid, "type": "text", "text": { "body": "hola" } }),
        sent_at_ms: at_ms - 1_500,
        received_at_ms: at_ms,
        starts_turn,
    }
}

pub fn sent(at_ms: i64, text: &str) -> SentRecord {
    SentRecord {
        wamid: fresh_wamid(),
        kind: "text".into(),
        text: text.into(),
        at_ms,
    }
}

fn turn(
    user_id: &UserId,
    inbound: Vec<String>,
    replies: Vec<OutboundMessage>,
    at_ms: i64,
) -> TurnRecord {
    TurnRecord {
        turn_id: inbound.first().cloned().unwrap_or_else(fresh_wamid),
        user_id: user_id.clone(),
        phone_number_id: "pn-contract".into(),
        inbound,
        replies,
        sent_parts: 0,
        state: TurnState::Claimed,
        created_at_ms: at_ms,
    }
}

fn two_replies() -> Vec<OutboundMessage> {
    vec![
        OutboundMessage::Text {
            body: "Hola, ¿en qué te ayudo?".into(),
        },
        OutboundMessage::Buttons {
            body: "Elige".into(),
            buttons: vec![
                ReplyButton {
                    id: "menu".into(),
                    title: "Menú".into(),
                },
                ReplyButton {
                    id: "hours".into(),
                    title: "Horarios".into(),
                },
            ],
            footer: None,
        },
    ]
}

/// The whole transcript, following cursors.
async fn full_transcript(store: &dyn ConversationStore, user_id: &UserId) -> Vec<StoredMessage> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let page = store
            .transcript(user_id, 50, cursor.as_deref())
            .await
            .expect("transcript");
        all.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
    panic!("transcript cursor never ends");
}

async fn message(store: &dyn ConversationStore, user_id: &UserId, wamid: &str) -> StoredMessage {
    let all = full_transcript(store, user_id).await;
    let found: Vec<_> = all.into_iter().filter(|m| m.wamid == wamid).collect();
    assert_eq!(
        found.len(),
        1,
        "{wamid} appears exactly once in the transcript"
    );
    found.into_iter().next().expect("one message")
}

fn wamids(messages: &[StoredMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.wamid.as_str()).collect()
}

pub async fn record_inbound_is_deduplicated(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    let m = inbound(&wa, now_ms(), true);
    assert_eq!(
        store.record_inbound(&m).await.expect("record"),
        RecordOutcome::Recorded
    );
    assert_eq!(
        store.record_inbound(&m).await.expect("record again"),
        RecordOutcome::Duplicate { enqueued: false }
    );
    let stored = message(store, &wa, &m.wamid).await;
    assert_eq!(stored.direction, Direction::Inbound);
    assert_eq!(stored.kind, m.kind);
    assert_eq!(stored.text, m.text);
    assert_eq!(stored.at_ms, m.received_at_ms);
    assert!(!stored.answered);
    assert!(stored.starts_turn);
    assert_eq!(stored.delivery, None);
}

pub async fn duplicates_report_enqueue(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    let m = inbound(&wa, now_ms(), true);
    assert_eq!(
        store.record_inbound(&m).await.expect("record"),
        RecordOutcome::Recorded
    );
    store.mark_enqueued(&m.wamid).await.expect("mark enqueued");
    assert_eq!(
        store.record_inbound(&m).await.expect("record again"),
        RecordOutcome::Duplicate { enqueued: true }
    );
    // Marking twice is harmless.
    store
        .mark_enqueued(&m.wamid)
        .await
        .expect("mark enqueued again");
    assert_eq!(
        store.record_inbound(&m).await.expect("record a third time"),
        RecordOutcome::Duplicate { enqueued: true }
    );
    // Another message of the same user is not affected.
    let other = inbound(&wa, now_ms() + 1, true);
    assert_eq!(
        store.record_inbound(&other).await.expect("record"),
        RecordOutcome::Recorded
    );
    assert_eq!(
        store.record_inbound(&other).await.expect("record again"),
        RecordOutcome::Duplicate { enqueued: false }
    );
}

pub async fn concurrent_record_inbound_records_once(store: &dyn ConversationStore) {
    for _ in 0..3 {
        let wa = fresh_user_id();
        let m = inbound(&wa, now_ms(), true);
        let (a, b, c, d) = tokio::join!(
            store.record_inbound(&m),
            store.record_inbound(&m),
            store.record_inbound(&m),
            store.record_inbound(&m),
        );
        let outcomes = [a, b, c, d].map(|r| r.expect("record"));
        let recorded = outcomes
            .iter()
            .filter(|o| **o == RecordOutcome::Recorded)
            .count();
        assert_eq!(
            recorded, 1,
            "exactly one concurrent write records: {outcomes:?}"
        );
        let all = full_transcript(store, &wa).await;
        assert_eq!(wamids(&all), vec![m.wamid.as_str()]);
    }
}

pub async fn conversation_is_created_and_refreshed(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    assert_eq!(store.conversation(&wa).await.expect("read"), None);
    let t = now_ms();
    let first = inbound(&wa, t, true);
    store.record_inbound(&first).await.expect("record");
    let c = store
        .conversation(&wa)
        .await
        .expect("read")
        .expect("created");
    assert_eq!(c.user_id, wa);
    assert_eq!(c.phone_number_id, "pn-contract");
    assert_eq!(c.contact_name.as_deref(), Some("Ana"));
    assert_eq!(c.state, ConversationState::Bot);
    assert_eq!(c.last_user_at_ms, t);
    assert_eq!(c.last_message_at_ms, t);
    assert!(!c.window_closed);

    let mut renamed = inbound(&wa, t + 1_000, true);
    renamed.contact_name = Some("Ana María".into());
    store.record_inbound(&renamed).await.expect("record");
    let c = store
        .conversation(&wa)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(c.contact_name.as_deref(), Some("Ana María"));
    assert_eq!(c.last_user_at_ms, t + 1_000);

    let mut nameless = inbound(&wa, t + 2_000, false);
    nameless.contact_name = None;
    store.record_inbound(&nameless).await.expect("record");
    let c = store
        .conversation(&wa)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        c.contact_name.as_deref(),
        Some("Ana María"),
        "a missing name keeps the known one"
    );
    assert_eq!(c.last_user_at_ms, t + 2_000);
    assert_eq!(c.last_message_at_ms, t + 2_000);

    // A duplicate changes nothing.
    store.record_inbound(&first).await.expect("duplicate");
    let again = store
        .conversation(&wa)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(again.last_user_at_ms, t + 2_000);
}

pub async fn window_reopens_on_new_inbound(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    let t = now_ms();
    store
        .record_inbound(&inbound(&wa, t, true))
        .await
        .expect("record");
    store.close_window(&wa).await.expect("close");
    let c = store
        .conversation(&wa)
        .await
        .expect("read")
        .expect("exists");
    assert!(c.window_closed);
    assert!(!c.window_open(t + 1));
    store
        .record_inbound(&inbound(&wa, t + 1_000, true))
        .await
        .expect("record");
    let c = store
        .conversation(&wa)
        .await
        .expect("read")
        .expect("exists");
    assert!(!c.window_closed, "a new user message reopens the window");
    assert!(c.window_open(t + 2_000));
}

pub async fn pending_inbound_is_unanswered_turn_starters_oldest_first(
    store: &dyn ConversationStore,
) {
    let wa = fresh_user_id();
    let t = now_ms();
    let m1 = inbound(&wa, t, true);
    let reaction = inbound(&wa, t + 1_000, false);
    let m3 = inbound(&wa, t + 2_000, true);
    // Meta may deliver out of order: the order is by time, not by arrival.
    store.record_inbound(&m3).await.expect("record");
    store.record_inbound(&reaction).await.expect("record");
    store.record_inbound(&m1).await.expect("record");
    store
        .record_outbound(&wa, &sent(t + 1_500, "eco"))
        .await
        .expect("outbound");
    let pending = store.pending_inbound(&wa).await.expect("pending");
    assert_eq!(wamids(&pending), vec![m1.wamid.as_str(), m3.wamid.as_str()]);
    assert!(pending
        .iter()
        .all(|m| m.direction == Direction::Inbound && !m.answered));

    // Another user's messages never show.
    let other = fresh_user_id();
    store
        .record_inbound(&inbound(&other, t, true))
        .await
        .expect("record");
    assert_eq!(store.pending_inbound(&wa).await.expect("pending").len(), 2);
    assert!(store
        .pending_inbound(&fresh_user_id())
        .await
        .expect("pending")
        .is_empty());
}

pub async fn recent_messages_are_bounded_and_oldest_first(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    let t = now_ms();
    let mut expected = Vec::new();
    for i in 0..6 {
        let at = t + i * 1_000;
        if i % 2 == 0 {
            let m = inbound(&wa, at, true);
            store.record_inbound(&m).await.expect("record");
            expected.push(m.wamid);
        } else {
            let s = sent(at, &format!("respuesta {i}"));
            store.record_outbound(&wa, &s).await.expect("outbound");
            expected.push(s.wamid);
        }
    }
    let last3 = store.recent_messages(&wa, 3).await.expect("recent");
    assert_eq!(
        wamids(&last3),
        expected[3..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(last3[0].direction, Direction::Outbound);
    assert_eq!(last3[1].direction, Direction::Inbound);
    let all = store.recent_messages(&wa, 100).await.expect("recent");
    assert_eq!(
        wamids(&all),
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(store
        .recent_messages(&fresh_user_id(), 5)
        .await
        .expect("recent")
        .is_empty());
}

pub async fn claim_turn_is_atomic(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    let t = now_ms();
    let m = inbound(&wa, t, true);
    store.record_inbound(&m).await.expect("record");
    let claimed = turn(&wa, vec![m.wamid.clone()], two_replies(), t + 10);
    assert_eq!(
        store.claim_turn(&claimed).await.expect("claim"),
        ClaimOutcome::Claimed
    );
    // A retry with a different answer gets the first one back.
    let retry = TurnRecord {
        replies: OutboundMessage::texts("otra respuesta"),
        created_at_ms: t + 20,
        ..claimed.clone()
    };
    assert_eq!(
        store.claim_turn(&retry).await.expect("claim again"),
        ClaimOutcome::Existing(claimed.clone())
    );
    // Turn ids are per user: the same id for another user is another turn.
    let other = fresh_user_id();
    let elsewhere = TurnRecord {
        user_id: other,
        ..claimed.clone()
    };
    assert_eq!(
        store.claim_turn(&elsewhere).await.expect("claim"),
        ClaimOutcome::Claimed
    );
}

pub async fn concurrent_claims_claim_once(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    let t = now_ms();
    let m = inbound(&wa, t, true);
    store.record_inbound(&m).await.expect("record");
    let a = turn(&wa, vec![m.wamid.clone()], OutboundMessage::texts("a"), t);
    let b = turn(&wa, vec![m.wamid.clone()], OutboundMessage::texts("b"), t);
    let (ra, rb) = tokio::join!(store.claim_turn(&a), store.claim_turn(&b));
    match (ra.expect("claim a"), rb.expect("claim b")) {
        (ClaimOutcome::Claimed, ClaimOutcome::Existing(e)) => assert_eq!(e, a),
        (ClaimOutcome::Existing(e), ClaimOutcome::Claimed) => assert_eq!(e, b),
        other => panic!("exactly one concurrent claim wins: {other:?}"),
    }
}

pub async fn record_sent_part_is_idempotent(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    let t = now_ms();
    let m = inbound(&wa, t, true);
    store.record_inbound(&m).await.expect("record");
    let claimed = turn(&wa, vec![m.wamid.clone()], two_replies(), t + 10);
    store.claim_turn(&claimed).await.expect("claim");

    let part0 = sent(t + 100, "Hola, ¿en qué te ayudo?");
    store
        .record_sent_part(&wa, &claimed.turn_id, 0, &part0)
        .await
        .expect("part 0");
    let ClaimOutcome::Existing(after0) = store.claim_turn(&claimed).await.expect("read back")
    else {
        panic!("the turn exists");
    };
    assert_eq!(after0.sent_parts, 1);
    assert_eq!(after0.state, TurnState::Claimed);
    assert_eq!(after0.replies, claimed.replies);

    // The same part again (a retry after a crash before the ack) is Ok.
    store
        .record_sent_part(&wa, &claimed.turn_id, 0, &part0)
        .await
        .expect("part 0 again");
    let out = message(store, &wa, &part0.wamid).await;
    assert_eq!(out.direction, Direction::Outbound);
    assert_eq!(out.text, part0.text);
    assert_eq!(out.at_ms, part0.at_ms);
    assert_eq!(out.delivery, Some(Delivery::Accepted));

    let part1 = sent(t + 200, "Elige [Menú | Horarios]");
    store
        .record_sent_part(&wa, &claimed.turn_id, 1, &part1)
        .await
        .expect("part 1");
    // A late retry of an earlier part never moves the count back.
    store
        .record_sent_part(&wa, &claimed.turn_id, 0, &part0)
        .await
        .expect("part 0 late");
    let ClaimOutcome::Existing(after1) = store.claim_turn(&claimed).await.expect("read back")
    else {
        panic!("the turn exists");
    };
    assert_eq!(after1.sent_parts, 2);
    let all = full_transcript(store, &wa).await;
    assert_eq!(
        wamids(&all),
        vec![m.wamid.as_str(), part0.wamid.as_str(), part1.wamid.as_str()]
    );
}

pub async fn complete_turn_answers_inbound(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    let t = now_ms();
    let m1 = inbound(&wa, t, true);
    let m2 = inbound(&wa, t + 1_000, true);
    store.record_inbound(&m1).await.expect("record");
    store.record_inbound(&m2).await.expect("record");
    let ids = vec![m1.wamid.clone(), m2.wamid.clone()];
    let claimed = turn(&wa, ids.clone(), OutboundMessage::texts("listo"), t + 2_000);
    store.claim_turn(&claimed).await.expect("claim");
    assert_eq!(store.pending_inbound(&wa).await.expect("pending").len(), 2);
    store
        .record_sent_part(&wa, &claimed.turn_id, 0, &sent(t + 2_100, "listo"))
        .await
        .expect("part");
    store
        .complete_turn(&wa, &claimed.turn_id, &ids)
        .await
        .expect("complete");
    assert!(store
        .pending_inbound(&wa)
        .await
        .expect("pending")
        .is_empty());
    assert!(message(store, &wa, &m1.wamid).await.answered);
    assert!(message(store, &wa, &m2.wamid).await.answered);
    let ClaimOutcome::Existing(done) = store.claim_turn(&claimed).await.expect("read back") else {
        panic!("the turn exists");
    };
    assert_eq!(done.state, TurnState::Sent);
    assert_eq!(done.sent_parts, 1);
    // Completing again is harmless.
    store
        .complete_turn(&wa, &claimed.turn_id, &ids)
        .await
        .expect("complete again");

    // A message that arrived after the turn stays pending.
    let m3 = inbound(&wa, t + 3_000, true);
    store.record_inbound(&m3).await.expect("record");
    let pending = store.pending_inbound(&wa).await.expect("pending");
    assert_eq!(wamids(&pending), vec![m3.wamid.as_str()]);
}

pub async fn apply_status_moves_forward_only(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    let t = now_ms();
    store
        .record_inbound(&inbound(&wa, t, true))
        .await
        .expect("record");
    let out = sent(t + 100, "hola");
    store.record_outbound(&wa, &out).await.expect("outbound");
    let status = |delivery, at_ms| StatusUpdate {
        wamid: out.wamid.clone(),
        delivery,
        at_ms,
        error_code: None,
    };
    for (d, at) in [
        (Delivery::Sent, t + 200),
        (Delivery::Delivered, t + 300),
        (Delivery::Read, t + 400),
    ] {
        assert_eq!(
            store.apply_status(&status(d, at)).await.expect("apply"),
            StatusOutcome::Applied,
            "{d:?}"
        );
        let m = message(store, &wa, &out.wamid).await;
        assert_eq!(m.delivery, Some(d));
        assert_eq!(m.delivery_at_ms, Some(at));
    }
    assert_eq!(
        store
            .apply_status(&status(Delivery::Delivered, t + 500))
            .await
            .expect("apply"),
        StatusOutcome::Stale
    );
    assert_eq!(
        store
            .apply_status(&status(Delivery::Read, t + 600))
            .await
            .expect("apply"),
        StatusOutcome::Stale,
        "a repeated status is stale"
    );
    let m = message(store, &wa, &out.wamid).await;
    assert_eq!(m.delivery, Some(Delivery::Read));
    assert_eq!(m.delivery_at_ms, Some(t + 400));
}

pub async fn apply_status_records_failure(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    let t = now_ms();
    store
        .record_inbound(&inbound(&wa, t, true))
        .await
        .expect("record");
    let out = sent(t + 100, "hola");
    store.record_outbound(&wa, &out).await.expect("outbound");
    let failed = StatusUpdate {
        wamid: out.wamid.clone(),
        delivery: Delivery::Failed,
        at_ms: t + 200,
        error_code: Some(131047),
    };
    assert_eq!(
        store.apply_status(&failed).await.expect("apply"),
        StatusOutcome::Applied
    );
    let m = message(store, &wa, &out.wamid).await;
    assert_eq!(m.delivery, Some(Delivery::Failed));
    assert_eq!(m.error_code, Some(131047));
    assert_eq!(m.delivery_at_ms, Some(t + 200));
    let late = StatusUpdate {
        delivery: Delivery::Delivered,
        at_ms: t + 300,
        error_code: None,
        ..failed
    };
    assert_eq!(
        store.apply_status(&late).await.expect("apply"),
        StatusOutcome::Stale
    );
    assert_eq!(
        message(store, &wa, &out.wamid).await.error_code,
        Some(131047)
    );
}

pub async fn apply_status_of_unknown_wamid(store: &dyn ConversationStore) {
    let update = StatusUpdate {
        wamid: fresh_wamid(),
        delivery: Delivery::Delivered,
        at_ms: now_ms(),
        error_code: None,
    };
    assert_eq!(
        store.apply_status(&update).await.expect("apply"),
        StatusOutcome::Unknown
    );
}

pub async fn record_outbound_appears_in_transcript(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    let t = now_ms();
    let m = inbound(&wa, t, true);
    store.record_inbound(&m).await.expect("record");
    let template = SentRecord {
        wamid: fresh_wamid(),
        kind: "template".into(),
        text: "[template hello_world]".into(),
        at_ms: t + 100,
    };
    store
        .record_outbound(&wa, &template)
        .await
        .expect("outbound");
    // Recording the same message again is harmless.
    store
        .record_outbound(&wa, &template)
        .await
        .expect("outbound again");
    let all = full_transcript(store, &wa).await;
    assert_eq!(
        wamids(&all),
        vec![m.wamid.as_str(), template.wamid.as_str()]
    );
    let out = &all[1];
    assert_eq!(out.direction, Direction::Outbound);
    assert_eq!(out.kind, "template");
    assert_eq!(out.text, "[template hello_world]");
    assert_eq!(out.at_ms, t + 100);
    assert_eq!(out.delivery, Some(Delivery::Accepted));
    assert!(!out.starts_turn);
    // Outbound messages never ask for an answer.
    assert_eq!(
        wamids(&store.pending_inbound(&wa).await.expect("pending")),
        vec![m.wamid.as_str()]
    );
}

pub async fn list_conversations_most_recent_first(store: &dyn ConversationStore) {
    // Far in the future and growing with the wall clock, so these three are
    // the most recent conversations in a shared store, and a later run's are
    // more recent still.
    let base = 4_000_000_000_000 + now_ms();
    let ours: Vec<UserId> = (0..3).map(|_| fresh_user_id()).collect();
    for (i, wa) in ours.iter().enumerate() {
        store
            .record_inbound(&inbound(wa, base + i as i64 * 1_000, true))
            .await
            .expect("record");
    }
    let newest_first: Vec<&UserId> = ours.iter().rev().collect();

    let mut seen: Vec<Conversation> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let page = store
            .list_conversations(2, cursor.as_deref())
            .await
            .expect("list");
        assert!(page.items.len() <= 2, "a page holds at most `limit` items");
        seen.extend(page.items);
        let found = newest_first
            .iter()
            .filter(|w| seen.iter().any(|c| &c.user_id == **w))
            .count();
        if found == 3 {
            break;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut ids: Vec<&UserId> = seen.iter().map(|c| &c.user_id).collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        total,
        "no conversation appears twice across pages"
    );
    for pair in seen.windows(2) {
        assert!(
            pair[0].last_message_at_ms >= pair[1].last_message_at_ms,
            "most recent first"
        );
    }
    let order: Vec<&UserId> = seen
        .iter()
        .map(|c| &c.user_id)
        .filter(|w| ours.contains(w))
        .collect();
    assert_eq!(order, newest_first, "all three found, most recent first");
    let newest = seen
        .iter()
        .find(|c| c.user_id == ours[2])
        .expect("found above");
    assert_eq!(newest.last_message_at_ms, base + 2_000);
}

pub async fn transcript_pages_oldest_first(store: &dyn ConversationStore) {
    let wa = fresh_user_id();
    let t = now_ms();
    let mut expected = Vec::new();
    for i in 0..5 {
        let m = inbound(&wa, t + i * 1_000, true);
        store.record_inbound(&m).await.expect("record");
        expected.push(m.wamid);
    }
    let first = store.transcript(&wa, 2, None).await.expect("page 1");
    assert_eq!(
        wamids(&first.items),
        vec![expected[0].as_str(), expected[1].as_str()]
    );
    let mut all = first.items;
    let mut cursor = first.next;
    let mut pages = 1;
    while let Some(c) = cursor {
        let page = store.transcript(&wa, 2, Some(&c)).await.expect("page");
        assert!(page.items.len() <= 2);
        all.extend(page.items);
        cursor = page.next;
        pages += 1;
        assert!(pages <= 4, "the cursor ends");
    }
    assert_eq!(
        wamids(&all),
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let second = store.transcript(&wa, 2, None).await.expect("page 1 again");
    let third = store
        .transcript(&wa, 2, second.next.as_deref())
        .await
        .expect("page 2");
    assert_eq!(
        wamids(&third.items),
        vec![expected[2].as_str(), expected[3].as_str()]
    );
    assert!(store
        .transcript(&fresh_user_id(), 10, None)
        .await
        .expect("empty")
        .items
        .is_empty());
}
