//! The private note a hand-off leaves for the people who take over.

use domain::escalation::{transcript_text, Reason, TranscriptLine};

/// Longest note posted; a longer transcript keeps its last lines. Chatwoot
/// accepts far more, but agents read the top and the end.
pub const MAX_NOTE_CHARS: usize = 20_000;

/// The private note: why, then the conversation so far (its last lines if
/// it is long).
pub fn handoff_note(reasons: &[Reason], transcript: &[TranscriptLine]) -> String {
    let mut head = String::from("Escalated by Charla.\nReasons:\n");
    for r in reasons {
        head.push_str(&format!("- {r}\n"));
    }
    head.push_str("\nConversation so far:\n");
    let budget = MAX_NOTE_CHARS.saturating_sub(head.chars().count());
    let mut kept: Vec<String> = Vec::new();
    let mut used = 0;
    for line in transcript.iter().rev() {
        let text = transcript_text(std::slice::from_ref(line));
        let n = text.chars().count();
        if used + n > budget {
            kept.push("[...]\n".to_string());
            break;
        }
        used += n;
        kept.push(text);
    }
    kept.reverse();
    head + &kept.concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::reasons;

    #[test]
    fn a_long_transcript_keeps_its_last_lines() {
        let lines: Vec<TranscriptLine> = (0..100)
            .map(|i| TranscriptLine {
                from: "user".into(),
                text: format!("{i:03} {}", "x".repeat(500)),
                at_ms: i,
            })
            .collect();
        let note = handoff_note(&reasons(), &lines);
        assert!(note.chars().count() <= MAX_NOTE_CHARS + 10);
        assert!(note.contains("[...]"));
        assert!(note.contains("099 "));
        assert!(!note.contains("000 "));
    }
}
