//! The conversation as people read it: in a notice, in a desk's private
//! note.

use serde::{Deserialize, Serialize};

/// One line of the conversation so far, as people read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// `user`, `bot` or `agent`.
    pub from: String,
    pub text: String,
    pub at_ms: i64,
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
