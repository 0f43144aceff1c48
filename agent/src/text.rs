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
/// where statistical detection needs more text, and what overrules it when
/// it confuses Spanish and Portuguese. Words two of the languages share
/// ("me", "no", "para", "a") are in neither list.
fn hint_words(lang: &str) -> &'static [&'static str] {
    match lang {
        "es" => &[
            "hola", "que", "cuanto", "donde", "gracias", "quiero", "hablar", "precio", "el", "los",
            "es", "por", "favor", "buenas", "tienen", "como", "cuesta", "necesito", "mi", "y",
            "llamame", "si", "una", "quisiera", "puedo", "ustedes", "envio", "esto", "estoy",
            "nadie", "nada", "pero", "muy", "del", "las", "te", "vamos", "podes", "aca", "aqui",
            "usted", "hay", "tengo", "responde", "ayuda", "harto", "cuando", "tambien", "sos",
            "eres", "venden", "hacen",
        ],
        "en" => &[
            "hi", "hello", "the", "what", "how", "price", "prices", "hours", "you", "is", "are",
            "where", "thanks", "please", "want", "talk", "open", "do", "can", "i", "my", "and",
            "call", "need", "would", "like", "shipping", "this", "that", "with", "for", "of", "to",
            "it", "not", "your", "we", "have", "there", "nobody", "anyone", "book", "much",
        ],
        "pt" => &[
            "oi", "ola", "voce", "obrigado", "obrigada", "quanto", "preco", "onde", "fica", "nao",
            "sim", "bom", "dia", "quero", "falar", "com", "frete", "voces", "meu", "minha", "e",
            "liga", "preciso", "gostaria", "posso", "entrega", "vou", "estou", "ninguem", "tenho",
            "isso", "isto", "muito", "do", "da", "dos", "das", "um", "uma", "ate", "agora", "tudo",
            "ajuda", "alguem",
        ],
        _ => &[],
    }
}

/// How many of `words` are common words of each of `allowed`: the best,
/// and by how many it leads the next (0: a tie, or no word known).
fn hint_vote<'a>(words: &[&str], allowed: &'a [String]) -> Option<(&'a String, usize)> {
    let mut scores: Vec<(&String, usize)> = allowed
        .iter()
        .map(|l| {
            let hints = hint_words(l);
            (l, words.iter().filter(|w| hints.contains(w)).count())
        })
        .collect();
    scores.sort_by_key(|s| std::cmp::Reverse(s.1));
    let (best, score) = *scores.first()?;
    let lead = score - scores.get(1).map_or(0, |s| s.1);
    (score > 0).then_some((best, lead))
}

/// The user's language among `allowed` (the profile's), or `None` when the
/// text does not tell (then the caller keeps what it knew).
pub fn detect_language(text: &str, allowed: &[String]) -> Option<String> {
    let folded = fold(text);
    let words: Vec<&str> = folded.split_whitespace().collect();
    if words.is_empty() {
        return None;
    }
    let hints = hint_vote(&words, allowed);
    // Common words that clearly lean one way win: statistics on a short
    // text confuse Spanish with Portuguese ("Entendido: no te vamos a
    // llamar" reads as Portuguese to them).
    if let Some((lang, lead)) = hints {
        if lead >= 2 {
            return Some(lang.clone());
        }
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
    match hints {
        Some((lang, lead)) if lead > 0 => Some(lang.clone()),
        _ => None,
    }
}

/// Words that carry no topic in a question, in the three languages (after
/// folding): what is left names what the user asks about.
const NOT_TOPICS: &[&str] = &[
    // es
    "que", "como", "cuanto", "cuanta", "cuantos", "cuantas", "donde", "cuando", "cual", "cuales",
    "quien", "por", "para", "con", "sin", "del", "los", "las", "una", "uno", "unos", "unas",
    "esto", "esta", "este", "estos", "estas", "eso", "estoy", "estan", "tienen", "tiene", "tengo",
    "puedo", "pueden", "podes", "puede", "quiero", "quisiera", "necesito", "saber", "hola",
    "buenas", "buen", "dia", "gracias", "favor", "ustedes", "usted", "hay", "hacen", "hace", "mas",
    "muy", "pero", "tambien", "todo", "todos", "algo", "ahora", "aca", "aqui", "mis", "tus", "sus",
    "nos", "les", "ser", "son", "sos", "era", "fue", "desde", "hasta", "sobre", "entre",
    // en
    "the", "and", "you", "your", "yours", "are", "can", "could", "would", "will", "what", "when",
    "where", "which", "who", "how", "much", "many", "does", "did", "have", "has", "for", "with",
    "from", "about", "into", "this", "that", "these", "those", "there", "please", "thanks",
    "hello", "want", "need", "like", "know", "tell", "any", "some", "get", "give", "let", "our",
    "out", "not", "all", "just", "also", "here", "long", "take", "takes", "way", "able",
    "still", // pt
    "voce", "voces", "quanto", "quanta", "quantos", "onde", "quando", "qual", "quais", "com",
    "sem", "dos", "das", "uma", "umas", "uns", "isso", "isto", "esse", "essa", "estou", "tenho",
    "posso", "podem", "quero", "gostaria", "preciso", "ola", "obrigado", "obrigada", "tudo",
    "muito", "mais", "tambem", "agora", "aqui", "meu", "minha", "seu", "sua", "ate", "sobre",
];

/// The words of `text` that name a topic: folded, of three letters or
/// more, without question words and courtesies.
pub fn topic_words(text: &str) -> Vec<String> {
    let folded = fold(text);
    let mut out: Vec<String> = Vec::new();
    for w in folded.split(|c: char| !c.is_alphanumeric()) {
        if w.chars().count() >= 3
            && !NOT_TOPICS.contains(&w)
            && !w.chars().all(|c| c.is_ascii_digit())
            && !out.iter().any(|o| o == w)
        {
            out.push(w.to_string());
        }
    }
    out
}

/// One word and another are the same but for their ending: `envio` and
/// `envios`, `responde` and `respondemos`, `devolver` and `devoluciones`.
fn same_stem(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.chars().count() >= 4 && long.starts_with(short) {
        return true;
    }
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    common >= 5
}

/// Whether a passage answers a question with confidence: one of the
/// question's topic words names the passage's topic (in its headings), or
/// two of them (or its only one) are in its text. A single shared word in the text ("te
/// respondemos" for "nadie me responde") is a different question.
pub fn answers(question: &str, headings: &str, text: &str) -> bool {
    let asked = topic_words(question);
    if asked.is_empty() {
        return false;
    }
    let heading_words = topic_words(headings);
    let text_words = topic_words(text);
    let in_heading = asked
        .iter()
        .any(|q| heading_words.iter().any(|h| same_stem(q, h)));
    let in_text = asked
        .iter()
        .filter(|q| text_words.iter().any(|t| same_stem(q, t)))
        .count();
    // A one-word question ("¿tienen estacionamiento?") has all it asks in
    // the text when that word is.
    in_heading || in_text >= 2 || (in_text == 1 && asked.len() == 1)
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
            // After an English turn, a Spanish complaint is Spanish (issue 16).
            (
                "esto es un desastre, nadie me responde, estoy harto",
                Some("es"),
            ),
            (
                "Entendido: no te vamos a llamar por WhatsApp. Podés seguir escribiéndonos por acá.",
                Some("es"),
            ),
            ("can you book me a rental car?", Some("en")),
            ("você pode me ajudar com o frete?", Some("pt")),
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
    fn a_passage_answers_only_what_it_is_about() {
        let hours = "Horarios y dirección > Horarios de atención";
        let hours_text = "Abrimos de lunes a viernes de 9 a 18 horas. Domingos cerrado; podés escribirnos igual y te respondemos el siguiente día hábil.";
        assert!(answers(
            "¿cuál es el horario de atención?",
            hours,
            hours_text
        ));
        assert!(!answers(
            "esto es un desastre, nadie me responde, estoy harto",
            hours,
            hours_text
        ));
        let transfer = "Servicios > Airport transfer";
        let transfer_text =
            "We pick you up at the airport by car and drive you to the hotel for USD 30.";
        assert!(!answers(
            "can you book me a rental car?",
            transfer,
            transfer_text
        ));
        assert!(answers(
            "do you have an airport transfer?",
            transfer,
            transfer_text
        ));
        assert!(answers(
            "¿Cuánto cuesta el envío a Córdoba?",
            "Envíos > Costos de envío",
            "El envío cuesta $5."
        ));
        assert!(answers(
            "¿puedo devolver un producto?",
            "Cambios y devoluciones > Plazo para devolver",
            "Tenés 30 días."
        ));
        assert!(!answers("gracias!", hours, hours_text));
        assert!(answers(
            "¿tienen estacionamiento?",
            "Horarios y dirección > Dirección",
            "Estamos en Av. Corrientes 1234. Hay estacionamiento a media cuadra."
        ));
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
