//! Webhook bodies shaped as Meta sends them.

use serde_json::{json, Value};

pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const DISPLAY_NUMBER: &str = "15550783881";

pub fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A `messages` webhook carrying `message` from `user_id`: a number, or a
/// business-scoped user id (`AR.1502...`) sent as Meta sends a user known
/// only by username (`user_id`, `from_user_id`, no number).
pub fn message_webhook(user_id: &str, name: &str, message: Value) -> Value {
    let mut message = message;
    let contact = if user_id.contains('.') {
        if let Some(from) = message.as_object_mut().and_then(|m| m.remove("from")) {
            message["from_user_id"] = from;
        }
        json!({ "profile": { "name": name, "username": "as.deployed" }, "user_id": user_id })
    } else {
        json!({ "profile": { "name": name }, "wa_id": user_id })
    };
    envelope(json!({ "contacts": [contact], "messages": [message] }))
}

/// A webhook of the business number carrying `value`'s fields (contacts and
/// messages, or statuses).
fn envelope(mut value: Value) -> Value {
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] =
        json!({ "display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID });
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{ "field": "messages", "value": value }],
        }],
    })
}

/// A `statuses` webhook: `wamid` (sent to `user_id`) is now `status`
/// (`sent`, `delivered`, `read`), as Meta reports each message sent.
pub fn status_webhook(user_id: &str, wamid: &str, status: &str) -> Value {
    envelope(json!({ "statuses": [{
        "id": wamid,
        "status": status,
        "timestamp": now_secs().to_string(),
        "recipient_id": user_id,
    }]}))
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

pub fn image_message(
    user_id: &str,
    wamid: &str,
    media_id: &str,
    mime: &str,
    sha256: &str,
) -> Value {
    json!({
        "from": user_id,
        "id": wamid,
        "timestamp": now_secs().to_string(),
        "type": "image",
        "image": { "id": media_id, "mime_type": mime, "sha256": sha256 },
    })
}

/// A fresh wamid, shaped like Meta's.
pub fn new_wamid() -> String {
    format!("wamid.ASDEPLOYED{}", uuid::Uuid::new_v4().simple())
}

/// A fresh Argentine mobile number, so parallel tests never share a user.
/// A fresh business-scoped user id (a user known only by username).
pub fn new_bsuid() -> String {
    format!("AR.{}", uuid::Uuid::new_v4().as_u128() % 10_u128.pow(19))
}

pub fn new_user_id() -> String {
    let n = u64::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .unwrap_or([7; 8]),
    );
    format!("54911{:08}", n % 100_000_000)
}
