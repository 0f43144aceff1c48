//! The escalation policy: its numbers and lists, their defaults and checks,
//! and the signals of a turn read through it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lexicon::{default_keywords, default_person_requests};
use super::{KeywordList, Sentiment, Signals};
use crate::error::{Error, Result};

/// The rules that send a conversation to people. Every number and list is
/// configurable; [`Default`] is a conservative starting point for es, en, pt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EscalationPolicy {
    /// A turn counts as negative when its negative score is at least this.
    pub negative_threshold: f32,
    /// Negative turns in a row that escalate. One angry message is often
    /// venting; two in a row mean the bot is not helping.
    pub negative_streak: u32,
    /// A single turn at least this negative escalates at once (`None`: off).
    pub very_negative_threshold: Option<f32>,
    /// Turns in a row the bot did not understand (fallback answers) that
    /// escalate.
    pub fallback_streak: u32,
    /// Words that escalate at once, by category and language.
    pub keywords: Vec<KeywordList>,
    /// Phrases that ask for a person, by language. Every language is tried:
    /// users switch language, and a request for a person must not be missed.
    pub person_requests: BTreeMap<String, Vec<String>>,
    /// Intents (as the playbook or model names them) that people should
    /// handle, e.g. a large order. Profile-specific, so empty by default.
    pub high_value_intents: Vec<String>,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        EscalationPolicy {
            negative_threshold: 0.7,
            negative_streak: 2,
            very_negative_threshold: Some(0.95),
            fallback_streak: 2,
            keywords: default_keywords(),
            person_requests: default_person_requests(),
            high_value_intents: Vec::new(),
        }
    }
}

impl EscalationPolicy {
    /// Checks the numbers: scores are in `0..=1`, streaks at least 1.
    pub fn validate(&self) -> Result<()> {
        let score = |name: &str, v: f32| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "escalation policy: {name} must be between 0 and 1, got {v}"
                )))
            }
        };
        score("negative_threshold", self.negative_threshold)?;
        if let Some(v) = self.very_negative_threshold {
            score("very_negative_threshold", v)?;
        }
        if self.negative_streak == 0 || self.fallback_streak == 0 {
            return Err(Error::Config(
                "escalation policy: streaks must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The signals of a turn from its text and what the caller knows.
    pub fn signals(
        &self,
        turn_id: &str,
        text: &str,
        sentiment: Option<Sentiment>,
        fallback: bool,
        intent: Option<&str>,
    ) -> Signals {
        Signals {
            turn_id: turn_id.to_string(),
            sentiment,
            person_request: self.person_request(text),
            fallback,
            keywords: self.match_keywords(text),
            intent: intent.map(str::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_valid() {
        EscalationPolicy::default().validate().expect("valid");
    }

    #[test]
    fn bad_numbers_are_refused() {
        for p in [
            EscalationPolicy {
                negative_threshold: 1.5,
                ..EscalationPolicy::default()
            },
            EscalationPolicy {
                very_negative_threshold: Some(-0.1),
                ..EscalationPolicy::default()
            },
            EscalationPolicy {
                negative_streak: 0,
                ..EscalationPolicy::default()
            },
            EscalationPolicy {
                fallback_streak: 0,
                ..EscalationPolicy::default()
            },
        ] {
            assert!(matches!(p.validate(), Err(Error::Config(_))), "{p:?}");
        }
    }
}
