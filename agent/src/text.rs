//! Text helpers: folding for matching, language detection among the
//! profile's languages, and shaping a model's answer for WhatsApp.

use domain::whatsapp::outbound::{OutboundMessage, ReplyButton, BUTTON_TITLE_MAX};

pub use domain::text::{fold, has_phrase as has_word};

/// A phone number the user wrote with its country code (`+54 9 11
/// 5555-1234`, `+1 (555) 123-4567`), as E.164 digits. Only with the `+`:
/// without it the country is a guess.
pub fn phone_in(text: &str) -> Option<String> {
    let start = text.find('+')?;
    let mut digits = String::new();
    for c in text[start + 1..].chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => break,
        }
    }
    domain::UserId::phone(&digits)
        .ok()
        .map(|p| p.as_str().to_string())
        .or_else(|| phone_in(&text[start + 1..]))
}

/// Common short words per language: what tells a two-word message apart,
/// where statistical detection needs more text.
fn hint_words(lang: &str) -> &'static [&'static str] {
    match lang {
        "es" => &[
            "hola", "que", "cuanto", "donde", "gracias", "quiero", "hablar", "precio", "el", "los",
            "es", "por", "favor", "buenas", "tienen", "como", "cuesta", "necesito", "mi", "y",
            "llamame", "si", "una", "quisiera", "puedo", "ustedes", "envio",
        ],
        "en" => &[
            "hi", "hello", "the", "what", "how", "price", "prices", "hours", "you", "is", "are",
            "where", "thanks", "please", "want", "talk", "open", "do", "can", "i", "my", "and",
            "call", "me", "need", "would", "like", "shipping",
        ],
        "pt" => &[
            "oi", "ola", "voce", "obrigado", "obrigada", "quanto", "preco", "onde", "fica", "nao",
            "sim", "bom", "dia", "quero", "falar", "com", "frete", "voces", "meu", "minha", "e",
            "liga", "preciso", "gostaria", "posso", "entrega",
        ],
        _ => &[],
    }
}

/// The user's language among `allowed` (the profile's), or `None` when the
/// text does not tell (then the caller keeps what it knew).
pub fn detect_language(text: &str, allowed: &[String]) -> Option<String> {
    let folded = fold(text);
    let words: Vec<&str> = folded.split_whitespace().collect();
    if words.is_empty() {
        return None;
    }
    // Statistical detection when there is enough text and it is sure.
    if words.len() >= 4 {
        let langs: Vec<whatlang::Lang> = allowed.iter().filter_map(|l| whatlang_code(l)).collect();
        if !langs.is_empty() {
            let detector = whatlang::Detector::with_allowlist(langs);
            if let Some(info) = detector.detect(text) {
                if info.is_reliable() || info.confidence() > 0.5 {
                    if let Some(code) = allowed
                        .iter()
                        .find(|l| whatlang_code(l) == Some(info.lang()))
                    {
                        return Some(code.clone());
                    }
                }
            }
        }
    }
    // Short messages: the common words vote; a tie tells nothing.
    let mut best: Option<(&String, usize)> = None;
    let mut tie = false;
    for lang in allowed {
        let hints = hint_words(lang);
        let score = words.iter().filter(|w| hints.contains(w)).count();
        match best {
            Some((_, s)) if score == s => tie = true,
            Some((_, s)) if score < s => {}
            _ => {
                best = Some((lang, score));
                tie = false;
            }
        }
    }
    match best {
        Some((lang, score)) if score > 0 && !tie => Some(lang.clone()),
        _ => None,
    }
}

fn whatlang_code(code: &str) -> Option<whatlang::Lang> {
    Some(match code {
        "es" => whatlang::Lang::Spa,
        "en" => whatlang::Lang::Eng,
        "pt" => whatlang::Lang::Por,
        "fr" => whatlang::Lang::Fra,
        "it" => whatlang::Lang::Ita,
        "de" => whatlang::Lang::Deu,
        _ => return None,
    })
}

/// Shapes a model's answer for WhatsApp: short paragraphs (at most 4096
/// characters a message, split at sentences), and reply buttons when the
/// answer ends by offering 2 or 3 short choices, one per line.
pub fn shape_reply(answer: &str) -> Vec<OutboundMessage> {
    let answer = answer.trim();
    if answer.is_empty() {
        return Vec::new();
    }
    let lines: Vec<&str> = answer.lines().collect();
    // Choices: the last lines, each starting with "- ", "* ", "• " or "1. ".
    let mut choices = Vec::new();
    for line in lines.iter().rev() {
        match choice(line) {
            Some(c) => choices.push(c),
            None => break,
        }
    }
    choices.reverse();
    if (2..=3).contains(&choices.len())
        && choices
            .iter()
            .all(|c| c.chars().count() <= BUTTON_TITLE_MAX && !c.is_empty())
    {
        let body = lines[..lines.len() - choices.len()].join("\n");
        let body = body.trim();
        if !body.is_empty() {
            let buttons = choices
                .iter()
                .enumerate()
                .map(|(i, c)| ReplyButton {
                    id: format!("choice_{}", i + 1),
                    title: c.to_string(),
                })
                .collect();
            // A body over the interactive limit: the text, then the buttons
            // with a short body.
            if let Ok(m) = OutboundMessage::buttons(body.to_string(), buttons) {
                return vec![m];
            }
        }
    }
    OutboundMessage::texts(answer)
}

fn choice(line: &str) -> Option<String> {
    let t = line.trim();
    let rest = t
        .strip_prefix("- ")
        .or_else(|| t.strip_prefix("* "))
        .or_else(|| t.strip_prefix("• "))
        .or_else(|| {
            let digits = t.chars().take_while(char::is_ascii_digit).count();
            if digits == 0 || digits > 1 {
                return None;
            }
            t[digits..]
                .strip_prefix(". ")
                .or_else(|| t[digits..].strip_prefix(") "))
        })?;
    let rest = rest.trim().trim_end_matches(['.', '?', '!']).trim();
    Some(rest.replace("**", ""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn phone_numbers_with_their_country_code_are_found() {
        use super::phone_in;
        assert_eq!(
            phone_in("llamame al +54 9 11 5555-1234 porfa").as_deref(),
            Some("5491155551234")
        );
        assert_eq!(
            phone_in("call me on +1 (555) 123-4567.").as_deref(),
            Some("15551234567")
        );
        assert_eq!(
            phone_in("me liga no +55 11 91234 5678").as_deref(),
            Some("5511912345678")
        );
        assert_eq!(phone_in("llamame al 11 5555 1234"), None);
        assert_eq!(phone_in("2+2 = 4, llamame"), None);
        assert_eq!(phone_in("+ +5491155551234"), Some("5491155551234".into()));
    }

    use super::*;

    fn langs() -> Vec<String> {
        vec!["es".into(), "en".into(), "pt".into()]
    }

    #[test]
    fn folding_finds_whole_words_and_phrases() {
        let t = fold("¿Cuánto CUESTA el envío, Señor?");
        assert_eq!(t, " cuanto cuesta el envio senor ");
        assert!(has_word(&t, &fold("envío")));
        assert!(has_word(&t, &fold("cuesta el")));
        assert!(!has_word(&t, &fold("env")));
        assert_eq!(fold("  ¿?  "), "");
    }

    #[test]
    fn languages_are_detected_among_the_profiles() {
        let l = langs();
        let cases = [
            ("Hola, ¿cuánto cuesta el plan básico?", Some("es")),
            ("Hi, what are your opening hours please?", Some("en")),
            ("Oi, quanto custa o frete para São Paulo?", Some("pt")),
            (
                "Quisiera saber si tienen envíos al interior del país",
                Some("es"),
            ),
            (
                "I would like to know whether you ship to Córdoba",
                Some("en"),
            ),
            (
                "Eu gostaria de saber se vocês entregam no interior",
                Some("pt"),
            ),
            ("hola", Some("es")),
            ("hello", Some("en")),
            ("oi", Some("pt")),
            ("12345678", None),
            ("👍", None),
        ];
        for (text, expected) in cases {
            assert_eq!(detect_language(text, &l).as_deref(), expected, "{text}");
        }
    }

    #[test]
    fn only_the_profiles_languages_are_answered() {
        let es_pt = vec!["es".to_string(), "pt".to_string()];
        let found = detect_language("I would like to know whether you ship", &es_pt);
        assert!(found.as_deref() != Some("en"), "{found:?}");
    }

    #[test]
    fn two_or_three_short_choices_become_buttons() {
        let m = shape_reply("¿Qué preferís?\n- Plan Básico\n- Plan Plus\n- Plan Empresa");
        match &m[..] {
            [OutboundMessage::Buttons { body, buttons, .. }] => {
                assert_eq!(body, "¿Qué preferís?");
                let titles: Vec<&str> = buttons.iter().map(|b| b.title.as_str()).collect();
                assert_eq!(titles, ["Plan Básico", "Plan Plus", "Plan Empresa"]);
            }
            other => panic!("{other:?}"),
        }
        let four = shape_reply("Elegí:\n- a\n- b\n- c\n- d");
        assert!(matches!(&four[..], [OutboundMessage::Text { .. }]));
        let long = shape_reply("Elegí:\n1. Una opción con un título larguísimo\n2. Otra");
        assert!(matches!(&long[..], [OutboundMessage::Text { .. }]));
    }

    #[test]
    fn long_answers_are_split_under_the_limit() {
        let answer = "Una frase bastante larga sobre planes. ".repeat(300);
        let parts = shape_reply(&answer);
        assert!(parts.len() >= 3);
        for p in parts {
            match p {
                OutboundMessage::Text { body } => assert!(body.chars().count() <= 4096),
                other => panic!("{other:?}"),
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn shaping_and_detection_never_panic(s in "\\PC{0,300}") {
            let _ = detect_language(&s, &langs());
            for m in shape_reply(&s) {
                proptest::prop_assert!(m.validate().is_ok());
            }
        }
    }
}
