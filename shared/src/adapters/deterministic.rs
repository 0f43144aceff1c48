//! The deterministic responder: the local default, and the answer in Lambda
//! until a model is configured. Greeting and menu with reply buttons, answers
//! from a small demo knowledge base, an honest word on media, and a polite
//! fallback that offers the menu and a person. Spanish, English, Portuguese.

use async_trait::async_trait;

use crate::domain::whatsapp::outbound::{OutboundMessage, ReplyButton};
use crate::error::Result;
use crate::ports::{Responder, TurnInput};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Es,
    En,
    Pt,
}

/// Ids of the menu buttons, stable because replies carry them back.
pub const MENU_PRODUCTS: &str = "menu_products";
pub const MENU_HOURS: &str = "menu_hours";
pub const MENU_HUMAN: &str = "menu_human";

struct Topic {
    keywords: &'static [&'static str],
    es: &'static str,
    en: &'static str,
    pt: &'static str,
}

/// The demo business: a small shop. A real business's knowledge comes with
/// the agent profile (next issue).
const TOPICS: &[Topic] = &[
    Topic {
        keywords: &["horario", "horarios", "hora", "abren", "cierran", "abierto", "hours", "open", "opening", "close", "horario", "abrem", "fecham", "aberto"],
        es: "Atendemos de lunes a viernes de 9:00 a 18:00 y los sábados de 10:00 a 14:00.",
        en: "We are open Monday to Friday 9:00 to 18:00 and Saturdays 10:00 to 14:00.",
        pt: "Atendemos de segunda a sexta das 9:00 às 18:00 e aos sábados das 10:00 às 14:00.",
    },
    Topic {
        keywords: &["precio", "precios", "cuesta", "cuanto", "producto", "productos", "plan", "planes", "catalogo", "price", "prices", "cost", "product", "products", "plans", "preco", "precos", "quanto", "produto", "produtos", "planos"],
        es: "Tenemos tres planes: Básico ($10 al mes), Plus ($25) y Empresa ($60). Todos incluyen soporte por WhatsApp.",
        en: "We have three plans: Basic ($10 a month), Plus ($25) and Business ($60). All include WhatsApp support.",
        pt: "Temos três planos: Básico ($10 por mês), Plus ($25) e Empresa ($60). Todos incluem suporte por WhatsApp.",
    },
    Topic {
        keywords: &["direccion", "donde", "ubicacion", "ubicados", "sucursal", "address", "where", "located", "location", "endereco", "onde", "localizacao"],
        es: "Estamos en Av. Corrientes 1234, Buenos Aires. También atendemos en línea.",
        en: "We are at Av. Corrientes 1234, Buenos Aires. We also serve customers online.",
        pt: "Estamos na Av. Corrientes 1234, Buenos Aires. Também atendemos online.",
    },
    Topic {
        keywords: &["envio", "envios", "entrega", "despacho", "shipping", "delivery", "ship", "frete", "entregas"],
        es: "Enviamos a todo el país en 2 a 5 días hábiles; el envío es gratis desde $50.",
        en: "We ship nationwide in 2 to 5 business days; shipping is free from $50.",
        pt: "Enviamos para todo o país em 2 a 5 dias úteis; o frete é grátis a partir de $50.",
    },
    Topic {
        keywords: &["pago", "pagar", "tarjeta", "transferencia", "payment", "pay", "card", "pagamento", "cartao", "pix"],
        es: "Aceptamos tarjeta de crédito y débito, transferencia y Mercado Pago.",
        en: "We accept credit and debit cards, bank transfer and Mercado Pago.",
        pt: "Aceitamos cartão de crédito e débito, transferência e Pix.",
    },
];

const GREETINGS: &[&str] = &[
    "hola", "buenas", "buenos", "hi", "hello", "hey", "oi", "ola", "menu", "inicio", "start",
    "bom", "boa",
];
const HUMAN: &[&str] = &[
    "persona",
    "humano",
    "agente",
    "asesor",
    "asesora",
    "human",
    "person",
    "agent",
    "someone",
    "pessoa",
    "atendente",
    "humana",
];

/// Lowercase, accents folded, split into words.
fn words(text: &str) -> Vec<String> {
    let folded: String = text
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .collect();
    folded.split_whitespace().map(str::to_string).collect()
}

/// A guess from common words; Spanish when nothing tells.
pub fn detect_language(text: &str) -> Lang {
    const EN: &[&str] = &[
        "hi", "hello", "the", "what", "how", "price", "prices", "hours", "you", "is", "are",
        "where", "thanks", "please", "want", "talk", "open", "do", "can", "i",
    ];
    const PT: &[&str] = &[
        "oi", "ola", "voce", "obrigado", "obrigada", "quanto", "preco", "onde", "fica", "nao",
        "sim", "bom", "dia", "quero", "falar", "com", "frete", "vocês", "voces",
    ];
    const ES: &[&str] = &[
        "hola", "que", "cuanto", "donde", "gracias", "quiero", "hablar", "precio", "el", "la",
        "los", "es", "por", "favor", "buenas", "tienen", "como", "cuesta",
    ];
    let w = words(text);
    let score = |list: &[&str]| w.iter().filter(|x| list.contains(&x.as_str())).count();
    let (es, en, pt) = (score(ES), score(EN), score(PT));
    if en > es && en >= pt {
        Lang::En
    } else if pt > es && pt > en {
        Lang::Pt
    } else {
        Lang::Es
    }
}

fn pick(lang: Lang, es: &str, en: &str, pt: &str) -> String {
    match lang {
        Lang::Es => es,
        Lang::En => en,
        Lang::Pt => pt,
    }
    .to_string()
}

fn menu(lang: Lang, body: String) -> Vec<OutboundMessage> {
    let button = |id: &str, es: &str, en: &str, pt: &str| ReplyButton {
        id: id.to_string(),
        title: pick(lang, es, en, pt),
    };
    let buttons = vec![
        button(
            MENU_PRODUCTS,
            "Planes y precios",
            "Plans and prices",
            "Planos e preços",
        ),
        button(MENU_HOURS, "Horarios", "Opening hours", "Horários"),
        button(
            MENU_HUMAN,
            "Hablar con persona",
            "Talk to a person",
            "Falar com pessoa",
        ),
    ];
    match OutboundMessage::buttons(body.clone(), buttons) {
        Ok(m) => vec![m],
        // The titles are ours and fit; if a body ever did not, plain text.
        Err(_) => OutboundMessage::texts(&body),
    }
}

/// The deterministic responder.
#[derive(Debug, Default, Clone)]
pub struct DeterministicResponder;

impl DeterministicResponder {
    pub fn answer(&self, turn: &TurnInput) -> Vec<OutboundMessage> {
        let text: String = turn
            .new_messages
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let language_source =
            if text.trim().is_empty() || turn.new_messages.iter().all(|m| m.kind != "text") {
                turn.history
                    .iter()
                    .rev()
                    .find(|m| m.kind == "text")
                    .map(|m| m.text.clone())
                    .unwrap_or_default()
            } else {
                text.clone()
            };
        let lang = detect_language(&language_source);
        let name = turn
            .conversation
            .contact_name
            .as_deref()
            .and_then(|n| n.split_whitespace().next())
            .map(|n| format!(" {n}"))
            .unwrap_or_default();
        let w = words(&text);
        let has = |list: &[&str]| w.iter().any(|x| list.contains(&x.as_str()));
        // Button replies arrive as their titles, which match the keywords.
        if has(HUMAN) {
            return OutboundMessage::texts(&pick(
                lang,
                "Claro, le aviso al equipo para que una persona siga esta conversación por aquí. En horario de atención suele responder en pocos minutos.",
                "Sure, I'm letting the team know so that a person continues this conversation here. During opening hours they usually answer within minutes.",
                "Claro, vou avisar a equipe para que uma pessoa continue esta conversa por aqui. No horário de atendimento costumam responder em poucos minutos.",
            ));
        }
        let answers: Vec<&str> = TOPICS
            .iter()
            .filter(|t| has(t.keywords))
            .map(|t| match lang {
                Lang::Es => t.es,
                Lang::En => t.en,
                Lang::Pt => t.pt,
            })
            .collect();
        if !answers.is_empty() {
            let greet = if has(GREETINGS) {
                pick(lang, "¡Hola", "Hi", "Olá") + &name + "! "
            } else {
                String::new()
            };
            let mut out = OutboundMessage::texts(&format!("{greet}{}", answers.join("\n\n")));
            out.extend(menu(
                lang,
                pick(
                    lang,
                    "¿Algo más en lo que pueda ayudarte?",
                    "Anything else I can help with?",
                    "Posso ajudar em algo mais?",
                ),
            ));
            return out;
        }
        if let Some(media) = turn.new_messages.iter().find(|m| is_media(&m.kind)) {
            let what = media_name(lang, &media.kind);
            return menu(
                lang,
                match lang {
                    Lang::Es => format!("Recibí tu {what}, gracias. Todavía no puedo ver imágenes, documentos ni escuchar audios: ¿me cuentas por escrito qué necesitas?"),
                    Lang::En => format!("I got your {what}, thanks. I can't look at images or documents or listen to audio yet: could you tell me in writing what you need?"),
                    Lang::Pt => format!("Recebi seu {what}, obrigado. Ainda não consigo ver imagens ou documentos nem ouvir áudios: pode me contar por escrito o que precisa?"),
                },
            );
        }
        if has(GREETINGS) || turn.history.is_empty() {
            return menu(
                lang,
                match lang {
                    Lang::Es => format!("¡Hola{name}! Soy el asistente virtual de Charla Demo. ¿En qué te puedo ayudar?"),
                    Lang::En => format!("Hi{name}! I'm Charla Demo's virtual assistant. How can I help you?"),
                    Lang::Pt => format!("Olá{name}! Sou o assistente virtual da Charla Demo. Como posso ajudar?"),
                },
            );
        }
        menu(
            lang,
            pick(
                lang,
                "Perdón, no entendí bien. Puedo contarte sobre planes y precios u horarios, o pasarte con una persona del equipo.",
                "Sorry, I didn't quite get that. I can tell you about plans and prices or opening hours, or put you through to a person on the team.",
                "Desculpe, não entendi bem. Posso falar sobre planos e preços ou horários, ou passar você para uma pessoa da equipe.",
            ),
        )
    }
}

fn is_media(kind: &str) -> bool {
    matches!(kind, "image" | "audio" | "video" | "document" | "sticker")
}

fn media_name(lang: Lang, kind: &str) -> &'static str {
    match (lang, kind) {
        (Lang::Es, "image") => "imagen",
        (Lang::Es, "audio") => "audio",
        (Lang::Es, "video") => "video",
        (Lang::Es, "document") => "documento",
        (Lang::Es, _) => "sticker",
        (Lang::En, "image") => "image",
        (Lang::En, "audio") => "audio",
        (Lang::En, "video") => "video",
        (Lang::En, "document") => "document",
        (Lang::En, _) => "sticker",
        (Lang::Pt, "image") => "imagem",
        (Lang::Pt, "audio") => "áudio",
        (Lang::Pt, "video") => "vídeo",
        (Lang::Pt, "document") => "documento",
        (Lang::Pt, _) => "figurinha",
    }
}

#[async_trait]
impl Responder for DeterministicResponder {
    async fn respond(&self, turn: &TurnInput) -> Result<Vec<OutboundMessage>> {
        Ok(self.answer(turn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Conversation, ConversationState, Direction, StoredMessage, WaId};

    fn msg(kind: &str, text: &str) -> StoredMessage {
        StoredMessage {
            wamid: format!("wamid.{text}"),
            direction: Direction::Inbound,
            kind: kind.into(),
            text: text.into(),
            at_ms: 0,
            delivery: None,
            delivery_at_ms: None,
            error_code: None,
            answered: false,
            starts_turn: true,
        }
    }

    fn turn(new: &[StoredMessage], history: &[StoredMessage]) -> TurnInput {
        TurnInput {
            turn_id: "wamid.T".into(),
            conversation: Conversation {
                wa_id: WaId::parse("5491155551234").expect("valid"),
                phone_number_id: "1".into(),
                contact_name: Some("Ana Pérez".into()),
                state: ConversationState::Bot,
                last_user_at_ms: 0,
                last_message_at_ms: 0,
                window_closed: false,
            },
            new_messages: new.to_vec(),
            history: history.to_vec(),
        }
    }

    fn all_text(out: &[OutboundMessage]) -> String {
        out.iter()
            .map(|m| m.summary())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_greeting_gets_the_menu_with_three_buttons() {
        let out = DeterministicResponder.answer(&turn(&[msg("text", "Hola")], &[]));
        assert_eq!(out.len(), 1);
        match &out[0] {
            OutboundMessage::Buttons { body, buttons, .. } => {
                assert!(body.contains("Ana"));
                assert_eq!(buttons.len(), 3);
            }
            other => panic!("expected buttons, got {other:?}"),
        }
    }

    #[test]
    fn a_question_is_answered_from_the_knowledge_base_in_its_language() {
        let es = all_text(
            &DeterministicResponder.answer(&turn(&[msg("text", "¿Cuánto cuesta el plan?")], &[])),
        );
        assert!(es.contains("Básico"), "{es}");
        let en = all_text(
            &DeterministicResponder
                .answer(&turn(&[msg("text", "What are your opening hours?")], &[])),
        );
        assert!(en.contains("Monday"), "{en}");
        let pt = all_text(
            &DeterministicResponder.answer(&turn(&[msg("text", "Oi, quanto custa o frete?")], &[])),
        );
        assert!(pt.contains("frete"), "{pt}");
    }

    #[test]
    fn a_burst_is_answered_as_one_turn() {
        let out = DeterministicResponder.answer(&turn(
            &[
                msg("text", "hola"),
                msg("text", "donde estan"),
                msg("text", "y los horarios?"),
            ],
            &[],
        ));
        let text = all_text(&out);
        assert!(
            text.contains("Corrientes") && text.contains("lunes"),
            "{text}"
        );
    }

    #[test]
    fn menu_button_titles_lead_to_their_topics() {
        let hours = all_text(&DeterministicResponder.answer(&turn(
            &[msg("interactive", "Horarios")],
            &[msg("text", "hola")],
        )));
        assert!(hours.contains("lunes"), "{hours}");
        let human = all_text(&DeterministicResponder.answer(&turn(
            &[msg("interactive", "Hablar con persona")],
            &[msg("text", "hola")],
        )));
        assert!(human.contains("persona"), "{human}");
    }

    #[test]
    fn media_is_acknowledged_honestly() {
        let out = all_text(
            &DeterministicResponder
                .answer(&turn(&[msg("image", "[image]")], &[msg("text", "hola")])),
        );
        assert!(
            out.contains("imagen") && out.contains("Todavía no puedo"),
            "{out}"
        );
    }

    #[test]
    fn nonsense_gets_a_polite_fallback_with_the_menu() {
        let out = DeterministicResponder
            .answer(&turn(&[msg("text", "xyzzy plugh")], &[msg("text", "hola")]));
        assert!(matches!(out.last(), Some(OutboundMessage::Buttons { .. })));
        assert!(all_text(&out).contains("no entendí"));
    }

    #[test]
    fn every_answer_is_valid_for_whatsapp() {
        for text in [
            "hola", "hi", "oi", "precio", "hours", "frete", "persona", "???", "",
        ] {
            for m in DeterministicResponder.answer(&turn(&[msg("text", text)], &[])) {
                m.validate().expect("valid message");
            }
        }
    }
}
