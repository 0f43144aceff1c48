//! The voice call records on moto's DynamoDB (the store's own table).
//! Needs `MOTO_ENDPOINT` (scripts/moto.sh start); fails without it.

use aws_adapters::{DynamoCallRecords, DynamoStore};
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::Credentials;
use domain::ports::CallRecords;
use test_support::calls_contract;

async fn records() -> DynamoCallRecords {
    let endpoint = match std::env::var("MOTO_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => panic!("MOTO_ENDPOINT not set: run scripts/moto.sh start"),
    };
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region("us-east-1")
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await;
    let table = format!("charla-calls-{}", uuid::Uuid::new_v4().simple());
    let client = aws_sdk_dynamodb::Client::new(&config);
    DynamoStore::new(client.clone(), &table)
        .create_table()
        .await
        .expect("create table");
    DynamoCallRecords::new(client, table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_call_records_pass_the_contract() {
    calls_contract::run_all(&records().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_of_one_record_let_exactly_one_win() {
    let records = records().await;
    let r = calls_contract::record("race:call");
    assert!(records.create(&r).await.expect("create"));
    let mut tries = Vec::new();
    for i in 0..8 {
        let mut next = r.next(10 + i);
        next.call_id = Some(format!("call-{i}"));
        tries.push(next);
    }
    let results = futures_join(&records, &r, &tries).await;
    assert_eq!(results.iter().filter(|w| **w).count(), 1, "{results:?}");
}

async fn futures_join(
    records: &DynamoCallRecords,
    prev: &domain::voice::CallRecord,
    tries: &[domain::voice::CallRecord],
) -> Vec<bool> {
    let mut handles = Vec::new();
    for t in tries {
        let (records, prev, t) = (records.clone(), prev.clone(), t.clone());
        handles.push(tokio::spawn(async move {
            // A transaction conflict is an error, not a win: count it as lost.
            records.update(&prev, &t).await.unwrap_or(false)
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap_or(false));
    }
    out
}
