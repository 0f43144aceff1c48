//! A chat model that answers from a script: for the agent's conversation
//! tests and benchmarks, where the model's words must be known in advance.

use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use domain::error::{Error, Result};
use domain::ports::ChatModel;
use domain::*;

type Script = Box<dyn Fn(&ModelRequest) -> Result<ModelReply> + Send + Sync>;

/// Answers each request with the script's function of it, and keeps every
/// request it was sent.
pub struct ScriptedModel {
    script: Script,
    requests: Mutex<Vec<ModelRequest>>,
}

impl ScriptedModel {
    pub fn new(
        script: impl Fn(&ModelRequest) -> Result<ModelReply> + Send + Sync + 'static,
    ) -> Self {
        ScriptedModel {
            script: Box::new(script),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// Answers with `replies` in order, one a request; past the end, a
    /// non-retryable error (a test that asked more than it scripted).
    pub fn replies(replies: Vec<ModelReply>) -> Self {
        let queue = Mutex::new(std::collections::VecDeque::from(replies));
        ScriptedModel::new(move |_| {
            queue
                .lock()
                .ok()
                .and_then(|mut q| q.pop_front())
                .ok_or_else(|| {
                    Error::dependency("model", "script ran out", false, "script ran out")
                })
        })
    }

    pub fn requests(&self) -> Vec<ModelRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl ChatModel for ScriptedModel {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn converse(&self, req: &ModelRequest) -> Result<ModelReply> {
        if let Ok(mut r) = self.requests.lock() {
            r.push(req.clone());
        }
        (self.script)(req)
    }
}

/// A final text answer.
pub fn text_reply(text: &str) -> ModelReply {
    ModelReply {
        message: ChatMessage::assistant(text),
        stop: StopReason::EndTurn,
        usage: Usage {
            input_tokens: 100,
            output_tokens: 20,
        },
    }
}

/// A request for one tool.
pub fn tool_reply(id: &str, name: &str, input: Value) -> ModelReply {
    ModelReply {
        message: ChatMessage {
            role: Role::Assistant,
            blocks: vec![Block::ToolUse {
                id: id.to_string(),
                name: name.to_string(),
                input,
            }],
        },
        stop: StopReason::ToolUse,
        usage: Usage {
            input_tokens: 100,
            output_tokens: 10,
        },
    }
}

/// The tool results in the last message of a request: `(id, content, is_error)`.
pub fn tool_results(req: &ModelRequest) -> Vec<(String, Value, bool)> {
    req.messages
        .last()
        .map(|m| {
            m.blocks
                .iter()
                .filter_map(|b| match b {
                    Block::ToolResult {
                        id,
                        content,
                        is_error,
                    } => Some((id.clone(), content.clone(), *is_error)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}
