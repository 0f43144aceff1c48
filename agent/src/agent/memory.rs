//! The rolling summary: what the model no longer sees, remembered.

use domain::ports::TurnInput;
use domain::Result;
use domain::*;

use super::{Agent, TurnReport};

impl Agent {
    /// Folds messages older than the recent window into the rolling summary,
    /// a batch at a time, so the prompt stays bounded and an old customer
    /// is still remembered.
    pub(super) async fn fold_memory(
        &self,
        turn: &TurnInput,
        memory: &mut Memory,
        report: &mut TurnReport,
    ) -> Result<()> {
        let keep = self.profile.model.history_messages;
        let unsummarised: Vec<&StoredMessage> = turn
            .history
            .iter()
            .filter(|m| m.at_ms > memory.summarized_until_ms)
            .collect();
        if unsummarised.len() < keep + self.profile.model.summarize_after {
            return Ok(());
        }
        let old = &unsummarised[..unsummarised.len() - keep];
        let transcript: Vec<String> = old
            .iter()
            .map(|m| {
                let who = match m.direction {
                    Direction::Inbound => "User",
                    Direction::Outbound => "Us",
                };
                format!("{who}: {}", clip(&m.text, 300))
            })
            .collect();
        let until = old.last().map(|m| m.at_ms).unwrap_or_default();
        let summary = match &self.model {
            Some(model) => {
                let request = ModelRequest {
                    system: "You keep the memory of a customer conversation for a business's \
                             assistant. Write an updated summary, at most 120 words, in English: \
                             who the customer is, what they want, what was agreed or promised, \
                             open questions. Facts only."
                        .into(),
                    messages: vec![ChatMessage::user(format!(
                        "Summary so far:\n{}\n\nNew messages:\n{}",
                        if memory.summary.is_empty() {
                            "(none)"
                        } else {
                            &memory.summary
                        },
                        transcript.join("\n")
                    ))],
                    tools: Vec::new(),
                    max_tokens: 300,
                    temperature: Some(0.0),
                    guardrail: None,
                };
                let reply = model.converse(&request).await?;
                report.model_calls += 1;
                report.model = model.name().to_string();
                report.usage += reply.usage;
                reply.message.text()
            }
            // Without a model: the user's own words, newest kept.
            None => {
                let mut lines: Vec<String> = memory
                    .summary
                    .lines()
                    .map(str::to_string)
                    .chain(
                        old.iter()
                            .filter(|m| m.direction == Direction::Inbound)
                            .map(|m| format!("- the user wrote: {}", clip(&m.text, 160))),
                    )
                    .collect();
                let excess = lines.len().saturating_sub(20);
                lines.drain(..excess);
                lines.join("\n")
            }
        };
        memory.summary = summary.trim().to_string();
        memory.summarized_until_ms = until;
        Ok(())
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max).collect();
    s.push('…');
    s
}
