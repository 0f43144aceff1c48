//! The Graph API's request bodies: Charla's outbound messages as Meta's
//! `/messages` endpoint takes them (the messages themselves, with their
//! limits, are `domain::whatsapp::outbound`).

use domain::whatsapp::outbound::OutboundMessage;
use domain::UserId;
use serde_json::{json, Value};

/// The request body for `POST /{phone_number_id}/messages`. A number goes
/// in `to`; a business-scoped user id (a user known only by username) in
/// `recipient`, as Meta takes it (`to` would win if both were set).
pub fn message_body(msg: &OutboundMessage, to: &UserId, reply_to: Option<&str>) -> Value {
    let field = if to.is_phone() { "to" } else { "recipient" };
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
    });
    body[field] = json!(to.as_str());
    let (kind, payload) = match msg {
        OutboundMessage::Text { body } => ("text", json!({ "body": body, "preview_url": false })),
        OutboundMessage::Buttons {
            body: text,
            buttons,
            footer,
        } => {
            let mut interactive = json!({
                "type": "button",
                "body": { "text": text },
                "action": { "buttons": buttons.iter().map(|b| json!({
                    "type": "reply",
                    "reply": { "id": b.id, "title": b.title },
                })).collect::<Vec<_>>() },
            });
            if let Some(f) = footer {
                interactive["footer"] = json!({ "text": f });
            }
            ("interactive", interactive)
        }
        OutboundMessage::List {
            body: text,
            button,
            sections,
        } => (
            "interactive",
            json!({
                "type": "list",
                "body": { "text": text },
                "action": { "button": button, "sections": sections },
            }),
        ),
        OutboundMessage::Template {
            name,
            language,
            components,
        } => {
            let mut t = json!({ "name": name, "language": { "code": language } });
            if !components.is_empty() {
                t["components"] = Value::Array(components.clone());
            }
            ("template", t)
        }
        OutboundMessage::Reaction { message_id, emoji } => (
            "reaction",
            json!({ "message_id": message_id, "emoji": emoji }),
        ),
    };
    body["type"] = json!(kind);
    body[kind] = payload;
    if let Some(id) = reply_to {
        body["context"] = json!({ "message_id": id });
    }
    body
}

/// The body that marks a message read and shows the typing indicator.
pub fn mark_read_body(wamid: &str, typing: bool) -> Value {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": wamid,
    });
    if typing {
        body["typing_indicator"] = json!({ "type": "text" });
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::whatsapp::outbound::ReplyButton;

    fn button(id: &str, title: &str) -> ReplyButton {
        ReplyButton {
            id: id.into(),
            title: title.into(),
        }
    }

    fn user() -> UserId {
        UserId::parse("5491155551234").expect("phone")
    }

    #[test]
    fn a_number_goes_in_to_and_a_bsuid_in_recipient() {
        let text = OutboundMessage::Text { body: "hi".into() };
        let body = message_body(&text, &user(), None);
        assert_eq!(body["to"], "5491155551234");
        assert!(body.get("recipient").is_none());
        let bsuid = UserId::parse("AR.1502576394655843").expect("bsuid");
        let body = message_body(&text, &bsuid, None);
        assert_eq!(body["recipient"], "AR.1502576394655843");
        assert!(body.get("to").is_none());
        assert_eq!(body["type"], "text");
    }

    #[test]
    fn graph_body_for_text_reply_has_context() {
        let body = message_body(
            &OutboundMessage::Text { body: "hi".into() },
            &user(),
            Some("wamid.X"),
        );
        assert_eq!(body["type"], "text");
        assert_eq!(body["text"]["body"], "hi");
        assert_eq!(body["text"]["preview_url"], false);
        assert_eq!(body["context"]["message_id"], "wamid.X");
        assert_eq!(body["recipient_type"], "individual");
    }

    #[test]
    fn graph_body_for_buttons_template_and_reaction() {
        let b = OutboundMessage::buttons("Elige", vec![button("menu", "Menú")]).expect("valid");
        let body = message_body(&b, &user(), None);
        assert_eq!(body["interactive"]["type"], "button");
        assert_eq!(
            body["interactive"]["action"]["buttons"][0]["reply"]["id"],
            "menu"
        );
        let t = message_body(
            &OutboundMessage::template("hello_world", "en_US"),
            &user(),
            None,
        );
        assert_eq!(t["template"]["language"]["code"], "en_US");
        let reaction = OutboundMessage::Reaction {
            message_id: "wamid.X".into(),
            emoji: "👍".into(),
        };
        let r = message_body(&reaction, &user(), None);
        assert_eq!(r["reaction"]["emoji"], "👍");
    }

    #[test]
    fn mark_read_carries_typing_indicator() {
        let b = mark_read_body("wamid.X", true);
        assert_eq!(b["status"], "read");
        assert_eq!(b["typing_indicator"]["type"], "text");
        assert!(mark_read_body("wamid.X", false)
            .get("typing_indicator")
            .is_none());
    }
}
