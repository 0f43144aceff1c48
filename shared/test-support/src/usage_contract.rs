//! The behaviour every [`UsageLedger`] must show. The SQLite ledger, the
//! DynamoDB one and [`MemoryUsage`](crate::memory::MemoryUsage) run it.
//!
//! Each check uses fresh users and a random day far in the future, so runs
//! can share one DynamoDB table.

use domain::ports::{TurnNote, UsageLedger};
use domain::usage::{key, Sent, UsageEvent};

use super::store_contract::fresh_user_id;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Midday of a random day between 2200 and 2254 (UTC).
fn random_day_ms() -> i64 {
    let day = (uuid::Uuid::new_v4().as_u128() % 20_000) as i64;
    7_258_118_400_000 + day * DAY_MS + DAY_MS / 2
}

fn turn(user: &domain::UserId, id: &str, at_ms: i64) -> UsageEvent {
    let note = TurnNote {
        via: "model",
        model_calls: 1,
        model: "openai:gpt-4o-mini".into(),
        tokens_in: 900,
        tokens_out: 80,
        tools: vec!["kb_search"],
        ..TurnNote::default()
    };
    let sent = Sent {
        messages: 1,
        templates: 0,
    };
    UsageEvent::turn(user, id, at_ms, &note, sent, 30)
}

pub async fn run_all(ledger: &dyn UsageLedger) {
    an_event_counts_once_on_its_conversation_and_its_day(ledger).await;
    a_day_counts_each_conversation_once(ledger).await;
    days_come_in_order_within_the_range(ledger).await;
    the_log_keeps_turns_and_hand_offs_in_time_order(ledger).await;
}

pub async fn an_event_counts_once_on_its_conversation_and_its_day(ledger: &dyn UsageLedger) {
    let user = fresh_user_id();
    let at = random_day_ms();
    let event = turn(&user, "wamid.one", at);
    ledger.add(&event).await.expect("add");
    ledger.add(&event).await.expect("add again (a retry)");
    let mine = ledger.conversation(&user).await.expect("conversation");
    assert_eq!(mine, event.counters, "the conversation's counters");
    let day = event.day();
    let days = ledger.days(&day, &day).await.expect("days");
    assert_eq!(days.len(), 1, "{days:?}");
    assert_eq!(days[0].0, day);
    let mut expected = event.counters.clone();
    expected.insert(key::CONVERSATIONS.into(), 1);
    assert_eq!(days[0].1, expected, "the day's counters");
    assert!(
        ledger
            .conversation(&fresh_user_id())
            .await
            .expect("none")
            .is_empty(),
        "a user without usage has no counters"
    );
}

pub async fn a_day_counts_each_conversation_once(ledger: &dyn UsageLedger) {
    let (ana, bob) = (fresh_user_id(), fresh_user_id());
    let at = random_day_ms();
    ledger.add(&turn(&ana, "a1", at)).await.expect("ana 1");
    ledger
        .add(&turn(&ana, "a2", at + 1_000))
        .await
        .expect("ana 2");
    ledger
        .add(&UsageEvent::media(&ana, "a3", at + 2_000, "image"))
        .await
        .expect("ana's photo");
    ledger
        .add(&turn(&bob, "b1", at + 3_000))
        .await
        .expect("bob");
    let day = turn(&ana, "x", at).day();
    let days = ledger.days(&day, &day).await.expect("days");
    let counters = &days[0].1;
    assert_eq!(counters[key::CONVERSATIONS], 2);
    assert_eq!(counters[key::TURNS], 3);
    assert_eq!(counters["media.image"], 1);
    assert_eq!(counters["tool.kb_search"], 3);
    let ana_counters = ledger.conversation(&ana).await.expect("ana");
    assert_eq!(ana_counters[key::TURNS], 2);
    assert!(!ana_counters.contains_key(key::CONVERSATIONS));
}

pub async fn days_come_in_order_within_the_range(ledger: &dyn UsageLedger) {
    let user = fresh_user_id();
    let at = random_day_ms();
    for (i, offset) in [2, 0, 4].into_iter().enumerate() {
        let e = turn(&user, &format!("d{i}"), at + offset * DAY_MS);
        ledger.add(&e).await.expect("add");
    }
    let day = |offset: i64| domain::usage::day_of(at + offset * DAY_MS);
    let days = ledger.days(&day(0), &day(3)).await.expect("days");
    let listed: Vec<&str> = days.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        listed,
        [day(0), day(2)],
        "day 4 is outside, days 1 and 3 empty"
    );
}

pub async fn the_log_keeps_turns_and_hand_offs_in_time_order(ledger: &dyn UsageLedger) {
    let user = fresh_user_id();
    let at = random_day_ms();
    ledger
        .add(&UsageEvent::escalation(&user, "e1", at + 500, "asked"))
        .await
        .expect("hand-off");
    ledger.add(&turn(&user, "t1", at)).await.expect("turn");
    ledger
        .add(&UsageEvent::call(&user, "c1", at + 600, "completed", 61))
        .await
        .expect("a call: counted, not logged");
    ledger
        .add(&turn(&user, "t2", at + 10_000))
        .await
        .expect("later turn");
    let log = ledger.log(&user, at, at + 1_000).await.expect("log");
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].via, "model");
    assert_eq!(log[0].tools, ["kb_search"]);
    assert_eq!(log[0].tokens_in, 900);
    assert_eq!(log[1].escalation.as_deref(), Some("asked"));
    let all = ledger.log(&user, 0, i64::MAX).await.expect("all");
    assert_eq!(all.len(), 3);
    assert!(ledger
        .log(&fresh_user_id(), 0, i64::MAX)
        .await
        .expect("nobody's")
        .is_empty());
}
