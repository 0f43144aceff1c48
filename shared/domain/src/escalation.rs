//! When a conversation goes to people: the signals of a turn (sentiment, an
//! explicit request for a person, the bot not understanding, keywords, a
//! high-value intent), the policy that weighs them, and the notice people
//! get. Pure rules: no I/O. Every decision says why.

use super::text::{fold, has_phrase};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::conversation::{mask, WaId};
use crate::error::{Error, Result};

// ------------------------------------------------------------------ sentiment

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

// --------------------------------------------------------------------- policy

/// What kind of words sent a conversation to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeywordCategory {
    Complaint,
    Legal,
    Cancellation,
    /// The agent profile's own `[escalation] keywords`.
    Custom,
}

impl KeywordCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            KeywordCategory::Complaint => "complaint",
            KeywordCategory::Legal => "legal",
            KeywordCategory::Cancellation => "cancellation",
            KeywordCategory::Custom => "custom",
        }
    }
}

/// Words and phrases of one category in one language. Matched as whole
/// words, case and accents folded ("reclamação" matches "RECLAMACAO").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeywordList {
    pub category: KeywordCategory,
    pub language: String,
    pub words: Vec<String>,
}

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
        let list = |category, language: &str, words: &[&str]| KeywordList {
            category,
            language: language.to_string(),
            words: words.iter().map(|w| w.to_string()).collect(),
        };
        use KeywordCategory::*;
        let keywords = vec![
            list(
                Complaint,
                "es",
                &[
                    "queja",
                    "quejarme",
                    "reclamo",
                    "reclamacion",
                    "libro de quejas",
                ],
            ),
            list(
                Complaint,
                "en",
                &["complaint", "complain", "file a complaint"],
            ),
            list(Complaint, "pt", &["reclamacao", "reclamar", "queixa"]),
            list(
                Legal,
                "es",
                &[
                    "abogado",
                    "abogada",
                    "demandar",
                    "denuncia",
                    "denunciar",
                    "defensa del consumidor",
                    "accion legal",
                ],
            ),
            list(
                Legal,
                "en",
                &["lawyer", "attorney", "sue", "lawsuit", "legal action"],
            ),
            list(
                Legal,
                "pt",
                &[
                    "advogado",
                    "advogada",
                    "processar",
                    "procon",
                    "acao judicial",
                ],
            ),
            list(
                Cancellation,
                "es",
                &[
                    "cancelar el servicio",
                    "cancelar mi cuenta",
                    "cancelar mi plan",
                    "cancelar la suscripcion",
                    "dar de baja",
                    "darme de baja",
                    "rescindir",
                ],
            ),
            list(
                Cancellation,
                "en",
                &[
                    "cancel my account",
                    "cancel my subscription",
                    "cancel my plan",
                    "cancel the service",
                    "cancellation",
                    "close my account",
                ],
            ),
            list(
                Cancellation,
                "pt",
                &[
                    "cancelar minha conta",
                    "cancelar meu plano",
                    "cancelar o servico",
                    "cancelar a assinatura",
                    "cancelamento",
                    "encerrar minha conta",
                ],
            ),
        ];
        let phrases = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let person_requests = BTreeMap::from([
            (
                "es".to_string(),
                phrases(&[
                    "hablar con una persona",
                    "hablar con un humano",
                    "hablar con alguien",
                    "hablar con un agente",
                    "hablar con un asesor",
                    "hablar con una asesora",
                    "hablar con un operador",
                    "persona real",
                    "atencion humana",
                    "pasame con",
                    "comunicame con",
                ]),
            ),
            (
                "en".to_string(),
                phrases(&[
                    "talk to a person",
                    "speak to a person",
                    "talk to a human",
                    "speak to a human",
                    "talk to someone",
                    "speak to someone",
                    "talk to an agent",
                    "speak to an agent",
                    "real person",
                    "human agent",
                    "live agent",
                    "representative",
                ]),
            ),
            (
                "pt".to_string(),
                phrases(&[
                    "falar com uma pessoa",
                    "falar com um humano",
                    "falar com alguem",
                    "falar com um atendente",
                    "falar com atendente",
                    "atendente humano",
                    "pessoa real",
                    "atendimento humano",
                ]),
            ),
        ]);
        EscalationPolicy {
            negative_threshold: 0.7,
            negative_streak: 2,
            very_negative_threshold: Some(0.95),
            fallback_streak: 2,
            keywords,
            person_requests,
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

    /// Adds the agent profile's `[escalation] keywords` (language -> words)
    /// as [`KeywordCategory::Custom`].
    pub fn with_profile_keywords(mut self, keywords: &BTreeMap<String, Vec<String>>) -> Self {
        for (language, words) in keywords {
            self.keywords.push(KeywordList {
                category: KeywordCategory::Custom,
                language: language.clone(),
                words: words.clone(),
            });
        }
        self
    }

    /// The keywords in `text`, in every language of the policy. One match per
    /// category and folded word, in the policy's order.
    pub fn match_keywords(&self, text: &str) -> Vec<KeywordMatch> {
        let folded = fold(text);
        let mut found: Vec<KeywordMatch> = Vec::new();
        for list in &self.keywords {
            for word in &list.words {
                let w = fold(word);
                let seen = found
                    .iter()
                    .any(|m| m.category == list.category && fold(&m.word) == w);
                if !seen && has_phrase(&folded, &w) {
                    found.push(KeywordMatch {
                        category: list.category,
                        language: list.language.clone(),
                        word: word.clone(),
                    });
                }
            }
        }
        found
    }

    /// The phrase of `text` that asks for a person, if any, in any language.
    pub fn person_request(&self, text: &str) -> Option<String> {
        let folded = fold(text);
        self.person_requests
            .values()
            .flatten()
            .find(|p| has_phrase(&folded, &fold(p)))
            .cloned()
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

/// A keyword found in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeywordMatch {
    pub category: KeywordCategory,
    /// The language of the list that matched (not necessarily the user's).
    pub language: String,
    /// As written in the policy.
    pub word: String,
}

/// What one turn showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// The turn's id (its first wamid): a redelivered turn is decided once.
    pub turn_id: String,
    /// `None` when it could not be told (the analyzer failed): streaks stay
    /// as they are, neither grown nor reset.
    pub sentiment: Option<Sentiment>,
    /// The phrase that asked for a person, if the user asked for one.
    pub person_request: Option<String>,
    /// The bot answered with its fallback (did not understand).
    pub fallback: bool,
    pub keywords: Vec<KeywordMatch>,
    /// The intent the playbook or model recognised, if any.
    pub intent: Option<String>,
}

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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub escalate: bool,
    /// Empty exactly when `escalate` is false.
    pub reasons: Vec<Reason>,
}

/// What the policy remembers of a conversation between turns. Kept with the
/// conversation (serde), starts at [`Default`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EscalationState {
    /// Negative turns in a row, up to the last one decided.
    pub negative_streak: u32,
    /// Fallback answers in a row.
    pub fallback_streak: u32,
    /// How many times this conversation was escalated.
    pub escalations: u32,
    /// The last turn decided and its decision: a redelivered turn gets the
    /// same answer and leaves the streaks alone.
    pub last_turn_id: Option<String>,
    pub last_decision: Option<Decision>,
}

/// Weighs a turn's signals. Returns the decision and the state to keep.
///
/// Any one of these escalates: a request for a person, a keyword, a
/// high-value intent, one very negative turn, `negative_streak` negative
/// turns in a row, `fallback_streak` fallbacks in a row. An escalation starts
/// the streaks over, so that after a hand-back to the bot one more bad turn
/// does not send the conversation straight back.
pub fn decide(
    policy: &EscalationPolicy,
    state: &EscalationState,
    signals: &Signals,
) -> (Decision, EscalationState) {
    if state.last_turn_id.as_deref() == Some(signals.turn_id.as_str()) {
        let decision = state.last_decision.clone().unwrap_or_default();
        return (decision, state.clone());
    }
    let mut next = state.clone();
    let mut reasons = Vec::new();

    if let Some(phrase) = &signals.person_request {
        reasons.push(Reason::AskedForPerson {
            phrase: phrase.clone(),
        });
    }
    for k in &signals.keywords {
        reasons.push(Reason::Keyword {
            category: k.category,
            word: k.word.clone(),
            language: k.language.clone(),
        });
    }
    if let Some(intent) = &signals.intent {
        if policy
            .high_value_intents
            .iter()
            .any(|i| i.eq_ignore_ascii_case(intent))
        {
            reasons.push(Reason::HighValueIntent {
                intent: intent.clone(),
            });
        }
    }

    if let Some(s) = &signals.sentiment {
        // NaN (a broken analyzer) is not negative.
        let negative = if s.negative.is_finite() {
            s.negative
        } else {
            0.0
        };
        if negative >= policy.negative_threshold {
            next.negative_streak = next.negative_streak.saturating_add(1);
        } else {
            next.negative_streak = 0;
        }
        if policy
            .very_negative_threshold
            .is_some_and(|t| negative >= t)
        {
            reasons.push(Reason::VeryNegative { negative });
        } else if next.negative_streak >= policy.negative_streak {
            reasons.push(Reason::NegativeSentiment {
                negative,
                streak: next.negative_streak,
            });
        }
    }

    if signals.fallback {
        next.fallback_streak = next.fallback_streak.saturating_add(1);
        if next.fallback_streak >= policy.fallback_streak {
            reasons.push(Reason::RepeatedFallbacks {
                streak: next.fallback_streak,
            });
        }
    } else {
        next.fallback_streak = 0;
    }

    let escalate = !reasons.is_empty();
    if escalate {
        next.negative_streak = 0;
        next.fallback_streak = 0;
        next.escalations = next.escalations.saturating_add(1);
    }
    let decision = Decision { escalate, reasons };
    next.last_turn_id = Some(signals.turn_id.clone());
    next.last_decision = Some(decision.clone());
    (decision, next)
}

// --------------------------------------------------------------------- notice

/// One line of the conversation so far, as people read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// `user`, `bot` or `agent`.
    pub from: String,
    pub text: String,
    pub at_ms: i64,
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
    pub wa_id: WaId,
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
    pub fn masked_wa_id(&self) -> String {
        mask(self.wa_id.as_str())
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
        let s = format!("Charla escalation {}: {why}", self.masked_wa_id());
        let clean: String = s.chars().filter(|c| !c.is_control()).collect();
        truncate_chars(&clean, SUBJECT_MAX_CHARS)
    }

    /// The notice as plain text, for email bodies and private notes.
    pub fn body_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "Conversation with {} needs a person.\n\nReasons:\n",
            self.masked_wa_id()
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

/// Lines as `[from] text`, one per line.
pub fn transcript_text(lines: &[TranscriptLine]) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(&format!("[{}] {}\n", line.from, line.text));
    }
    out
}

/// At most `max` chars of `s`.
pub fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

// ----------------------------------------------------------------------- text

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sentiment(negative: f32) -> Option<Sentiment> {
        Some(Sentiment {
            label: if negative >= 0.5 {
                SentimentLabel::Negative
            } else {
                SentimentLabel::Neutral
            },
            positive: 0.0,
            negative,
            neutral: 1.0 - negative,
            mixed: 0.0,
        })
    }

    fn quiet(turn: &str) -> Signals {
        Signals {
            turn_id: turn.to_string(),
            sentiment: sentiment(0.1),
            person_request: None,
            fallback: false,
            keywords: Vec::new(),
            intent: None,
        }
    }

    /// A turn in a table: what it showed, and what must come of it.
    struct Turn {
        negative: Option<f32>,
        fallback: bool,
        text: &'static str,
        intent: Option<&'static str>,
        escalate: bool,
        codes: &'static [&'static str],
    }

    const fn turn(negative: Option<f32>, fallback: bool, escalate: bool) -> Turn {
        Turn {
            negative,
            fallback,
            text: "",
            intent: None,
            escalate,
            codes: &[],
        }
    }

    fn run(policy: &EscalationPolicy, name: &str, turns: &[Turn]) -> EscalationState {
        let mut state = EscalationState::default();
        for (i, t) in turns.iter().enumerate() {
            let signals = policy.signals(
                &format!("{name}-{i}"),
                t.text,
                t.negative.and_then(sentiment),
                t.fallback,
                t.intent,
            );
            let (decision, next) = decide(policy, &state, &signals);
            assert_eq!(
                decision.escalate, t.escalate,
                "{name}, turn {i}: {decision:?}"
            );
            assert_eq!(decision.escalate, !decision.reasons.is_empty(), "{name}");
            if !t.codes.is_empty() {
                let codes: Vec<&str> = decision.reasons.iter().map(Reason::code).collect();
                assert_eq!(codes, t.codes, "{name}, turn {i}");
            }
            state = next;
        }
        state
    }

    fn policy() -> EscalationPolicy {
        EscalationPolicy {
            high_value_intents: vec!["enterprise_quote".into()],
            ..EscalationPolicy::default()
        }
    }

    #[test]
    fn the_default_policy_is_valid() {
        EscalationPolicy::default().validate().expect("valid");
    }

    #[test]
    fn decisions_follow_the_table() {
        let p = policy();
        // (name, turns); each turn: negative score, fallback?, escalate?
        let table: Vec<(&str, Vec<Turn>)> = vec![
            (
                "calm conversation",
                vec![turn(Some(0.1), false, false), turn(Some(0.2), false, false)],
            ),
            (
                "one negative turn is venting",
                vec![turn(Some(0.8), false, false), turn(Some(0.1), false, false)],
            ),
            (
                "two negative turns in a row escalate",
                vec![
                    turn(Some(0.8), false, false),
                    Turn {
                        codes: &["negative_sentiment"],
                        ..turn(Some(0.75), false, true)
                    },
                ],
            ),
            (
                "a calm turn resets the negative streak",
                vec![
                    turn(Some(0.8), false, false),
                    turn(Some(0.3), false, false),
                    turn(Some(0.8), false, false),
                ],
            ),
            (
                "below the threshold is not negative",
                vec![
                    turn(Some(0.69), false, false),
                    turn(Some(0.69), false, false),
                ],
            ),
            (
                "exactly the threshold is negative",
                vec![turn(Some(0.7), false, false), turn(Some(0.7), false, true)],
            ),
            (
                "a very negative turn escalates alone",
                vec![Turn {
                    codes: &["very_negative"],
                    ..turn(Some(0.97), false, true)
                }],
            ),
            (
                "no sentiment keeps the streak",
                vec![
                    turn(Some(0.8), false, false),
                    turn(None, false, false),
                    turn(Some(0.8), false, true),
                ],
            ),
            (
                "two fallbacks in a row escalate",
                vec![
                    turn(Some(0.1), true, false),
                    Turn {
                        codes: &["repeated_fallbacks"],
                        ..turn(Some(0.1), true, true)
                    },
                ],
            ),
            (
                "an understood turn resets the fallback streak",
                vec![
                    turn(Some(0.1), true, false),
                    turn(Some(0.1), false, false),
                    turn(Some(0.1), true, false),
                ],
            ),
            (
                "an escalation starts the streaks over",
                vec![
                    turn(Some(0.8), true, false),
                    Turn {
                        codes: &["negative_sentiment", "repeated_fallbacks"],
                        ..turn(Some(0.8), true, true)
                    },
                    turn(Some(0.8), true, false),
                    turn(Some(0.8), true, true),
                ],
            ),
            (
                "asking for a person escalates at once, in Spanish",
                vec![Turn {
                    text: "Quiero HABLAR con una persona, por favor",
                    codes: &["asked_for_person"],
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "asking for a person in Portuguese",
                vec![Turn {
                    text: "posso falar com um atendente?",
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "asking for a person in English",
                vec![Turn {
                    text: "Can I speak to a human?",
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "a complaint keyword, accents folded",
                vec![Turn {
                    text: "Quero fazer uma RECLAMAÇÃO",
                    codes: &["keyword"],
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "a legal keyword",
                vec![Turn {
                    text: "I will call my lawyer",
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "a cancellation phrase",
                vec![Turn {
                    text: "quiero darme de baja ya",
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "words inside other words do not match",
                vec![Turn {
                    text: "the suede jacket, is it sueded?",
                    ..turn(Some(0.1), false, false)
                }],
            ),
            (
                "a high-value intent escalates",
                vec![Turn {
                    intent: Some("enterprise_quote"),
                    codes: &["high_value_intent"],
                    ..turn(Some(0.1), false, true)
                }],
            ),
            (
                "another intent does not",
                vec![Turn {
                    intent: Some("prices"),
                    ..turn(Some(0.1), false, false)
                }],
            ),
            (
                "everything at once: every reason, in order",
                vec![
                    turn(Some(0.8), true, false),
                    Turn {
                        text: "hablar con una persona, voy a poner una queja",
                        intent: Some("enterprise_quote"),
                        codes: &[
                            "asked_for_person",
                            "keyword",
                            "high_value_intent",
                            "negative_sentiment",
                            "repeated_fallbacks",
                        ],
                        ..turn(Some(0.8), true, true)
                    },
                ],
            ),
        ];
        for (name, turns) in &table {
            run(&p, name, turns);
        }
    }

    #[test]
    fn thresholds_and_streaks_are_configurable() {
        let p = EscalationPolicy {
            negative_threshold: 0.5,
            negative_streak: 3,
            very_negative_threshold: None,
            fallback_streak: 1,
            ..EscalationPolicy::default()
        };
        run(
            &p,
            "three at 0.5 and no very-negative",
            &[
                turn(Some(0.99), false, false),
                turn(Some(0.5), false, false),
                turn(Some(0.6), false, true),
            ],
        );
        run(&p, "one fallback", &[turn(Some(0.1), true, true)]);
    }

    #[test]
    fn streaks_are_kept_in_the_state() {
        let p = policy();
        let state = run(&p, "streaks", &[turn(Some(0.8), true, false)]);
        assert_eq!(state.negative_streak, 1);
        assert_eq!(state.fallback_streak, 1);
        assert_eq!(state.escalations, 0);
        let json = serde_json::to_string(&state).expect("json");
        let back: EscalationState = serde_json::from_str(&json).expect("back");
        assert_eq!(back, state);
        // Fields added later default: an old record still reads.
        let old: EscalationState = serde_json::from_str(r#"{"negative_streak":1}"#).expect("old");
        assert_eq!(old.negative_streak, 1);
        assert_eq!(old.last_turn_id, None);
    }

    #[test]
    fn a_redelivered_turn_gets_the_same_decision_and_no_second_count() {
        let p = policy();
        let first = Signals {
            sentiment: sentiment(0.8),
            ..quiet("t1")
        };
        let (_, s1) = decide(&p, &EscalationState::default(), &first);
        let second = Signals {
            sentiment: sentiment(0.8),
            ..quiet("t2")
        };
        let (d2, s2) = decide(&p, &s1, &second);
        assert!(d2.escalate);
        let (again, s3) = decide(&p, &s2, &second);
        assert_eq!(again, d2);
        assert_eq!(s3, s2);
        assert_eq!(s3.escalations, 1);
    }

    #[test]
    fn profile_keywords_are_custom_and_every_language_is_tried() {
        let p = EscalationPolicy::default().with_profile_keywords(&BTreeMap::from([(
            "es".to_string(),
            vec!["estafa".to_string()],
        )]));
        let found = p.match_keywords("This is an ESTAFA!!");
        assert_eq!(
            found,
            vec![KeywordMatch {
                category: KeywordCategory::Custom,
                language: "es".into(),
                word: "estafa".into(),
            }]
        );
        assert_eq!(
            p.person_request("hola, can I talk to someone?").as_deref(),
            Some("talk to someone")
        );
        assert_eq!(p.person_request("hola, ¿cuánto cuesta?"), None);
    }

    #[test]
    fn a_broken_sentiment_score_is_not_negative() {
        let p = policy();
        let s = Signals {
            sentiment: Some(Sentiment {
                negative: f32::NAN,
                ..Sentiment::neutral()
            }),
            ..quiet("nan")
        };
        let (d, state) = decide(&p, &EscalationState::default(), &s);
        assert!(!d.escalate);
        assert_eq!(state.negative_streak, 0);
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

    fn notice(reasons: Vec<Reason>) -> EscalationNotice {
        EscalationNotice {
            id: "wamid.1:handoff".into(),
            wa_id: WaId::parse("5491155551234").expect("wa id"),
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

    #[test]
    fn folding_drops_case_accents_and_punctuation() {
        assert_eq!(fold("¡Reclamação, JÁ!"), " reclamacao ja ");
        assert_eq!(fold("  ...  "), "");
    }

    proptest! {
        #[test]
        fn decide_never_panics_and_reasons_match_escalate(
            text in "\\PC{0,80}",
            negative in proptest::option::of(any::<f32>()),
            fallback in any::<bool>(),
            neg_streak in 0u32..5,
            fb_streak in 0u32..5,
        ) {
            let p = policy();
            let state = EscalationState { negative_streak: neg_streak, fallback_streak: fb_streak, ..Default::default() };
            let s = p.signals("t", &text, negative.map(|n| Sentiment { negative: n, ..Sentiment::neutral() }), fallback, None);
            let (d, next) = decide(&p, &state, &s);
            prop_assert_eq!(d.escalate, !d.reasons.is_empty());
            if d.escalate {
                prop_assert_eq!(next.negative_streak, 0);
                prop_assert_eq!(next.fallback_streak, 0);
            }
        }
    }
}
