//! Item mapping for [`super::DynamoStore`]'s single table.
//!
//! | item         | pk              | sk                           |
//! |--------------|-----------------|------------------------------|
//! | conversation | `CONV#{wa_id}`  | `META`                       |
//! | message      | `CONV#{wa_id}`  | `MSG#{at_ms:013}#{wamid}`    |
//! | turn         | `CONV#{wa_id}`  | `TURN#{turn_id}`             |
//! | wamid        | `WAMID#{wamid}` | `WAMID`                      |
//!
//! Conversations are also in GSI `gsi1`: `gsi1pk = CONVS`,
//! `gsi1sk = {last_message_at_ms:013}#{wa_id}`, so that they list by their
//! latest message. `expires_at` (epoch seconds) is the table's TTL attribute.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::domain::{
    Conversation, ConversationState, Delivery, Direction, StoredMessage, TurnRecord, TurnState,
    WaId,
};
use crate::error::{Error, Result};

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) const PK: &str = "pk";
pub(super) const SK: &str = "sk";
pub(super) const GSI1: &str = "gsi1";
pub(super) const GSI1PK: &str = "gsi1pk";
pub(super) const GSI1SK: &str = "gsi1sk";
pub(super) const EXPIRES_AT: &str = "expires_at";

pub(super) const META_SK: &str = "META";
pub(super) const WAMID_SK: &str = "WAMID";
pub(super) const MSG_PREFIX: &str = "MSG#";
pub(super) const CONVS: &str = "CONVS";

/// The attributes a message read returns (everything but the raw payload,
/// which only later stages read).
pub(super) const MESSAGE_PROJECTION: &[&str] = &[
    "wamid",
    "direction",
    "kind",
    "text",
    "at_ms",
    "delivery",
    "delivery_at_ms",
    "error_code",
    "answered",
    "starts_turn",
];

pub(super) fn conv_pk(wa_id: &WaId) -> String {
    format!("CONV#{wa_id}")
}

/// Zero-padded so that keys sort by time (13 digits of ms last until 2286).
pub(super) fn msg_sk(at_ms: i64, wamid: &str) -> String {
    format!("{MSG_PREFIX}{:013}#{wamid}", at_ms.max(0))
}

pub(super) fn turn_sk(turn_id: &str) -> String {
    format!("TURN#{turn_id}")
}

pub(super) fn wamid_pk(wamid: &str) -> String {
    format!("WAMID#{wamid}")
}

pub(super) fn gsi1sk(last_message_at_ms: i64, wa_id: &WaId) -> String {
    format!("{:013}#{wa_id}", last_message_at_ms.max(0))
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

pub(super) fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

pub(super) fn meta_key(wa_id: &WaId) -> Item {
    key(conv_pk(wa_id), META_SK)
}

pub(super) fn wamid_key(wamid: &str) -> Item {
    key(wamid_pk(wamid), WAMID_SK)
}

pub(super) fn turn_key(wa_id: &WaId, turn_id: &str) -> Item {
    key(conv_pk(wa_id), turn_sk(turn_id))
}

fn bad_item(what: &'static str, detail: String) -> Error {
    Error::dependency("dynamodb", format!("unexpected {what} item"), false, detail)
}

/// Typed reads of an item's attributes: a missing or mistyped attribute is
/// an error that names it, never a panic.
pub(super) struct Reader<'a> {
    item: &'a Item,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(super) fn new(item: &'a Item, what: &'static str) -> Self {
        Reader { item, what }
    }

    fn present(&self, name: &str) -> Option<&'a AttributeValue> {
        self.item.get(name).filter(|v| !v.is_null())
    }

    pub(super) fn str(&self, name: &str) -> Result<&'a str> {
        self.opt_str(name)?
            .ok_or_else(|| bad_item(self.what, format!("attribute {name} is missing")))
    }

    pub(super) fn opt_str(&self, name: &str) -> Result<Option<&'a str>> {
        match self.present(name) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.as_str())),
            Some(_) => Err(bad_item(
                self.what,
                format!("attribute {name} is not a string"),
            )),
        }
    }

    pub(super) fn i64(&self, name: &str) -> Result<i64> {
        self.opt_i64(name)?
            .ok_or_else(|| bad_item(self.what, format!("attribute {name} is missing")))
    }

    pub(super) fn opt_i64(&self, name: &str) -> Result<Option<i64>> {
        match self.present(name) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| bad_item(self.what, format!("attribute {name} is not an integer"))),
            Some(_) => Err(bad_item(
                self.what,
                format!("attribute {name} is not a number"),
            )),
        }
    }

    /// A boolean; absent means `default`.
    pub(super) fn bool_or(&self, name: &str, default: bool) -> Result<bool> {
        match self.present(name) {
            None => Ok(default),
            Some(AttributeValue::Bool(v)) => Ok(*v),
            Some(_) => Err(bad_item(
                self.what,
                format!("attribute {name} is not a boolean"),
            )),
        }
    }
}

pub(super) fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

fn parse_direction(s: &str) -> Option<Direction> {
    match s {
        "inbound" => Some(Direction::Inbound),
        "outbound" => Some(Direction::Outbound),
        _ => None,
    }
}

pub(super) fn turn_state_str(t: TurnState) -> &'static str {
    match t {
        TurnState::Claimed => "claimed",
        TurnState::Sent => "sent",
    }
}

fn parse_turn_state(s: &str) -> Option<TurnState> {
    match s {
        "claimed" => Some(TurnState::Claimed),
        "sent" => Some(TurnState::Sent),
        _ => None,
    }
}

pub(super) fn conversation_from(item: &Item) -> Result<Conversation> {
    let r = Reader::new(item, "conversation");
    let wa_id = WaId::parse(r.str("wa_id")?).map_err(|e| bad_item("conversation", e))?;
    let state = r.str("state")?;
    Ok(Conversation {
        wa_id,
        phone_number_id: r.str("phone_number_id")?.to_string(),
        contact_name: r.opt_str("contact_name")?.map(str::to_string),
        state: ConversationState::parse(state)
            .ok_or_else(|| bad_item("conversation", format!("unknown state {state:?}")))?,
        last_user_at_ms: r.i64("last_user_at_ms")?,
        last_message_at_ms: r.i64("last_message_at_ms")?,
        window_closed: r.bool_or("window_closed", false)?,
    })
}

pub(super) fn message_from(item: &Item) -> Result<StoredMessage> {
    let r = Reader::new(item, "message");
    let direction = r.str("direction")?;
    let delivery = match r.opt_str("delivery")? {
        None => None,
        Some(d) => Some(
            Delivery::parse(d)
                .ok_or_else(|| bad_item("message", format!("unknown delivery {d:?}")))?,
        ),
    };
    Ok(StoredMessage {
        wamid: r.str("wamid")?.to_string(),
        direction: parse_direction(direction)
            .ok_or_else(|| bad_item("message", format!("unknown direction {direction:?}")))?,
        kind: r.str("kind")?.to_string(),
        text: r.opt_str("text")?.unwrap_or_default().to_string(),
        at_ms: r.i64("at_ms")?,
        delivery,
        delivery_at_ms: r.opt_i64("delivery_at_ms")?,
        error_code: r.opt_i64("error_code")?,
        answered: r.bool_or("answered", false)?,
        starts_turn: r.bool_or("starts_turn", false)?,
    })
}

/// The turn as claimed, with `sent_parts` and `state` from their own
/// attributes (the ones conditional writes move), not from the JSON copy.
pub(super) fn turn_from(item: &Item) -> Result<TurnRecord> {
    let r = Reader::new(item, "turn");
    let mut turn: TurnRecord = serde_json::from_str(r.str("record")?)
        .map_err(|e| bad_item("turn", format!("record is not a turn: {e}")))?;
    let sent_parts = r.i64("sent_parts")?;
    turn.sent_parts = usize::try_from(sent_parts)
        .map_err(|_| bad_item("turn", format!("sent_parts is {sent_parts}")))?;
    let state = r.str("state")?;
    turn.state = parse_turn_state(state)
        .ok_or_else(|| bad_item("turn", format!("unknown state {state:?}")))?;
    Ok(turn)
}

/// An opaque page cursor: URL-safe base64 of the JSON of the last returned
/// item's key attributes (all strings in this table).
pub(super) fn encode_cursor(item: &Item, names: &[&str]) -> Result<String> {
    let r = Reader::new(item, "page");
    let mut key = BTreeMap::new();
    for name in names {
        key.insert(*name, r.str(name)?);
    }
    let json = serde_json::to_vec(&key)
        .map_err(|e| Error::dependency("dynamodb", "encoding a cursor", false, e))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// The `ExclusiveStartKey` a cursor stands for. It must name exactly
/// `names`; `check` validates the values (e.g. the partition).
pub(super) fn decode_cursor(
    cursor: &str,
    names: &[&str],
    check: impl Fn(&BTreeMap<String, String>) -> bool,
) -> Result<Item> {
    let invalid = || Error::Invalid("cursor is not one this API returned".into());
    let json = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    let key: BTreeMap<String, String> = serde_json::from_slice(&json).map_err(|_| invalid())?;
    if key.len() != names.len() || !names.iter().all(|n| key.contains_key(*n)) || !check(&key) {
        return Err(invalid());
    }
    Ok(key.into_iter().map(|(k, v)| (k, s(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wa() -> WaId {
        WaId::parse("5491155551234").expect("valid")
    }

    #[test]
    fn message_keys_sort_by_time() {
        assert_eq!(msg_sk(42, "w"), "MSG#0000000000042#w");
        assert!(msg_sk(999, "z") < msg_sk(1_000, "a"));
        assert_eq!(gsi1sk(7, &wa()), "0000000000007#5491155551234");
    }

    #[test]
    fn cursors_round_trip_and_refuse_tampering() {
        let item: Item = key(conv_pk(&wa()), msg_sk(1, "w"));
        let c = encode_cursor(&item, &[PK, SK]).expect("encodes");
        let back = decode_cursor(&c, &[PK, SK], |k| k[PK] == conv_pk(&wa())).expect("decodes");
        assert_eq!(back, item);
        assert!(decode_cursor(&c, &[PK, SK], |_| false).is_err());
        assert!(decode_cursor(&c, &[PK, SK, GSI1PK], |_| true).is_err());
        assert!(decode_cursor("not a cursor!", &[PK, SK], |_| true).is_err());
    }

    #[test]
    fn mistyped_attributes_are_errors_not_panics() {
        let mut item = meta_key(&wa());
        item.insert("wa_id".into(), n(5));
        assert!(conversation_from(&item).is_err());
        assert!(message_from(&item).is_err());
        assert!(turn_from(&item).is_err());
    }
}
