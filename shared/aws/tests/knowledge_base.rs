//! The Bedrock knowledge base adapter against a local fake of the Agent
//! Runtime's `Retrieve` API, reached through the SDK's endpoint override: the
//! real SDK serializes, signs, parses and retries.
#![cfg(feature = "bedrock")]

use std::time::Duration;

use aws_adapters::BedrockKnowledgeBase;
use aws_sdk_bedrockagentruntime::config::retry::RetryConfig;
use aws_sdk_bedrockagentruntime::config::{BehaviorVersion, Credentials, Region};
use domain::ports::KnowledgeBase;
use domain::Error;
use serde_json::{json, Value};
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KB_ID: &str = "KBDEMO1234";

fn knowledge_base(server: &MockServer) -> BedrockKnowledgeBase {
    let config = aws_sdk_bedrockagentruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDTEST",
            "test-secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(server.uri())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .build();
    BedrockKnowledgeBase::new(
        aws_sdk_bedrockagentruntime::Client::from_conf(config),
        KB_ID,
    )
}

fn retrieve_path() -> String {
    format!("/knowledgebases/{KB_ID}/retrieve")
}

fn aws_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-ErrorType", code)
        .insert_header("content-type", "application/json")
        .set_body_json(json!({ "message": message }))
}

#[tokio::test]
async fn passages_sources_and_scores_come_from_the_retrieve_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(retrieve_path()))
        .and(header_exists("authorization"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .set_body_json(json!({
                    "retrievalResults": [
                        {
                            "content": { "type": "TEXT", "text": "Web page text." },
                            "location": { "type": "WEB", "webLocation": { "url": "https://demo.example/envios" } },
                            "score": 0.42
                        },
                        {
                            "content": { "type": "TEXT", "text": "El envío es gratis desde $50." },
                            "location": { "type": "S3", "s3Location": { "uri": "s3://kb-docs/envios.md" } },
                            "score": 0.91,
                            "metadata": { "x-amz-bedrock-kb-chunk-id": "1" }
                        },
                        {
                            "content": { "type": "TEXT", "text": "Somewhere." },
                            "score": 0.1
                        },
                        {
                            "content": { "type": "TEXT", "text": "  " },
                            "score": 0.99
                        }
                    ]
                })),
        )
        .expect(1)
        .mount(&server)
        .await;

    let passages = knowledge_base(&server)
        .search("¿cuánto cuesta el envío?", 3)
        .await
        .expect("search");

    let got: Vec<(&str, &str)> = passages
        .iter()
        .map(|p| (p.text.as_str(), p.source.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("El envío es gratis desde $50.", "s3://kb-docs/envios.md"),
            ("Web page text.", "https://demo.example/envios"),
            ("Somewhere.", "bedrock-kb:KBDEMO1234"),
        ]
    );
    assert!((passages[0].score - 0.91).abs() < 1e-6);
    assert!((passages[1].score - 0.42).abs() < 1e-6);

    let requests = server.received_requests().await.expect("recorded");
    let body: Value = serde_json::from_slice(&requests[0].body).expect("JSON body");
    assert_eq!(body["retrievalQuery"]["text"], "¿cuánto cuesta el envío?");
    assert_eq!(
        body["retrievalConfiguration"]["vectorSearchConfiguration"]["numberOfResults"],
        3
    );
}

#[tokio::test]
async fn the_number_of_results_is_capped_at_what_the_api_accepts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(retrieve_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "retrievalResults": [] })))
        .expect(1)
        .mount(&server)
        .await;
    let passages = knowledge_base(&server)
        .search("envío", 10_000)
        .await
        .expect("search");
    assert!(passages.is_empty());
    let requests = server.received_requests().await.expect("recorded");
    let body: Value = serde_json::from_slice(&requests[0].body).expect("JSON body");
    assert_eq!(
        body["retrievalConfiguration"]["vectorSearchConfiguration"]["numberOfResults"],
        100
    );
}

#[tokio::test]
async fn an_empty_query_or_limit_asks_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let kb = knowledge_base(&server);
    assert!(kb.search("  ", 5).await.expect("search").is_empty());
    assert!(kb.search("envío", 0).await.expect("search").is_empty());
}

#[tokio::test]
async fn throttling_ends_as_a_retryable_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(retrieve_path()))
        .respond_with(aws_error(429, "ThrottlingException", "Rate exceeded"))
        // The SDK retried it once (max_attempts 2) before giving up.
        .expect(2)
        .mount(&server)
        .await;
    let err = knowledge_base(&server)
        .search("envío", 3)
        .await
        .expect_err("throttled");
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
}

#[tokio::test]
async fn a_missing_knowledge_base_is_not_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(retrieve_path()))
        .respond_with(aws_error(
            404,
            "ResourceNotFoundException",
            "Knowledge base KBDEMO1234 not found",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = knowledge_base(&server)
        .search("envío", 3)
        .await
        .expect_err("not found");
    assert!(
        matches!(
            err,
            Error::Dependency {
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("ResourceNotFoundException"),
        "{err}"
    );
}
