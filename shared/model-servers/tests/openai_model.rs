//! `OpenAiModel` against a local fake of an OpenAI-compatible server.

use std::time::Duration;

use domain::chat::{Block, ChatMessage, ModelRequest, Role, StopReason, ToolSpec, Usage};
use domain::ports::ChatModel;
use domain::Error;
use http_client::HttpPolicy;
use model_servers::OpenAiModel;
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const API_KEY: &str = "sk-test-4f9a";
const SYSTEM: &str = "Eres el asistente de Clínica Sol.";

fn fast() -> HttpPolicy {
    HttpPolicy {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        max_attempts: 3,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
        max_elapsed: Duration::from_secs(5),
    }
}

fn model(server: &MockServer, policy: HttpPolicy) -> OpenAiModel {
    OpenAiModel::new(
        &format!("{}/v1/", server.uri()),
        "llama3.1:8b",
        Some(SecretString::from(API_KEY)),
        policy,
    )
    .expect("model")
}

fn find_slots() -> ToolSpec {
    ToolSpec {
        name: "find_slots".into(),
        description: "Free appointment slots on a day".into(),
        input_schema: json!({
            "type": "object",
            "properties": {"day": {"type": "string"}},
            "required": ["day"]
        }),
    }
}

fn request(messages: Vec<ChatMessage>) -> ModelRequest {
    ModelRequest {
        system: SYSTEM.into(),
        messages,
        tools: vec![find_slots()],
        max_tokens: 256,
        temperature: Some(0.5),
        guardrail: None,
    }
}

fn answer(message: Value, finish_reason: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "llama3.1:8b",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 12, "total_tokens": 92}
    }))
}

fn text_answer(text: &str) -> ResponseTemplate {
    answer(json!({"role": "assistant", "content": text}), "stop")
}

async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("recording is on")
}

#[tokio::test]
async fn a_tool_call_round_trip_speaks_chat_completions() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header(
            "authorization",
            format!("Bearer {API_KEY}").as_str(),
        ))
        .respond_with(answer(
            json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "find_slots", "arguments": "{\"day\":\"2026-11-24\"}"}
                }]
            }),
            "tool_calls",
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(text_answer("Hay hueco a las 10:00."))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let model = model(&server, fast());
    assert_eq!(model.name(), "openai:llama3.1:8b");

    let mut messages = vec![ChatMessage::user("¿Hueco mañana?")];
    let first = model
        .converse(&request(messages.clone()))
        .await
        .expect("first reply");
    assert_eq!(first.stop, StopReason::ToolUse);
    assert_eq!(
        first.usage,
        Usage {
            input_tokens: 80,
            output_tokens: 12
        }
    );
    // `content: null`: no text block, only the call.
    assert_eq!(
        first.message.blocks,
        vec![Block::ToolUse {
            id: "call_1".into(),
            name: "find_slots".into(),
            input: json!({"day": "2026-11-24"}),
        }]
    );

    messages.push(first.message);
    messages.push(ChatMessage {
        role: Role::User,
        blocks: vec![Block::ToolResult {
            id: "call_1".into(),
            content: json!({"slots": ["10:00"]}),
            is_error: false,
        }],
    });
    let second = model
        .converse(&request(messages))
        .await
        .expect("second reply");
    assert_eq!(second.stop, StopReason::EndTurn);
    assert_eq!(second.message.text(), "Hay hueco a las 10:00.");

    let seen = requests(&server).await;
    assert_eq!(seen.len(), 2);
    let body: Value = seen[1].body_json().expect("JSON body");
    assert_eq!(body["model"], json!("llama3.1:8b"));
    assert_eq!(body["max_tokens"], json!(256));
    assert_eq!(body["temperature"], json!(0.5));
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "find_slots",
            "description": "Free appointment slots on a day",
            "parameters": find_slots().input_schema
        }}])
    );
    let sent = body["messages"].as_array().expect("messages");
    assert_eq!(sent.len(), 4, "{body}");
    assert_eq!(sent[0], json!({"role": "system", "content": SYSTEM}));
    assert_eq!(
        sent[1],
        json!({"role": "user", "content": "¿Hueco mañana?"})
    );
    assert_eq!(sent[2]["role"], json!("assistant"));
    assert_eq!(sent[2]["content"], Value::Null);
    assert_eq!(sent[2]["tool_calls"][0]["id"], json!("call_1"));
    assert_eq!(sent[2]["tool_calls"][0]["type"], json!("function"));
    assert_eq!(
        sent[2]["tool_calls"][0]["function"]["name"],
        json!("find_slots")
    );
    // Arguments travel as a JSON string.
    let arguments = sent[2]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .expect("arguments string");
    assert_eq!(
        serde_json::from_str::<Value>(arguments).expect("valid JSON"),
        json!({"day": "2026-11-24"})
    );
    assert_eq!(sent[3]["role"], json!("tool"));
    assert_eq!(sent[3]["tool_call_id"], json!("call_1"));
    let content = sent[3]["content"].as_str().expect("content string");
    assert_eq!(
        serde_json::from_str::<Value>(content).expect("valid JSON"),
        json!({"slots": ["10:00"]})
    );
}

#[tokio::test]
async fn too_many_requests_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(json!({"error": {"message": "Rate limit reached"}})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(text_answer("Hola"))
        .mount(&server)
        .await;

    let reply = model(&server, fast())
        .converse(&request(vec![ChatMessage::user("hola")]))
        .await
        .expect("passes on the second try");
    assert_eq!(reply.message.text(), "Hola");
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_up_to_max_attempts_then_fail_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("loading model"))
        .mount(&server)
        .await;

    let err = model(&server, fast())
        .converse(&request(vec![ChatMessage::user("hola")]))
        .await
        .expect_err("gave up");
    match &err {
        Error::Dependency {
            context, retryable, ..
        } => {
            assert!(*retryable);
            assert!(context.contains("503"), "{context}");
            assert!(context.contains("loading model"), "{context}");
        }
        other => panic!("expected a dependency error, got {other:?}"),
    }
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn a_bad_request_is_not_retried_and_says_why() {
    let server = MockServer::start().await;
    // Servers echo what they were sent; the key must not reach our errors.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {
                "message": format!("model 'llama9' not found (key {API_KEY})"),
                "type": "invalid_request_error"
            }
        })))
        .mount(&server)
        .await;

    let err = model(&server, fast())
        .converse(&request(vec![ChatMessage::user("hola")]))
        .await
        .expect_err("refused");
    match &err {
        Error::Dependency {
            context, retryable, ..
        } => {
            assert!(!retryable);
            assert!(context.contains("400"), "{context}");
            assert!(context.contains("model 'llama9' not found"), "{context}");
            assert!(!context.contains(API_KEY), "{context}");
        }
        other => panic!("expected a dependency error, got {other:?}"),
    }
    assert!(!format!("{err:?}").contains(API_KEY));
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_long_error_message_is_truncated() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422).set_body_string("x".repeat(5_000)))
        .mount(&server)
        .await;

    let err = model(&server, fast())
        .converse(&request(vec![ChatMessage::user("hola")]))
        .await
        .expect_err("refused");
    let Error::Dependency { context, .. } = &err else {
        panic!("expected a dependency error, got {err:?}");
    };
    assert!(context.len() < 400, "{} chars", context.len());
}

#[tokio::test]
async fn invalid_arguments_are_kept_raw_for_the_agent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer(
            json!({
                "role": "assistant",
                "content": "Voy a mirar.",
                "tool_calls": [{
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "find_slots", "arguments": "{\"day\": 2026-11-"}
                }]
            }),
            "tool_calls",
        ))
        .mount(&server)
        .await;

    let reply = model(&server, fast())
        .converse(&request(vec![ChatMessage::user("hola")]))
        .await
        .expect("reply");
    assert_eq!(reply.stop, StopReason::ToolUse);
    assert_eq!(
        reply.message.blocks,
        vec![
            Block::Text {
                text: "Voy a mirar.".into()
            },
            Block::ToolUse {
                id: "call_9".into(),
                name: "find_slots".into(),
                input: json!({"_raw": "{\"day\": 2026-11-"}),
            },
        ]
    );
}

#[tokio::test]
async fn a_slow_server_times_out_with_a_retryable_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(text_answer("tarde").set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;

    let policy = HttpPolicy {
        request_timeout: Duration::from_millis(100),
        max_attempts: 2,
        ..fast()
    };
    let err = model(&server, policy)
        .converse(&request(vec![ChatMessage::user("hola")]))
        .await
        .expect_err("timed out");
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn the_whole_call_is_bounded_by_max_elapsed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(text_answer("tarde").set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;

    let policy = HttpPolicy {
        request_timeout: Duration::from_secs(5),
        max_elapsed: Duration::from_millis(150),
        ..fast()
    };
    let started = std::time::Instant::now();
    let err = model(&server, policy)
        .converse(&request(vec![ChatMessage::user("hola")]))
        .await
        .expect_err("gave up");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn without_a_key_no_authorization_is_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(text_answer("Hola"))
        .mount(&server)
        .await;

    let model =
        OpenAiModel::new(&format!("{}/v1", server.uri()), "m", None, fast()).expect("model");
    model
        .converse(&request(vec![ChatMessage::user("hola")]))
        .await
        .expect("reply");
    assert!(requests(&server).await[0]
        .headers
        .get("authorization")
        .is_none());
}
