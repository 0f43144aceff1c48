//! The playbook: deterministic intents from the profile, matched before any
//! model call. Cheap, instant and predictable.

use crate::profile::{CompiledIntent, IntentAction, Profile};
use crate::text::{fold, has_word};

/// What the playbook recognised in a user's turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// A menu button (by its title) or an intent, by name.
    Intent { name: String, action: IntentAction },
    /// An escalation keyword: straight to people.
    Escalate { keyword: String },
    /// A customer id in the message: look the customer up.
    CustomerId(String),
}

/// Matches the user's words against the profile, in this order: menu
/// buttons, escalation keywords, a customer id, then the intents in the
/// profile's order.
pub fn recognise(profile: &Profile, text: &str) -> Option<Match> {
    let folded = fold(text);
    if folded.is_empty() {
        return None;
    }
    // Button replies arrive as their titles.
    for item in &profile.menu {
        if item.title.values().any(|t| fold(t) == folded) {
            if let Some(c) = profile.intent(&item.intent) {
                return Some(intent(c));
            }
        }
    }
    if let Some(word) = profile
        .escalation_words
        .iter()
        .find(|w| has_word(&folded, w))
    {
        return Some(Match::Escalate {
            keyword: word.trim().to_string(),
        });
    }
    if let Some(m) = profile.customer_id_in_message.find(text) {
        return Some(Match::CustomerId(m.as_str().to_string()));
    }
    let words = folded.split_whitespace().count();
    profile
        .intents
        .iter()
        .find(|c| {
            // A greeting opens the menu only when it is all the user said:
            // "hola, ¿hacen envíos a Córdoba?" is a question.
            if c.intent.action == IntentAction::Menu && words > GREETING_WORDS {
                return false;
            }
            c.words.iter().any(|w| has_word(&folded, w))
                || c.patterns.iter().any(|p| p.is_match(text))
        })
        .map(intent)
}

/// The most words a message that only greets has ("hola buenas tardes").
pub(crate) const GREETING_WORDS: usize = 4;

fn intent(c: &CompiledIntent) -> Match {
    Match::Intent {
        name: c.intent.name.clone(),
        action: c.intent.action,
    }
}

/// The id as `pattern` (the profile's `id_pattern`) writes it: as typed,
/// or without dots, dashes and spaces (`20.123.456` is `20123456`), or
/// either in capitals (`vm-48213` is `VM-48213`); `None` when no form fits.
pub fn normalised_id(pattern: &regex::Regex, id: &str) -> Option<String> {
    let typed = id.trim().to_string();
    let bare: String = typed
        .chars()
        .filter(|c| !matches!(c, '.' | '-' | ' ' | '\u{a0}'))
        .collect();
    let upper = (typed.to_uppercase(), bare.to_uppercase());
    [typed, bare, upper.0, upper.1]
        .into_iter()
        .find(|c| pattern.is_match(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A business's own ids (a member number with letters and a dash),
    /// written from the README with `id_pattern` only: found in a message
    /// in any case, and looked up as the pattern writes them.
    #[test]
    fn a_business_id_with_letters_and_a_dash_is_found_and_kept() {
        let demo = include_str!("../../profiles/demo/agent.toml");
        let line = demo
            .lines()
            .find(|l| l.starts_with("id_in_message"))
            .expect("the demo sets id_in_message");
        let own = demo.replace(line, "").replacen(
            "id_pattern = \"^[0-9]{7,8}$\"",
            "id_pattern = \"^VM-[0-9]{5}$\"",
            1,
        );
        let p = Profile::parse(&own, std::path::Path::new(".")).expect("profile");
        for (text, found) in [
            ("mi número de socio es VM-48213", "VM-48213"),
            ("socio vm-48213, ¿cuánto debo?", "vm-48213"),
        ] {
            match recognise(&p, text) {
                Some(Match::CustomerId(id)) => {
                    assert_eq!(id, found);
                    assert_eq!(
                        normalised_id(&p.customer_id, &id).as_deref(),
                        Some("VM-48213")
                    );
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(recognise(&p, "mi dni es 30.123.456")
            .is_none_or(|m| !matches!(m, Match::CustomerId(_))));
        assert_eq!(normalised_id(&p.customer_id, "VM 4821"), None);
        // The default pattern keeps reading documents with dots.
        let demo_profile = profile();
        assert_eq!(
            normalised_id(&demo_profile.customer_id, " 30.123.456 ").as_deref(),
            Some("30123456")
        );
    }

    fn profile() -> Profile {
        Profile::parse(
            include_str!("../../profiles/demo/agent.toml"),
            std::path::Path::new("."),
        )
        .expect("demo")
    }

    fn name_of(text: &str) -> Option<String> {
        match recognise(&profile(), text)? {
            Match::Intent { name, .. } => Some(name),
            Match::Escalate { keyword } => Some(format!("escalate:{keyword}")),
            Match::CustomerId(id) => Some(format!("id:{id}")),
        }
    }

    #[test]
    fn the_demo_playbook_recognises_its_intents() {
        let cases = [
            ("Hola!", Some("greeting")),
            ("hola buenas tardes", Some("greeting")),
            ("Hola, ¿hacen envíos a Córdoba capital?", None),
            ("Planes y precios", Some("prices")),
            ("Opening hours", Some("hours")),
            ("Falar com pessoa", Some("human")),
            ("quiero hablar con una persona", Some("human")),
            ("¿a qué hora abren?", Some("hours")),
            ("llamame por favor", Some("call")),
            ("¿Me pueden llamar mañana?", Some("call")),
            ("call me", Some("call")),
            ("me liga amanhã", Some("call")),
            ("mi dni es 30.123.456", Some("id:30.123.456")),
            ("30123456", Some("id:30123456")),
            ("voy a hacer una denuncia", Some("escalate:denuncia")),
            ("quiero presentar un reclamo", Some("escalate:reclamo")),
            ("¿tienen stock del modelo rojo?", None),
            ("I got a call from you yesterday", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(name_of(text).as_deref(), expected, "{text:?}");
        }
    }
}
