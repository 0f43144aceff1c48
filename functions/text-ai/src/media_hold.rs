//! Media in turns (issue 4): a media message holds its user's turn until
//! the media pipeline has noted what it shows (or that it failed), so that a
//! caption-less photo followed by a question is answered with both in mind;
//! and the responder reads the pipeline's description in place of "[image]".
//!
//! The hold is bounded: a media message older than `hold_ms` with no note
//! no longer holds the turn (the pipeline died, or an execution timed out),
//! and is answered from its caption. A held job is done (acknowledged): the
//! pipeline's last step queues the turn again.

use std::sync::Arc;

use domain::media_pipeline::is_media_kind;
use domain::ports::MediaNotes;
use domain::Result;
use domain::StoredMessage;

/// Longer than the state machine takes in the worst case with its retries
/// and polls (about 15 minutes), so it bounds only a pipeline that died.
pub const DEFAULT_HOLD_MS: i64 = 20 * 60 * 1000;

#[derive(Clone)]
pub struct MediaHold {
    /// `None`: no media pipeline; media messages are plain turns.
    pub notes: Option<Arc<dyn MediaNotes>>,
    pub hold_ms: i64,
}

impl Default for MediaHold {
    fn default() -> Self {
        MediaHold {
            notes: None,
            hold_ms: DEFAULT_HOLD_MS,
        }
    }
}

impl std::fmt::Debug for MediaHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaHold")
            .field("notes", &self.notes.is_some())
            .field("hold_ms", &self.hold_ms)
            .finish()
    }
}

/// Puts the notes' descriptions in place of the media messages' texts, in
/// the new messages and the history. Returns `true` when the turn must wait
/// for a media message still in the works.
pub async fn apply(
    hold: &MediaHold,
    now_ms: i64,
    new_messages: &mut [StoredMessage],
    history: &mut [StoredMessage],
) -> Result<bool> {
    let Some(notes) = &hold.notes else {
        return Ok(false);
    };
    let wamids: Vec<String> = new_messages
        .iter()
        .chain(history.iter())
        .filter(|m| is_media_kind(&m.kind))
        .map(|m| m.wamid.clone())
        .collect();
    if wamids.is_empty() {
        return Ok(false);
    }
    let found = notes.notes(&wamids).await?;
    let waiting = new_messages.iter().any(|m| {
        is_media_kind(&m.kind)
            && !found.contains_key(&m.wamid)
            && now_ms.saturating_sub(m.at_ms) < hold.hold_ms
    });
    if waiting {
        return Ok(true);
    }
    for m in new_messages.iter_mut().chain(history.iter_mut()) {
        if let Some(note) = found.get(&m.wamid) {
            m.text = note.text_for_responder(&m.kind);
        }
    }
    Ok(false)
}
