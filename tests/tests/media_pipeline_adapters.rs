//! The Step Functions starter of the media pipeline against moto's server
//! over real HTTP: the state machine is created from
//! `infra/statemachine/media.asl.json`, one execution per wamid. And the
//! pipeline's notes (what text-ai reads in place of "[image]") in DynamoDB.
//!
//! `MOTO_ENDPOINT` must be set (bash scripts/moto.sh start).

use aws_adapters::{DynamoMediaNotes, DynamoStore, SfnMediaPipeline};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::Credentials;
use domain::media::{MediaKind, MediaRef};
use domain::media_pipeline::{MediaJob, MediaNote};
use domain::ports::{MediaNotes, MediaPipeline, PipelineStart};
use domain::UserId;

async fn moto() -> SdkConfig {
    let endpoint = match std::env::var("MOTO_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => panic!("MOTO_ENDPOINT not set: run bash scripts/moto.sh start"),
    };
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region("us-east-1")
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

fn job(wamid: &str) -> MediaJob {
    MediaJob::new(
        MediaRef {
            media_id: "1234567890".into(),
            kind: MediaKind::Image,
            mime_type: Some("image/jpeg".into()),
            sha256: None,
            caption: Some("mi factura".into()),
            filename: None,
            voice: false,
            animated: false,
            wamid: wamid.into(),
            user_id: UserId::parse("5491100000401").expect("wa id"),
            timestamp: jiff::Timestamp::now().as_second(),
        },
        "106540352242922",
    )
}

async fn state_machine(client: &aws_sdk_sfn::Client) -> String {
    let definition = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/statemachine/media.asl.json"
    ))
    .expect("definition")
    .replace(
        "${MediaFunctionArn}",
        "arn:aws:lambda:us-east-1:123456789012:function:media",
    );
    client
        .create_state_machine()
        .name(format!("media-{}", uuid::Uuid::new_v4().simple()))
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/media-state-machine")
        .send()
        .await
        .expect("state machine created")
        .state_machine_arn
}

#[tokio::test]
async fn one_execution_per_wamid_and_a_second_start_is_a_duplicate() {
    let client = aws_sdk_sfn::Client::new(&moto().await);
    let arn = state_machine(&client).await;
    let pipeline = SfnMediaPipeline::new(client.clone(), arn.clone());
    // A real wamid is base64 of ~60 bytes: longer than a name may be.
    let wamid = format!(
        "wamid.HBgNNTQ5MTEwMDAwMDQwMRUCABIYIDNFQjBDNzY{}AA==",
        uuid::Uuid::new_v4().simple()
    );
    let first = job(&wamid);
    assert_eq!(
        pipeline.start(&first).await.expect("started"),
        PipelineStart::Started
    );
    // The same start again (a redelivered webhook): Step Functions, and
    // moto, answer it with the running execution; no second one.
    pipeline.start(&first).await.expect("again");
    // The same name with other input (the execution ended, or the webhook
    // said something else): ExecutionAlreadyExists, a duplicate.
    let mut changed = first.clone();
    changed.media.caption = Some("otra".into());
    assert_eq!(
        pipeline
            .start(&changed)
            .await
            .expect("refused as a duplicate"),
        PipelineStart::Duplicate
    );
    let other = job(&format!("{wamid}x"));
    assert_eq!(
        pipeline.start(&other).await.expect("other"),
        PipelineStart::Started
    );

    let listed = client
        .list_executions()
        .state_machine_arn(&arn)
        .send()
        .await
        .expect("listed")
        .executions;
    assert_eq!(listed.len(), 2);
    let ours = listed
        .iter()
        .find(|e| e.name == first.execution_name())
        .expect("named from the wamid");
    assert!(ours.name.len() <= 80);
    let described = client
        .describe_execution()
        .execution_arn(&ours.execution_arn)
        .send()
        .await
        .expect("described");
    let input: MediaJob =
        serde_json::from_str(described.input.as_deref().unwrap_or_default()).expect("the job");
    assert_eq!(input, first);
}

#[tokio::test]
async fn a_missing_state_machine_is_an_error_not_a_duplicate() {
    let client = aws_sdk_sfn::Client::new(&moto().await);
    let pipeline = SfnMediaPipeline::new(
        client,
        "arn:aws:states:us-east-1:123456789012:stateMachine:missing",
    );
    let err = pipeline
        .start(&job("wamid.MISSING"))
        .await
        .expect_err("refused");
    assert!(!err.is_retryable(), "{err}");
}

/// A fresh conversation table, as deployed: the notes live beside the rest.
async fn notes_table() -> (aws_sdk_dynamodb::Client, String) {
    let config = moto().await;
    let table = format!("charla-notes-{}", uuid::Uuid::new_v4().simple());
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    DynamoStore::new(dynamo.clone(), table.clone())
        .create_table()
        .await
        .expect("table");
    (dynamo, table)
}

#[tokio::test]
async fn media_notes_are_recorded_replaced_and_read_by_wamid_in_dynamodb() {
    let (dynamo, table) = notes_table().await;
    let notes = DynamoMediaNotes::new(dynamo.clone(), table.clone());
    let understood = MediaNote::Understood {
        description: "a photo of an electricity bill; text in it: Total $ 12.340 — año 2025".into(),
    };
    notes
        .record_note("wamid.A", &understood)
        .await
        .expect("record");
    notes
        .record_note("wamid.A", &understood)
        .await
        .expect("again");
    let got = notes
        .notes(&["wamid.A".into(), "wamid.NONE".into()])
        .await
        .expect("read");
    assert_eq!(got.len(), 1, "only the noted one: {got:?}");
    assert_eq!(got["wamid.A"], understood);

    let failed = MediaNote::Failed {
        summary: "too large".into(),
    };
    notes
        .record_note("wamid.A", &failed)
        .await
        .expect("replace");
    notes
        .record_note("wamid.B", &understood)
        .await
        .expect("record b");
    let got = notes
        .notes(&["wamid.A".into(), "wamid.B".into()])
        .await
        .expect("read");
    assert_eq!(got["wamid.A"], failed);
    assert_eq!(got["wamid.B"], understood);
    assert!(notes.notes(&[]).await.expect("none asked").is_empty());

    // Kept under a key of its own, with an expiry for DynamoDB's TTL.
    let item = dynamo
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("MEDIA#wamid.A".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("NOTE".into()),
        )
        .send()
        .await
        .expect("item")
        .item
        .expect("stored");
    let expires: i64 = item["expires_at"]
        .as_n()
        .expect("number")
        .parse()
        .expect("int");
    assert!(expires > jiff::Timestamp::now().as_second() + 300 * 24 * 3600);
}

#[tokio::test]
async fn a_garbled_media_note_is_an_error_not_a_missing_note() {
    let (dynamo, table) = notes_table().await;
    dynamo
        .put_item()
        .table_name(&table)
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("MEDIA#wamid.X".into()),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("NOTE".into()),
        )
        .item(
            "note",
            aws_sdk_dynamodb::types::AttributeValue::S("{not json".into()),
        )
        .send()
        .await
        .expect("put");
    let err = DynamoMediaNotes::new(dynamo, table)
        .notes(&["wamid.X".into()])
        .await
        .expect_err("garbled");
    assert!(!err.is_retryable(), "{err}");
}
