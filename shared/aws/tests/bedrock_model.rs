//! `BedrockModel` against a local fake of the Converse API, reached through
//! the SDK's endpoint override: the real SDK signs, serialises, retries and
//! parses; wiremock plays Bedrock.

#![cfg(feature = "bedrock")]

use std::time::Duration;

use aws_adapters::BedrockModel;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use domain::chat::{
    Block, ChatMessage, Guardrail, ModelRequest, Role, StopReason, ToolSpec, Usage,
};
use domain::ports::ChatModel;
use domain::Error;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MODEL_ID: &str = "anthropic.claude-3-haiku-20240307-v1:0";
/// The model id is a path label: the SDK percent-encodes the colon.
const CONVERSE_PATH: &str = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";
const SYSTEM: &str = "Eres el asistente de Clínica Sol.";

fn model(server: &MockServer, max_attempts: u32) -> BedrockModel {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(server.uri())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(20)),
        )
        .build();
    BedrockModel::new(aws_sdk_bedrockruntime::Client::from_conf(config), MODEL_ID)
}

fn find_slots() -> ToolSpec {
    ToolSpec {
        name: "find_slots".into(),
        description: "Free appointment slots on a day".into(),
        input_schema: json!({
            "type": "object",
            "properties": {
                "day": {"type": "string", "format": "date"},
                "people": {"type": "integer", "minimum": 1}
            },
            "required": ["day"]
        }),
    }
}

fn request(messages: Vec<ChatMessage>) -> ModelRequest {
    ModelRequest {
        system: SYSTEM.into(),
        messages,
        tools: vec![find_slots()],
        max_tokens: 512,
        temperature: Some(0.5),
        guardrail: None,
    }
}

fn converse_answer(content: Value, stop_reason: &str, input: u64, output: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": input, "outputTokens": output, "totalTokens": input + output},
        "metrics": {"latencyMs": 12}
    }))
}

fn aws_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-ErrorType", code)
        .set_body_json(json!({ "message": message }))
}

async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("recording is on")
}

#[tokio::test]
async fn a_tool_use_round_trip_goes_over_the_wire_as_converse_expects() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CONVERSE_PATH))
        .respond_with(converse_answer(
            json!([
                {"text": "Miro la agenda."},
                {"toolUse": {
                    "toolUseId": "tooluse_abc",
                    "name": "find_slots",
                    "input": {"day": "2026-11-24", "people": 2, "notes": null, "price": 12.5}
                }}
            ]),
            "tool_use",
            100,
            20,
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CONVERSE_PATH))
        .respond_with(converse_answer(
            json!([{"text": "Hay hueco a las 10:00."}]),
            "end_turn",
            150,
            9,
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let model = model(&server, 3);
    assert_eq!(model.name(), format!("bedrock:{MODEL_ID}"));

    // First turn: the model asks for a tool.
    let mut messages = vec![ChatMessage::user("¿Tenéis hueco mañana para dos?")];
    let first = model
        .converse(&request(messages.clone()))
        .await
        .expect("first reply");
    assert_eq!(first.stop, StopReason::ToolUse);
    assert_eq!(
        first.usage,
        Usage {
            input_tokens: 100,
            output_tokens: 20
        }
    );
    assert_eq!(first.message.role, Role::Assistant);
    assert_eq!(
        first.message.blocks,
        vec![
            Block::Text {
                text: "Miro la agenda.".into()
            },
            Block::ToolUse {
                id: "tooluse_abc".into(),
                name: "find_slots".into(),
                input: json!({"day": "2026-11-24", "people": 2, "notes": null, "price": 12.5}),
            },
        ]
    );

    // Second turn: the tool's answer goes back, with a guardrail this time.
    messages.push(first.message);
    messages.push(ChatMessage {
        role: Role::User,
        blocks: vec![Block::ToolResult {
            id: "tooluse_abc".into(),
            content: json!({"slots": ["10:00", "12:30"], "count": 2}),
            is_error: false,
        }],
    });
    let mut second_request = request(messages);
    second_request.guardrail = Some(Guardrail {
        id: "gr-123".into(),
        version: "2".into(),
    });
    let second = model.converse(&second_request).await.expect("second reply");
    assert_eq!(second.stop, StopReason::EndTurn);
    assert_eq!(second.message.text(), "Hay hueco a las 10:00.");
    assert_eq!(second.usage.input_tokens, 150);

    let seen = requests(&server).await;
    assert_eq!(seen.len(), 2);
    let auth = seen[1]
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(auth.starts_with("AWS4-HMAC-SHA256"), "signed: {auth}");

    let body: Value = seen[1].body_json().expect("JSON body");
    assert_eq!(body["system"], json!([{"text": SYSTEM}]));
    assert_eq!(
        body["toolConfig"]["tools"],
        json!([{"toolSpec": {
            "name": "find_slots",
            "description": "Free appointment slots on a day",
            "inputSchema": {"json": find_slots().input_schema}
        }}])
    );
    assert_eq!(body["inferenceConfig"]["maxTokens"], json!(512));
    assert_eq!(body["inferenceConfig"]["temperature"], json!(0.5));
    assert_eq!(
        body["guardrailConfig"]["guardrailIdentifier"],
        json!("gr-123")
    );
    assert_eq!(body["guardrailConfig"]["guardrailVersion"], json!("2"));

    let sent = body["messages"].as_array().expect("messages");
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0]["role"], json!("user"));
    assert_eq!(
        sent[0]["content"],
        json!([{"text": "¿Tenéis hueco mañana para dos?"}])
    );
    assert_eq!(sent[1]["role"], json!("assistant"));
    assert_eq!(
        sent[1]["content"][1]["toolUse"],
        json!({
            "toolUseId": "tooluse_abc",
            "name": "find_slots",
            "input": {"day": "2026-11-24", "people": 2, "notes": null, "price": 12.5}
        })
    );
    assert_eq!(sent[2]["role"], json!("user"));
    assert_eq!(
        sent[2]["content"],
        json!([{"toolResult": {
            "toolUseId": "tooluse_abc",
            "content": [{"json": {"slots": ["10:00", "12:30"], "count": 2}}],
            "status": "success"
        }}])
    );

    // The first request had no guardrail and no tool result yet.
    let first_body: Value = seen[0].body_json().expect("JSON body");
    assert!(first_body.get("guardrailConfig").is_none(), "{first_body}");
    assert_eq!(first_body["messages"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_failed_tool_is_sent_with_status_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(converse_answer(
            json!([{"text": "Ese hueco ya no está."}]),
            "end_turn",
            1,
            1,
        ))
        .mount(&server)
        .await;

    let messages = vec![
        ChatMessage::user("Reserva a las 10"),
        ChatMessage {
            role: Role::Assistant,
            blocks: vec![Block::ToolUse {
                id: "tu-1".into(),
                name: "book".into(),
                input: json!({"at": "10:00"}),
            }],
        },
        ChatMessage {
            role: Role::User,
            blocks: vec![Block::ToolResult {
                id: "tu-1".into(),
                content: json!({"error": "slot taken"}),
                is_error: true,
            }],
        },
    ];
    model(&server, 1)
        .converse(&request(messages))
        .await
        .expect("reply");

    let body: Value = requests(&server).await[0].body_json().expect("JSON body");
    assert_eq!(
        body["messages"][2]["content"][0]["toolResult"],
        json!({
            "toolUseId": "tu-1",
            "content": [{"json": {"error": "slot taken"}}],
            "status": "error"
        })
    );
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_until_it_passes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CONVERSE_PATH))
        .respond_with(aws_error(429, "ThrottlingException", "Too many requests"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CONVERSE_PATH))
        .respond_with(converse_answer(json!([{"text": "Hola"}]), "end_turn", 5, 1))
        .mount(&server)
        .await;

    let reply = model(&server, 3)
        .converse(&request(vec![ChatMessage::user("hola")]))
        .await
        .expect("passes on the third try");
    assert_eq!(reply.message.text(), "Hola");
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn throttling_that_never_ends_is_a_retryable_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(429, "ThrottlingException", "Too many requests"))
        .mount(&server)
        .await;

    let err = model(&server, 3)
        .converse(&request(vec![ChatMessage::user("hola")]))
        .await
        .expect_err("always throttled");
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.status_code(), 503);
    match &err {
        Error::Dependency { context, .. } => {
            assert!(context.contains("ThrottlingException"), "{context}");
        }
        other => panic!("expected a dependency error, got {other:?}"),
    }
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn a_model_not_ready_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(429, "ModelNotReadyException", "Model is loading"))
        .mount(&server)
        .await;

    let err = model(&server, 2)
        .converse(&request(vec![ChatMessage::user("hola")]))
        .await
        .expect_err("never ready");
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn a_refused_request_is_final_after_one_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(
            400,
            "ValidationException",
            "A conversation must start with a user message.",
        ))
        .mount(&server)
        .await;

    let err = model(&server, 3)
        .converse(&request(vec![ChatMessage::assistant("hola")]))
        .await
        .expect_err("refused");
    match &err {
        Error::Dependency {
            context, retryable, ..
        } => {
            assert!(!retryable);
            assert!(context.contains("ValidationException"), "{context}");
            assert!(
                context.contains("must start with a user message"),
                "{context}"
            );
        }
        other => panic!("expected a dependency error, got {other:?}"),
    }
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_model_error_is_final_after_one_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(aws_error(
            424,
            "ModelErrorException",
            "The model returned an error",
        ))
        .mount(&server)
        .await;

    let err = model(&server, 3)
        .converse(&request(vec![ChatMessage::user("hola")]))
        .await
        .expect_err("model failed");
    assert!(!err.is_retryable(), "{err:?}");
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_guardrail_intervention_is_filtered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(converse_answer(
            json!([{"text": "No puedo ayudar con eso."}]),
            "guardrail_intervened",
            7,
            3,
        ))
        .mount(&server)
        .await;

    let reply = model(&server, 1)
        .converse(&request(vec![ChatMessage::user("...")]))
        .await
        .expect("reply");
    assert_eq!(reply.stop, StopReason::Filtered);
    assert_eq!(reply.message.text(), "No puedo ayudar con eso.");
}
