//! The AWS adapters against moto's server (emulated DynamoDB, SQS, S3 and
//! Secrets Manager). scripts/test starts moto and sets `MOTO_ENDPOINT`;
//! without it these tests fail, they never pass silently.
//!
//! Every test makes its own uniquely named table, queue, bucket or secret,
//! so the tests run in parallel and a rerun against the same moto is clean.

use std::time::Duration;

use aws_adapters::{load_whatsapp_secrets, DynamoStore, S3Archive, SqsQueue};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;
use domain::ports::{
    AgentRecords, ArchiveKind, Clock, ConversationStore, PayloadArchive, Queue, QueueMessage,
    SystemClock,
};
use domain::Error;
use domain::*;
use test_support::records_contract;
use test_support::store_contract::{self, fresh_user_id, inbound, sent};

fn moto_endpoint() -> String {
    match std::env::var("MOTO_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => panic!("MOTO_ENDPOINT not set: run scripts/test, which starts moto"),
    }
}

/// A fresh SDK config aimed at moto (each call is a separate set of clients).
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

async fn new_store(config: &SdkConfig, table: &str) -> DynamoStore {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(config), table);
    store.create_table().await.expect("create table");
    store
}

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

// ---------------------------------------------------------------- DynamoDB

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_store_passes_the_store_contract() {
    let store = new_store(&moto_config().await, &unique("charla-contract")).await;
    store_contract::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_store_passes_the_records_contract() {
    let store = new_store(&moto_config().await, &unique("charla-records")).await;
    records_contract::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_campaigns_pass_the_campaign_contract() {
    let table = unique("charla-campaigns");
    new_store(&moto_config().await, &table).await;
    let store = aws_adapters::DynamoCampaigns::new(
        aws_sdk_dynamodb::Client::new(&moto_config().await),
        &table,
    );
    test_support::campaign_contract::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_usage_passes_the_usage_contract() {
    let table = unique("charla-usage");
    new_store(&moto_config().await, &table).await;
    let ledger =
        aws_adapters::DynamoUsage::new(aws_sdk_dynamodb::Client::new(&moto_config().await), &table);
    test_support::usage_contract::run_all(&ledger).await;
}

/// An upload bigger than its request's time budget on DynamoDB: the
/// request stages it and answers 202 with the validation report and how
/// far the writing came; the campaign cannot start part-way; the
/// dispatcher's tick writes the rest and switches; then it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_upload_is_finished_by_the_dispatcher() {
    use bytes::Bytes;
    use std::sync::Arc;
    let table = unique("charla-staged");
    let config = moto_config().await;
    new_store(&config, &table).await;
    let store = Arc::new(aws_adapters::DynamoCampaigns::new(
        aws_sdk_dynamodb::Client::new(&config),
        &table,
    ));
    let deps = campaigns::Deps {
        campaigns: store.clone(),
        downloads: None,
        clock: Arc::new(SystemClock),
        settings: campaigns::config::Settings {
            // One step, then the rest is the dispatcher's.
            import_budget: Duration::ZERO,
            ..Default::default()
        },
    };
    let call = |method: &str, path: &str, body: Vec<u8>| {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "text/csv")
            .body(Bytes::from(body))
            .expect("request");
        let deps = &deps;
        async move {
            let r = campaigns::handle(deps, req).await;
            let body: serde_json::Value =
                serde_json::from_slice(r.body()).unwrap_or(serde_json::Value::Null);
            (r.status().as_u16(), body)
        }
    };
    let (status, created) = call(
        "POST",
        "/admin/campaigns",
        br#"{"name": "Grande", "channel": "call"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let mut csv = String::from("Teléfono,Nombre\n");
    for i in 0..3_500u32 {
        csv.push_str(&format!("+54 9 11 6000-{i:04},Cliente {i}\n"));
    }
    let (status, report) = call(
        "PUT",
        &format!("/admin/campaigns/{id}/contacts"),
        csv.into_bytes(),
    )
    .await;
    let summary = (&report["accepted"], &report["import"]);
    assert_eq!(status, 202, "{summary:?}");
    assert_eq!(report["accepted"], 3_500, "{summary:?}");
    assert_eq!(report["import"]["done"], false, "{summary:?}");
    assert_eq!(report["import"]["total"], 3_500, "{summary:?}");
    let (status, body) = call("POST", &format!("/admin/campaigns/{id}/start"), vec![]).await;
    assert_eq!(status, 409, "not while it is written: {body}");
    let (_, view) = call("GET", &format!("/admin/campaigns/{id}"), vec![]).await;
    assert_eq!(view["contacts"], 0, "{view}");
    assert_eq!(view["import"]["total"], 3_500, "{view}");

    let queue = Arc::new(test_support::memory::MemoryQueue::default());
    let conversations = Arc::new(embedded::SqliteStore::open_in_memory().expect("store"));
    let dispatcher = campaigns::dispatch::Dispatcher {
        campaigns: store.clone(),
        call_queue: queue,
        calls: Arc::new(test_support::memory_calls::MemoryCallRecords::default()),
        sender: None,
        store: conversations.clone(),
        identities: conversations,
        usage: Arc::new(test_support::memory::MemoryUsage::default()),
        clock: Arc::new(SystemClock),
        settings: Default::default(),
    };
    let tick = campaigns::dispatch::tick(&dispatcher).await.expect("tick");
    assert_eq!(tick.imported, 1, "{tick:?}");
    let (_, view) = call("GET", &format!("/admin/campaigns/{id}"), vec![]).await;
    assert_eq!(view["contacts"], 3_500, "{view}");
    assert_eq!(view["counts"]["pending"], 3_500, "{view}");
    assert!(view["import"].is_null(), "{view}");
    let (status, body) = call("POST", &format!("/admin/campaigns/{id}/start"), vec![]).await;
    assert_eq!(status, 200, "{body}");
}

/// A report too large for an answer through the API goes to S3 (moto), and
/// the answer is a 303 to a link that fetches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_report_is_a_link_to_s3() {
    use bytes::Bytes;
    use domain::ports::CampaignStore;
    use std::sync::Arc;
    let config = moto_config().await;
    let bucket = unique("charla-downloads");
    let s3 = aws_sdk_s3::Client::new(&config);
    S3Archive::create_bucket(&s3, &bucket)
        .await
        .expect("bucket");
    let store = Arc::new(embedded::SqliteCampaigns::open_in_memory().expect("store"));
    let deps = campaigns::Deps {
        campaigns: store.clone(),
        downloads: Some(Arc::new(aws_adapters::S3Downloads::new(s3, &bucket))),
        clock: Arc::new(SystemClock),
        settings: campaigns::config::Settings {
            // Any report is "too large".
            report_inline_bytes: 0,
            ..Default::default()
        },
    };
    let id = "cmp_report";
    let spec =
        serde_json::from_value(serde_json::json!({"name": "R", "channel": "call"})).expect("spec");
    store
        .create_campaign(&domain::campaign::Campaign::draft(id, spec, now_ms()))
        .await
        .expect("campaign");
    let contacts: Vec<_> = (2..40)
        .map(|row| test_support::campaign_contract::contact(id, row, Some(0)))
        .collect();
    assert!(store
        .replace_contacts(id, "up", &contacts, now_ms())
        .await
        .expect("upload"));
    for (accept, magic) in [("text/csv", &b"\xEF\xBB\xBFrow"[..]), ("*/*", &b"PK"[..])] {
        let req = http::Request::get(format!("/admin/campaigns/{id}/report"))
            .header("accept", accept)
            .body(Bytes::new())
            .expect("request");
        let r = campaigns::handle(&deps, req).await;
        assert_eq!(r.status().as_u16(), 303, "{accept}");
        let link = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("a link")
            .to_string();
        let file = reqwest::get(&link).await.expect("download");
        assert_eq!(file.status().as_u16(), 200, "{link}");
        let bytes = file.bytes().await.expect("body");
        assert!(
            bytes.starts_with(magic),
            "{accept}: {:?}",
            &bytes[..8.min(bytes.len())]
        );
        assert!(bytes.len() > 500, "{accept}: the whole report");
    }
}

/// Figures, not a check (`--ignored`): an upload of `CHARLA_UPLOAD_ROWS`
/// (default 100,000) contacts written to DynamoDB (moto) as the campaigns
/// API writes it: batches of 25, 8 in flight, then the switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "figures: run with --ignored --nocapture"]
async fn dynamo_campaign_upload_figures() {
    use domain::ports::CampaignStore;
    let rows: u32 = std::env::var("CHARLA_UPLOAD_ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100_000);
    let table = unique("charla-upload");
    new_store(&moto_config().await, &table).await;
    let store = aws_adapters::DynamoCampaigns::new(
        aws_sdk_dynamodb::Client::new(&moto_config().await),
        &table,
    );
    let id = "cmp_figures";
    store
        .create_campaign(&test_support::campaign_contract::campaign(id, now_ms()))
        .await
        .expect("campaign");
    let contacts: Vec<_> = (1..=rows)
        .map(|r| test_support::campaign_contract::contact(id, r, Some(0)))
        .collect();
    let started = std::time::Instant::now();
    assert!(store
        .stage_contacts(id, "up", &contacts, now_ms())
        .await
        .expect("stage"));
    let staged = started.elapsed();
    while store
        .import_step(id, campaigns::IMPORT_STEP, now_ms())
        .await
        .expect("step")
        .is_some()
    {}
    let took = started.elapsed();
    println!(
        "{rows} contacts to DynamoDB (moto): staged in {:.1} s, written in {:.1} s ({:.0} contacts/s)",
        staged.as_secs_f64(),
        took.as_secs_f64(),
        f64::from(rows) / took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_store_passes_the_identity_contract() {
    let store = new_store(&moto_config().await, &unique("charla-identity")).await;
    test_support::identity_contract::run_all(&store).await;
}

/// Items written before BSUIDs (a conversation keyed by number, no links)
/// keep working: the number stays the user when its BSUID first appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_items_from_before_bsuids_keep_their_user() {
    use domain::identity::{self, SeenUser};
    let store = new_store(&moto_config().await, &unique("charla-identity-upgrade")).await;
    let phone = store_contract::fresh_user_id();
    let m = store_contract::inbound(&phone, now_ms(), true);
    store.record_inbound(&m).await.expect("record");
    let bsuid = test_support::identity_contract::fresh_bsuid();
    let seen = SeenUser {
        phone: Some(phone.clone()),
        bsuid: Some(bsuid.clone()),
    };
    let user = identity::resolve(&store, &seen, now_ms())
        .await
        .expect("resolve")
        .user;
    assert_eq!(user, phone);
    let only_bsuid = SeenUser {
        phone: None,
        bsuid: Some(bsuid),
    };
    let again = identity::resolve(&store, &only_bsuid, now_ms())
        .await
        .expect("resolve")
        .user;
    assert_eq!(again, phone);
    let conversation = store
        .conversation(&again)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(conversation.user_id, phone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_bookings_from_separate_clients_book_a_slot_once() {
    let table = unique("charla-records-race");
    let a = new_store(&moto_config().await, &table).await;
    let b = DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto_config().await), &table);
    let start = 4_000_000_000_000 + i64::from(uuid::Uuid::new_v4().as_fields().1) * 60_000;
    for i in 0..10 {
        let slot = start + i * 3_600_000;
        let mine = records_contract::appointment(&fresh_user_id(), "a:appointment", slot);
        let theirs = records_contract::appointment(&fresh_user_id(), "b:appointment", slot);
        let (ra, rb) = tokio::join!(a.book(&mine), b.book(&theirs));
        let outcomes = [ra.expect("book a"), rb.expect("book b")];
        assert!(
            outcomes.contains(&BookOutcome::Booked) && outcomes.contains(&BookOutcome::Taken),
            "one books, the other finds it taken: {outcomes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_set_state_leaves_a_missing_conversation_missing() {
    // The update's condition, not a read, keeps it from creating one.
    let store = new_store(&moto_config().await, &unique("charla-records-state")).await;
    let wa = fresh_user_id();
    let r = store
        .set_state(&wa, ConversationState::Bot, ConversationState::Human)
        .await;
    assert!(matches!(r, Err(Error::NotFound(_))), "got {r:?}");
    let page = store.list_conversations(10, None).await.expect("list");
    assert!(page.items.iter().all(|c| c.user_id != wa));
}

/// `book` and `set_state` read the winning item from the failed condition
/// (ALL_OLD) rather than with a second request: moto must return it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_failed_conditions_return_the_old_item() {
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
    let config = moto_config().await;
    let store = new_store(&config, &unique("charla-records-old")).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let item = |id: &str| {
        std::collections::HashMap::from([
            ("pk".to_string(), AttributeValue::S("SLOT#1".into())),
            ("sk".to_string(), AttributeValue::S("SLOT".into())),
            ("id".to_string(), AttributeValue::S(id.into())),
        ])
    };
    let put = |id: &str| {
        client
            .put_item()
            .table_name(store.table())
            .set_item(Some(item(id)))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
    };
    put("first").await.expect("first put");
    let err = put("second").await.expect_err("condition fails");
    let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error() else {
        panic!("not a condition failure: {err:?}");
    };
    assert_eq!(failed.item(), Some(&item("first")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_table_is_fine_when_the_table_exists() {
    let config = moto_config().await;
    let store = new_store(&config, &unique("charla-twice")).await;
    store
        .create_table()
        .await
        .expect("second create is a no-op");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_record_inbound_from_separate_clients_records_once() {
    let table = unique("charla-race");
    let a = new_store(&moto_config().await, &table).await;
    let b = DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto_config().await), &table);
    for _ in 0..10 {
        let wa = fresh_user_id();
        let m = inbound(&wa, now_ms(), true);
        let (ra, rb) = tokio::join!(a.record_inbound(&m), b.record_inbound(&m));
        let outcomes = [ra.expect("record a"), rb.expect("record b")];
        let recorded = outcomes
            .iter()
            .filter(|o| **o == RecordOutcome::Recorded)
            .count();
        // Needs moto started by scripts/moto_server.py: plain moto_server
        // applies concurrent transactions on one item non-atomically.
        assert_eq!(recorded, 1, "exactly one records: {outcomes:?}");
        assert!(outcomes.contains(&RecordOutcome::Duplicate { enqueued: false }));
        let page = a.transcript(&wa, 10, None).await.expect("transcript");
        assert_eq!(page.items.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_dedup_record_counts_as_absent() {
    // TTL deletes lazily: a pointer past its expires_at may still be there.
    let store = new_store(&moto_config().await, &unique("charla-ttl")).await;
    let wa = fresh_user_id();
    let t = now_ms();
    let first = inbound(&wa, t, true);
    assert_eq!(
        store.record_inbound(&first).await.expect("record"),
        RecordOutcome::Recorded
    );
    let within = NewInbound {
        received_at_ms: t + (DEDUP_TTL_SECS - 10) * 1000,
        ..first.clone()
    };
    assert!(matches!(
        store.record_inbound(&within).await.expect("record"),
        RecordOutcome::Duplicate { .. }
    ));
    let after = NewInbound {
        received_at_ms: t + (DEDUP_TTL_SECS + 10) * 1000,
        ..first
    };
    assert_eq!(
        store.record_inbound(&after).await.expect("record"),
        RecordOutcome::Recorded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_older_message_leaves_the_conversation_times_alone() {
    let store = new_store(&moto_config().await, &unique("charla-order")).await;
    let wa = fresh_user_id();
    let t = now_ms();
    store
        .record_inbound(&inbound(&wa, t + 5_000, true))
        .await
        .expect("newer");
    store.close_window(&wa).await.expect("close");
    let older = inbound(&wa, t, true);
    assert_eq!(
        store.record_inbound(&older).await.expect("older"),
        RecordOutcome::Recorded
    );
    let c = store
        .conversation(&wa)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(c.last_user_at_ms, t + 5_000);
    assert_eq!(c.last_message_at_ms, t + 5_000);
    assert!(
        c.window_closed,
        "an older message does not reopen the window"
    );
    let pending = store.pending_inbound(&wa).await.expect("pending");
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].wamid, older.wamid, "oldest first");

    // An outbound message older than the last one keeps the newer time too.
    store
        .record_outbound(&wa, &sent(t + 1_000, "eco"))
        .await
        .expect("outbound");
    let c = store
        .conversation(&wa)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(c.last_message_at_ms, t + 5_000);
    store
        .record_outbound(&wa, &sent(t + 9_000, "eco"))
        .await
        .expect("outbound");
    let c = store
        .conversation(&wa)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(c.last_message_at_ms, t + 9_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbound_needs_a_conversation_and_unknown_ids_are_reported() {
    let store = new_store(&moto_config().await, &unique("charla-unknown")).await;
    let wa = fresh_user_id();
    let err = store
        .record_outbound(&wa, &sent(now_ms(), "hola"))
        .await
        .expect_err("no conversation");
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let err = store
        .mark_enqueued("wamid.nobody")
        .await
        .expect_err("unknown");
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    store
        .close_window(&wa)
        .await
        .expect("no conversation, nothing to close");
    assert_eq!(store.conversation(&wa).await.expect("read"), None);
    let err = store
        .transcript(&wa, 10, Some("bm90IG91cnM"))
        .await
        .expect_err("a cursor we never gave");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cursor_of_another_conversation_is_refused() {
    let store = new_store(&moto_config().await, &unique("charla-cursor")).await;
    let (wa, other) = (fresh_user_id(), fresh_user_id());
    let t = now_ms();
    for i in 0..3 {
        store
            .record_inbound(&inbound(&wa, t + i, true))
            .await
            .expect("record");
    }
    let page = store.transcript(&wa, 1, None).await.expect("page");
    let cursor = page.next.expect("more pages");
    let err = store
        .transcript(&other, 1, Some(&cursor))
        .await
        .expect_err("cursor of another conversation");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    let err = store
        .list_conversations(1, Some(&cursor))
        .await
        .expect_err("transcript cursor for the list");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn complete_turn_handles_more_messages_than_one_transaction() {
    // 105 > 100, the limit per TransactWriteItems (and > 25, per TransactGetItems on moto).
    let store = new_store(&moto_config().await, &unique("charla-big-turn")).await;
    let wa = fresh_user_id();
    let t = now_ms();
    let mut ids = Vec::new();
    for i in 0..105 {
        let m = inbound(&wa, t + i, true);
        store.record_inbound(&m).await.expect("record");
        ids.push(m.wamid);
    }
    let turn = TurnRecord {
        turn_id: ids[0].clone(),
        user_id: wa.clone(),
        phone_number_id: "pn".into(),
        inbound: ids.clone(),
        replies: Vec::new(),
        sent_parts: 0,
        state: TurnState::Claimed,
        created_at_ms: t,
    };
    assert_eq!(
        store.claim_turn(&turn).await.expect("claim"),
        ClaimOutcome::Claimed
    );
    store
        .complete_turn(&wa, &turn.turn_id, &ids)
        .await
        .expect("complete");
    let all = store.recent_messages(&wa, 200).await.expect("recent");
    assert_eq!(all.len(), 105);
    assert!(all.iter().all(|m| m.answered));
    assert!(store
        .pending_inbound(&wa)
        .await
        .expect("pending")
        .is_empty());
}

// --------------------------------------------------------------------- SQS

async fn receive(client: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default()
}

async fn delete(client: &aws_sdk_sqs::Client, url: &str, m: &aws_sdk_sqs::types::Message) {
    client
        .delete_message()
        .queue_url(url)
        .receipt_handle(m.receipt_handle().expect("receipt handle"))
        .send()
        .await
        .expect("delete");
}

fn job(group: &str, dedup: &str, body: &str) -> QueueMessage {
    QueueMessage {
        group_id: group.into(),
        dedup_id: dedup.into(),
        body: body.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifo_messages_of_a_group_arrive_in_order() {
    let client = aws_sdk_sqs::Client::new(&moto_config().await);
    let (url, _) = SqsQueue::create_fifo_with_dlq(&client, &unique("charla-order"), 3, 30)
        .await
        .expect("create");
    let queue = SqsQueue::new(client.clone(), &url);
    let expected: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    for body in &expected {
        queue
            .send(&job("pn:15551234567", &unique("wamid"), body))
            .await
            .expect("send");
    }
    let mut got = Vec::new();
    for _ in 0..10 {
        if got.len() == expected.len() {
            break;
        }
        for m in receive(&client, &url).await {
            got.push(m.body().unwrap_or_default().to_string());
            delete(&client, &url, &m).await;
        }
    }
    assert_eq!(got, expected);
}

/// Inside a Lambda invocation (its runtime sets `_X_AMZN_TRACE_ID`), a
/// message carries the trace to the function it reaches (`AWSTraceHeader`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_carries_the_senders_xray_trace() {
    let client = aws_sdk_sqs::Client::new(&moto_config().await);
    let (url, _) = SqsQueue::create_fifo_with_dlq(&client, &unique("charla-trace"), 3, 30)
        .await
        .expect("create");
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    // Other tests' sends may carry it too: harmless.
    std::env::set_var("_X_AMZN_TRACE_ID", trace);
    SqsQueue::new(client.clone(), &url)
        .send(&job("g", &unique("wamid"), "traced"))
        .await
        .expect("send");
    let got = client
        .receive_message()
        .queue_url(&url)
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::AwsTraceHeader,
        )
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    let header = got[0]
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::AwsTraceHeader))
        .cloned();
    assert_eq!(header.as_deref(), Some(trace));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_send_with_the_same_dedup_id_is_dropped() {
    let client = aws_sdk_sqs::Client::new(&moto_config().await);
    let (url, _) = SqsQueue::create_fifo_with_dlq(&client, &unique("charla-dedup"), 3, 30)
        .await
        .expect("create");
    let queue = SqsQueue::new(client.clone(), &url);
    // Longer than SQS's 128 characters: sent as its SHA-256, still deduplicated.
    let long = format!(
        "wamid.{}=",
        "HBgLMTU1NTEyMzQ1NjcVAgASGBQzQTdGRjM5RjM2".repeat(4)
    );
    assert!(long.len() > 128);
    for dedup in ["wamid.HBgLMTU1NTEyMzQ1NjcVAgA=", long.as_str()] {
        queue.send(&job("g", dedup, "first")).await.expect("send");
        queue
            .send(&job("g", dedup, "second"))
            .await
            .expect("send again");
    }
    let mut bodies = Vec::new();
    for _ in 0..3 {
        for m in receive(&client, &url).await {
            bodies.push(m.body().unwrap_or_default().to_string());
            delete(&client, &url, &m).await;
        }
    }
    assert_eq!(bodies, vec!["first", "first"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_received_max_receives_times_lands_in_the_dlq() {
    let client = aws_sdk_sqs::Client::new(&moto_config().await);
    let (url, dlq) = SqsQueue::create_fifo_with_dlq(&client, &unique("charla-dlq"), 2, 1)
        .await
        .expect("create");
    let attrs = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("attributes");
    let attrs = attrs.attributes().expect("attributes");
    assert_eq!(
        attrs
            .get(&QueueAttributeName::FifoQueue)
            .map(String::as_str),
        Some("true")
    );
    assert!(attrs.contains_key(&QueueAttributeName::RedrivePolicy));

    let queue = SqsQueue::new(client.clone(), &url);
    queue
        .send(&job("g", "poison", "poison"))
        .await
        .expect("send");
    let mut receives = 0;
    for _ in 0..10 {
        // Received and never deleted: a consumer that fails every time.
        let got = receive(&client, &url).await;
        receives += got.len();
        if got.is_empty() && receives >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    assert_eq!(receives, 2, "received max_receives times, then moved");
    let dead = receive(&client, &dlq).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some("poison"));
}

// ---------------------------------------------------------------------- S3

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_archive_keeps_the_exact_bytes() {
    let config = aws_sdk_s3::config::Builder::from(&moto_config().await)
        .force_path_style(true)
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
    let bucket = unique("charla-archive");
    S3Archive::create_bucket(&client, &bucket)
        .await
        .expect("create");
    S3Archive::create_bucket(&client, &bucket)
        .await
        .expect("create again");
    let archive = S3Archive::new(client.clone(), &bucket);

    let body: Vec<u8> = [
        br#"{"object":"whatsapp_business_account","entry":[{"x":"#.as_slice(),
        &[0xff, 0x00, 0xfe],
        "\"ñandú 🦤\"}]}\r\n".as_bytes(),
    ]
    .concat();
    let key = archive
        .put(
            ArchiveKind::Quarantine,
            &body,
            "unknown field «foo»\nline two",
        )
        .await
        .expect("put");
    // quarantine/yyyy/mm/dd/{uuid}.json
    let parts: Vec<&str> = key.split('/').collect();
    assert_eq!(parts.len(), 5, "{key}");
    assert_eq!(parts[0], "quarantine");
    for (part, len) in parts[1..4].iter().zip([4, 2, 2]) {
        assert!(
            part.len() == len && part.bytes().all(|b| b.is_ascii_digit()),
            "{key}"
        );
    }
    assert!(parts[4].ends_with(".json"), "{key}");

    let got = client
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .expect("get");
    assert_eq!(
        got.server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::Aes256)
    );
    let reason = got.metadata().and_then(|m| m.get("reason")).cloned();
    assert_eq!(reason.as_deref(), Some("unknown field ?foo??line two"));
    let bytes = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(bytes.as_ref(), body.as_slice());

    let key = archive
        .put(ArchiveKind::Event, b"{}", "field x")
        .await
        .expect("put");
    assert!(key.starts_with("events/"), "{key}");
}

// ---------------------------------------------------------- Secrets Manager

async fn secret(client: &aws_sdk_secretsmanager::Client, value: &str) -> String {
    let name = unique("charla/whatsapp");
    client
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
        .expect("create secret");
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stored_secret_loads() {
    let client = aws_sdk_secretsmanager::Client::new(&moto_config().await);
    let id = secret(
        &client,
        r#"{"app_secret":"s3cr3t-app","verify_token":"s3cr3t-verify","access_token":"s3cr3t-token"}"#,
    )
    .await;
    let s = load_whatsapp_secrets(&client, &id).await.expect("load");
    assert_eq!(s.app_secret_bytes(), b"s3cr3t-app");
    assert!(s.access_token.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_secret_is_a_config_error() {
    let client = aws_sdk_secretsmanager::Client::new(&moto_config().await);
    let id = unique("charla/missing");
    let err = load_whatsapp_secrets(&client, &id)
        .await
        .expect_err("missing");
    assert!(
        matches!(&err, Error::Config(m) if m.contains(&id)),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malformed_secret_is_a_config_error_that_does_not_show_it() {
    let client = aws_sdk_secretsmanager::Client::new(&moto_config().await);
    for value in [
        r#""s3cr3t-value""#,
        r#"{"app_secret":"s3cr3t-value","verify_token":"#,
        r#"{"app_secret":"s3cr3t-value","verify_token":["s3cr3t-value"]}"#,
        r#"{"app_secret":"s3cr3t-value","verify_token":""}"#,
        "s3cr3t-value",
    ] {
        let id = secret(&client, value).await;
        let err = load_whatsapp_secrets(&client, &id)
            .await
            .expect_err("malformed");
        let Error::Config(message) = &err else {
            panic!("not a Config error: {err:?}");
        };
        assert!(message.contains(&id), "{message}");
        assert!(!message.contains("s3cr3t"), "the value leaks: {message}");
        assert!(
            !format!("{err:?}").contains("s3cr3t"),
            "the value leaks: {err:?}"
        );
    }
}
