//! Webhooks shaped and signed as Meta sends them, for `local chat`, `local
//! load` and the end-to-end tests.

use domain::signature::meta_signature_header;
use serde_json::{json, Value};

pub const DEMO_PHONE_NUMBER_ID: &str = "106540352242922";
pub const DEMO_DISPLAY_NUMBER: &str = "15550783881";

/// The envelope Meta wraps every `messages` change in.
fn envelope(value: Value) -> Value {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({
        "display_phone_number": DEMO_DISPLAY_NUMBER,
        "phone_number_id": DEMO_PHONE_NUMBER_ID,
    });
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{ "field": "messages", "value": value }],
        }],
    })
}

/// A `messages` webhook carrying `message` from `user_id`: a number (Meta's
/// `wa_id` and `from`), or a business-scoped user id (`AR.1502...`), as Meta
/// sends a user who hides their number behind a username (`user_id` and
/// `from_user_id`, no number anywhere).
pub fn message_webhook(user_id: &str, name: &str, message: Value) -> Value {
    let mut message = message;
    let contact = if user_id.contains('.') {
        if let Some(obj) = message.as_object_mut() {
            if let Some(from) = obj.remove("from") {
                obj.insert("from_user_id".into(), from);
            }
        }
        let username = name.to_lowercase().replace(' ', ".");
        json!({ "profile": { "name": name, "username": username }, "user_id": user_id })
    } else {
        json!({ "profile": { "name": name }, "wa_id": user_id })
    };
    envelope(json!({
        "contacts": [contact],
        "messages": [message],
    }))
}

pub fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A fresh wamid, shaped like Meta's.
pub fn new_wamid() -> String {
    format!("wamid.LOCAL{}", uuid::Uuid::new_v4().simple())
}

pub fn text_message(user_id: &str, wamid: &str, body: &str) -> Value {
    json!({
        "from": user_id,
        "id": wamid,
        "timestamp": now_secs().to_string(),
        "type": "text",
        "text": { "body": body },
    })
}

pub fn button_reply_message(user_id: &str, wamid: &str, id: &str, title: &str) -> Value {
    json!({
        "from": user_id,
        "id": wamid,
        "timestamp": now_secs().to_string(),
        "type": "interactive",
        "interactive": { "type": "button_reply", "button_reply": { "id": id, "title": title } },
    })
}

/// A tap on a row of a list message, as Meta sends it.
pub fn list_reply_message(
    user_id: &str,
    wamid: &str,
    id: &str,
    title: &str,
    description: &str,
) -> Value {
    json!({
        "from": user_id,
        "id": wamid,
        "timestamp": now_secs().to_string(),
        "type": "interactive",
        "interactive": {
            "type": "list_reply",
            "list_reply": { "id": id, "title": title, "description": description },
        },
    })
}

/// A `statuses` webhook for a message we sent.
pub fn status_webhook(user_id: &str, wamid: &str, status: &str) -> Value {
    envelope(json!({
        "statuses": [{
            "id": wamid,
            "status": status,
            "timestamp": now_secs().to_string(),
            "recipient_id": user_id,
        }],
    }))
}

/// Posts a signed webhook; returns the status code.
pub async fn post_signed(
    client: &reqwest::Client,
    server: &str,
    app_secret: &str,
    body: &[u8],
) -> reqwest::Result<u16> {
    let resp = client
        .post(format!(
            "{}/webhooks/whatsapp",
            server.trim_end_matches('/')
        ))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            meta_signature_header(app_secret.as_bytes(), body),
        )
        .body(body.to_vec())
        .send()
        .await?;
    Ok(resp.status().as_u16())
}
