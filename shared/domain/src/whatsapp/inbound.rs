//! What Meta POSTs to the webhook. Modelled on what Meta documents; anything
//! else (new message types, new fields, new `field`s) is kept as data.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The top-level webhook body.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WebhookPayload {
    pub object: String,
    pub entry: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Entry {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Change {
    pub field: String,
    #[serde(default)]
    pub value: Value,
}

/// `value` of a `field: "messages"` change.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MessagesValue {
    #[serde(default)]
    pub messaging_product: String,
    pub metadata: Metadata,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub messages: Vec<InboundMessage>,
    #[serde(default)]
    pub statuses: Vec<Status>,
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

/// The business number a change was addressed to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Metadata {
    #[serde(default)]
    pub display_phone_number: String,
    pub phone_number_id: String,
}

/// Who wrote. `wa_id` (the number) is absent for a user who hides it behind
/// a username; `user_id` (the BSUID) comes with every message since 2026.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Contact {
    #[serde(default)]
    pub profile: Option<Profile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Profile {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ApiError {
    pub code: i64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<Value>,
}

/// Present on replies and forwards.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct MessageContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub forwarded: bool,
    #[serde(default)]
    pub frequently_forwarded: bool,
}

/// One user message. At least one of `from` (the number) and
/// `from_user_id` (the BSUID) is present.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboundMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_parent_user_id: Option<String>,
    pub id: String,
    /// Unix seconds.
    pub timestamp: i64,
    pub context: Option<MessageContext>,
    pub referral: Option<Value>,
    pub errors: Vec<ApiError>,
    pub content: MessageContent,
}

/// Image, audio, video, document and sticker payloads share this shape.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct Media {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// `true` on voice notes.
    #[serde(default)]
    pub voice: bool,
    #[serde(default)]
    pub animated: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Interactive {
    ButtonReply {
        id: String,
        title: String,
    },
    ListReply {
        id: String,
        title: String,
        description: Option<String>,
    },
    NfmReply {
        response_json: String,
        body: Option<String>,
        name: Option<String>,
    },
    /// The user's answer to the business's request to call them on
    /// WhatsApp (`call_permission_reply`).
    CallPermission {
        accepted: bool,
        /// Granted for good, not for a while.
        permanent: bool,
        /// When a temporary permission ends, Unix seconds.
        expires_at: Option<i64>,
        /// `user_action` or `automatic`.
        source: Option<String>,
    },
    /// An interactive reply type we do not know yet.
    Other {
        kind: String,
        raw: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    #[serde(default)]
    pub catalog_id: String,
    #[serde(default)]
    pub product_items: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemNotice {
    #[serde(default)]
    pub body: String,
    /// `user_changed_number`: the new number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// The BSUID now (`user_changed_user_id`, and a changed number's new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_parent_user_id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// The content of a message, by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageContent {
    Text {
        body: String,
    },
    Image(Media),
    Audio(Media),
    Video(Media),
    Document(Media),
    Sticker(Media),
    Location(Location),
    Contacts {
        contacts: Vec<Value>,
        /// `contact_request`: the user shared their own number, tapping a
        /// template's `REQUEST_CONTACT_INFO` button.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<String>,
    },
    Interactive(Interactive),
    Button {
        text: String,
        payload: Option<String>,
    },
    /// `emoji` is `None` when the user removed the reaction.
    Reaction {
        message_id: String,
        emoji: Option<String>,
    },
    Order(Order),
    System(SystemNotice),
    Unsupported,
    /// A type Meta added after this code was written: kept whole.
    Unknown {
        type_name: String,
        raw: Value,
    },
}

impl MessageContent {
    /// The `type` name as Meta spells it.
    pub fn type_name(&self) -> &str {
        match self {
            MessageContent::Text { .. } => "text",
            MessageContent::Image(_) => "image",
            MessageContent::Audio(_) => "audio",
            MessageContent::Video(_) => "video",
            MessageContent::Document(_) => "document",
            MessageContent::Sticker(_) => "sticker",
            MessageContent::Location(_) => "location",
            MessageContent::Contacts { .. } => "contacts",
            MessageContent::Interactive(_) => "interactive",
            MessageContent::Button { .. } => "button",
            MessageContent::Reaction { .. } => "reaction",
            MessageContent::Order(_) => "order",
            MessageContent::System(_) => "system",
            MessageContent::Unsupported => "unsupported",
            MessageContent::Unknown { type_name, .. } => type_name,
        }
    }

    pub fn is_media(&self) -> bool {
        matches!(
            self,
            MessageContent::Image(_)
                | MessageContent::Audio(_)
                | MessageContent::Video(_)
                | MessageContent::Document(_)
                | MessageContent::Sticker(_)
        )
    }

    /// The kind a stored message keeps: Meta's type, except what the agent
    /// answers on its own (`call_permission`).
    pub fn stored_kind(&self) -> &str {
        match self {
            MessageContent::Interactive(Interactive::CallPermission { .. }) => CALL_PERMISSION_KIND,
            other => other.type_name(),
        }
    }

    /// Whether this message is something the user says to the agent. System
    /// notices and reactions are recorded but do not start a turn.
    pub fn starts_turn(&self) -> bool {
        !matches!(
            self,
            MessageContent::System(_) | MessageContent::Reaction { .. }
        )
    }

    /// A one-line text for transcripts and for the responder.
    pub fn summary(&self) -> String {
        fn media(kind: &str, m: &Media) -> String {
            match (&m.caption, &m.filename) {
                (Some(c), _) => format!("[{kind}] {c}"),
                (None, Some(f)) => format!("[{kind}: {f}]"),
                _ => format!("[{kind}]"),
            }
        }
        match self {
            MessageContent::Text { body } => body.clone(),
            MessageContent::Image(m) => media("image", m),
            MessageContent::Audio(m) if m.voice => media("voice note", m),
            MessageContent::Audio(m) => media("audio", m),
            MessageContent::Video(m) => media("video", m),
            MessageContent::Document(m) => media("document", m),
            MessageContent::Sticker(m) => media("sticker", m),
            MessageContent::Location(l) => {
                let place = l.name.clone().or_else(|| l.address.clone());
                match place {
                    Some(p) => format!("[location] {p} ({}, {})", l.latitude, l.longitude),
                    None => format!("[location] {}, {}", l.latitude, l.longitude),
                }
            }
            MessageContent::Contacts { contacts, .. } => format!("[contacts: {}]", contacts.len()),
            MessageContent::Interactive(Interactive::ButtonReply { title, .. })
            | MessageContent::Interactive(Interactive::ListReply { title, .. }) => title.clone(),
            MessageContent::Interactive(Interactive::NfmReply { body, .. }) => {
                body.clone().unwrap_or_else(|| "[form reply]".into())
            }
            MessageContent::Interactive(Interactive::CallPermission {
                accepted,
                permanent,
                expires_at,
                ..
            }) => match (accepted, permanent, expires_at) {
                (false, _, _) => "[call permission: rejected]".into(),
                (true, true, _) => "[call permission: accepted, permanent]".into(),
                (true, false, Some(t)) => match jiff::Timestamp::from_second(*t) {
                    Ok(until) => format!("[call permission: accepted until {until}]"),
                    Err(_) => "[call permission: accepted]".into(),
                },
                (true, false, None) => "[call permission: accepted]".into(),
            },
            MessageContent::Interactive(Interactive::Other { kind, .. }) => {
                format!("[interactive: {kind}]")
            }
            MessageContent::Button { text, .. } => text.clone(),
            MessageContent::Reaction { emoji: Some(e), .. } => format!("[reaction] {e}"),
            MessageContent::Reaction { emoji: None, .. } => "[reaction removed]".into(),
            MessageContent::Order(o) => format!("[order: {} items]", o.product_items.len()),
            MessageContent::System(s) => format!("[system] {}", s.body),
            MessageContent::Unsupported => "[unsupported message]".into(),
            MessageContent::Unknown { type_name, .. } => format!("[{type_name}]"),
        }
    }

    /// The user's own number, when they shared it at the business's request
    /// (a `contacts` message of origin `contact_request`): WhatsApp says it
    /// is theirs, unlike a number typed in a text.
    pub fn own_number_shared(&self) -> Option<String> {
        let MessageContent::Contacts {
            contacts,
            origin: Some(origin),
        } = self
        else {
            return None;
        };
        if origin != "contact_request" {
            return None;
        }
        let phone = contacts.first()?.get("phones")?.get(0)?;
        phone
            .get("wa_id")
            .and_then(Value::as_str)
            .or_else(|| phone.get("phone").and_then(Value::as_str))
            .map(|p| p.chars().filter(char::is_ascii_digit).collect())
    }

    /// The id a reply button or list row carried, if this is such a reply.
    pub fn reply_id(&self) -> Option<&str> {
        match self {
            MessageContent::Interactive(Interactive::ButtonReply { id, .. })
            | MessageContent::Interactive(Interactive::ListReply { id, .. }) => Some(id),
            MessageContent::Button {
                payload: Some(p), ..
            } => Some(p),
            _ => None,
        }
    }
}

fn field<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// The stored kind of a call-permission reply (see
/// [`MessageContent::stored_kind`]).
pub const CALL_PERMISSION_KIND: &str = "call_permission";

/// Whether a stored call-permission reply (its [`MessageContent::summary`])
/// granted the permission.
pub fn call_permission_granted(summary: &str) -> bool {
    summary.starts_with("[call permission: accepted")
}

fn parse_interactive(v: Value) -> Result<Interactive, String> {
    let mut obj = match v {
        Value::Object(o) => o,
        _ => return Err("interactive is not an object".into()),
    };
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let inner = obj.remove(&kind).unwrap_or(Value::Null);
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(match kind.as_str() {
        "button_reply" => Interactive::ButtonReply {
            id: s(&inner, "id").ok_or("button_reply.id missing")?,
            title: s(&inner, "title").unwrap_or_default(),
        },
        "list_reply" => Interactive::ListReply {
            id: s(&inner, "id").ok_or("list_reply.id missing")?,
            title: s(&inner, "title").unwrap_or_default(),
            description: s(&inner, "description"),
        },
        "call_permission_reply" => Interactive::CallPermission {
            accepted: match s(&inner, "response").as_deref() {
                Some("accept") => true,
                Some("reject") => false,
                other => return Err(format!("call_permission_reply.response {other:?}")),
            },
            permanent: inner
                .get("is_permanent")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            // Meta sends a number; some relays a string.
            expires_at: inner.get("expiration_timestamp").and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|t| t.trim().parse().ok()))
            }),
            source: s(&inner, "response_source"),
        },
        "nfm_reply" => Interactive::NfmReply {
            response_json: s(&inner, "response_json").unwrap_or_default(),
            body: s(&inner, "body"),
            name: s(&inner, "name"),
        },
        _ => {
            obj.insert(kind.clone(), inner);
            Interactive::Other {
                kind,
                raw: Value::Object(obj),
            }
        }
    })
}

fn content_from(type_name: &str, rest: &mut Map<String, Value>) -> Result<MessageContent, String> {
    let take = |rest: &mut Map<String, Value>| rest.remove(type_name).unwrap_or(Value::Null);
    Ok(match type_name {
        "text" => {
            let v = take(rest);
            MessageContent::Text {
                body: v
                    .get("body")
                    .and_then(Value::as_str)
                    .ok_or("text.body missing")?
                    .to_string(),
            }
        }
        "image" => MessageContent::Image(field(take(rest))?),
        "audio" => MessageContent::Audio(field(take(rest))?),
        "video" => MessageContent::Video(field(take(rest))?),
        "document" => MessageContent::Document(field(take(rest))?),
        "sticker" => MessageContent::Sticker(field(take(rest))?),
        "location" => MessageContent::Location(field(take(rest))?),
        "contacts" => MessageContent::Contacts {
            contacts: field(take(rest))?,
            origin: match rest.remove("origin") {
                Some(Value::String(o)) if !o.is_empty() => Some(o),
                _ => None,
            },
        },
        "interactive" => MessageContent::Interactive(parse_interactive(take(rest))?),
        "button" => {
            let v = take(rest);
            MessageContent::Button {
                text: v
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                payload: v.get("payload").and_then(Value::as_str).map(str::to_string),
            }
        }
        "reaction" => {
            let v = take(rest);
            MessageContent::Reaction {
                message_id: v
                    .get("message_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                emoji: v
                    .get("emoji")
                    .and_then(Value::as_str)
                    .filter(|e| !e.is_empty())
                    .map(str::to_string),
            }
        }
        "order" => MessageContent::Order(field(take(rest))?),
        "system" => MessageContent::System(field(take(rest))?),
        "unsupported" => {
            rest.remove("unsupported");
            MessageContent::Unsupported
        }
        other => MessageContent::Unknown {
            type_name: other.to_string(),
            raw: Value::Object(std::mem::take(rest)),
        },
    })
}

fn timestamp_from(v: &Value) -> Result<i64, String> {
    match v {
        Value::String(s) => s.trim().parse().map_err(|_| format!("bad timestamp {s:?}")),
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("bad timestamp {n}")),
        _ => Err("timestamp missing".into()),
    }
}

impl<'de> Deserialize<'de> for InboundMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut obj = Map::deserialize(d)?;
        let mut opt_str = |k: &str| match obj.remove(k) {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            _ => None,
        };
        let from = opt_str("from");
        let from_user_id = opt_str("from_user_id");
        let from_parent_user_id = opt_str("from_parent_user_id");
        let id = opt_str("id").ok_or_else(|| D::Error::custom("message.id missing"))?;
        let type_name = opt_str("type").ok_or_else(|| D::Error::custom("message.type missing"))?;
        // A system notice of a changed BSUID may name no sender: what changed
        // is in the notice itself.
        if from.is_none() && from_user_id.is_none() && type_name != "system" {
            return Err(D::Error::custom(
                "message.from and message.from_user_id missing",
            ));
        }
        let timestamp = timestamp_from(&obj.remove("timestamp").unwrap_or(Value::Null))
            .map_err(D::Error::custom)?;
        let context = match obj.remove("context") {
            Some(v) => Some(field(v).map_err(D::Error::custom)?),
            None => None,
        };
        let referral = obj.remove("referral");
        let errors = match obj.remove("errors") {
            Some(v) => field(v).map_err(D::Error::custom)?,
            None => Vec::new(),
        };
        let content = content_from(&type_name, &mut obj).map_err(D::Error::custom)?;
        Ok(InboundMessage {
            from,
            from_user_id,
            from_parent_user_id,
            id,
            timestamp,
            context,
            referral,
            errors,
            content,
        })
    }
}

/// A delivery state Meta reports for a message we sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Sent,
    Delivered,
    Read,
    Failed,
    #[serde(untagged)]
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub id: String,
    pub status: DeliveryState,
    pub timestamp: i64,
    /// The number or BSUID the message was sent to.
    pub recipient_id: String,
    /// The recipient's BSUID, also when it was sent to the number.
    pub recipient_user_id: Option<String>,
    pub recipient_parent_user_id: Option<String>,
    pub conversation: Option<Value>,
    pub pricing: Option<Value>,
    pub errors: Vec<ApiError>,
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(Deserialize)]
        struct Raw {
            id: String,
            status: DeliveryState,
            timestamp: Value,
            #[serde(default)]
            recipient_id: String,
            #[serde(default)]
            recipient_user_id: Option<String>,
            #[serde(default)]
            recipient_parent_user_id: Option<String>,
            #[serde(default)]
            conversation: Option<Value>,
            #[serde(default)]
            pricing: Option<Value>,
            #[serde(default)]
            errors: Vec<ApiError>,
        }
        let raw = Raw::deserialize(d)?;
        Ok(Status {
            timestamp: timestamp_from(&raw.timestamp).map_err(D::Error::custom)?,
            id: raw.id,
            status: raw.status,
            recipient_id: raw.recipient_id,
            recipient_user_id: raw.recipient_user_id.filter(|s| !s.is_empty()),
            recipient_parent_user_id: raw.recipient_parent_user_id.filter(|s| !s.is_empty()),
            conversation: raw.conversation,
            pricing: raw.pricing,
            errors: raw.errors,
        })
    }
}

/// One thing a webhook told us, flattened out of entries and changes.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    /// A user message. Its sender has a number (`from`), a BSUID
    /// (`from_user_id`, filled in from `contacts` when only they carry it),
    /// or both.
    Message {
        business: Metadata,
        contact_name: Option<String>,
        username: Option<String>,
        /// Boxed: a message is several times the size of the other events.
        message: Box<InboundMessage>,
    },
    Status {
        business: Metadata,
        status: Status,
    },
    /// `errors[]` at the level of a change value.
    Errors {
        business: Metadata,
        errors: Vec<ApiError>,
    },
    /// A user's id changed: `previous` is now `current`. From a
    /// `user_changed_number` or `user_changed_user_id` system notice, or a
    /// `user_id_update` change.
    IdChanged {
        previous: String,
        current: String,
    },
    /// A user stopped or resumed marketing messages (`user_preferences`).
    Preference {
        business: Metadata,
        preference: UserPreference,
    },
    /// Any other `field` (template status, account updates, ...).
    Other {
        field: String,
        value: Value,
    },
}

/// `value` of a `field: "user_id_update"` change (one entry per user).
#[derive(Debug, Clone, Deserialize)]
struct UserIdUpdateValue {
    #[serde(default)]
    user_id_update: Vec<UserIdUpdate>,
}

#[derive(Debug, Clone, Deserialize)]
struct UserIdUpdate {
    user_id: IdChange,
    #[serde(default)]
    parent_user_id: Option<IdChange>,
}

#[derive(Debug, Clone, Deserialize)]
struct IdChange {
    previous: String,
    current: String,
}

/// `value` of a `field: "user_preferences"` change.
#[derive(Debug, Clone, Deserialize)]
struct PreferencesValue {
    metadata: Metadata,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    user_preferences: Vec<UserPreference>,
}

/// One user's marketing preference: `category` `marketing_messages`,
/// `value` `stop` or `resume`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct UserPreference {
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub parent_user_id: Option<String>,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub value: String,
}

impl UserPreference {
    /// Marketing messages stopped (`Some(true)`), resumed (`Some(false)`).
    pub fn marketing_stopped(&self) -> Option<bool> {
        match (self.category.as_str(), self.value.as_str()) {
            ("marketing_messages", "stop") => Some(true),
            ("marketing_messages", "resume") => Some(false),
            _ => None,
        }
    }
}

/// The result of reading a webhook body: what could be understood, and what
/// could not (which sends the whole body to quarantine).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedWebhook {
    pub events: Vec<WebhookEvent>,
    pub problems: Vec<String>,
}

/// Parses a webhook body. Never panics; a body that is not a WhatsApp webhook
/// at all is an `Err`, a partly understood one lists its `problems`.
pub fn parse_webhook(body: &[u8]) -> Result<ParsedWebhook, String> {
    let payload: WebhookPayload =
        serde_json::from_slice(body).map_err(|e| format!("not a webhook payload: {e}"))?;
    if payload.object != "whatsapp_business_account" {
        return Err(format!("unexpected object {:?}", payload.object));
    }
    let mut out = ParsedWebhook::default();
    for entry in payload.entry {
        for change in entry.changes {
            let problem =
                |e: serde_json::Error| format!("entry {} ({}): {e}", entry.id, change.field);
            match change.field.as_str() {
                "messages" => match serde_json::from_value::<MessagesValue>(change.value.clone()) {
                    Ok(value) => flatten(value, &mut out.events),
                    Err(e) => out.problems.push(problem(e)),
                },
                "user_id_update" => {
                    match serde_json::from_value::<UserIdUpdateValue>(change.value.clone()) {
                        Ok(value) => {
                            for u in value.user_id_update {
                                let changes = std::iter::once(u.user_id).chain(u.parent_user_id);
                                for c in changes.filter(|c| c.previous != c.current) {
                                    out.events.push(WebhookEvent::IdChanged {
                                        previous: c.previous,
                                        current: c.current,
                                    });
                                }
                            }
                        }
                        Err(e) => out.problems.push(problem(e)),
                    }
                }
                "user_preferences" => {
                    match serde_json::from_value::<PreferencesValue>(change.value.clone()) {
                        Ok(value) => preferences(value, &mut out.events),
                        Err(e) => out.problems.push(problem(e)),
                    }
                }
                _ => out.events.push(WebhookEvent::Other {
                    field: change.field,
                    value: change.value,
                }),
            }
        }
    }
    Ok(out)
}

/// A preference names its user in itself or, failing that, in `contacts`.
fn preferences(value: PreferencesValue, events: &mut Vec<WebhookEvent>) {
    for mut preference in value.user_preferences {
        if let [only] = value.contacts.as_slice() {
            preference.wa_id = preference.wa_id.or_else(|| only.wa_id.clone());
            preference.user_id = preference.user_id.or_else(|| only.user_id.clone());
        }
        events.push(WebhookEvent::Preference {
            business: value.metadata.clone(),
            preference,
        });
    }
}

/// The id changes a system notice reports.
fn id_changes(message: &InboundMessage, events: &mut Vec<WebhookEvent>) {
    let MessageContent::System(notice) = &message.content else {
        return;
    };
    let mut push = |previous: Option<&String>, current: Option<&String>| {
        if let (Some(p), Some(c)) = (previous, current) {
            if p != c && !p.is_empty() && !c.is_empty() {
                events.push(WebhookEvent::IdChanged {
                    previous: p.clone(),
                    current: c.clone(),
                });
            }
        }
    };
    match notice.kind.as_deref() {
        Some("user_changed_number") => {
            push(message.from.as_ref(), notice.wa_id.as_ref());
            push(notice.previous_user_id.as_ref(), notice.user_id.as_ref());
        }
        Some("user_changed_user_id") => {
            push(notice.previous_user_id.as_ref(), notice.user_id.as_ref());
            push(
                notice.previous_parent_user_id.as_ref(),
                notice.parent_user_id.as_ref(),
            );
        }
        _ => {}
    }
}

fn flatten(value: MessagesValue, events: &mut Vec<WebhookEvent>) {
    // The contact of a message: by number, by BSUID, or the only one.
    let contact_of = |m: &InboundMessage| {
        let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        value
            .contacts
            .iter()
            .find(|c| same(&c.wa_id, &m.from) || same(&c.user_id, &m.from_user_id))
            .or(match value.contacts.as_slice() {
                [only] => Some(only),
                _ => None,
            })
    };
    for message in &value.messages {
        let contact = contact_of(message);
        let mut message = message.clone();
        if let Some(c) = contact {
            if message.from_user_id.is_none() {
                message.from_user_id = c.user_id.clone();
            }
            if message.from_parent_user_id.is_none() {
                message.from_parent_user_id = c.parent_user_id.clone();
            }
        }
        // The notice first, in the conversation it was about; then the id
        // change it reports. A notice that names no sender has no
        // conversation to be recorded in: only its id change counts.
        let changes = {
            let mut changes = Vec::new();
            id_changes(&message, &mut changes);
            changes
        };
        if message.from.is_some() || message.from_user_id.is_some() {
            let profile = contact.and_then(|c| c.profile.as_ref());
            let nonempty = |s: &String| (!s.trim().is_empty()).then(|| s.clone());
            events.push(WebhookEvent::Message {
                business: value.metadata.clone(),
                contact_name: profile.and_then(|p| nonempty(&p.name)),
                username: profile.and_then(|p| p.username.as_ref()).and_then(nonempty),
                message: Box::new(message),
            });
        }
        events.extend(changes);
    }
    for status in &value.statuses {
        events.push(WebhookEvent::Status {
            business: value.metadata.clone(),
            status: status.clone(),
        });
    }
    if !value.errors.is_empty() {
        events.push(WebhookEvent::Errors {
            business: value.metadata.clone(),
            errors: value.errors.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(body: &str) -> ParsedWebhook {
        parse_webhook(body.as_bytes()).expect("a webhook")
    }

    /// The one message of a sample (id changes a notice reports aside).
    fn only_message(p: &ParsedWebhook) -> &InboundMessage {
        let messages: Vec<_> = p
            .events
            .iter()
            .filter(|e| !matches!(e, WebhookEvent::IdChanged { .. }))
            .collect();
        match messages.as_slice() {
            [WebhookEvent::Message { message, .. }] => message,
            other => panic!("expected one message, got {other:?}"),
        }
    }

    macro_rules! sample {
        ($name:literal) => {
            include_str!(concat!("../../../../events/whatsapp/", $name, ".json"))
        };
    }

    #[test]
    fn every_message_type_in_events_parses_to_its_type() {
        let cases = [
            (sample!("text"), "text"),
            (sample!("image"), "image"),
            (sample!("audio_voice"), "audio"),
            (sample!("video"), "video"),
            (sample!("document"), "document"),
            (sample!("sticker"), "sticker"),
            (sample!("location"), "location"),
            (sample!("contacts"), "contacts"),
            (sample!("interactive_button_reply"), "interactive"),
            (sample!("interactive_list_reply"), "interactive"),
            (sample!("interactive_nfm_reply"), "interactive"),
            (sample!("interactive_call_permission_reply"), "interactive"),
            (sample!("button"), "button"),
            (sample!("reaction"), "reaction"),
            (sample!("reaction_removed"), "reaction"),
            (sample!("order"), "order"),
            (sample!("system_user_changed_number"), "system"),
            (sample!("unsupported"), "unsupported"),
            (sample!("unknown_type"), "hologram"),
            (sample!("reply_with_context"), "text"),
            (sample!("forwarded"), "text"),
            (sample!("referral"), "text"),
        ];
        for (body, kind) in cases {
            let p = parse(body);
            assert!(p.problems.is_empty(), "{kind}: {:?}", p.problems);
            assert_eq!(only_message(&p).content.type_name(), kind);
        }
    }

    /// The user's answer to the business's call-permission request: the
    /// answer, how long it lasts, a kind of its own for the agent, and a
    /// line for the transcript. Neither accept nor reject is a problem.
    #[test]
    fn a_call_permission_reply_keeps_its_answer_and_expiry() {
        let m = only_message(&parse(sample!("interactive_call_permission_reply"))).clone();
        assert_eq!(
            m.content,
            MessageContent::Interactive(Interactive::CallPermission {
                accepted: true,
                permanent: false,
                expires_at: Some(1_732_752_090),
                source: Some("user_action".into()),
            })
        );
        assert_eq!(m.content.stored_kind(), CALL_PERMISSION_KIND);
        assert_eq!(
            m.content.summary(),
            "[call permission: accepted until 2024-11-28T00:01:30Z]"
        );
        assert!(m.content.starts_turn());
        let rejected =
            sample!("interactive_call_permission_reply").replace("\"accept\"", "\"reject\"");
        let r = only_message(&parse(&rejected)).clone();
        assert_eq!(r.content.summary(), "[call permission: rejected]");
        assert!(call_permission_granted(&m.content.summary()));
        assert!(!call_permission_granted(&r.content.summary()));
        let odd = sample!("interactive_call_permission_reply").replace("\"accept\"", "\"maybe\"");
        assert!(
            !parse(&odd).problems.is_empty(),
            "an unknown answer is named"
        );
    }

    #[test]
    fn details_survive_parsing() {
        let voice = only_message(&parse(sample!("audio_voice"))).clone();
        assert!(matches!(voice.content, MessageContent::Audio(ref m) if m.voice));
        let removed = only_message(&parse(sample!("reaction_removed"))).clone();
        assert!(matches!(
            removed.content,
            MessageContent::Reaction { emoji: None, .. }
        ));
        let reply = only_message(&parse(sample!("reply_with_context"))).clone();
        assert!(reply.context.and_then(|c| c.id).is_some());
        let forwarded = only_message(&parse(sample!("forwarded"))).clone();
        assert!(forwarded
            .context
            .is_some_and(|c| c.forwarded || c.frequently_forwarded));
        assert!(only_message(&parse(sample!("referral"))).referral.is_some());
        let unknown = only_message(&parse(sample!("unknown_type"))).clone();
        assert!(
            matches!(unknown.content, MessageContent::Unknown { ref raw, .. } if raw.get("hologram").is_some())
        );
        let system = parse(sample!("system_user_changed_number"));
        assert!(matches!(
            &system.events[0],
            WebhookEvent::Message {
                contact_name: None,
                ..
            }
        ));
    }

    #[test]
    fn statuses_errors_and_other_fields_are_events_of_their_own() {
        for (body, status) in [
            (sample!("statuses_sent"), DeliveryState::Sent),
            (sample!("statuses_delivered"), DeliveryState::Delivered),
            (sample!("statuses_read"), DeliveryState::Read),
            (sample!("statuses_failed_131047"), DeliveryState::Failed),
        ] {
            let p = parse(body);
            assert!(
                matches!(&p.events[..], [WebhookEvent::Status { status: s, .. }] if s.status == status)
            );
        }
        let failed = parse(sample!("statuses_failed_131047"));
        assert!(
            matches!(&failed.events[0], WebhookEvent::Status { status, .. } if status.errors[0].code == 131047)
        );
        assert!(matches!(
            &parse(sample!("value_errors")).events[..],
            [WebhookEvent::Errors { .. }]
        ));
        for body in [sample!("template_status_update"), sample!("account_update")] {
            assert!(matches!(
                &parse(body).events[..],
                [WebhookEvent::Other { .. }]
            ));
        }
    }

    #[test]
    fn a_batch_flattens_every_entry_and_change() {
        let p = parse(sample!("batch_multi"));
        let users: std::collections::HashSet<_> = p
            .events
            .iter()
            .filter_map(|e| match e {
                WebhookEvent::Message { message, .. } => Some(message.from.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(users.len(), 3);
        assert!(p
            .events
            .iter()
            .any(|e| matches!(e, WebhookEvent::Status { .. })));
    }

    #[test]
    fn a_broken_message_is_a_problem_not_a_failure_of_the_rest() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
            {"field":"messages","value":{"metadata":{"phone_number_id":"1"},"messages":[{"from":"5491155551234","id":"wamid.1","timestamp":"1","type":"text"}]}},
            {"field":"messages","value":{"metadata":{"phone_number_id":"1"},"messages":[{"from":"5491155551234","id":"wamid.2","timestamp":"1","type":"text","text":{"body":"ok"}}]}}
        ]}]}"#;
        let p = parse(body);
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.events.len(), 1);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
            prop_oneof![
                Just("text"),
                Just("image"),
                Just("interactive"),
                Just("messages"),
                Just("whatsapp_business_account")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("object".to_string()),
                        Just("entry".to_string()),
                        Just("changes".to_string()),
                        Just("field".to_string()),
                        Just("value".to_string()),
                        Just("messages".to_string()),
                        Just("statuses".to_string()),
                        Just("type".to_string()),
                        Just("text".to_string()),
                        Just("from".to_string()),
                        Just("id".to_string()),
                        Just("timestamp".to_string()),
                        Just("metadata".to_string()),
                        Just("interactive".to_string()),
                        "[a-z_]{1,8}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    // ------------------------------------------------ business-scoped user ids

    fn only_event(p: &ParsedWebhook) -> &WebhookEvent {
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        match p.events.as_slice() {
            [one] => one,
            other => panic!("expected one event, got {other:?}"),
        }
    }

    #[test]
    fn a_username_only_user_is_named_by_bsuid() {
        let p = parse(sample!("text_username_only"));
        let WebhookEvent::Message {
            contact_name,
            username,
            message,
            ..
        } = only_event(&p)
        else {
            panic!("not a message")
        };
        assert_eq!(message.from, None);
        assert_eq!(message.from_user_id.as_deref(), Some("AR.1502576394655843"));
        assert_eq!(contact_name.as_deref(), Some("Lucía"));
        assert_eq!(username.as_deref(), Some("lucia.f"));
        assert_eq!(message.content.summary(), "Hola, ¿tienen turno mañana?");
    }

    #[test]
    fn a_user_with_both_ids_keeps_both_and_the_parent() {
        let p = parse(sample!("text_with_bsuid"));
        let WebhookEvent::Message {
            message, username, ..
        } = only_event(&p)
        else {
            panic!("not a message")
        };
        assert_eq!(message.from.as_deref(), Some("5491155551234"));
        assert_eq!(message.from_user_id.as_deref(), Some("AR.1502576394655843"));
        assert_eq!(
            message.from_parent_user_id.as_deref(),
            Some("AR.ENT.11815799212886844830")
        );
        assert_eq!(*username, None);
        // Kept in what ingestion records.
        let kept = serde_json::to_value(message).expect("json");
        assert_eq!(kept["from_parent_user_id"], "AR.ENT.11815799212886844830");
    }

    #[test]
    fn the_bsuid_of_contacts_fills_a_message_that_lacks_it() {
        let body =
            sample!("text_with_bsuid").replace("\"from_user_id\": \"AR.1502576394655843\",", "");
        let p = parse(&body);
        let WebhookEvent::Message { message, .. } = only_event(&p) else {
            panic!("not a message")
        };
        assert_eq!(message.from_user_id.as_deref(), Some("AR.1502576394655843"));
    }

    #[test]
    fn a_message_with_neither_id_is_a_problem() {
        let p = parse(sample!("text_without_sender"));
        assert!(p.events.is_empty());
        assert!(
            p.problems[0].contains("message.from and message.from_user_id missing"),
            "{:?}",
            p.problems
        );
    }

    #[test]
    fn statuses_to_a_bsuid_and_to_a_number_carry_the_bsuid() {
        let p = parse(sample!("statuses_read_bsuid"));
        let WebhookEvent::Status { status, .. } = only_event(&p) else {
            panic!("not a status")
        };
        assert_eq!(status.recipient_id, "AR.1502576394655843");
        assert_eq!(
            status.recipient_user_id.as_deref(),
            Some("AR.1502576394655843")
        );
        let p = parse(sample!("statuses_failed_131047_bsuid"));
        let WebhookEvent::Status { status, .. } = only_event(&p) else {
            panic!("not a status")
        };
        assert_eq!(status.recipient_id, "5491155551234");
        assert_eq!(
            status.recipient_user_id.as_deref(),
            Some("AR.1502576394655843")
        );
        assert_eq!(status.errors[0].code, 131047);
    }

    #[test]
    fn a_changed_bsuid_is_an_id_change_in_either_form() {
        let changed = WebhookEvent::IdChanged {
            previous: "AR.1502576394655843".into(),
            current: "AR.2609930124488107".into(),
        };
        let p = parse(sample!("user_id_update"));
        assert_eq!(only_event(&p), &changed);
        let p = parse(sample!("system_user_changed_user_id"));
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        // The notice itself is recorded in the conversation, as before.
        assert!(matches!(&p.events[0], WebhookEvent::Message { message, .. }
            if message.content.type_name() == "system"));
        assert_eq!(p.events[1], changed);
    }

    #[test]
    fn a_changed_number_is_an_id_change() {
        let p = parse(sample!("system_user_changed_number"));
        assert_eq!(
            p.events[1],
            WebhookEvent::IdChanged {
                previous: "5491155551234".into(),
                current: "5491166667777".into(),
            }
        );
    }

    #[test]
    fn a_marketing_preference_names_its_user() {
        let p = parse(sample!("user_preferences"));
        let WebhookEvent::Preference {
            business,
            preference,
        } = only_event(&p)
        else {
            panic!("not a preference")
        };
        assert_eq!(business.phone_number_id, "106540352242922");
        assert_eq!(preference.user_id.as_deref(), Some("AR.1502576394655843"));
        assert_eq!(preference.marketing_stopped(), Some(true));
        let resumed = sample!("user_preferences").replace("\"stop\"", "\"resume\"");
        let p = parse(&resumed);
        let WebhookEvent::Preference { preference, .. } = only_event(&p) else {
            panic!("not a preference")
        };
        assert_eq!(preference.marketing_stopped(), Some(false));
    }

    #[test]
    fn a_malformed_user_id_update_is_a_problem_not_a_panic() {
        let body = sample!("user_id_update").replace("\"previous\"", "\"before\"");
        let p = parse(&body);
        assert!(p.events.is_empty());
        assert!(p.problems[0].contains("user_id_update"), "{:?}", p.problems);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_webhook(&bytes);
        }

        #[test]
        fn random_json_never_panics(v in json_value()) {
            let bytes = serde_json::to_vec(&v).expect("json");
            let _ = parse_webhook(&bytes);
        }

        #[test]
        fn random_json_inside_a_real_envelope_never_panics(message in json_value(), status in json_value()) {
            let body = serde_json::json!({
                "object": "whatsapp_business_account",
                "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                    "metadata": {"phone_number_id": "1"},
                    "messages": [message],
                    "statuses": [status],
                }}]}],
            });
            let _ = parse_webhook(&serde_json::to_vec(&body).expect("json"));
        }
    }
}
