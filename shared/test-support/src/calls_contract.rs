//! What every [`CallRecords`] adapter must do.

use domain::ports::CallRecords;
use domain::voice::*;
use domain::UserId;

/// A fresh record for `request_id`, version 1, dialing.
pub fn record(request_id: &str) -> CallRecord {
    CallRecord {
        context: CallContext {
            request_id: request_id.to_string(),
            user_id: UserId::parse("5491155550123").unwrap_or_else(|_| unreachable!()),
            phone_number_id: "PN1".into(),
            customer_name: Some("Ana Núñez".into()),
            language: "es".into(),
            summary: "Quiere el plan anual; preguntó por precios.".into(),
            interest: Some("plan anual".into()),
            reason: "the user asked to be called".into(),
            phone: None,
            campaign: None,
        },
        provider: ProviderKind::Vapi,
        phase: CallPhase::Dialing,
        attempts: 1,
        call_id: None,
        due_at_ms: None,
        outcome: None,
        ended_reason: None,
        summary: None,
        followed_up: false,
        version: 1,
        created_at_ms: 1_000,
        updated_at_ms: 1_000,
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub async fn run_all(records: &dyn CallRecords) {
    creates_once(records).await;
    updates_are_conditional_on_the_version(records).await;
    scheduled_records_come_due(records).await;
    events_are_marked_once(records).await;
}

pub async fn creates_once(records: &dyn CallRecords) {
    let id = unique("t:call");
    let r = record(&id);
    assert!(records.create(&r).await.expect("create"));
    let mut other = record(&id);
    other.context.reason = "a second try".into();
    assert!(!records.create(&other).await.expect("create again"));
    assert_eq!(records.get(&id).await.expect("get"), Some(r));
    assert_eq!(records.get(&unique("none")).await.expect("get"), None);
}

pub async fn updates_are_conditional_on_the_version(records: &dyn CallRecords) {
    let id = unique("t:call");
    let r = record(&id);
    assert!(records.create(&r).await.expect("create"));
    let mut a = r.next(2_000);
    a.call_id = Some("call-a".into());
    let mut b = r.next(2_001);
    b.call_id = Some("call-b".into());
    assert!(records.update(&r, &a).await.expect("update a"));
    assert!(!records.update(&r, &b).await.expect("update b loses"));
    let stored = records.get(&id).await.expect("get").expect("there");
    assert_eq!(stored.call_id.as_deref(), Some("call-a"));
    assert_eq!(stored.version, 2);
    // A record that was never created cannot be updated into being.
    let ghost = record(&unique("ghost"));
    assert!(!records
        .update(&ghost, &ghost.next(3))
        .await
        .expect("update ghost"));
}

pub async fn scheduled_records_come_due(records: &dyn CallRecords) {
    // Far in the future, so that other tests' records sharing the store
    // (DynamoDB: one table for the run) are not in the way.
    let base = 9_000_000_000_000 + i64::from(uuid::Uuid::new_v4().as_fields().1) * 1_000_000;
    let mut ids = Vec::new();
    for (i, due) in [base + 300, base + 100, base + 200].into_iter().enumerate() {
        let mut r = record(&unique(&format!("due{i}")));
        r.phase = CallPhase::Scheduled;
        r.due_at_ms = Some(due);
        assert!(records.create(&r).await.expect("create"));
        ids.push(r);
    }
    let due: Vec<i64> = records
        .due(base + 250, 10)
        .await
        .expect("due")
        .iter()
        .filter(|r| r.due_at_ms.is_some_and(|d| d >= base))
        .filter_map(|r| r.due_at_ms)
        .collect();
    assert_eq!(due, vec![base + 100, base + 200]);
    // Once dialing it is not due any more; a later schedule moves it.
    let first = &ids[1];
    let mut dialing = first.next(5);
    dialing.phase = CallPhase::Dialing;
    dialing.due_at_ms = None;
    assert!(records.update(first, &dialing).await.expect("update"));
    let mut again = dialing.next(6);
    again.phase = CallPhase::Scheduled;
    again.due_at_ms = Some(base + 400);
    assert!(records.update(&dialing, &again).await.expect("update"));
    let due: Vec<String> = records
        .due(base + 1_000, 10)
        .await
        .expect("due")
        .into_iter()
        .filter(|r| r.due_at_ms.is_some_and(|d| d >= base))
        .map(|r| r.context.request_id)
        .collect();
    assert_eq!(
        due,
        vec![
            ids[2].context.request_id.clone(),
            ids[0].context.request_id.clone(),
            again.context.request_id.clone()
        ]
    );
    assert!(records.due(base + 1_000, 1).await.expect("due").len() <= 1);
}

pub async fn events_are_marked_once(records: &dyn CallRecords) {
    let key = unique("vapi:call:ended");
    assert!(records.mark_event(&key, 1).await.expect("mark"));
    assert!(!records.mark_event(&key, 2).await.expect("mark again"));
}
