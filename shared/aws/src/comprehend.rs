//! [`SentimentAnalyzer`] on Amazon Comprehend's `DetectSentiment`.
//!
//! - Languages: the conversation's tag is cut to what Comprehend knows
//!   (`pt-BR` -> `pt`, `es_AR` -> `es`, `zh-TW` stays). A language Comprehend
//!   cannot read is answered Neutral without a call, rather than read as
//!   English: English scores of, say, Russian text are noise, and noise
//!   would build negative streaks that escalate for nothing.
//! - Size: Comprehend refuses text over 5,000 bytes of UTF-8. Longer text
//!   keeps its last 5,000 bytes, cut at a char boundary: the newest words
//!   say most about how the user feels now.
//! - Empty text is Neutral without a call (Comprehend refuses it).

use async_trait::async_trait;
use aws_sdk_comprehend::types::{LanguageCode, SentimentType};
use aws_sdk_comprehend::Client;

use super::sdk_error;
use domain::error::{Error, Result};
use domain::escalation::{Sentiment, SentimentLabel};
use domain::ports::SentimentAnalyzer;

/// `DetectSentiment`'s limit on `Text`, in bytes of UTF-8.
pub const COMPREHEND_MAX_TEXT_BYTES: usize = 5000;

#[derive(Debug, Clone)]
pub struct ComprehendSentiment {
    client: Client,
}

impl ComprehendSentiment {
    pub fn new(client: Client) -> Self {
        ComprehendSentiment { client }
    }
}

/// The Comprehend language for a conversation's language tag, if it reads it.
pub fn comprehend_language(tag: &str) -> Option<LanguageCode> {
    let tag = tag.trim().replace('_', "-");
    let lower = tag.to_ascii_lowercase();
    // Traditional Chinese is its own language to Comprehend.
    if lower == "zh-tw" || lower == "zh-hant" || lower.starts_with("zh-hant-") {
        return Some(LanguageCode::ZhTw);
    }
    let primary = lower.split('-').next().unwrap_or("");
    Some(match primary {
        "ar" => LanguageCode::Ar,
        "de" => LanguageCode::De,
        "en" => LanguageCode::En,
        "es" => LanguageCode::Es,
        "fr" => LanguageCode::Fr,
        "hi" => LanguageCode::Hi,
        "it" => LanguageCode::It,
        "ja" => LanguageCode::Ja,
        "ko" => LanguageCode::Ko,
        "pt" => LanguageCode::Pt,
        "zh" => LanguageCode::Zh,
        _ => return None,
    })
}

/// The last `max` bytes of `text` or fewer, starting at a char boundary.
pub fn tail_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[async_trait]
impl SentimentAnalyzer for ComprehendSentiment {
    async fn sentiment(&self, text: &str, language: &str) -> Result<Sentiment> {
        let text = tail_at_char_boundary(text.trim(), COMPREHEND_MAX_TEXT_BYTES);
        if text.is_empty() {
            return Ok(Sentiment::neutral());
        }
        let Some(code) = comprehend_language(language) else {
            tracing::debug!(language, "comprehend cannot read this language; neutral");
            return Ok(Sentiment::neutral());
        };
        let out = self
            .client
            .detect_sentiment()
            .text(text)
            .language_code(code)
            .send()
            .await
            .map_err(|e| sdk_error("comprehend", "detecting sentiment", e))?;
        let label = match out.sentiment() {
            Some(SentimentType::Positive) => SentimentLabel::Positive,
            Some(SentimentType::Negative) => SentimentLabel::Negative,
            Some(SentimentType::Neutral) => SentimentLabel::Neutral,
            Some(SentimentType::Mixed) => SentimentLabel::Mixed,
            other => {
                return Err(Error::dependency(
                    "comprehend",
                    "detecting sentiment",
                    false,
                    format!("unexpected sentiment {other:?}"),
                ))
            }
        };
        let score = out.sentiment_score();
        // A missing score is no confidence in that label.
        let get = |f: fn(&aws_sdk_comprehend::types::SentimentScore) -> Option<f32>| {
            score.and_then(f).unwrap_or(0.0).clamp(0.0, 1.0)
        };
        Ok(Sentiment {
            label,
            positive: get(|s| s.positive()),
            negative: get(|s| s.negative()),
            neutral: get(|s| s.neutral()),
            mixed: get(|s| s.mixed()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn language_tags_map_to_comprehend_codes() {
        assert_eq!(comprehend_language("es"), Some(LanguageCode::Es));
        assert_eq!(comprehend_language("pt-BR"), Some(LanguageCode::Pt));
        assert_eq!(comprehend_language("es_AR"), Some(LanguageCode::Es));
        assert_eq!(comprehend_language("EN-us"), Some(LanguageCode::En));
        assert_eq!(comprehend_language("zh-TW"), Some(LanguageCode::ZhTw));
        assert_eq!(comprehend_language("zh-Hant-HK"), Some(LanguageCode::ZhTw));
        assert_eq!(comprehend_language("zh-CN"), Some(LanguageCode::Zh));
        assert_eq!(comprehend_language("ru"), None);
        assert_eq!(comprehend_language(""), None);
    }

    #[test]
    fn long_text_keeps_its_end_at_a_char_boundary() {
        let text = format!("{}{}", "a".repeat(10), "ñ".repeat(3000));
        let tail = tail_at_char_boundary(&text, COMPREHEND_MAX_TEXT_BYTES);
        assert!(tail.len() <= COMPREHEND_MAX_TEXT_BYTES);
        assert_eq!(tail.len(), COMPREHEND_MAX_TEXT_BYTES);
        assert!(tail.chars().all(|c| c == 'ñ'));
        assert_eq!(tail_at_char_boundary("hola", 10), "hola");
    }

    proptest! {
        #[test]
        fn the_tail_always_fits_and_is_a_suffix(text in "\\PC{0,3000}", max in 0usize..6000) {
            let tail = tail_at_char_boundary(&text, max);
            prop_assert!(tail.len() <= max);
            prop_assert!(text.ends_with(tail));
            // Nothing more could have been kept: the char before would not fit.
            if tail.len() < text.len() {
                let prev = text[..text.len() - tail.len()].chars().next_back().map_or(0, char::len_utf8);
                prop_assert!(tail.len() + prev > max);
            }
        }
    }
}
