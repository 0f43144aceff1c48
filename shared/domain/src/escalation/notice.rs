//! What people are told: the reasons for an escalation and the notice
//! (SNS, email) that carries them.

use serde::{Deserialize, Serialize};

use super::{transcript_text, truncate_chars, KeywordCategory, TranscriptLine};
use crate::conversation::{mask, UserId};

/// Why a conversation goes to people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The user asked for a person.
    AskedForPerson {
        phrase: String,
    },
    Keyword {
        category: KeywordCategory,
        word: String,
        language: String,
    },
    HighValueIntent {
        intent: String,
    },
    /// Negative turns in a row reached the policy's streak.
    NegativeSentiment {
        negative: f32,
        streak: u32,
    },
    /// One turn past the very-negative threshold.
    VeryNegative {
        negative: f32,
    },
    /// The bot did not understand this many turns in a row.
    RepeatedFallbacks {
        streak: u32,
    },
    /// The playbook or the agent's `handoff_to_human` tool asked for people.
    Requested {
        source: String,
        reason: String,
    },
}

impl Reason {
    /// A short stable name, for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::AskedForPerson { .. } => "asked_for_person",
            Reason::Keyword { .. } => "keyword",
            Reason::HighValueIntent { .. } => "high_value_intent",
            Reason::NegativeSentiment { .. } => "negative_sentiment",
            Reason::VeryNegative { .. } => "very_negative",
            Reason::RepeatedFallbacks { .. } => "repeated_fallbacks",
            Reason::Requested { .. } => "requested",
        }
    }
}

impl std::fmt::Display for Reason {
    /// For people reading a notice or a private note (in English).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::AskedForPerson { phrase } => write!(f, "asked for a person (\"{phrase}\")"),
            Reason::Keyword { category, word, .. } => {
                write!(f, "{} keyword \"{word}\"", category.as_str())
            }
            Reason::HighValueIntent { intent } => write!(f, "high-value intent \"{intent}\""),
            Reason::NegativeSentiment { negative, streak } => write!(
                f,
                "negative sentiment {streak} turns in a row (last {negative:.2})"
            ),
            Reason::VeryNegative { negative } => {
                write!(f, "very negative message ({negative:.2})")
            }
            Reason::RepeatedFallbacks { streak } => {
                write!(f, "not understood {streak} turns in a row")
            }
            Reason::Requested { source, reason } => {
                write!(f, "hand-off requested by the {source}: {reason}")
            }
        }
    }
}

/// Longest excerpt a notice carries; the full transcript lives in the store
/// (and in the desk, when there is one).
pub const NOTICE_EXCERPT_CHARS: usize = 3000;
/// SNS refuses subjects longer than 100 characters.
pub const SUBJECT_MAX_CHARS: usize = 100;

/// What people are told when a conversation is escalated (SNS, email).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationNotice {
    /// Idempotency key: the hand-off request's id.
    pub id: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub phone_number_id: String,
    pub contact_name: Option<String>,
    pub reasons: Vec<Reason>,
    /// The conversation's rolling summary, if there is one.
    pub summary: Option<String>,
    /// The last lines of the conversation, oldest first, bounded by
    /// [`NOTICE_EXCERPT_CHARS`].
    pub excerpt: Vec<TranscriptLine>,
    /// Where to pick the conversation up: the desk's conversation, the
    /// admin console.
    pub desk_url: Option<String>,
    pub admin_url: Option<String>,
    pub created_at_ms: i64,
}

impl EscalationNotice {
    /// The last lines of `transcript` that fit [`NOTICE_EXCERPT_CHARS`],
    /// oldest first; a single line longer than that is cut at a char boundary.
    pub fn excerpt_of(transcript: &[TranscriptLine]) -> Vec<TranscriptLine> {
        let mut out = Vec::new();
        let mut used = 0usize;
        for line in transcript.iter().rev() {
            let n = line.text.chars().count();
            if used + n > NOTICE_EXCERPT_CHARS {
                if out.is_empty() {
                    let mut cut = line.clone();
                    cut.text = line.text.chars().take(NOTICE_EXCERPT_CHARS).collect();
                    out.push(cut);
                }
                break;
            }
            used += n;
            out.push(line.clone());
        }
        out.reverse();
        out
    }

    /// The masked user id: what subjects and logs show.
    pub fn masked_user_id(&self) -> String {
        mask(self.user_id.as_str())
    }

    /// A one-line subject without the phone number (masked) or the
    /// contact's name, at most [`SUBJECT_MAX_CHARS`] characters, ASCII
    /// control characters removed (SNS refuses them).
    pub fn subject(&self) -> String {
        let codes: Vec<&str> = {
            let mut c: Vec<&str> = self.reasons.iter().map(Reason::code).collect();
            c.dedup();
            c
        };
        let why = if codes.is_empty() {
            "requested".to_string()
        } else {
            codes.join(", ")
        };
        let s = format!("Charla escalation {}: {why}", self.masked_user_id());
        let clean: String = s.chars().filter(|c| !c.is_control()).collect();
        truncate_chars(&clean, SUBJECT_MAX_CHARS)
    }

    /// The notice as plain text, for email bodies and private notes.
    pub fn body_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "Conversation with {} needs a person.\n\nReasons:\n",
            self.masked_user_id()
        ));
        for r in &self.reasons {
            out.push_str(&format!("- {r}\n"));
        }
        if let Some(summary) = self.summary.as_deref().filter(|s| !s.trim().is_empty()) {
            out.push_str(&format!("\nSummary:\n{summary}\n"));
        }
        if !self.excerpt.is_empty() {
            out.push_str("\nLast messages:\n");
            out.push_str(&transcript_text(&self.excerpt));
        }
        for (label, url) in [("Desk", &self.desk_url), ("Admin", &self.admin_url)] {
            if let Some(url) = url {
                out.push_str(&format!("\n{label}: {url}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(reasons: Vec<Reason>) -> EscalationNotice {
        EscalationNotice {
            id: "wamid.1:handoff".into(),
            user_id: UserId::parse("5491155551234").expect("wa id"),
            phone_number_id: "106540352242922".into(),
            contact_name: Some("Lucía".into()),
            reasons,
            summary: Some("Wants to cancel after a double charge.".into()),
            excerpt: vec![TranscriptLine {
                from: "user".into(),
                text: "me cobraron dos veces".into(),
                at_ms: 1,
            }],
            desk_url: Some("https://desk.example.com/app/accounts/1/conversations/7".into()),
            admin_url: None,
            created_at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn the_subject_hides_the_number_and_fits_sns() {
        let n = notice(vec![
            Reason::AskedForPerson {
                phrase: "persona real".into(),
            },
            Reason::Keyword {
                category: KeywordCategory::Legal,
                word: "abogado".into(),
                language: "es".into(),
            },
        ]);
        let subject = n.subject();
        assert_eq!(
            subject,
            "Charla escalation *********1234: asked_for_person, keyword"
        );
        assert!(!subject.contains("5491155551234"));
        assert!(!subject.contains("Lucía"));
        let many = notice(vec![Reason::RepeatedFallbacks { streak: 2 }; 1]);
        assert!(many.subject().chars().count() <= SUBJECT_MAX_CHARS);
        let body = n.body_text();
        assert!(body.contains("legal keyword \"abogado\""), "{body}");
        assert!(body.contains("[user] me cobraron dos veces"), "{body}");
        assert!(body.contains("Desk: https://desk.example.com"), "{body}");
        assert!(!body.contains("5491155551234"), "{body}");
    }

    #[test]
    fn the_excerpt_keeps_the_last_lines_that_fit() {
        let line = |text: String| TranscriptLine {
            from: "user".into(),
            text,
            at_ms: 0,
        };
        let lines: Vec<TranscriptLine> = (0..10)
            .map(|i| line(format!("{i}{}", "é".repeat(499))))
            .collect();
        let ex = EscalationNotice::excerpt_of(&lines);
        assert_eq!(ex.len(), 6);
        assert!(ex[0].text.starts_with('4'));
        assert!(ex[5].text.starts_with('9'));
        let huge = EscalationNotice::excerpt_of(&[line("ñ".repeat(5000))]);
        assert_eq!(huge[0].text.chars().count(), NOTICE_EXCERPT_CHARS);
    }
}
