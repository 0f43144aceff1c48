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
            // Two accounts in one message ("los datos del 35.987.654 y del
            // 41.234.567"): one customer per message, none looked up.
            Match::CustomerId(_)
                if self.registry.enabled(ToolName::LookupCustomer)
                    && self.ids_in(text).len() > 1 =>
            {
                OutboundMessage::texts(&self.customer_reply(
                    &ToolOutcome::Refused("more than one customer id".into()),
                    lang,
                ))
            }
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
                    // "¿Qué precio tiene el frete?" names the prices intent
                    // but asks about shipping: the user's own question
                    // first, when a passage answers it; else the intent's.
                    if let Some(replies) = self
                        .knowledge_answer(ctx, effects, text, Some(text))
                        .await?
                    {
                        return Ok(Some(replies));
                    }
                    let query = self
                        .profile
                        .intent(&name)
                        .and_then(|i| i.intent.query.get(lang).cloned())
                        .unwrap_or_else(|| text.to_string());
                    match self.knowledge_answer(ctx, effects, &query, None).await? {
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

    /// The distinct customer ids in `text`, as the profile writes them.
    fn ids_in(&self, text: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .profile
            .customer_id_in_message
            .find_iter(text)
            .map(|m| {
                self.registry
                    .normalise_customer_id(m.as_str())
                    .unwrap_or_else(|| m.as_str().to_string())
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
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
    /// knowledge base has nothing. With `asked` (the user's own words, no
    /// playbook intent behind them), only a passage that answers them with
    /// confidence: a different question's answer is worse than the fallback.
    /// Among the passages that fit, the one in the user's language first.
    async fn knowledge_answer(
        &self,
        ctx: &ToolContext,
        effects: &mut TurnEffects,
        query: &str,
        asked: Option<&str>,
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
        let passages: Vec<(String, String)> = match &outcome {
            ToolOutcome::Done(v) => v["passages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    Some((
                        p["text"].as_str()?.to_string(),
                        p["source"].as_str().unwrap_or_default().to_string(),
                    ))
                })
                .collect(),
            ToolOutcome::Refused(_) => Vec::new(),
        };
        let question = asked.unwrap_or(query);
        let fitting: Vec<&(String, String)> = passages
            .iter()
            .filter(|(text, source)| {
                crate::text::answers(question, &headings_of(text, source), text)
            })
            .collect();
        let langs = &self.profile.agent.languages;
        let in_language = |text: &str| {
            crate::text::detect_language(&body_of(text), langs).as_deref()
                == Some(ctx.language.as_str())
        };
        let chosen = fitting
            .iter()
            .find(|(text, _)| in_language(text))
            .or(fitting.first())
            .copied()
            // A playbook intent asked for this topic: its best passage.
            .or_else(|| asked.is_none().then(|| passages.first()).flatten());
        let passage = chosen.map(|(text, source)| {
            passage_for_chat(&in_user_language(text, &ctx.language, langs), source)
        });
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
            if let Some(replies) = self
                .knowledge_answer(ctx, effects, text, Some(text))
                .await?
            {
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

/// A passage's topic: the heading trail it starts with (`Envíos > Costos de
/// envío`), else its file's name.
fn headings_of(text: &str, source: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    match source.split_once('#') {
        Some((_, heading)) if first.trim_end().ends_with(heading.trim()) => first.to_string(),
        _ => source
            .split('#')
            .next()
            .unwrap_or_default()
            .replace(['_', '-', '.'], " "),
    }
}

/// A passage without its heading trail.
fn body_of(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    if first.contains(" > ") || text.lines().count() == 1 {
        lines.collect::<Vec<_>>().join("\n")
    } else {
        text.to_string()
    }
}

/// A passage written in several languages, paragraph by paragraph (`ES:
/// ...`, `EN: ...`): only the paragraphs in the user's language, when it
/// has some; otherwise the passage as it is.
fn in_user_language(text: &str, lang: &str, langs: &[String]) -> String {
    let paragraphs: Vec<&str> = text.split("\n\n").collect();
    let detected: Vec<Option<String>> = paragraphs
        .iter()
        .map(|p| crate::text::detect_language(p, langs))
        .collect();
    let mut found: Vec<&String> = detected.iter().flatten().collect();
    found.sort();
    found.dedup();
    if found.len() < 2 || !found.iter().any(|l| l.as_str() == lang) {
        return text.to_string();
    }
    paragraphs
        .iter()
        .zip(&detected)
        .enumerate()
        // The heading trail stays, whatever it reads as.
        .filter(|(i, (p, d))| {
            d.as_deref() == Some(lang) || (*i == 0 && p.lines().count() == 1 && p.contains(" > "))
        })
        .map(|(_, (p, _))| *p)
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bilingual_passage_keeps_the_users_paragraphs() {
        let langs = vec!["es".to_string(), "en".to_string()];
        let text = "Servicios > Traslado al aeropuerto\n\nES: Te buscamos en el aeropuerto y te llevamos al hotel por USD 30 el trayecto.\n\nEN: We pick you up at the airport and drive you to the hotel for USD 30 each way.";
        let es = in_user_language(text, "es", &langs);
        assert!(
            es.contains("Te buscamos") && !es.contains("We pick"),
            "{es}"
        );
        assert!(es.starts_with("Servicios > Traslado"), "{es}");
        let en = in_user_language(text, "en", &langs);
        assert!(
            en.contains("We pick") && !en.contains("Te buscamos"),
            "{en}"
        );
        let one = "Horarios\n\nAbrimos de lunes a viernes de 9 a 18 horas.";
        assert_eq!(in_user_language(one, "en", &langs), one);
    }
}
