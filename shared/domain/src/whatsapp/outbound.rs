//! What we send through the Graph API: Charla's outbound messages, with
//! Meta's documented limits checked before anything leaves (the request
//! bodies are built in `whatsapp_graph::body`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Text bodies: at most 4096 characters.
pub const TEXT_MAX: usize = 4096;
/// Interactive bodies (buttons, lists): at most 1024 characters.
pub const INTERACTIVE_BODY_MAX: usize = 1024;
pub const BUTTON_TITLE_MAX: usize = 20;
pub const BUTTONS_MAX: usize = 3;
pub const BUTTON_ID_MAX: usize = 256;
pub const LIST_ROWS_MAX: usize = 10;
pub const LIST_ROW_TITLE_MAX: usize = 24;
pub const LIST_ROW_DESCRIPTION_MAX: usize = 72;
pub const LIST_BUTTON_MAX: usize = 20;
pub const LIST_SECTION_TITLE_MAX: usize = 24;
pub const FOOTER_MAX: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} has {len} characters, the limit is {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what}: {count} given, allowed {min} to {max}")]
    Count {
        what: &'static str,
        count: usize,
        min: usize,
        max: usize,
    },
    #[error("duplicate id {0:?}")]
    DuplicateId(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

/// One message to a user. Build with the constructors, which validate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboundMessage {
    Text {
        body: String,
    },
    Buttons {
        body: String,
        buttons: Vec<ReplyButton>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
    },
    List {
        body: String,
        button: String,
        sections: Vec<ListSection>,
    },
    Template {
        name: String,
        language: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        components: Vec<Value>,
    },
    Reaction {
        message_id: String,
        emoji: String,
    },
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn check_len(what: &'static str, s: &str, max: usize) -> Result<(), OutboundError> {
    if s.trim().is_empty() {
        return Err(OutboundError::Empty { what });
    }
    let len = chars(s);
    if len > max {
        return Err(OutboundError::TooLong { what, len, max });
    }
    Ok(())
}

fn check_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Result<(), OutboundError> {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        check_len("id", id, BUTTON_ID_MAX)?;
        if !seen.insert(id) {
            return Err(OutboundError::DuplicateId(id.to_string()));
        }
    }
    Ok(())
}

impl OutboundMessage {
    /// Text of any length: split into as many messages as needed.
    pub fn texts(body: &str) -> Vec<OutboundMessage> {
        split_text(body, TEXT_MAX)
            .into_iter()
            .map(|body| OutboundMessage::Text { body })
            .collect()
    }

    pub fn buttons(
        body: impl Into<String>,
        buttons: Vec<ReplyButton>,
    ) -> Result<OutboundMessage, OutboundError> {
        let msg = OutboundMessage::Buttons {
            body: body.into(),
            buttons,
            footer: None,
        };
        msg.validate()?;
        Ok(msg)
    }

    pub fn list(
        body: impl Into<String>,
        button: impl Into<String>,
        sections: Vec<ListSection>,
    ) -> Result<OutboundMessage, OutboundError> {
        let msg = OutboundMessage::List {
            body: body.into(),
            button: button.into(),
            sections,
        };
        msg.validate()?;
        Ok(msg)
    }

    pub fn template(name: impl Into<String>, language: impl Into<String>) -> OutboundMessage {
        OutboundMessage::Template {
            name: name.into(),
            language: language.into(),
            components: Vec::new(),
        }
    }

    /// Checks Meta's documented limits.
    pub fn validate(&self) -> Result<(), OutboundError> {
        match self {
            OutboundMessage::Text { body } => check_len("text body", body, TEXT_MAX),
            OutboundMessage::Buttons {
                body,
                buttons,
                footer,
            } => {
                check_len("body", body, INTERACTIVE_BODY_MAX)?;
                if buttons.is_empty() || buttons.len() > BUTTONS_MAX {
                    return Err(OutboundError::Count {
                        what: "buttons",
                        count: buttons.len(),
                        min: 1,
                        max: BUTTONS_MAX,
                    });
                }
                for b in buttons {
                    check_len("button title", &b.title, BUTTON_TITLE_MAX)?;
                }
                if let Some(f) = footer {
                    check_len("footer", f, FOOTER_MAX)?;
                }
                check_ids(buttons.iter().map(|b| b.id.as_str()))
            }
            OutboundMessage::List {
                body,
                button,
                sections,
            } => {
                check_len("body", body, INTERACTIVE_BODY_MAX)?;
                check_len("list button", button, LIST_BUTTON_MAX)?;
                let rows: usize = sections.iter().map(|s| s.rows.len()).sum();
                if sections.is_empty() || rows == 0 || rows > LIST_ROWS_MAX {
                    return Err(OutboundError::Count {
                        what: "list rows",
                        count: rows,
                        min: 1,
                        max: LIST_ROWS_MAX,
                    });
                }
                for s in sections {
                    if let Some(t) = &s.title {
                        check_len("section title", t, LIST_SECTION_TITLE_MAX)?;
                    }
                    for r in &s.rows {
                        check_len("row title", &r.title, LIST_ROW_TITLE_MAX)?;
                        if let Some(d) = &r.description {
                            check_len("row description", d, LIST_ROW_DESCRIPTION_MAX)?;
                        }
                    }
                }
                check_ids(
                    sections
                        .iter()
                        .flat_map(|s| s.rows.iter().map(|r| r.id.as_str())),
                )
            }
            OutboundMessage::Template { name, language, .. } => {
                check_len("template name", name, 512)?;
                check_len("template language", language, 16)
            }
            OutboundMessage::Reaction { message_id, .. } => {
                check_len("reaction message id", message_id, 512)
            }
        }
    }

    /// Free text can only be sent inside the 24-hour window; templates can
    /// always be sent.
    pub fn needs_open_window(&self) -> bool {
        !matches!(self, OutboundMessage::Template { .. })
    }

    /// What kind of message the transcript records: the one name per kind,
    /// whichever function sent it.
    pub fn kind(&self) -> &'static str {
        match self {
            OutboundMessage::Text { .. } => "text",
            OutboundMessage::Buttons { .. } | OutboundMessage::List { .. } => "interactive",
            OutboundMessage::Template { .. } => "template",
            OutboundMessage::Reaction { .. } => "reaction",
        }
    }

    /// A one-line text for transcripts.
    pub fn summary(&self) -> String {
        match self {
            OutboundMessage::Text { body } => body.clone(),
            OutboundMessage::Buttons { body, buttons, .. } => {
                let titles: Vec<&str> = buttons.iter().map(|b| b.title.as_str()).collect();
                format!("{body} [{}]", titles.join(" | "))
            }
            OutboundMessage::List { body, button, .. } => format!("{body} [{button}]"),
            OutboundMessage::Template { name, .. } => format!("[template {name}]"),
            OutboundMessage::Reaction { emoji, .. } => format!("[reaction] {emoji}"),
        }
    }
}

/// Splits `text` into parts of at most `max` characters, preferring paragraph,
/// then sentence, then word boundaries; never splits inside a character.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        // Byte offset of the `max`-th character, or the whole rest.
        let limit = match rest.char_indices().nth(max) {
            None => {
                parts.push(rest.to_string());
                break;
            }
            Some((i, _)) => i,
        };
        let window = &rest[..limit];
        let cut = best_cut(window).unwrap_or(limit);
        let (head, tail) = rest.split_at(cut);
        let head = head.trim_end();
        if head.is_empty() {
            // Only whitespace before the cut: take the hard window instead.
            let (h, t) = rest.split_at(limit);
            parts.push(h.to_string());
            rest = t.trim_start();
        } else {
            parts.push(head.to_string());
            rest = tail.trim_start();
        }
    }
    parts
}

/// Where to cut inside `window`: after a paragraph break, a sentence end or a
/// space, whichever is found latest in that order of preference, and only in
/// the second half of the window so that parts do not get tiny.
fn best_cut(window: &str) -> Option<usize> {
    let half = window.len() / 2;
    let after = |pat: &str| {
        window
            .rmatch_indices(pat)
            .map(|(i, m)| i + m.len())
            .find(|&i| i > half && i < window.len() + 1)
    };
    after("\n\n")
        .or_else(|| {
            [". ", "! ", "? ", "\n", "。"]
                .iter()
                .filter_map(|p| after(p))
                .max()
        })
        .or_else(|| {
            window
                .char_indices()
                .filter(|(_, c)| c.is_whitespace())
                .map(|(i, _)| i)
                .rfind(|&i| i > 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn button(id: &str, title: &str) -> ReplyButton {
        ReplyButton {
            id: id.into(),
            title: title.into(),
        }
    }

    #[test]
    fn short_text_is_one_message() {
        assert_eq!(split_text("hola", TEXT_MAX), vec!["hola".to_string()]);
        assert!(split_text("   ", TEXT_MAX).is_empty());
    }

    #[test]
    fn long_text_splits_at_a_sentence_end() {
        let text = "Uno dos tres. Cuatro cinco seis. Siete ocho nueve.";
        let parts = split_text(text, 40);
        assert_eq!(
            parts,
            vec!["Uno dos tres. Cuatro cinco seis.", "Siete ocho nueve."]
        );
    }

    #[test]
    fn a_word_longer_than_the_limit_is_cut_on_a_char_boundary() {
        let text = "ñ".repeat(10);
        let parts = split_text(&text, 4);
        assert_eq!(parts, vec!["ññññ", "ññññ", "ññ"]);
    }

    #[test]
    fn over_4096_characters_becomes_several_valid_messages() {
        let text = "Esta es una oración bastante larga con acentos y eñes. ".repeat(200);
        let msgs = OutboundMessage::texts(&text);
        assert!(msgs.len() >= 3);
        for m in &msgs {
            m.validate().expect("each part valid");
        }
    }

    #[test]
    fn buttons_enforce_count_title_and_unique_ids() {
        assert!(OutboundMessage::buttons("Elige", vec![button("a", "Uno")]).is_ok());
        assert!(matches!(
            OutboundMessage::buttons("Elige", vec![]),
            Err(OutboundError::Count { .. })
        ));
        let four = (0..4).map(|i| button(&i.to_string(), "x")).collect();
        assert!(matches!(
            OutboundMessage::buttons("Elige", four),
            Err(OutboundError::Count { count: 4, .. })
        ));
        assert!(matches!(
            OutboundMessage::buttons("Elige", vec![button("a", "Un título muy largo de más")]),
            Err(OutboundError::TooLong { .. })
        ));
        assert!(matches!(
            OutboundMessage::buttons("Elige", vec![button("a", "x"), button("a", "y")]),
            Err(OutboundError::DuplicateId(_))
        ));
        assert!(matches!(
            OutboundMessage::buttons("x".repeat(1025), vec![button("a", "x")]),
            Err(OutboundError::TooLong { max: 1024, .. })
        ));
    }

    #[test]
    fn lists_enforce_row_limits() {
        let rows = |n: usize| {
            (0..n)
                .map(|i| ListRow {
                    id: format!("r{i}"),
                    title: format!("Row {i}"),
                    description: None,
                })
                .collect::<Vec<_>>()
        };
        let ok = OutboundMessage::list(
            "Body",
            "Ver",
            vec![ListSection {
                title: None,
                rows: rows(10),
            }],
        );
        assert!(ok.is_ok());
        let too_many = OutboundMessage::list(
            "Body",
            "Ver",
            vec![ListSection {
                title: None,
                rows: rows(11),
            }],
        );
        assert!(matches!(
            too_many,
            Err(OutboundError::Count { count: 11, .. })
        ));
        let long_desc = OutboundMessage::list(
            "Body",
            "Ver",
            vec![ListSection {
                title: None,
                rows: vec![ListRow {
                    id: "a".into(),
                    title: "t".into(),
                    description: Some("d".repeat(73)),
                }],
            }],
        );
        assert!(matches!(
            long_desc,
            Err(OutboundError::TooLong { max: 72, .. })
        ));
    }

    proptest! {
        #[test]
        fn split_parts_respect_the_limit_and_keep_every_word(text in "\\PC{0,3000}", max in 1usize..600) {
            let parts = split_text(&text, max);
            for p in &parts {
                prop_assert!(p.chars().count() <= max);
                prop_assert!(!p.is_empty());
            }
            let joined: String = parts.concat().chars().filter(|c| !c.is_whitespace()).collect();
            let original: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            prop_assert_eq!(joined, original);
        }
    }
}
