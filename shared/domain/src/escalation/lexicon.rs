//! The keyword lexicon: the words that send a conversation to people, the
//! phrases that ask for a person (es, en, pt by default), and matching them
//! as whole words with case and accents folded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::EscalationPolicy;
use crate::text::{fold, has_phrase};

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

/// A keyword found in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeywordMatch {
    pub category: KeywordCategory,
    /// The language of the list that matched (not necessarily the user's).
    pub language: String,
    /// As written in the policy.
    pub word: String,
}

/// The default keywords: complaints, legal threats and cancellations.
pub(super) fn default_keywords() -> Vec<KeywordList> {
    let list = |category, language: &str, words: &[&str]| KeywordList {
        category,
        language: language.to_string(),
        words: words.iter().map(|w| w.to_string()).collect(),
    };
    use KeywordCategory::*;
    vec![
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
    ]
}

/// The default phrases that ask for a person, by language.
pub(super) fn default_person_requests() -> BTreeMap<String, Vec<String>> {
    let phrases = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    BTreeMap::from([
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
    ])
}

impl EscalationPolicy {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn folding_drops_case_accents_and_punctuation() {
        assert_eq!(fold("¡Reclamação, JÁ!"), " reclamacao ja ");
        assert_eq!(fold("  ...  "), "");
    }
}
