//! The escalation records on both stores (SQLite, and DynamoDB on moto's
//! server) against one contract, and the SQS timers on moto.

use aws_adapters::{DynamoEscalations, DynamoStore, SqsTimers};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use domain::escalation::{Decision, Reason};
use domain::handoff::{DecisionRecord, EscalationRecord, OpenEscalation};
use domain::ports::{DeskRef, EscalationRecords, Timers};
use domain::UserId;
use embedded::SqliteEscalations;

fn moto_endpoint() -> String {
    match std::env::var("MOTO_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_string(),
        _ => panic!("MOTO_ENDPOINT not set: run scripts/test, which starts moto"),
    }
}

async fn moto_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region("us-east-1")
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// What every [`EscalationRecords`] must do.
async fn contract(r: &dyn EscalationRecords) {
    let wa = UserId::parse("5491155551234").expect("wa id");
    // Records: written only on the version read.
    let (rec, v) = r.escalation(&wa).await.expect("reads");
    assert_eq!((rec.clone(), v), (EscalationRecord::default(), 0));
    let mut next = rec.clone();
    next.open = Some(OpenEscalation {
        id: "t1:policy".into(),
        reasons: vec![Reason::RepeatedFallbacks { streak: 2 }],
        opened_at_ms: 5,
        human_joined: false,
        no_human_told: false,
    });
    next.desk = Some(DeskRef {
        conversation_id: 57,
        contact_id: 31,
    });
    assert!(r.save_escalation(&wa, &next, 0).await.expect("saves"));
    assert!(!r.save_escalation(&wa, &rec, 0).await.expect("loses"));
    let (got, v) = r.escalation(&wa).await.expect("reads");
    assert_eq!((got.clone(), v), (next.clone(), 1));
    let mut closed = got;
    closed.open = None;
    assert!(r.save_escalation(&wa, &closed, 1).await.expect("saves"));
    assert!(!r.save_escalation(&wa, &next, 1).await.expect("stale"));
    assert_eq!(r.escalation(&wa).await.expect("reads").1, 2);

    // Decisions: once per turn, oldest first.
    let d = |turn: &str, at: i64| DecisionRecord {
        user_id: wa.clone(),
        turn_id: turn.into(),
        decision: Decision {
            escalate: true,
            reasons: vec![Reason::AskedForPerson {
                phrase: "real person".into(),
            }],
        },
        sentiment: Some("negative".into()),
        negative: Some(0.9),
        at_ms: at,
    };
    r.record_decision(&d("t2", 20)).await.expect("records");
    r.record_decision(&d("t1", 10)).await.expect("records");
    r.record_decision(&d("t1", 99)).await.expect("again");
    let all = r.decisions(&wa).await.expect("reads");
    assert_eq!(all, vec![d("t1", 10), d("t2", 20)]);

    // Claims: one winner; given back, taken again.
    let key = unique("chatwoot:message");
    assert!(!r.claimed(&key).await.expect("reads"));
    assert!(r.claim(&key, 1_000).await.expect("claims"));
    assert!(!r.claim(&key, 2_000).await.expect("claims"));
    assert!(r.claimed(&key).await.expect("reads"));
    r.release(&key).await.expect("releases");
    assert!(r.claim(&key, 3_000).await.expect("claims again"));

    // Desk conversations map back to their user.
    assert_eq!(r.desk_owner(4242).await.expect("reads"), None);
    let desk = DeskRef {
        conversation_id: 4242,
        contact_id: 9,
    };
    r.link_desk(&desk, &wa).await.expect("links");
    r.link_desk(&desk, &wa).await.expect("links again");
    assert_eq!(r.desk_owner(4242).await.expect("reads"), Some(wa));
}

#[tokio::test]
async fn sqlite_escalation_records_keep_the_contract() {
    contract(&SqliteEscalations::open_in_memory().expect("opens")).await;
}

#[tokio::test]
async fn dynamodb_escalation_records_keep_the_contract_on_moto() {
    let config = moto_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("charla-esc");
    DynamoStore::new(client.clone(), table.clone())
        .create_table()
        .await
        .expect("table");
    contract(&DynamoEscalations::new(client, table)).await;
}

#[tokio::test]
async fn sqs_timers_deliver_after_their_delay_on_moto() {
    let config = moto_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs
        .create_queue()
        .queue_name(unique("charla-timers"))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let timers = SqsTimers::new(sqs.clone(), url.clone());
    timers
        .schedule("{\"kind\":\"x\"}", 1_500)
        .await
        .expect("schedules");
    // Longer than SQS allows: capped, not refused.
    timers
        .schedule("{\"kind\":\"y\"}", 3_600_000)
        .await
        .expect("capped");
    let receive = || async {
        sqs.receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    };
    assert!(receive().await.is_empty(), "not before its delay");
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    let got = receive().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body.as_deref(), Some("{\"kind\":\"x\"}"));
}
