//! A turn's expectations against what it showed: each difference in words
//! a support lead reads. No I/O here.

use domain::whatsapp::outbound::OutboundMessage;
use serde_json::Value;

use super::harness::Observed;
use super::suite::{Expect, Matcher, ToolCall};

/// The text a user reads in a reply: the body, then buttons and rows.
pub fn reply_text(m: &OutboundMessage) -> String {
    match m {
        OutboundMessage::Text { body } => body.clone(),
        OutboundMessage::Buttons { body, buttons, .. } => {
            let titles: Vec<&str> = buttons.iter().map(|b| b.title.as_str()).collect();
            format!("{body}\n[{}]", titles.join("] ["))
        }
        OutboundMessage::List {
            body,
            button,
            sections,
        } => {
            let rows: Vec<&str> = sections
                .iter()
                .flat_map(|s| s.rows.iter().map(|r| r.title.as_str()))
                .collect();
            format!("{body}\n({button}: {})", rows.join(", "))
        }
        OutboundMessage::Template { name, .. } => format!("[template {name}]"),
        OutboundMessage::Reaction { emoji, .. } => format!("[reaction {emoji}]"),
    }
}

/// The parts of a reply that carry words, each on its own (a button title
/// alone is too short to tell a language, but a body is not).
fn parts(m: &OutboundMessage) -> Vec<String> {
    match m {
        OutboundMessage::Text { body } => vec![body.clone()],
        OutboundMessage::Buttons { body, buttons, .. } => {
            let mut v = vec![body.clone()];
            v.push(
                buttons
                    .iter()
                    .map(|b| b.title.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            v
        }
        OutboundMessage::List { body, .. } => vec![body.clone()],
        _ => Vec::new(),
    }
}

/// What differed; empty when the turn passed.
pub fn check(expect: &Expect, seen: &Observed, languages: &[String]) -> Vec<String> {
    let mut diffs = Vec::new();
    let all: Vec<String> = seen.replies.iter().map(reply_text).collect();
    let text = all.join("\n");
    let quoted = || format!("{:?}", shorten(&text, 160));

    if let Some(lang) = &expect.language {
        for part in seen.replies.iter().flat_map(parts) {
            if let Some(found) = agent::text::detect_language(&part, languages) {
                if &found != lang {
                    diffs.push(format!(
                        "language: expected {lang}, a reply is in {found}: {:?}",
                        shorten(&part, 80)
                    ));
                }
            }
        }
        if seen.replies.is_empty() {
            diffs.push(format!(
                "language: expected a reply in {lang}, nothing was sent"
            ));
        }
    }
    for want in &expect.contains.0 {
        match Matcher::parse(want) {
            Ok(m) if m.is_match(&text) => {}
            Ok(_) => diffs.push(format!("contains {want:?}: not in {}", quoted())),
            Err(e) => diffs.push(e),
        }
    }
    for not in &expect.not_contains.0 {
        match Matcher::parse(not) {
            Ok(m) if m.is_match(&text) => {
                diffs.push(format!("not_contains {not:?}: it is in {}", quoted()))
            }
            Ok(_) => {}
            Err(e) => diffs.push(e),
        }
    }
    for want in &expect.transcript.0 {
        let transcript = seen.transcript.as_deref().unwrap_or_default();
        match Matcher::parse(want) {
            Ok(m) if m.is_match(transcript) => {}
            Ok(_) => diffs.push(format!(
                "transcript {want:?}: not in the admin transcript {:?}",
                shorten(transcript, 200)
            )),
            Err(e) => diffs.push(e),
        }
    }
    let offered = super::harness::offered_in(&seen.replies);
    for b in &expect.buttons.0 {
        let want = b.to_lowercase();
        if !offered
            .iter()
            .any(|(id, title, _)| title.to_lowercase() == want || id.to_lowercase() == want)
        {
            let titles: Vec<&str> = offered.iter().map(|o| o.1.as_str()).collect();
            diffs.push(format!("button {b:?}: not offered (offered: {titles:?})"));
        }
    }
    let called: Vec<(&str, &Value)> = seen
        .reports
        .iter()
        .flat_map(|r| r.tool_args.iter().map(|(n, a)| (*n, a)))
        .collect();
    for tool in &expect.tools {
        let same_name: Vec<&Value> = called
            .iter()
            .filter(|(n, _)| *n == tool.name())
            .map(|(_, a)| *a)
            .collect();
        if same_name.is_empty() {
            let names: Vec<&str> = called.iter().map(|(n, _)| *n).collect();
            diffs.push(format!(
                "tool {}: not called (called: {names:?})",
                tool.name()
            ));
            continue;
        }
        if let ToolCall::WithArgs(t) = tool {
            if !same_name.iter().any(|a| args_match(&t.args, a)) {
                diffs.push(format!(
                    "tool {}: not called with {} (called with {})",
                    t.name,
                    Value::Object(t.args.clone()),
                    same_name
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    for tool in &expect.no_tools.0 {
        if called.iter().any(|(n, _)| n == tool) {
            diffs.push(format!("no_tools {tool}: it was called"));
        }
    }
    let count = |what: &str, want: Option<bool>, n: usize, diffs: &mut Vec<String>| {
        if let Some(want) = want {
            if want != (n > 0) {
                diffs.push(if want {
                    format!("{what}: none recorded")
                } else {
                    format!("{what}: {n} recorded, expected none")
                });
            }
        }
    };
    count("lead", expect.lead, seen.leads, &mut diffs);
    count(
        "appointment",
        expect.appointment,
        seen.appointments,
        &mut diffs,
    );
    count(
        "call_request",
        expect.call_request,
        seen.call_requests,
        &mut diffs,
    );
    let state = seen.state.map(|s| s.as_str()).unwrap_or("none");
    if let Some(want) = expect.handoff {
        let people = matches!(state, "human" | "pending_human");
        if want != people {
            diffs.push(format!(
                "handoff: expected {}, the conversation is {state}",
                if want {
                    "people to have it"
                } else {
                    "the bot to keep it"
                }
            ));
        }
    }
    if let Some(want) = &expect.state {
        if want != state {
            diffs.push(format!("state: expected {want}, it is {state}"));
        }
    }
    match expect.silent {
        Some(true) if !seen.replies.is_empty() => diffs.push(format!(
            "silent: {} message(s) sent: {}",
            seen.replies.len(),
            quoted()
        )),
        Some(false) if seen.replies.is_empty() => {
            diffs.push("silent: expected an answer, nothing was sent".into())
        }
        _ => {}
    }
    if let Some(want) = &expect.answered_by {
        let by: Vec<&str> = seen.reports.iter().map(|r| r.via()).collect();
        if !by.contains(&want.as_str()) {
            diffs.push(format!("answered_by: expected {want}, it was {by:?}"));
        }
    }
    if let Some(want) = expect.fallback {
        let was = seen.reports.iter().any(|r| r.fallback);
        if want != was {
            diffs.push(format!(
                "fallback: expected {}, {}: {}",
                if want { "the fallback" } else { "an answer" },
                if was { "it fell back" } else { "it answered" },
                quoted()
            ));
        }
    }
    diffs
}

/// Each expected argument matches the call's: strings as `contains`
/// (text or `/regex/`), anything else equal.
fn args_match(want: &serde_json::Map<String, Value>, got: &Value) -> bool {
    want.iter().all(|(k, w)| match (w, &got[k]) {
        (Value::String(w), Value::String(g)) => Matcher::parse(w).is_ok_and(|m| m.is_match(g)),
        (w, g) => w == g,
    })
}

pub fn shorten(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::suite::Suite;
    use domain::whatsapp::outbound::ReplyButton;

    fn expect(yaml: &str) -> Expect {
        let text =
            format!("cases:\n  - name: a\n    turns:\n      - say: hola\n        expect: {yaml}\n");
        Suite::parse(&text).expect("suite").cases[0].turns[0]
            .expect
            .clone()
    }

    fn langs() -> Vec<String> {
        vec!["es".into(), "en".into(), "pt".into()]
    }

    fn seen(replies: Vec<OutboundMessage>) -> Observed {
        Observed {
            replies,
            ..Observed::default()
        }
    }

    #[test]
    fn a_notice_in_another_language_is_a_difference() {
        let menu = OutboundMessage::buttons(
            "Anything else I can help with?",
            vec![ReplyButton {
                id: "menu_hours".into(),
                title: "Opening hours".into(),
            }],
        )
        .expect("buttons");
        let o = seen(vec![
            OutboundMessage::Text {
                body: "Nuestro horario de atención es de lunes a viernes.".into(),
            },
            menu,
        ]);
        let d = check(&expect("{language: es}"), &o, &langs());
        assert!(d.iter().any(|d| d.contains("is in en")), "{d:?}");
    }

    #[test]
    fn texts_regexes_buttons_and_silence_are_checked() {
        let o = seen(OutboundMessage::texts("Abrimos de 09:00 a 18:00."));
        assert!(check(
            &expect("{contains: [\"abrimos\", \"/0?9:00/\"]}"),
            &o,
            &langs()
        )
        .is_empty());
        let d = check(
            &expect("{not_contains: \"/18:00/\", buttons: Horarios, silent: true}"),
            &o,
            &langs(),
        );
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(check(&expect("{silent: true}"), &seen(vec![]), &langs()).is_empty());
    }

    #[test]
    fn tool_arguments_match_as_text_or_regex() {
        let mut o = seen(vec![]);
        let mut report = agent::TurnReport::default();
        report
            .tool_args
            .push(("lookup_customer", serde_json::json!({"id": "VM-48213"})));
        o.reports.push(report);
        let ok = expect("{tools: [{name: lookup_customer, args: {id: \"/^VM-48213$/\"}}]}");
        assert!(check(&ok, &o, &langs()).is_empty());
        let wrong = expect("{tools: [{name: lookup_customer, args: {id: \"30123456\"}}], no_tools: lookup_customer}");
        assert_eq!(check(&wrong, &o, &langs()).len(), 2);
        assert_eq!(
            check(&expect("{tools: [kb_search]}"), &o, &langs()).len(),
            1
        );
    }
}
