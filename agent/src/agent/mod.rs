//! The agent: a `Responder` that runs the playbook first, then the chat
//! model with tools in a loop bounded in steps and time, and shapes the
//! answer for WhatsApp. Without a model it answers from the playbook and the
//! knowledge base alone (the local default).
//!
//! One file per job: this one holds the turn (language, memory, usage); the
//! playbook's matches go to the tools in `dispatch`, the model's loop is in
//! `model_loop`, the words the agent says in `replies`, the rolling summary
//! in `memory`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::ports::{ChatModel, Responder, TurnInput};
use domain::whatsapp::outbound::OutboundMessage;
use domain::Result;
use domain::*;
use tracing::info;

use crate::profile::Profile;
use crate::text::detect_language;
use crate::tools::{Registry, ToolContext, ToolDeps, TurnEffects};

mod dispatch;
mod memory;
mod model_loop;
mod replies;

/// Kinds of inbound messages that carry media (the media pipeline reads
/// them; until then the agent says so honestly).
const MEDIA: &[&str] = &["image", "audio", "video", "document", "sticker"];

pub struct Agent {
    profile: Arc<Profile>,
    registry: Registry,
    model: Option<Arc<dyn ChatModel>>,
}

/// What one turn cost and did (for usage records and benchmarks).
#[derive(Debug, Clone, Default)]
pub struct TurnReport {
    pub usage: Usage,
    pub model_calls: u32,
    /// The model's name when it was called ([`ChatModel::name`]): its
    /// tokens are priced by it.
    pub model: String,
    pub tool_calls: u32,
    /// Time spent waiting for the model.
    pub model_time: Duration,
    pub language: String,
    pub via_playbook: bool,
    /// The tools called, in order.
    pub tools: Vec<&'static str>,
    /// The same calls with their arguments.
    pub tool_args: Vec<(&'static str, serde_json::Value)>,
    /// The answer was the fallback (for the escalation policy).
    pub fallback: bool,
    /// The playbook intent the turn matched.
    pub intent: Option<String>,
}

impl TurnReport {
    /// Who answered: `playbook`, `model`, or `local` (no model).
    pub fn via(&self) -> &'static str {
        match (self.via_playbook, self.model_calls) {
            (true, _) => "playbook",
            (false, 0) => "local",
            (false, _) => "model",
        }
    }

    /// What text-ai hears of the turn.
    pub fn note(&self) -> domain::ports::TurnNote {
        domain::ports::TurnNote {
            language: self.language.clone(),
            fallback: self.fallback,
            intent: self.intent.clone(),
            via: self.via(),
            model_calls: self.model_calls,
            model: self.model.clone(),
            tokens_in: self.usage.input_tokens,
            tokens_out: self.usage.output_tokens,
            tools: self.tools.clone(),
        }
    }
}

impl Agent {
    pub fn new(profile: Arc<Profile>, deps: ToolDeps, model: Option<Arc<dyn ChatModel>>) -> Agent {
        Agent {
            registry: Registry::new(profile.clone(), deps),
            profile,
            model,
        }
    }

    /// The tools, for the voice agent's tool calls.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// How many earlier messages a turn needs: the recent ones the model
    /// sees, plus those waiting to be folded into the summary.
    pub fn history_needed(&self) -> usize {
        self.profile.model.history_messages + self.profile.model.summarize_after
    }

    /// Answers a turn and says what it cost.
    pub async fn answer(&self, turn: &TurnInput) -> Result<(Vec<OutboundMessage>, TurnReport)> {
        let records = self.registry.records().clone();
        let user_id = &turn.conversation.user_id;
        let mut memory = records.memory(user_id).await?;
        let text = user_text(&turn.new_messages);
        let lang = self.language(turn, &typed_text(&turn.new_messages), &memory);
        let ctx = ToolContext {
            turn_id: turn.turn_id.clone(),
            user_id: user_id.clone(),
            phone_number_id: turn.conversation.phone_number_id.clone(),
            phone: turn.phone.clone(),
            language: lang.clone(),
            source: "playbook",
        };
        let mut effects = TurnEffects::default();
        let mut report = TurnReport {
            language: lang.clone(),
            ..Default::default()
        };

        // The user's tap on a call-permission request: a fixed answer (the
        // permission itself is in the transcript, with its expiry).
        let permission = replies::call_permission_answer(turn, &lang);
        let playbook = match permission {
            Some(answer) => Some(OutboundMessage::texts(answer)),
            None => self.playbook(turn, &text, &ctx, &mut effects).await?,
        };
        let replies = match playbook {
            Some(replies) => {
                report.via_playbook = true;
                replies
            }
            None => match &self.model {
                Some(model) => {
                    let ctx = ToolContext {
                        source: "model",
                        ..ctx
                    };
                    self.converse(
                        model.as_ref(),
                        turn,
                        &memory,
                        &ctx,
                        &mut effects,
                        &mut report,
                    )
                    .await?
                }
                None => self.without_model(turn, &text, &ctx, &mut effects).await?,
            },
        };
        report.tool_calls = effects.calls;
        report.tools = effects.tools.clone();
        report.tool_args = std::mem::take(&mut effects.tool_args);
        report.fallback = effects.fallback;
        report.intent = effects.intent.clone();

        memory.language = Some(lang);
        self.fold_memory(turn, &mut memory, &mut report).await?;
        records.save_memory(user_id, &memory).await?;
        if let Some(model) = &self.model {
            if report.model_calls > 0 {
                records
                    .record_usage(&TurnUsage {
                        turn_id: turn.turn_id.clone(),
                        user_id: user_id.clone(),
                        model: model.name().to_string(),
                        usage: report.usage,
                        model_calls: report.model_calls,
                        tool_calls: report.tool_calls,
                        at_ms: self.registry.clock().now_ms(),
                    })
                    .await?;
            }
        }
        info!(
            language = %report.language,
            playbook = report.via_playbook,
            model_calls = report.model_calls,
            tool_calls = report.tool_calls,
            input_tokens = report.usage.input_tokens,
            output_tokens = report.usage.output_tokens,
            "turn decided"
        );
        Ok((replies, report))
    }

    /// The language of this turn's words; else what the conversation was in;
    /// else the profile's default. Media messages do not count: their text
    /// is the media pipeline's description, in English.
    fn language(&self, turn: &TurnInput, text: &str, memory: &Memory) -> String {
        let langs = &self.profile.agent.languages;
        detect_language(text, langs)
            .or_else(|| memory.language.clone().filter(|l| langs.contains(l)))
            .or_else(|| {
                turn.history
                    .iter()
                    .rev()
                    .filter(|m| {
                        m.direction == Direction::Inbound && !MEDIA.contains(&m.kind.as_str())
                    })
                    .find_map(|m| detect_language(&m.text, langs))
            })
            .unwrap_or_else(|| self.profile.default_language().to_string())
    }
}

#[async_trait]
impl Responder for Agent {
    async fn respond(&self, turn: &TurnInput) -> Result<Vec<OutboundMessage>> {
        self.answer(turn).await.map(|(replies, _)| replies)
    }

    async fn respond_noted(
        &self,
        turn: &TurnInput,
    ) -> Result<(Vec<OutboundMessage>, domain::ports::TurnNote)> {
        let (replies, report) = self.answer(turn).await?;
        Ok((replies, report.note()))
    }
}

fn user_text(messages: &[StoredMessage]) -> String {
    messages
        .iter()
        .filter(|m| !MEDIA.contains(&m.kind.as_str()) || !m.text.trim().is_empty())
        .map(|m| m.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the user typed in this turn (media messages left out), for its
/// language.
fn typed_text(messages: &[StoredMessage]) -> String {
    messages
        .iter()
        // A tap on a call-permission request is our own English summary.
        .filter(|m| {
            !MEDIA.contains(&m.kind.as_str())
                && m.kind != domain::whatsapp::inbound::CALL_PERMISSION_KIND
        })
        .map(|m| m.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}
