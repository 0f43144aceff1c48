//! The sentiment of a turn, as an analyzer reports it (Comprehend, or the
//! local lexicon).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentLabel {
    Positive,
    Negative,
    Neutral,
    Mixed,
}

impl SentimentLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            SentimentLabel::Positive => "positive",
            SentimentLabel::Negative => "negative",
            SentimentLabel::Neutral => "neutral",
            SentimentLabel::Mixed => "mixed",
        }
    }
}

/// The sentiment of a text, with a confidence per label in `0.0..=1.0`
/// (Comprehend's four scores; a lexicon fills them the same way).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub label: SentimentLabel,
    pub positive: f32,
    pub negative: f32,
    pub neutral: f32,
    pub mixed: f32,
}

impl Sentiment {
    /// Nothing to go on: what an analyzer answers for empty text.
    pub fn neutral() -> Self {
        Sentiment {
            label: SentimentLabel::Neutral,
            positive: 0.0,
            negative: 0.0,
            neutral: 1.0,
            mixed: 0.0,
        }
    }
}
