//! The playbook's matches acted on through the tools, and the answer
//! without a model (knowledge base, greeting, fallback).

use domain::ports::TurnInput;
use domain::whatsapp::outbound::OutboundMessage;
use domain::Result;
use serde_json::{json, Value};

use super::replies::{call_reply, handoff_reply, media_reply, more_help, passage_for_chat};
use super::{Agent, MEDIA};
use crate::playbook::{self, Match};
use crate::profile::IntentAction;
use crate::tools::{ToolContext, ToolName, ToolOutcome, TurnEffects};

impl Agent {
    pub(super) async fn playbook(
        &self,
        turn: &TurnInput,
        text: &str,
        ctx: &ToolContext,
        effects: &mut TurnEffects,
    ) -> Result<Option<Vec<OutboundMessage>>> {
        let lang = ctx.language.as_str();
        let Some(found) = playbook::recognise(&self.profile, text) else {
            return Ok(None);
        };
        if let Match::Intent { name, .. } = &found {
            effects.intent = Some(name.clone());
        }
        let replies = match found {
            Match::Escalate { keyword } if self.registry.enabled(ToolName::HandoffToHuman) => {
                let args = json!({"reason": format!("the user wrote {keyword:?}")});
                self.handoff_reply(ctx, effects, &args).await?
            }
            Match::Escalate { .. } => return Ok(None),
            Match::CustomerId(id) if self.registry.enabled(ToolName::LookupCustomer) => {
                let outcome = self
                    .registry
                    .call(
                        ctx,
                        effects,
                        ToolName::LookupCustomer.as_str(),
                        &json!({"id": id}),
                    )
                    .await?;
                OutboundMessage::texts(&self.customer_reply(&outcome, lang))
            }
            Match::CustomerId(_) => return Ok(None),
            Match::Intent { name, action } => match action {
                IntentAction::Answer => {
                    let Some(intent) = self.profile.intent(&name) else {
                        return Ok(None);
                    };
                    let body = self.say(&intent.intent.answer, lang, "");
                    OutboundMessage::texts(&body)
                }
                IntentAction::Menu => self.greeting(turn, lang),
                IntentAction::Knowledge => {
                    let query = self
                        .profile
                        .intent(&name)
                        .and_then(|i| i.intent.query.get(lang).cloned())
                        .unwrap_or_else(|| text.to_string());
                    match self.knowledge_answer(ctx, effects, &query).await? {
                        Some(replies) => replies,
                        None => return Ok(None),
                    }
                }
                IntentAction::Handoff => {
                    let args = json!({"reason": "the user asked for a person"});
                    self.handoff_reply(ctx, effects, &args).await?
                }
                IntentAction::Call => {
                    let mut args = json!({"reason": "the user asked to be called"});
                    // "llamame al +54 9 11 ...": the number they gave, for
                    // a user with none on record (or another one).
                    if let Some(number) = crate::text::phone_in(text) {
                        args["phone"] = json!(number);
                    }
                    let outcome = self
                        .registry
                        .call(ctx, effects, ToolName::RequestCall.as_str(), &args)
                        .await?;
                    OutboundMessage::texts(&call_reply(&outcome, lang))
                }
            },
        };
        Ok(Some(replies))
    }

    async fn handoff_reply(
        &self,
        ctx: &ToolContext,
        effects: &mut TurnEffects,
        args: &Value,
    ) -> Result<Vec<OutboundMessage>> {
        let outcome = self
            .registry
            .call(ctx, effects, ToolName::HandoffToHuman.as_str(), args)
            .await?;
        Ok(OutboundMessage::texts(&handoff_reply(
            &outcome,
            &ctx.language,
        )))
    }

    /// The best passage for `query`, with the menu to go on; `None` when the
    /// knowledge base has nothing.
    async fn knowledge_answer(
        &self,
        ctx: &ToolContext,
        effects: &mut TurnEffects,
        query: &str,
    ) -> Result<Option<Vec<OutboundMessage>>> {
        if !self.registry.enabled(ToolName::KbSearch) {
            return Ok(None);
        }
        let outcome = self
            .registry
            .call(
                ctx,
                effects,
                ToolName::KbSearch.as_str(),
                &json!({"query": query}),
            )
            .await?;
        let passage = match &outcome {
            ToolOutcome::Done(v) => v["passages"][0]["text"].as_str().map(|text| {
                passage_for_chat(
                    text,
                    v["passages"][0]["source"].as_str().unwrap_or_default(),
                )
            }),
            ToolOutcome::Refused(_) => None,
        };
        let Some(passage) = passage.filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let mut replies = OutboundMessage::texts(&passage);
        replies.extend(self.menu(more_help(&ctx.language).to_string(), &ctx.language));
        Ok(Some(replies))
    }

    /// No model configured: the knowledge base for the user's words, a
    /// greeting for a new conversation, an honest word on media, or the
    /// fallback with the menu.
    pub(super) async fn without_model(
        &self,
        turn: &TurnInput,
        text: &str,
        ctx: &ToolContext,
        effects: &mut TurnEffects,
    ) -> Result<Vec<OutboundMessage>> {
        let lang = ctx.language.as_str();
        if let Some(media) = turn
            .new_messages
            .iter()
            .find(|m| MEDIA.contains(&m.kind.as_str()))
        {
            if turn
                .new_messages
                .iter()
                .all(|m| MEDIA.contains(&m.kind.as_str()))
            {
                return Ok(self.menu(media_reply(lang, &media.kind), lang));
            }
        }
        if !text.trim().is_empty() {
            if let Some(replies) = self.knowledge_answer(ctx, effects, text).await? {
                return Ok(replies);
            }
        }
        // A first message that only greets gets the greeting; one that asks
        // something nobody here knows gets the greeting and the honest
        // fallback, not a greeting that ignores the question.
        let asked = text.split_whitespace().count() > crate::playbook::GREETING_WORDS;
        if turn.history.is_empty() && !asked {
            return Ok(self.greeting(turn, lang));
        }
        effects.fallback = true;
        let mut replies = Vec::new();
        if turn.history.is_empty() {
            replies.extend(OutboundMessage::texts(&self.greeting_text(turn, lang)));
        }
        replies.extend(self.menu(self.say(&self.profile.fallback, lang, ""), lang));
        Ok(replies)
    }
}
