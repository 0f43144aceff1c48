//! [`ChatModel`] on Amazon Bedrock's Converse API.
//!
//! The adapter never loads AWS configuration: the caller (a Lambda's cold
//! start) builds the SDK config once, with its retry settings, and injects the
//! client. The SDK's standard retry mode already retries throttling, timeouts
//! and 5xx with exponential backoff and jitter; what still fails comes back as
//! a retryable `Error::Dependency`, a refused request as a non-retryable one.
//! Time limits are the caller's too (`TimeoutConfig` on the SDK config, and
//! the Lambda's own timeout): a model answer can take tens of seconds.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_bedrockruntime::config::http::HttpResponse;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::converse::{ConverseError, ConverseOutput};
use aws_sdk_bedrockruntime::types::{
    self as bedrock, ContentBlock, ConversationRole, GuardrailConfiguration,
    InferenceConfiguration, Message, SystemContentBlock, Tool, ToolConfiguration, ToolInputSchema,
    ToolResultBlock, ToolResultContentBlock, ToolResultStatus, ToolSpecification, ToolUseBlock,
};
use aws_sdk_bedrockruntime::Client;
use aws_smithy_types::{Document, Number};
use serde_json::Value;

use domain::chat::{
    Block, ChatMessage, ModelReply, ModelRequest, Role, StopReason, ToolSpec, Usage,
};
use domain::error::{Error, Result};
use domain::ports::ChatModel;

const SERVICE: &str = "bedrock";

/// Longest part of the service's error message kept in an error's context.
const MESSAGE_MAX: usize = 300;

/// One Bedrock model (or inference profile), called through Converse.
#[derive(Debug, Clone)]
pub struct BedrockModel {
    client: Client,
    model_id: String,
    name: String,
}

impl BedrockModel {
    /// `model_id` is a model id, an inference profile id or an ARN, e.g.
    /// `anthropic.claude-3-haiku-20240307-v1:0`.
    pub fn new(client: Client, model_id: impl Into<String>) -> Self {
        let model_id = model_id.into();
        BedrockModel {
            client,
            name: format!("bedrock:{model_id}"),
            model_id,
        }
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }
}

#[async_trait]
impl ChatModel for BedrockModel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn converse(&self, req: &ModelRequest) -> Result<ModelReply> {
        let mut call = self
            .client
            .converse()
            .model_id(&self.model_id)
            .set_messages(Some(to_messages(&req.messages)?))
            .set_tool_config(tool_config(&req.tools)?)
            .inference_config(inference_config(req));
        // Converse refuses an empty text block.
        if !req.system.trim().is_empty() {
            call = call.system(SystemContentBlock::Text(req.system.clone()));
        }
        if let Some(g) = &req.guardrail {
            call = call.guardrail_config(
                GuardrailConfiguration::builder()
                    .guardrail_identifier(&g.id)
                    .guardrail_version(&g.version)
                    .build(),
            );
        }
        let output = call
            .send()
            .await
            .map_err(|e| converse_error(&self.model_id, e))?;
        let reply = to_reply(output)?;
        tracing::debug!(
            model = %self.model_id,
            stop = ?reply.stop,
            input_tokens = reply.usage.input_tokens,
            output_tokens = reply.usage.output_tokens,
            "bedrock converse"
        );
        Ok(reply)
    }
}

fn inference_config(req: &ModelRequest) -> InferenceConfiguration {
    InferenceConfiguration::builder()
        .max_tokens(i32::try_from(req.max_tokens).unwrap_or(i32::MAX))
        .set_temperature(req.temperature)
        .build()
}

/// A request Converse cannot take was built (a required field left out).
fn build_error(what: &str, e: impl Into<domain::error::BoxError>) -> Error {
    Error::dependency(SERVICE, format!("building the {what}"), false, e)
}

fn to_messages(messages: &[ChatMessage]) -> Result<Vec<Message>> {
    messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::User => ConversationRole::User,
                Role::Assistant => ConversationRole::Assistant,
            };
            let content = m
                .blocks
                .iter()
                .map(to_content_block)
                .collect::<Result<Vec<_>>>()?;
            Message::builder()
                .role(role)
                .set_content(Some(content))
                .build()
                .map_err(|e| build_error("message", e))
        })
        .collect()
}

fn to_content_block(block: &Block) -> Result<ContentBlock> {
    Ok(match block {
        Block::Text { text } => ContentBlock::Text(text.clone()),
        Block::ToolUse { id, name, input } => ContentBlock::ToolUse(
            ToolUseBlock::builder()
                .tool_use_id(id)
                .name(name)
                .input(json_to_document(input))
                .build()
                .map_err(|e| build_error("tool use block", e))?,
        ),
        Block::ToolResult {
            id,
            content,
            is_error,
        } => {
            let status = if *is_error {
                ToolResultStatus::Error
            } else {
                ToolResultStatus::Success
            };
            ContentBlock::ToolResult(
                ToolResultBlock::builder()
                    .tool_use_id(id)
                    .content(tool_result_content(content))
                    .status(status)
                    .build()
                    .map_err(|e| build_error("tool result block", e))?,
            )
        }
    })
}

/// Objects go as a JSON block; a bare string as text; anything else wrapped
/// in `{"result": ...}`, since models behind Converse expect a JSON object.
fn tool_result_content(content: &Value) -> ToolResultContentBlock {
    match content {
        Value::Object(_) => ToolResultContentBlock::Json(json_to_document(content)),
        Value::String(s) => ToolResultContentBlock::Text(s.clone()),
        other => {
            ToolResultContentBlock::Json(json_to_document(&serde_json::json!({ "result": other })))
        }
    }
}

/// `None` without tools: Converse refuses an empty tool list.
fn tool_config(tools: &[ToolSpec]) -> Result<Option<ToolConfiguration>> {
    if tools.is_empty() {
        return Ok(None);
    }
    let tools = tools
        .iter()
        .map(|t| {
            ToolSpecification::builder()
                .name(&t.name)
                .description(&t.description)
                .input_schema(ToolInputSchema::Json(json_to_document(&t.input_schema)))
                .build()
                .map(Tool::ToolSpec)
                .map_err(|e| build_error("tool specification", e))
        })
        .collect::<Result<Vec<_>>>()?;
    ToolConfiguration::builder()
        .set_tools(Some(tools))
        .build()
        .map(Some)
        .map_err(|e| build_error("tool configuration", e))
}

fn to_reply(output: ConverseOutput) -> Result<ModelReply> {
    let usage = output
        .usage()
        .map(|u| Usage {
            input_tokens: u64::try_from(u.input_tokens()).unwrap_or(0),
            output_tokens: u64::try_from(u.output_tokens()).unwrap_or(0),
        })
        .unwrap_or_default();
    let stop = to_stop_reason(output.stop_reason());
    let message = match output.output {
        Some(bedrock::ConverseOutput::Message(m)) => m,
        _ => {
            return Err(Error::dependency(
                SERVICE,
                "converse: the answer has no message",
                false,
                UnexpectedAnswer,
            ))
        }
    };
    let blocks = message
        .content
        .into_iter()
        .filter_map(|block| match block {
            ContentBlock::Text(text) => Some(Block::Text { text }),
            ContentBlock::ToolUse(t) => Some(Block::ToolUse {
                input: document_to_json(&t.input),
                id: t.tool_use_id,
                name: t.name,
            }),
            // Reasoning, citations, images: nothing the agent uses. Only the
            // kind is logged: the content may hold what the customer said.
            other => {
                tracing::debug!(kind = block_kind(&other), "bedrock block ignored");
                None
            }
        })
        .collect();
    Ok(ModelReply {
        message: ChatMessage {
            role: Role::Assistant,
            blocks,
        },
        stop,
        usage,
    })
}

fn block_kind(block: &ContentBlock) -> &'static str {
    match block {
        ContentBlock::ReasoningContent(_) => "reasoning",
        ContentBlock::CitationsContent(_) => "citations",
        ContentBlock::Image(_) => "image",
        ContentBlock::Document(_) => "document",
        ContentBlock::ToolResult(_) => "tool result",
        _ => "other",
    }
}

fn to_stop_reason(reason: &bedrock::StopReason) -> StopReason {
    use bedrock::StopReason as S;
    match reason {
        S::EndTurn => StopReason::EndTurn,
        S::ToolUse => StopReason::ToolUse,
        S::MaxTokens => StopReason::MaxTokens,
        S::GuardrailIntervened | S::ContentFiltered => StopReason::Filtered,
        other => StopReason::Other(other.as_str().to_string()),
    }
}

/// Throttling, timeouts, a model not ready yet and 5xx are worth another try
/// later (the SDK has already retried them); a refused request is not.
fn converse_error(model_id: &str, err: SdkError<ConverseError, HttpResponse>) -> Error {
    if let SdkError::ServiceError(e) = &err {
        if matches!(e.err(), ConverseError::ThrottlingException(_)) {
            runtime::observability::count(runtime::observability::Metric::ModelThrottled, 1);
        }
    }
    let retryable = match &err {
        SdkError::ServiceError(e) => match e.err() {
            ConverseError::ThrottlingException(_)
            | ConverseError::ModelNotReadyException(_)
            | ConverseError::ModelTimeoutException(_)
            | ConverseError::ServiceUnavailableException(_)
            | ConverseError::InternalServerException(_) => true,
            ConverseError::ValidationException(_)
            | ConverseError::AccessDeniedException(_)
            | ConverseError::ModelErrorException(_)
            | ConverseError::ResourceNotFoundException(_) => false,
            _ => super::is_retryable(&err),
        },
        _ => super::is_retryable(&err),
    };
    let mut context = format!("converse with {model_id}");
    if let SdkError::ServiceError(e) = &err {
        if let Some(code) = e.err().code() {
            context = format!("{context} ({code})");
        }
        if let Some(message) = e.err().message() {
            context = format!("{context}: {}", truncate(message, MESSAGE_MAX));
        }
    }
    Error::dependency(SERVICE, context, retryable, err)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unexpected answer")]
struct UnexpectedAnswer;

/// JSON to the SDK's document type. Integers stay integers (unsigned when
/// not negative), so ids and amounts are not turned into floats.
pub fn json_to_document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Document::Number(Number::PosInt(u))
            } else if let Some(i) = n.as_i64() {
                Document::Number(Number::NegInt(i))
            } else {
                n.as_f64()
                    .map_or(Document::Null, |f| Document::Number(Number::Float(f)))
            }
        }
        Value::String(s) => Document::String(s.clone()),
        Value::Array(items) => Document::Array(items.iter().map(json_to_document).collect()),
        Value::Object(map) => Document::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_document(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// The SDK's document type to JSON. A float JSON cannot hold (NaN,
/// infinity) becomes `null`.
pub fn document_to_json(doc: &Document) -> Value {
    match doc {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Document::String(s) => Value::String(s.clone()),
        Document::Array(items) => Value::Array(items.iter().map(document_to_json).collect()),
        Document::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), document_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_bedrockruntime::types::TokenUsage;
    use serde_json::json;

    #[test]
    fn json_survives_the_round_trip_through_a_document() {
        let value = json!({
            "null": null,
            "yes": true,
            "count": 3,
            "big": u64::MAX,
            "negative": -42,
            "float": 1.5,
            "text": "hola",
            "list": [1, "dos", null, {"tres": 3.25}],
            "nested": {"a": {"b": {"c": []}}},
        });
        assert_eq!(document_to_json(&json_to_document(&value)), value);
    }

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(
            json_to_document(&json!(7)),
            Document::Number(Number::PosInt(7))
        );
        assert_eq!(
            json_to_document(&json!(-7)),
            Document::Number(Number::NegInt(-7))
        );
        assert_eq!(
            json_to_document(&json!(0.25)),
            Document::Number(Number::Float(0.25))
        );
        assert_eq!(json_to_document(&Value::Null), Document::Null);
    }

    #[test]
    fn a_document_object_becomes_a_json_object() {
        let doc = Document::Object(HashMap::from([
            ("id".to_string(), Document::String("123".into())),
            (
                "slots".to_string(),
                Document::Array(vec![Document::Number(Number::PosInt(9)), Document::Null]),
            ),
        ]));
        assert_eq!(
            document_to_json(&doc),
            json!({"id": "123", "slots": [9, null]})
        );
    }

    #[test]
    fn a_float_json_cannot_hold_becomes_null() {
        assert_eq!(
            document_to_json(&Document::Number(Number::Float(f64::NAN))),
            Value::Null
        );
        assert_eq!(
            document_to_json(&Document::Number(Number::Float(f64::INFINITY))),
            Value::Null
        );
    }

    #[test]
    fn a_failed_tool_result_is_sent_with_status_error() {
        let block = to_content_block(&Block::ToolResult {
            id: "tu-1".into(),
            content: json!({"error": "slot taken"}),
            is_error: true,
        })
        .expect("block");
        let ContentBlock::ToolResult(result) = block else {
            panic!("expected a tool result, got {block:?}");
        };
        assert_eq!(result.tool_use_id(), "tu-1");
        assert_eq!(result.status(), Some(&ToolResultStatus::Error));
        assert_eq!(
            result.content(),
            &[ToolResultContentBlock::Json(json_to_document(
                &json!({"error": "slot taken"})
            ))]
        );
    }

    #[test]
    fn a_tool_result_that_is_not_an_object_is_wrapped() {
        assert_eq!(
            tool_result_content(&json!([1, 2])),
            ToolResultContentBlock::Json(json_to_document(&json!({"result": [1, 2]})))
        );
        assert_eq!(
            tool_result_content(&json!("done")),
            ToolResultContentBlock::Text("done".into())
        );
    }

    #[test]
    fn no_tools_means_no_tool_config() {
        assert_eq!(tool_config(&[]).expect("config"), None);
    }

    #[test]
    fn stop_reasons_map_to_the_domain() {
        use bedrock::StopReason as S;
        assert_eq!(to_stop_reason(&S::EndTurn), StopReason::EndTurn);
        assert_eq!(to_stop_reason(&S::ToolUse), StopReason::ToolUse);
        assert_eq!(to_stop_reason(&S::MaxTokens), StopReason::MaxTokens);
        assert_eq!(
            to_stop_reason(&S::GuardrailIntervened),
            StopReason::Filtered
        );
        assert_eq!(to_stop_reason(&S::ContentFiltered), StopReason::Filtered);
        assert_eq!(
            to_stop_reason(&S::from("something_new")),
            StopReason::Other("something_new".into())
        );
    }

    #[test]
    fn a_reply_keeps_text_and_tool_use_in_order_with_usage() {
        let message = Message::builder()
            .role(ConversationRole::Assistant)
            .content(ContentBlock::Text("Busco horarios".into()))
            .content(ContentBlock::ToolUse(
                ToolUseBlock::builder()
                    .tool_use_id("tu-9")
                    .name("find_slots")
                    .input(json_to_document(&json!({"day": "2026-11-24"})))
                    .build()
                    .expect("tool use"),
            ))
            .build()
            .expect("message");
        let output = ConverseOutput::builder()
            .output(bedrock::ConverseOutput::Message(message))
            .stop_reason(bedrock::StopReason::ToolUse)
            .usage(
                TokenUsage::builder()
                    .input_tokens(120)
                    .output_tokens(30)
                    .total_tokens(150)
                    .build()
                    .expect("usage"),
            )
            .build()
            .expect("output");
        let reply = to_reply(output).expect("reply");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(
            reply.usage,
            Usage {
                input_tokens: 120,
                output_tokens: 30
            }
        );
        assert_eq!(reply.message.role, Role::Assistant);
        assert_eq!(
            reply.message.blocks,
            vec![
                Block::Text {
                    text: "Busco horarios".into()
                },
                Block::ToolUse {
                    id: "tu-9".into(),
                    name: "find_slots".into(),
                    input: json!({"day": "2026-11-24"}),
                },
            ]
        );
    }

    #[test]
    fn an_answer_without_a_message_is_a_final_error() {
        let output = ConverseOutput::builder()
            .stop_reason(bedrock::StopReason::EndTurn)
            .build()
            .expect("output");
        let err = to_reply(output).expect_err("no message");
        assert!(!err.is_retryable(), "{err:?}");
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("ñandú", 2), "ña");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
