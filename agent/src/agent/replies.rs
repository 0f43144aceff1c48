//! What the agent says without the model: the profile's texts and menu,
//! knowledge passages as WhatsApp text, and the fixed replies to tools'
//! outcomes in es, en and pt.

use domain::ports::TurnInput;
use domain::whatsapp::outbound::{OutboundMessage, ReplyButton};

use super::Agent;
use crate::tools::ToolOutcome;

impl Agent {
    pub(super) fn say(&self, texts: &crate::profile::Localized, lang: &str, name: &str) -> String {
        self.profile.text(texts, lang).replace("{name}", name)
    }

    pub(super) fn menu(&self, body: String, lang: &str) -> Vec<OutboundMessage> {
        let buttons: Vec<ReplyButton> = self
            .profile
            .menu
            .iter()
            .map(|m| ReplyButton {
                id: m.id.clone(),
                title: self.profile.text(&m.title, lang).to_string(),
            })
            .collect();
        if buttons.is_empty() {
            return OutboundMessage::texts(&body);
        }
        match OutboundMessage::buttons(body.clone(), buttons) {
            Ok(m) => vec![m],
            // A body over the interactive limit: plain text.
            Err(_) => OutboundMessage::texts(&body),
        }
    }

    pub(super) fn greeting(&self, turn: &TurnInput, lang: &str) -> Vec<OutboundMessage> {
        self.menu(self.greeting_text(turn, lang), lang)
    }

    /// The profile's greeting, with the user's first name.
    pub(super) fn greeting_text(&self, turn: &TurnInput, lang: &str) -> String {
        let name = turn
            .conversation
            .contact_name
            .as_deref()
            .and_then(|n| n.split_whitespace().next())
            .map(|n| format!(" {n}"))
            .unwrap_or_default();
        self.say(&self.profile.greeting, lang, &name)
    }

    pub(super) fn customer_reply(&self, outcome: &ToolOutcome, lang: &str) -> String {
        match outcome {
            ToolOutcome::Done(v) if v["found"] == true => {
                let labels = self.profile.customers.labels.get(lang);
                let fields = v["customer"].as_object();
                // The profile's order; JSON objects do not keep one.
                let mut names: Vec<&str> = self
                    .profile
                    .customers
                    .fields
                    .iter()
                    .map(String::as_str)
                    .collect();
                if names.is_empty() {
                    names = fields
                        .map(|f| f.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                }
                let lines: Vec<String> = names
                    .into_iter()
                    .filter_map(|k| {
                        let value = fields?.get(k)?.as_str()?;
                        let label = labels
                            .and_then(|l| l.get(k))
                            .map(String::as_str)
                            .unwrap_or(k);
                        Some(format!("*{label}:* {value}"))
                    })
                    .collect();
                format!("{}\n\n{}", found_customer(lang), lines.join("\n"))
            }
            ToolOutcome::Done(_) => no_customer(lang).to_string(),
            ToolOutcome::Refused(_) => bad_customer_id(lang).to_string(),
        }
    }
}

/// A Markdown passage as WhatsApp text: the heading trail it starts with
/// becomes its own heading in bold, Markdown headings are dropped, `**`
/// becomes `*`, and lines wrapped in the file are joined again (list items
/// keep their lines).
pub(super) fn passage_for_chat(text: &str, source: &str) -> String {
    let heading = source.split_once('#').map(|(_, h)| h.trim()).unwrap_or("");
    let mut lines = text.lines().peekable();
    let mut out: Vec<String> = Vec::new();
    if let Some(first) = lines.peek() {
        let last = first.rsplit(" > ").next().unwrap_or_default().trim();
        if !heading.is_empty() && last == heading {
            out.push(format!("*{heading}*"));
            lines.next();
        }
    }
    let mut paragraph = String::new();
    let flush = |p: &mut String, out: &mut Vec<String>| {
        if !p.is_empty() {
            out.push(std::mem::take(p));
        }
    };
    for line in lines {
        let t = line.trim();
        if t.starts_with('#') {
            continue;
        }
        if t.is_empty() {
            flush(&mut paragraph, &mut out);
            continue;
        }
        let item = t.starts_with("- ")
            || t.starts_with("* ")
            || t.chars().next().is_some_and(|c| c.is_ascii_digit()) && t.contains(". ");
        if item {
            flush(&mut paragraph, &mut out);
            out.push(t.to_string());
        } else if paragraph.is_empty() {
            paragraph = t.to_string();
        } else {
            paragraph.push(' ');
            paragraph.push_str(t);
        }
    }
    flush(&mut paragraph, &mut out);
    let is_item = |b: &str| b.starts_with("- ") || b.starts_with("* ");
    let mut text = String::new();
    for (i, block) in out.iter().enumerate() {
        if i > 0 {
            let in_list = is_item(block) && is_item(&out[i - 1]);
            text.push_str(if in_list { "\n" } else { "\n\n" });
        }
        text.push_str(block);
    }
    text.replace("**", "*").trim().to_string()
}

fn pick<'a>(lang: &str, es: &'a str, en: &'a str, pt: &'a str) -> &'a str {
    match lang {
        "es" => es,
        "pt" => pt,
        _ => en,
    }
}

/// The answer to the user's reply to a request to call them on WhatsApp:
/// `None` when the turn's newest message is not one.
pub(super) fn call_permission_answer(turn: &TurnInput, lang: &str) -> Option<&'static str> {
    use domain::whatsapp::inbound::{call_permission_granted, CALL_PERMISSION_KIND};
    let last = turn.new_messages.last()?;
    if last.kind != CALL_PERMISSION_KIND {
        return None;
    }
    Some(if call_permission_granted(&last.text) {
        pick(
            lang,
            "¡Gracias! Ya podemos llamarte por WhatsApp cuando haga falta.",
            "Thank you! We can now call you on WhatsApp when needed.",
            "Obrigado! Agora podemos te ligar pelo WhatsApp quando for preciso.",
        )
    } else {
        pick(
            lang,
            "Entendido: no te vamos a llamar por WhatsApp. Podés seguir escribiéndonos por acá.",
            "Understood: we won't call you on WhatsApp. You can keep writing to us here.",
            "Entendido: não vamos te ligar pelo WhatsApp. Você pode continuar escrevendo para nós aqui.",
        )
    })
}

pub(super) fn more_help(lang: &str) -> &'static str {
    pick(
        lang,
        "¿Algo más en lo que pueda ayudarte?",
        "Anything else I can help with?",
        "Posso ajudar em algo mais?",
    )
}

fn found_customer(lang: &str) -> &'static str {
    pick(
        lang,
        "Encontré tu cuenta:",
        "I found your account:",
        "Encontrei sua conta:",
    )
}

fn no_customer(lang: &str) -> &'static str {
    pick(
        lang,
        "No encontré ningún cliente con ese número. ¿Lo revisás y me lo enviás de nuevo?",
        "I couldn't find a customer with that number. Could you check it and send it again?",
        "Não encontrei nenhum cliente com esse número. Pode conferir e enviar de novo?",
    )
}

fn bad_customer_id(lang: &str) -> &'static str {
    pick(
        lang,
        "No pude consultar esa cuenta: enviame un solo número de cliente, tal como figura en tus papeles.",
        "I couldn't look that account up: send me one customer number, as it appears on your papers.",
        "Não consegui consultar essa conta: envie um único número de cliente, como aparece nos seus papéis.",
    )
}

pub(super) fn handoff_reply(outcome: &ToolOutcome, lang: &str) -> String {
    let (open, next) = match outcome {
        ToolOutcome::Done(v) => (
            v["open_now"].as_bool().unwrap_or(true),
            v["next_opening"].as_str().map(str::to_string),
        ),
        ToolOutcome::Refused(_) => (true, None),
    };
    match (open, next) {
        (false, Some(next)) => match lang {
            "es" => format!("Le aviso al equipo para que una persona siga esta conversación. Ahora estamos fuera de horario: te van a escribir desde el {next}."),
            "pt" => format!("Vou avisar a equipe para que uma pessoa continue esta conversa. Agora estamos fora do horário: vão te escrever a partir de {next}."),
            _ => format!("I'm letting the team know so that a person continues this conversation. We're closed right now: they'll write to you from {next}."),
        },
        _ => pick(
            lang,
            "Le aviso al equipo para que una persona siga esta conversación por aquí. En horario de atención suele responder en pocos minutos.",
            "I'm letting the team know so that a person continues this conversation here. During opening hours they usually answer within minutes.",
            "Vou avisar a equipe para que uma pessoa continue esta conversa por aqui. No horário de atendimento costumam responder em poucos minutos.",
        )
        .to_string(),
    }
}

pub(super) fn call_reply(outcome: &ToolOutcome, lang: &str) -> String {
    match outcome {
        ToolOutcome::Done(v) if v["needs_number"] == true => pick(
            lang,
            "Para llamarte necesito un número de teléfono: escribilo acá con el código de país (por ejemplo: llamame al +54 9 11 5555 1234).",
            "To call you I need a phone number: write it here with the country code (for example: call me on +1 555 123 4567).",
            "Para ligar para você preciso de um número de telefone: escreva aqui com o código do país (por exemplo: me liga no +55 11 91234 5678).",
        )
        .to_string(),
        ToolOutcome::Done(v) if v["number"].is_string() => {
            let number = v["number"].as_str().unwrap_or_default();
            let when = v["expected"].as_str().unwrap_or_default();
            match (lang, v["soon"] == true) {
                ("es", true) => format!("¡Listo! Te vamos a llamar al {number} en unos minutos."),
                ("es", false) => format!("¡Listo! Te vamos a llamar al {number} el {when}."),
                ("pt", true) => format!("Pronto! Vamos ligar para {number} em alguns minutos."),
                ("pt", false) => format!("Pronto! Vamos ligar para {number} {when}."),
                (_, true) => format!("Done! We'll call you on {number} within a few minutes."),
                (_, false) => format!("Done! We'll call you on {number} on {when}."),
            }
        }
        ToolOutcome::Done(v) if v["soon"] == true => pick(
            lang,
            "¡Listo! Te vamos a llamar a este número en unos minutos.",
            "Done! We'll call you on this number within a few minutes.",
            "Pronto! Vamos ligar para este número em alguns minutos.",
        )
        .to_string(),
        ToolOutcome::Done(v) => {
            let when = v["expected"].as_str().unwrap_or_default();
            match lang {
                "es" => format!("¡Listo! Te vamos a llamar a este número el {when}."),
                "pt" => format!("Pronto! Vamos ligar para este número {when}."),
                _ => format!("Done! We'll call you on this number on {when}."),
            }
        }
        ToolOutcome::Refused(_) => pick(
            lang,
            "No pude agendar la llamada. ¿Querés que te pase con una persona?",
            "I couldn't schedule the call. Would you like me to put you through to a person?",
            "Não consegui agendar a ligação. Quer que eu passe você para uma pessoa?",
        )
        .to_string(),
    }
}

pub(super) fn media_reply(lang: &str, kind: &str) -> String {
    let what = match (lang, kind) {
        ("es", "image") => "imagen",
        ("es", "audio") => "audio",
        ("es", "video") => "video",
        ("es", "sticker") => "sticker",
        ("es", _) => "documento",
        ("pt", "image") => "sua imagem",
        ("pt", "audio") => "seu áudio",
        ("pt", "video") => "seu vídeo",
        ("pt", "sticker") => "sua figurinha",
        ("pt", _) => "seu documento",
        (_, "image") => "image",
        (_, "audio") => "audio message",
        (_, "video") => "video",
        (_, "sticker") => "sticker",
        _ => "document",
    };
    match lang {
        "es" => format!("Recibí tu {what}, gracias. Todavía no puedo ver imágenes, documentos ni escuchar audios: ¿me cuentas por escrito qué necesitas?"),
        "pt" => format!("Recebi {what}, obrigado. Ainda não consigo ver imagens ou documentos nem ouvir áudios: pode me contar por escrito o que precisa?"),
        _ => format!("I got your {what}, thanks. I can't look at images or documents or listen to audio yet: could you tell me in writing what you need?"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passages_read_as_whatsapp_text() {
        let text = "Envíos > Costos de envío\n\nEl envío cuesta $5 y es\n**gratis** desde $50.\n\n- Capital: 24 h\n- Interior: 2 a 5 días";
        assert_eq!(
            passage_for_chat(text, "envios.md#Costos de envío"),
            "*Costos de envío*\n\nEl envío cuesta $5 y es *gratis* desde $50.\n\n- Capital: 24 h\n- Interior: 2 a 5 días"
        );
        assert_eq!(passage_for_chat("Sin título", "notas.md"), "Sin título");
    }
}
