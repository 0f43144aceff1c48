//! [`SentimentAnalyzer`] without a service: a small lexicon for Spanish,
//! English and Portuguese. Good enough to tell an angry message from a
//! happy one on one machine; Comprehend reads irony and context far better.
//!
//! How a text is scored:
//! - words are lowercased and accent-folded, so "PÉSIMO" and "pesimo" match;
//! - each word has a valence from -3 to +3, looked up in the conversation's
//!   language first, then in the other two (users mix languages);
//! - a negation ("no", "not", "não", "nunca", "never", ...) flips and damps
//!   the next word with a valence within three words ("no es bueno");
//! - an intensifier ("muy", "very", "muito", ...) strengthens the next word
//!   with a valence within two words; a word in capitals counts more;
//! - exclamation marks strengthen the whole message, up to four.
//!
//! The positive and negative totals become four scores like Comprehend's:
//! the more sentiment words, the surer, and both kinds at once is mixed.

use async_trait::async_trait;

use domain::error::Result;
use domain::escalation::{Sentiment, SentimentLabel};
use domain::ports::SentimentAnalyzer;
use domain::text::fold_char;

/// How strongly a negated word counts, reversed.
const NEGATION: f32 = -0.75;
/// How much an intensifier or capitals strengthen a word.
const INTENSIFIER: f32 = 1.5;
const CAPITALS: f32 = 1.3;
/// Each `!` adds this much to the whole message, up to `MAX_BANGS`.
const PER_BANG: f32 = 0.1;
const MAX_BANGS: usize = 4;
/// Total valence at which the analyzer is about 63% sure the text is not
/// neutral (one strong word: ~0.78, two: ~0.95).
const SCALE: f32 = 2.0;
/// Words looked at after a negation or intensifier.
const NEGATION_SCOPE: usize = 3;
const INTENSIFIER_SCOPE: usize = 2;

const ES: &[(&str, f32)] = &[
    ("malo", -2.0),
    ("mala", -2.0),
    ("mal", -2.0),
    ("pesimo", -3.0),
    ("pesima", -3.0),
    ("horrible", -3.0),
    ("terrible", -3.0),
    ("desastre", -3.0),
    ("basura", -3.0),
    ("estafa", -3.0),
    ("estafadores", -3.0),
    ("ladrones", -3.0),
    ("harto", -3.0),
    ("harta", -3.0),
    ("cansado", -1.5),
    ("cansada", -1.5),
    ("enojado", -2.5),
    ("enojada", -2.5),
    ("furioso", -3.0),
    ("furiosa", -3.0),
    ("molesto", -2.0),
    ("molesta", -2.0),
    ("indignado", -3.0),
    ("indignada", -3.0),
    ("verguenza", -3.0),
    ("inaceptable", -3.0),
    ("lamentable", -2.5),
    ("problema", -1.0),
    ("problemas", -1.0),
    ("error", -1.0),
    ("falla", -1.5),
    ("fallo", -1.5),
    ("demora", -1.5),
    ("odio", -3.0),
    ("decepcionado", -2.5),
    ("decepcionada", -2.5),
    ("decepcion", -2.5),
    ("peor", -3.0),
    ("inutil", -2.5),
    ("incompetentes", -3.0),
    ("mentira", -2.5),
    ("mentiras", -2.5),
    ("robo", -3.0),
    ("porqueria", -3.0),
    ("asco", -3.0),
    ("fatal", -2.5),
    ("triste", -1.5),
    ("lento", -1.0),
    ("caro", -1.0),
    ("bueno", 2.0),
    ("buena", 2.0),
    ("bien", 1.5),
    ("excelente", 3.0),
    ("genial", 3.0),
    ("perfecto", 3.0),
    ("perfecta", 3.0),
    ("gracias", 1.5),
    ("encanta", 3.0),
    ("encantado", 2.5),
    ("encantada", 2.5),
    ("feliz", 2.5),
    ("contento", 2.0),
    ("contenta", 2.0),
    ("increible", 2.5),
    ("maravilloso", 3.0),
    ("rapido", 1.0),
    ("amable", 2.0),
    ("funciona", 1.5),
    ("resuelto", 2.0),
    ("solucionado", 2.0),
    ("mejor", 2.0),
    ("satisfecho", 2.0),
    ("satisfecha", 2.0),
    ("buenisimo", 3.0),
    ("barbaro", 2.5),
    ("copado", 2.0),
];

const EN: &[(&str, f32)] = &[
    ("bad", -2.0),
    ("terrible", -3.0),
    ("horrible", -3.0),
    ("awful", -3.0),
    ("worst", -3.0),
    ("hate", -3.0),
    ("angry", -2.5),
    ("furious", -3.0),
    ("upset", -2.0),
    ("annoyed", -2.0),
    ("frustrated", -2.5),
    ("frustrating", -2.5),
    ("disappointed", -2.5),
    ("disappointing", -2.5),
    ("useless", -2.5),
    ("scam", -3.0),
    ("ridiculous", -2.5),
    ("unacceptable", -3.0),
    ("problem", -1.0),
    ("problems", -1.0),
    ("broken", -2.0),
    ("wrong", -1.5),
    ("slow", -1.0),
    ("poor", -2.0),
    ("pathetic", -3.0),
    ("disgusting", -3.0),
    ("sucks", -3.0),
    ("rude", -2.5),
    ("incompetent", -3.0),
    ("lies", -2.5),
    ("stolen", -2.5),
    ("good", 2.0),
    ("great", 3.0),
    ("excellent", 3.0),
    ("amazing", 3.0),
    ("awesome", 3.0),
    ("perfect", 3.0),
    ("thanks", 1.5),
    ("thank", 1.5),
    ("love", 3.0),
    ("happy", 2.5),
    ("glad", 2.0),
    ("nice", 2.0),
    ("helpful", 2.0),
    ("works", 1.5),
    ("fast", 1.0),
    ("resolved", 2.0),
    ("fixed", 2.0),
    ("wonderful", 3.0),
    ("fantastic", 3.0),
    ("best", 3.0),
    ("pleased", 2.0),
    ("satisfied", 2.0),
    ("kind", 2.0),
];

const PT: &[(&str, f32)] = &[
    ("ruim", -2.0),
    ("pessimo", -3.0),
    ("pessima", -3.0),
    ("horrivel", -3.0),
    ("terrivel", -3.0),
    ("pior", -3.0),
    ("odeio", -3.0),
    ("raiva", -2.5),
    ("irritado", -2.5),
    ("irritada", -2.5),
    ("chateado", -2.0),
    ("chateada", -2.0),
    ("decepcionado", -2.5),
    ("decepcionada", -2.5),
    ("absurdo", -3.0),
    ("inaceitavel", -3.0),
    ("lixo", -3.0),
    ("golpe", -3.0),
    ("problema", -1.0),
    ("problemas", -1.0),
    ("lento", -1.0),
    ("demora", -1.5),
    ("vergonha", -3.0),
    ("palhacada", -3.0),
    ("descaso", -3.0),
    ("nojo", -3.0),
    ("porcaria", -3.0),
    ("furioso", -3.0),
    ("furiosa", -3.0),
    ("cansado", -1.5),
    ("ridiculo", -2.5),
    ("mal", -2.0),
    ("bom", 2.0),
    ("boa", 2.0),
    ("otimo", 3.0),
    ("otima", 3.0),
    ("excelente", 3.0),
    ("perfeito", 3.0),
    ("perfeita", 3.0),
    ("obrigado", 1.5),
    ("obrigada", 1.5),
    ("adorei", 3.0),
    ("amei", 3.0),
    ("feliz", 2.5),
    ("maravilhoso", 3.0),
    ("rapido", 1.0),
    ("legal", 2.0),
    ("resolvido", 2.0),
    ("funciona", 1.5),
    ("gentil", 2.0),
    ("satisfeito", 2.0),
    ("satisfeita", 2.0),
];

/// Words that flip the next sentiment word. Folded; English contractions
/// split at the apostrophe ("don't" is "don" "t").
const NEGATORS: &[&str] = &[
    "no", "nunca", "jamas", "ni", "tampoco", "sin", "not", "never", "without", "don", "doesn",
    "didn", "isn", "wasn", "aren", "won", "cant", "cannot", "nao", "nem", "sem", "jamais",
];

const INTENSIFIERS: &[&str] = &[
    "muy",
    "super",
    "re",
    "tan",
    "demasiado",
    "totalmente",
    "very",
    "really",
    "so",
    "extremely",
    "totally",
    "too",
    "muito",
    "bem",
    "tao",
    "extremamente",
];

/// The lexicon analyzer for es, en and pt. Other languages are neutral.
#[derive(Debug, Clone, Copy, Default)]
pub struct LexiconSentiment;

impl LexiconSentiment {
    /// Scores `text` as read in `language` (`es`, `pt-BR`, `en_US`, ...).
    pub fn score(text: &str, language: &str) -> Sentiment {
        let Some(primary) = lexicon(language) else {
            return Sentiment::neutral();
        };
        let tokens = tokens(text);
        let (mut positive, mut negative) = (0.0f32, 0.0f32);
        // Words left in which a negation or intensifier still applies.
        let (mut negated, mut intensified) = (0usize, 0usize);
        for (word, capitals) in &tokens {
            let w = word.as_str();
            if NEGATORS.contains(&w) {
                negated = NEGATION_SCOPE;
                continue;
            }
            if INTENSIFIERS.contains(&w) {
                intensified = INTENSIFIER_SCOPE;
                continue;
            }
            match valence(w, primary) {
                Some(mut v) => {
                    if intensified > 0 {
                        v *= INTENSIFIER;
                    }
                    if *capitals {
                        v *= CAPITALS;
                    }
                    if negated > 0 {
                        v *= NEGATION;
                    }
                    negated = 0;
                    intensified = 0;
                    if v > 0.0 {
                        positive += v;
                    } else {
                        negative -= v;
                    }
                }
                None => {
                    negated = negated.saturating_sub(1);
                    intensified = intensified.saturating_sub(1);
                }
            }
        }
        let bangs = text.chars().filter(|c| *c == '!').count().min(MAX_BANGS);
        let emphasis = 1.0 + PER_BANG * bangs as f32;
        scores(positive * emphasis, negative * emphasis)
    }
}

#[async_trait]
impl SentimentAnalyzer for LexiconSentiment {
    async fn sentiment(&self, text: &str, language: &str) -> Result<Sentiment> {
        Ok(LexiconSentiment::score(text, language))
    }
}

/// The lexicon of a language tag's primary subtag, if it has one.
fn lexicon(language: &str) -> Option<&'static [(&'static str, f32)]> {
    let primary = language
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match primary.as_str() {
        "es" => Some(ES),
        "en" => Some(EN),
        "pt" => Some(PT),
        _ => None,
    }
}

/// The valence of a folded word: the language's own first, then the others.
fn valence(word: &str, primary: &[(&str, f32)]) -> Option<f32> {
    let find = |lexicon: &[(&str, f32)]| lexicon.iter().find(|(w, _)| *w == word).map(|(_, v)| *v);
    find(primary).or_else(|| [ES, EN, PT].into_iter().find_map(find))
}

/// Folded words, each with whether it was written in capitals (3+ letters).
fn tokens(text: &str) -> Vec<(String, bool)> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let letters: Vec<char> = w.chars().filter(|c| c.is_alphabetic()).collect();
            let capitals = letters.len() >= 3 && letters.iter().all(|c| c.is_uppercase());
            let folded: String = w
                .chars()
                .flat_map(char::to_lowercase)
                .map(fold_char)
                .collect();
            (folded, capitals)
        })
        .collect()
}

/// Four scores summing to 1 from the positive and negative totals.
fn scores(positive: f32, negative: f32) -> Sentiment {
    let total = positive + negative;
    if total <= f32::EPSILON {
        return Sentiment::neutral();
    }
    // How sure the text is not neutral grows with the amount of sentiment.
    let polar = 1.0 - (-total / SCALE).exp();
    let balance = positive.min(negative) / positive.max(negative);
    let mixed = polar * balance / 2.0;
    let rest = polar - mixed;
    let s = Sentiment {
        label: SentimentLabel::Neutral,
        positive: rest * positive / total,
        negative: rest * negative / total,
        neutral: 1.0 - polar,
        mixed,
    };
    let label = [
        (SentimentLabel::Negative, s.negative),
        (SentimentLabel::Positive, s.positive),
        (SentimentLabel::Mixed, s.mixed),
        (SentimentLabel::Neutral, s.neutral),
    ]
    .into_iter()
    .fold((SentimentLabel::Neutral, f32::MIN), |best, (l, v)| {
        if v > best.1 {
            (l, v)
        } else {
            best
        }
    })
    .0;
    Sentiment { label, ..s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::escalation::EscalationPolicy;
    use proptest::prelude::*;

    fn label(text: &str, lang: &str) -> SentimentLabel {
        LexiconSentiment::score(text, lang).label
    }

    fn negative(text: &str, lang: &str) -> f32 {
        LexiconSentiment::score(text, lang).negative
    }

    #[test]
    fn angry_messages_are_negative_past_the_default_threshold() {
        let threshold = EscalationPolicy::default().negative_threshold;
        for (text, lang) in [
            (
                "Es la tercera vez que escribo y nadie me resuelve nada. Un servicio PÉSIMO",
                "es",
            ),
            ("Me cobraron dos veces, son unos ladrones!!!", "es"),
            (
                "This is ridiculous, I've been waiting for a week and the app is still broken",
                "en",
            ),
            ("Worst customer service ever. Unacceptable!", "en"),
            ("Que descaso, já liguei cinco vezes e ninguém resolve", "pt"),
            ("Serviço horrível, estou muito irritada", "pt-BR"),
        ] {
            let s = LexiconSentiment::score(text, lang);
            assert_eq!(s.label, SentimentLabel::Negative, "{text}: {s:?}");
            assert!(s.negative >= threshold, "{text}: {s:?}");
        }
    }

    #[test]
    fn happy_messages_are_positive() {
        for (text, lang) in [
            ("¡Muchas gracias! Excelente atención, ya me funciona", "es"),
            ("Great, thanks a lot, that was really helpful", "en"),
            ("Perfeito, muito obrigada! Adorei o atendimento", "pt"),
        ] {
            let s = LexiconSentiment::score(text, lang);
            assert_eq!(s.label, SentimentLabel::Positive, "{text}: {s:?}");
            assert!(s.negative < 0.1, "{text}: {s:?}");
        }
    }

    #[test]
    fn plain_questions_are_neutral() {
        for (text, lang) in [
            ("Hola, ¿a qué hora abren el sábado?", "es"),
            ("How much is the Empresa plan per month?", "en"),
            ("Oi, vocês entregam em Campinas?", "pt"),
            ("", "es"),
        ] {
            let s = LexiconSentiment::score(text, lang);
            assert_eq!(s.label, SentimentLabel::Neutral, "{text}: {s:?}");
            assert_eq!(s.negative, 0.0, "{text}");
        }
    }

    #[test]
    fn a_negation_flips_the_next_sentiment_word() {
        assert_eq!(label("no es bueno", "es"), SentimentLabel::Negative);
        assert_eq!(label("it is not good", "en"), SentimentLabel::Negative);
        assert_eq!(label("não é bom", "pt"), SentimentLabel::Negative);
        assert_eq!(label("I don't hate it", "en"), SentimentLabel::Positive);
        let s = LexiconSentiment::score("sin problemas", "es");
        assert!(s.positive > 0.0 && s.negative == 0.0, "{s:?}");
        // Out of scope: "no" far before the word does not flip it.
        assert_eq!(
            label("no, ya lo vi en la web y es bueno", "es"),
            SentimentLabel::Positive
        );
    }

    #[test]
    fn intensifiers_capitals_and_exclamations_make_it_stronger() {
        assert!(negative("muy malo", "es") > negative("malo", "es"));
        assert!(negative("MALO", "es") > negative("malo", "es"));
        assert!(negative("malo!!!", "es") > negative("malo", "es"));
        assert_eq!(negative("malo!!!!!!!!", "es"), negative("malo!!!!", "es"));
        assert!(negative("very bad", "en") > negative("bad", "en"));
        assert!(negative("muito ruim", "pt") > negative("ruim", "pt"));
    }

    #[test]
    fn accents_and_case_are_folded() {
        assert_eq!(negative("PÉSIMO", "es"), negative("PESIMO", "es"));
        assert_eq!(negative("horrível", "pt"), negative("horrivel", "pt"));
    }

    #[test]
    fn both_kinds_at_once_is_mixed() {
        let s = LexiconSentiment::score("el producto es bueno pero la entrega fue mala", "es");
        assert_eq!(s.label, SentimentLabel::Mixed, "{s:?}");
    }

    #[test]
    fn other_languages_and_regions() {
        assert_eq!(
            LexiconSentiment::score("c'est horrible", "fr"),
            Sentiment::neutral()
        );
        assert_eq!(label("terrible", "en-GB"), SentimentLabel::Negative);
        assert_eq!(label("péssimo", "pt_BR"), SentimentLabel::Negative);
        // A Spanish conversation with an English word still counts it.
        assert_eq!(
            label("el servicio es awful", "es"),
            SentimentLabel::Negative
        );
    }

    proptest! {
        #[test]
        fn scores_are_probabilities(text in "\\PC{0,200}", lang in "(es|en|pt|fr|)") {
            let s = LexiconSentiment::score(&text, &lang);
            for v in [s.positive, s.negative, s.neutral, s.mixed] {
                prop_assert!((0.0..=1.0).contains(&v), "{:?}", s);
            }
            let sum = s.positive + s.negative + s.neutral + s.mixed;
            prop_assert!((sum - 1.0).abs() < 1e-4, "{:?}", s);
        }
    }
}
