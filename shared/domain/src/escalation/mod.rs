//! When a conversation goes to people: the signals of a turn (sentiment, an
//! explicit request for a person, the bot not understanding, keywords, a
//! high-value intent), the policy that weighs them, and the notice people
//! get. Pure rules: no I/O. Every decision says why.
//!
//! One file per job: the sentiment a turn carries, the keyword lexicon, the
//! policy's settings, the decision, the reasons and notice people get, and
//! the transcript lines both of them show.

mod decision;
mod lexicon;
mod notice;
mod policy;
mod sentiment;
mod transcript;

pub use decision::{decide, Decision, EscalationState, Signals};
pub use lexicon::{KeywordCategory, KeywordList, KeywordMatch};
pub use notice::{EscalationNotice, Reason, NOTICE_EXCERPT_CHARS, SUBJECT_MAX_CHARS};
pub use policy::EscalationPolicy;
pub use sentiment::{Sentiment, SentimentLabel};
pub use transcript::{transcript_text, truncate_chars, TranscriptLine};
