//! What the user is told, in es, en and pt (English for anything else).

use agent::profile::Hours;
use agent::schedule;

fn pick<'a>(lang: &str, es: &'a str, en: &'a str, pt: &'a str) -> &'a str {
    match lang.split(['-', '_']).next().unwrap_or("") {
        "es" => es,
        "pt" => pt,
        _ => en,
    }
}

/// A person is coming: the usual wait during business hours, the next
/// opening outside them.
pub fn person_coming(lang: &str, now_ms: i64, hours: &Hours, wait_minutes: u64) -> String {
    if !schedule::is_open(now_ms, hours) {
        if let Some(next) = schedule::next_opening(now_ms, hours) {
            let when = schedule::format_local(next, hours, lang);
            return match pick(lang, "es", "en", "pt") {
                "es" => format!("Le pasé tu consulta a una persona del equipo. Ahora estamos fuera de horario: te van a responder por aquí desde el {when}."),
                "pt" => format!("Passei sua conversa para uma pessoa da equipe. Agora estamos fora do horário: vão te responder por aqui a partir de {when}."),
                _ => format!("I've passed your conversation to a person on the team. We're closed right now: they'll answer you here from {when}."),
            };
        }
    }
    match pick(lang, "es", "en", "pt") {
        "es" => format!("Le pasé tu consulta a una persona del equipo; te va a responder por aquí. La espera suele ser de unos {wait_minutes} minutos."),
        "pt" => format!("Passei sua conversa para uma pessoa da equipe; ela vai te responder por aqui. A espera costuma ser de uns {wait_minutes} minutos."),
        _ => format!("I've passed your conversation to a person on the team; they'll answer you here. The wait is usually about {wait_minutes} minutes."),
    }
}

/// Nobody was free within the limit; the escalation stays open.
pub fn no_human(lang: &str, offer_call: bool) -> String {
    let base = pick(
        lang,
        "Perdón por la espera: todavía no hay una persona libre. Tu consulta sigue en la fila y te van a responder por aquí.",
        "Sorry for the wait: nobody is free yet. Your conversation stays in the queue and a person will answer you here.",
        "Desculpe a espera: ainda não há uma pessoa livre. Sua conversa continua na fila e vão te responder por aqui.",
    );
    if !offer_call {
        return base.to_string();
    }
    let call = pick(
        lang,
        "Si prefieres, te llamamos a este número.",
        "If you prefer, we can call you on this number.",
        "Se preferir, ligamos para este número.",
    );
    format!("{base} {call}")
}

/// The call-back button (at most 20 characters).
pub fn call_me_title(lang: &str) -> &'static str {
    pick(lang, "Llámenme", "Call me", "Liguem para mim")
}

/// The user tapped the call-back button (its title comes back as the text).
pub fn is_call_me(text: &str) -> bool {
    let t = text.trim();
    ["es", "en", "pt"]
        .iter()
        .any(|l| t.eq_ignore_ascii_case(call_me_title(l)))
}

/// The call-back was requested: `when` is the next opening of the calling
/// hours (formatted), `None` when it goes out now.
pub fn call_requested(lang: &str, when: Option<&str>) -> String {
    match (lang, when) {
        ("es", Some(when)) => format!("Listo, te vamos a llamar a este número el {when}, en nuestro horario de llamadas. Si escribes por aquí, también lo ve el equipo."),
        ("pt", Some(when)) => format!("Pronto, vamos ligar para este número {when}, no nosso horário de ligações. Se escrever por aqui, a equipe também vê."),
        (_, Some(when)) => format!("Done, we'll call you on this number on {when}, within our calling hours. If you write here, the team sees it too."),
        (_, None) => pick(
            lang,
            "Listo, te vamos a llamar a este número en unos minutos. Si escribes por aquí, también lo ve el equipo.",
            "Done, we'll call you on this number within a few minutes. If you write here, the team sees it too.",
            "Pronto, vamos ligar para este número em alguns minutos. Se escrever por aqui, a equipe também vê.",
        )
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_back_says_when_it_goes_out() {
        assert!(call_requested("es", None).contains("en unos minutos"));
        let later = call_requested("en", Some("Monday, December 7, 10:00 (America/Montevideo)"));
        assert!(later.contains("on Monday, December 7, 10:00"), "{later}");
        assert!(later.contains("calling hours"), "{later}");
    }

    #[test]
    fn the_call_button_fits_and_is_recognised() {
        for lang in ["es", "en", "pt", "pt-BR", "fr"] {
            let title = call_me_title(lang);
            assert!(title.chars().count() <= 20, "{title}");
            assert!(is_call_me(&format!(" {title} ")));
        }
        assert!(!is_call_me("call me maybe"));
    }

    #[test]
    fn the_offer_mentions_a_call_only_when_there_is_one() {
        assert!(no_human("en", true).contains("call you"));
        assert!(!no_human("en", false).contains("call you"));
        assert!(no_human("pt-BR", false).starts_with("Desculpe"));
    }
}
