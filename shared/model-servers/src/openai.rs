//! [`ChatModel`] on any OpenAI-compatible chat-completions server (Ollama,
//! vLLM, LM Studio, OpenAI itself): `POST {base_url}/chat/completions`.
//!
//! Like the Graph client: one `reqwest` client, a connect and a request
//! timeout, and a bound on the whole call. Only what can succeed on a second
//! try is retried (429, 5xx, connect errors, timeouts), with exponential
//! backoff and jitter; a refused request (other 4xx) is final and carries
//! the server's message.

use http_client::{self as common, HttpPolicy};
use std::time::Duration;

use async_trait::async_trait;
use backon::Retryable;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use domain::chat::{Block, ChatMessage, ModelReply, ModelRequest, Role, StopReason, Usage};
use domain::error::{Error, Result};
use domain::ports::ChatModel;

const SERVICE: &str = "chat model";

/// Longest part of a server's error message kept in an error's context.
const MESSAGE_MAX: usize = 300;

/// One model on an OpenAI-compatible server.
pub struct OpenAiModel {
    http: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<SecretString>,
    policy: HttpPolicy,
    name: String,
}

impl std::fmt::Debug for OpenAiModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiModel")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("policy", &self.policy)
            .finish()
    }
}

impl OpenAiModel {
    /// Models on a CPU can take tens of seconds for one answer: long
    /// request and call bounds.
    pub const DEFAULT_POLICY: HttpPolicy = HttpPolicy {
        connect_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(60),
        max_attempts: 3,
        min_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(8),
        max_elapsed: Duration::from_secs(120),
    };

    /// `base_url` ends before `/chat/completions`, e.g.
    /// `http://localhost:11434/v1`. `api_key`, when given, is sent as a
    /// bearer token (Ollama and vLLM need none by default).
    pub fn new(
        base_url: &str,
        model: impl Into<String>,
        api_key: Option<SecretString>,
        policy: HttpPolicy,
    ) -> Result<Self> {
        let base_url = base_url.trim().trim_end_matches('/');
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(Error::Config(format!(
                "chat model base URL must start with https:// or http://, got {base_url:?}"
            )));
        }
        let model = model.into();
        if model.trim().is_empty() {
            return Err(Error::Config("chat model name is empty".into()));
        }
        // An empty key is no key: servers without auth ignore the header,
        // but a blank `Bearer` is refused by some proxies.
        let api_key = api_key.filter(|k| !k.expose_secret().trim().is_empty());
        Ok(OpenAiModel {
            http: policy.client(SERVICE)?,
            url: format!("{base_url}/chat/completions"),
            name: format!("openai:{model}"),
            model,
            api_key,
            policy,
        })
    }

    async fn post_once(&self, body: &Value) -> Result<Completion> {
        let mut request = self.http.post(&self.url).json(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|e| common::transport_error(SERVICE, e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| common::transport_error(SERVICE, e))?;
        if !status.is_success() {
            return Err(self.error_from_answer(status, &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::dependency(SERVICE, "answer is not the expected JSON", false, e))
    }

    /// 429 and 5xx are worth retrying; other statuses are a refused request.
    /// The server's message is kept (truncated, the API key cut out).
    fn error_from_answer(&self, status: StatusCode, bytes: &[u8]) -> Error {
        let retryable = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
        if status == StatusCode::TOO_MANY_REQUESTS {
            runtime::observability::count(runtime::observability::Metric::ModelThrottled, 1);
        }
        let mut message = truncate(&error_message(bytes), MESSAGE_MAX).to_string();
        if let Some(key) = &self.api_key {
            message = message.replace(key.expose_secret(), "[redacted]");
        }
        let context = if message.is_empty() {
            format!("HTTP {}", status.as_u16())
        } else {
            format!("HTTP {}: {message}", status.as_u16())
        };
        Error::dependency(SERVICE, context, retryable, HttpStatus(status.as_u16()))
    }
}

#[async_trait]
impl ChatModel for OpenAiModel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn converse(&self, req: &ModelRequest) -> Result<ModelReply> {
        let body = request_body(&self.model, req);
        let call = (|| self.post_once(&body))
            .retry(self.policy.backoff())
            .sleep(tokio::time::sleep)
            .when(Error::is_retryable)
            .notify(|e: &Error, delay: Duration| {
                tracing::warn!(model = %self.model, error = %e, delay_ms = delay.as_millis() as u64, "chat model call failed, retrying");
            });
        let result = self.policy.within(SERVICE, "chat completion", call).await;
        let completion = result.inspect_err(|e| {
            tracing::warn!(model = %self.model, error = %e, retryable = e.is_retryable(), "chat model call failed");
        })?;
        let reply = to_reply(completion)?;
        tracing::debug!(
            model = %self.model,
            stop = ?reply.stop,
            input_tokens = reply.usage.input_tokens,
            output_tokens = reply.usage.output_tokens,
            "chat completion"
        );
        Ok(reply)
    }
}

/// The chat-completions body for `req`.
fn request_body(model: &str, req: &ModelRequest) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.trim().is_empty() {
        messages.push(json!({ "role": "system", "content": req.system }));
    }
    for m in &req.messages {
        match m.role {
            Role::User => user_messages(m, &mut messages),
            Role::Assistant => messages.push(assistant_message(m)),
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), Value::Array(messages));
    // Some servers refuse an empty tool list.
    if !req.tools.is_empty() {
        let tools = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.input_schema,
                    },
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    body.insert("max_tokens".into(), req.max_tokens.into());
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    Value::Object(body)
}

/// A user turn: its tool results first, one `tool` message each (they must
/// follow the assistant's `tool_calls` directly), then its text, if any.
fn user_messages(m: &ChatMessage, out: &mut Vec<Value>) {
    for block in &m.blocks {
        if let Block::ToolResult {
            id,
            content,
            is_error,
        } = block
        {
            // The format has no error flag: a refusal is said in the content.
            let content = if *is_error {
                json!({ "error": content })
            } else {
                content.clone()
            };
            out.push(json!({
                "role": "tool",
                "tool_call_id": id,
                "content": content.to_string(),
            }));
        }
    }
    let text = m.text();
    if !text.is_empty() {
        out.push(json!({ "role": "user", "content": text }));
    }
}

fn assistant_message(m: &ChatMessage) -> Value {
    let text = m.text();
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert(
        "content".into(),
        if text.is_empty() {
            Value::Null
        } else {
            text.into()
        },
    );
    let calls: Vec<Value> = m
        .tool_uses()
        .into_iter()
        .map(|(id, name, input)| {
            json!({
                "id": id,
                "type": "function",
                "function": { "name": name, "arguments": input.to_string() },
            })
        })
        .collect();
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    Value::Object(message)
}

/// `{"choices":[{"message":{...},"finish_reason":"..."}],"usage":{...}}`
#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<CompletionUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: AnswerMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AnswerMessage {
    /// A string, `null` with tool calls, or (some servers) a list of parts.
    #[serde(default)]
    content: Value,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Debug, Deserialize)]
struct ToolCall {
    #[serde(default)]
    id: Option<String>,
    function: FunctionCall,
}

#[derive(Debug, Deserialize)]
struct FunctionCall {
    name: String,
    /// A JSON string per the spec; some servers send the object itself.
    #[serde(default)]
    arguments: Value,
}

#[derive(Debug, Default, Deserialize)]
struct CompletionUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

fn to_reply(completion: Completion) -> Result<ModelReply> {
    let usage = completion
        .usage
        .map(|u| Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
        })
        .unwrap_or_default();
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(Error::dependency(
            SERVICE,
            "the answer has no choices",
            false,
            common::UnexpectedAnswer,
        ));
    };
    let mut blocks = Vec::new();
    let text = content_text(&choice.message.content);
    if !text.is_empty() {
        blocks.push(Block::Text { text });
    }
    let calls = choice.message.tool_calls.unwrap_or_default();
    let asked_for_tools = !calls.is_empty();
    for (i, call) in calls.into_iter().enumerate() {
        blocks.push(Block::ToolUse {
            // Some servers leave the id out; the result still needs one.
            id: call
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("call_{i}")),
            name: call.function.name,
            input: arguments(call.function.arguments),
        });
    }
    let stop = match choice.finish_reason.as_deref() {
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        // Some servers (older Ollama) say "stop" while asking for tools.
        Some("stop") | None if asked_for_tools => StopReason::ToolUse,
        Some("stop") | None => StopReason::EndTurn,
        Some("length") => StopReason::MaxTokens,
        Some("content_filter") => StopReason::Filtered,
        Some(other) => StopReason::Other(other.to_string()),
    };
    Ok(ModelReply {
        message: ChatMessage {
            role: Role::Assistant,
            blocks,
        },
        stop,
        usage,
    })
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// The tool's input. Arguments that are not valid JSON are kept as
/// `{"_raw": "..."}`, so the agent can tell the model they were invalid.
fn arguments(arguments: Value) -> Value {
    match arguments {
        Value::String(s) if s.trim().is_empty() => json!({}),
        Value::String(s) => serde_json::from_str(&s).unwrap_or_else(|_| json!({ "_raw": s })),
        Value::Null => json!({}),
        other => other,
    }
}

/// What an error answer says: OpenAI's `{"error":{"message"}}`, Ollama's
/// `{"error":"..."}`, a bare `{"message"}`, or else the body as text.
fn error_message(bytes: &[u8]) -> String {
    if let Ok(body) = serde_json::from_slice::<Value>(bytes) {
        let message = body
            .pointer("/error/message")
            .or_else(|| body.get("error"))
            .or_else(|| body.get("message"))
            .or_else(|| body.get("detail"))
            .and_then(Value::as_str);
        if let Some(m) = message {
            return m.trim().to_string();
        }
    }
    String::from_utf8_lossy(bytes).trim().to_string()
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("HTTP status {0}")]
struct HttpStatus(u16);

#[cfg(test)]
mod tests {
    use super::*;
    use domain::chat::ToolSpec;

    fn completion(v: Value) -> Completion {
        serde_json::from_value(v).expect("completion")
    }

    #[test]
    fn invalid_arguments_are_kept_raw() {
        assert_eq!(arguments(json!("{\"a\": 1")), json!({"_raw": "{\"a\": 1"}));
        assert_eq!(arguments(json!("{\"a\": 1}")), json!({"a": 1}));
        assert_eq!(arguments(json!({"a": 1})), json!({"a": 1}));
        assert_eq!(arguments(json!("")), json!({}));
        assert_eq!(arguments(Value::Null), json!({}));
    }

    #[test]
    fn finish_reasons_map_to_the_domain() {
        let stop = |reason: &str| {
            to_reply(completion(json!({
                "choices": [{"message": {"content": "ok"}, "finish_reason": reason}]
            })))
            .expect("reply")
            .stop
        };
        assert_eq!(stop("stop"), StopReason::EndTurn);
        assert_eq!(stop("tool_calls"), StopReason::ToolUse);
        assert_eq!(stop("length"), StopReason::MaxTokens);
        assert_eq!(stop("content_filter"), StopReason::Filtered);
        assert_eq!(stop("weird"), StopReason::Other("weird".into()));
    }

    #[test]
    fn tool_calls_with_stop_are_a_tool_use() {
        let reply = to_reply(completion(json!({
            "choices": [{
                "message": {"content": null, "tool_calls": [
                    {"function": {"name": "f", "arguments": "{}"}}
                ]},
                "finish_reason": "stop"
            }]
        })))
        .expect("reply");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(reply.message.tool_uses(), vec![("call_0", "f", &json!({}))]);
    }

    #[test]
    fn no_choices_is_a_final_error() {
        let err = to_reply(completion(json!({"choices": []}))).expect_err("no choice");
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_failed_tool_result_says_so_in_the_content() {
        let mut out = Vec::new();
        user_messages(
            &ChatMessage {
                role: Role::User,
                blocks: vec![Block::ToolResult {
                    id: "c1".into(),
                    content: json!("slot taken"),
                    is_error: true,
                }],
            },
            &mut out,
        );
        assert_eq!(
            out,
            vec![json!({
                "role": "tool",
                "tool_call_id": "c1",
                "content": "{\"error\":\"slot taken\"}",
            })]
        );
    }

    #[test]
    fn no_tools_and_no_temperature_are_left_out() {
        let body = request_body(
            "m",
            &ModelRequest {
                system: String::new(),
                messages: vec![ChatMessage::user("hola")],
                tools: vec![],
                max_tokens: 100,
                temperature: None,
                guardrail: None,
            },
        );
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [{"role": "user", "content": "hola"}],
                "max_tokens": 100,
            })
        );
        let with_tool = request_body(
            "m",
            &ModelRequest {
                system: "s".into(),
                messages: vec![],
                tools: vec![ToolSpec {
                    name: "t".into(),
                    description: "d".into(),
                    input_schema: json!({"type": "object"}),
                }],
                max_tokens: 1,
                temperature: Some(0.5),
                guardrail: None,
            },
        );
        assert_eq!(with_tool["temperature"], json!(0.5));
        assert_eq!(with_tool["tools"][0]["function"]["name"], json!("t"));
    }

    #[test]
    fn error_messages_are_found_in_the_usual_shapes() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad model","type":"invalid_request_error"}}"#),
            "bad model"
        );
        assert_eq!(
            error_message(br#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(error_message(b"plain failure\n"), "plain failure");
    }

    #[test]
    fn the_api_key_never_prints() {
        let model = OpenAiModel::new(
            "http://localhost:11434/v1",
            "llama3.1",
            Some(SecretString::from("sk-secret")),
            OpenAiModel::DEFAULT_POLICY,
        )
        .expect("model");
        assert!(!format!("{model:?}").contains("sk-secret"));
        assert_eq!(model.name(), "openai:llama3.1");
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(
            OpenAiModel::new("localhost:11434", "m", None, OpenAiModel::DEFAULT_POLICY).is_err()
        );
        assert!(OpenAiModel::new("http://x/v1", " ", None, OpenAiModel::DEFAULT_POLICY).is_err());
    }
}
