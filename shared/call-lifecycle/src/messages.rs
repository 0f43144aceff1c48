//! What the user is told on WhatsApp about their call, in es, en and pt
//! (Spanish for any other language: the demo business's).

pub fn scheduled(lang: &str, when: &str) -> String {
    match lang {
        "en" => format!("We can't call right now; we'll call you on {when}."),
        "pt" => format!("Agora não podemos ligar; vamos ligar para você {when}."),
        _ => format!("Ahora no podemos llamarte; te llamamos el {when}."),
    }
}

pub fn needs_number(lang: &str) -> String {
    match lang {
        "en" => "To call you we need a phone number: write it here with the country code (call me on +1 555 123 4567).".into(),
        "pt" => "Para ligar para você precisamos de um número: escreva aqui com o código do país (me liga no +55 11 91234 5678).".into(),
        _ => "Para llamarte necesitamos un número de teléfono: escribilo acá con el código de país (llamame al +54 9 11 5555 1234).".into(),
    }
}

pub fn could_not_connect(lang: &str) -> String {
    match lang {
        "en" => "We tried to call you but couldn't get through. Write to us here whenever you like, or ask again for a call.".into(),
        "pt" => "Tentamos ligar para você, mas não conseguimos. Escreva aqui quando quiser ou peça uma nova ligação.".into(),
        _ => "Intentamos llamarte pero no pudimos comunicarnos. Escribinos por acá cuando quieras o pedí otra llamada.".into(),
    }
}

pub fn after_call(lang: &str, summary: Option<&str>) -> String {
    let summary = summary.map(str::trim).filter(|s| !s.is_empty());
    match (lang, summary) {
        ("en", Some(s)) => format!("Thanks for the call! Summary: {s}\nNext step: reply here with any question, or ask for a person."),
        ("en", None) => "Thanks for the call! Reply here with any question, or ask for a person.".into(),
        ("pt", Some(s)) => format!("Obrigado pela ligação! Resumo: {s}\nPróximo passo: responda aqui com qualquer dúvida ou peça para falar com uma pessoa."),
        ("pt", None) => "Obrigado pela ligação! Responda aqui com qualquer dúvida ou peça para falar com uma pessoa.".into(),
        (_, Some(s)) => format!("¡Gracias por la llamada! Resumen: {s}\nPróximo paso: respondé por acá con cualquier duda o pedí hablar con una persona."),
        (_, None) => "¡Gracias por la llamada! Respondé por acá con cualquier duda o pedí hablar con una persona.".into(),
    }
}

pub fn retrying(lang: &str, when: &str) -> String {
    match lang {
        "en" => format!("We couldn't reach you; we'll try again on {when}."),
        "pt" => format!("Não conseguimos falar com você; tentaremos de novo {when}."),
        _ => format!("No pudimos comunicarnos; volvemos a intentar el {when}."),
    }
}
