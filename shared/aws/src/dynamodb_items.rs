//! Item mapping for [`super::DynamoStore`]'s single table.
//!
//! | item         | pk              | sk                           |
//! |--------------|-----------------|------------------------------|
//! | conversation | `CONV#{wa_id}`  | `META`                       |
//! | message      | `CONV#{wa_id}`  | `MSG#{at_ms:013}#{wamid}`    |
//! | turn         | `CONV#{wa_id}`  | `TURN#{turn_id}`             |
//! | wamid        | `WAMID#{wamid}` | `WAMID`                      |
//! | lead         | `CONV#{wa_id}`  | `LEAD#{id}`                  |
//! | call request | `CONV#{wa_id}`  | `CALL#{id}`                  |
//! | memory       | `CONV#{wa_id}`  | `MEMORY`                     |
//! | turn usage   | `CONV#{wa_id}`  | `USAGE#{turn_id}`            |
//! | appointment  | `SLOT#{start_ms}` | `SLOT`                     |
//! | identity     | `ID#{id}`       | `LINK`, `PHONE` (see `dynamodb::identity`) |
//!
//! Conversations are also in GSI `gsi1`: `gsi1pk = CONVS`,
//! `gsi1sk = {last_message_at_ms:013}#{wa_id}`, so that they list by their
//! latest message. `expires_at` (epoch seconds) is the table's TTL attribute.
//!
//! The agent's records:
//! - leads, call requests and usage are keyed by their idempotency key
//!   alone (not by time: a retried turn saves the same id at a later time),
//!   in the conversation's partition, so that one `Query` on a sort-key
//!   prefix lists a user's; they are put with `attribute_not_exists(pk)`;
//! - an appointment is the item of its slot: the key is the slot start, so
//!   one conditional put is the guard against double booking. It is also in
//!   `gsi1` with `gsi1pk = APPTS`, `gsi1sk = {start_ms:013}#{id}`: one fixed
//!   partition, so that any range (across days, weeks) is one `Query` in
//!   start order. Bookings are a few a minute at most, far below what one
//!   partition takes (1,000 writes a second); day partitions would spread a
//!   load we do not have and cost a query per day of the range. The index is
//!   eventually consistent: a booking may show in `appointments_between` a
//!   moment late, which is fine for showing free slots, since the booking
//!   itself is guarded by the slot item, not by the listing.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use domain::error::{Error, Result};
use domain::{
    Appointment, CallRequest, CallRequestState, Conversation, ConversationState, Delivery,
    Direction, Lead, Memory, StoredMessage, TurnRecord, TurnState, TurnUsage, Usage, UserId,
};

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
pub(super) const APPTS: &str = "APPTS";
pub(super) const LEAD_PREFIX: &str = "LEAD#";
pub(super) const CALL_PREFIX: &str = "CALL#";
pub(super) const USAGE_PREFIX: &str = "USAGE#";
pub(super) const MEMORY_SK: &str = "MEMORY";
pub(super) const SLOT_SK: &str = "SLOT";

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

pub(super) fn conv_pk(user_id: &UserId) -> String {
    format!("CONV#{user_id}")
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

pub(super) fn gsi1sk(last_message_at_ms: i64, user_id: &UserId) -> String {
    format!("{:013}#{user_id}", last_message_at_ms.max(0))
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

pub(super) fn meta_key(user_id: &UserId) -> Item {
    key(conv_pk(user_id), META_SK)
}

pub(super) fn wamid_key(wamid: &str) -> Item {
    key(wamid_pk(wamid), WAMID_SK)
}

pub(super) fn turn_key(user_id: &UserId, turn_id: &str) -> Item {
    key(conv_pk(user_id), turn_sk(turn_id))
}

pub(super) fn memory_key(user_id: &UserId) -> Item {
    key(conv_pk(user_id), MEMORY_SK)
}

pub(super) fn slot_key(start_ms: i64) -> Item {
    key(format!("SLOT#{start_ms}"), SLOT_SK)
}

/// Sort keys of the appointments index: by start, then id.
pub(super) fn appt_gsi1sk(start_ms: i64, id: &str) -> String {
    format!("{:013}#{id}", start_ms.max(0))
}

/// The inclusive `gsi1sk` bounds of the appointments starting in
/// `[from_ms, to_ms)`; `None` when the range is empty. `$` sorts right
/// after `#`, so the upper bound takes every id of the last millisecond.
pub(super) fn appt_gsi1sk_bounds(from_ms: i64, to_ms: i64) -> Option<(String, String)> {
    let (from, last) = (from_ms.max(0), to_ms.saturating_sub(1));
    (from <= last).then(|| (format!("{from:013}"), format!("{last:013}$")))
}

pub(super) fn bad_item(what: &'static str, detail: String) -> Error {
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

impl Reader<'_> {
    /// A count (tokens, calls): a non-negative number that fits `T`.
    pub(super) fn count<T: TryFrom<i64>>(&self, name: &str) -> Result<T> {
        let v = self.i64(name)?;
        T::try_from(v).map_err(|_| bad_item(self.what, format!("attribute {name} is {v}")))
    }
}

pub(super) fn conversation_from(item: &Item) -> Result<Conversation> {
    let r = Reader::new(item, "conversation");
    let user_id = UserId::parse(r.str("wa_id")?).map_err(|e| bad_item("conversation", e))?;
    let state = r.str("state")?;
    Ok(Conversation {
        user_id,
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
        direction: Direction::parse(direction)
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
    turn.state = TurnState::parse(state)
        .ok_or_else(|| bad_item("turn", format!("unknown state {state:?}")))?;
    Ok(turn)
}

fn user_id_of(r: &Reader<'_>, what: &'static str) -> Result<UserId> {
    UserId::parse(r.str("wa_id")?).map_err(|e| bad_item(what, e))
}

/// A count as a number attribute, saturating (tokens never get near).
fn count(v: u64) -> AttributeValue {
    n(i64::try_from(v).unwrap_or(i64::MAX))
}

fn put_opt_s(item: &mut Item, name: &str, v: Option<&str>) {
    if let Some(v) = v {
        item.insert(name.to_string(), s(v));
    }
}

pub(super) fn lead_item(lead: &Lead) -> Item {
    let mut item = key(conv_pk(&lead.user_id), format!("{LEAD_PREFIX}{}", lead.id));
    item.extend([
        ("id".to_string(), s(&lead.id)),
        ("wa_id".to_string(), s(lead.user_id.as_str())),
        ("name".to_string(), s(&lead.name)),
        ("interest".to_string(), s(&lead.interest)),
        ("created_at_ms".to_string(), n(lead.created_at_ms)),
    ]);
    put_opt_s(&mut item, "notes", lead.notes.as_deref());
    item
}

pub(super) fn lead_from(item: &Item) -> Result<Lead> {
    let r = Reader::new(item, "lead");
    Ok(Lead {
        id: r.str("id")?.to_string(),
        user_id: user_id_of(&r, "lead")?,
        name: r.str("name")?.to_string(),
        interest: r.str("interest")?.to_string(),
        notes: r.opt_str("notes")?.map(str::to_string),
        created_at_ms: r.i64("created_at_ms")?,
    })
}

pub(super) fn appointment_item(a: &Appointment) -> Item {
    let mut item = slot_key(a.start_ms);
    item.extend([
        ("id".to_string(), s(&a.id)),
        ("wa_id".to_string(), s(a.user_id.as_str())),
        ("start_ms".to_string(), n(a.start_ms)),
        ("end_ms".to_string(), n(a.end_ms)),
        ("topic".to_string(), s(&a.topic)),
        ("created_at_ms".to_string(), n(a.created_at_ms)),
        (GSI1PK.to_string(), s(APPTS)),
        (GSI1SK.to_string(), s(appt_gsi1sk(a.start_ms, &a.id))),
    ]);
    item
}

pub(super) fn appointment_from(item: &Item) -> Result<Appointment> {
    let r = Reader::new(item, "appointment");
    Ok(Appointment {
        id: r.str("id")?.to_string(),
        user_id: user_id_of(&r, "appointment")?,
        start_ms: r.i64("start_ms")?,
        end_ms: r.i64("end_ms")?,
        topic: r.str("topic")?.to_string(),
        created_at_ms: r.i64("created_at_ms")?,
    })
}

pub(super) fn call_request_item(c: &CallRequest) -> Item {
    let mut item = key(conv_pk(&c.user_id), format!("{CALL_PREFIX}{}", c.id));
    item.extend([
        ("id".to_string(), s(&c.id)),
        ("wa_id".to_string(), s(c.user_id.as_str())),
        ("phone_number_id".to_string(), s(&c.phone_number_id)),
        ("reason".to_string(), s(&c.reason)),
        ("language".to_string(), s(&c.language)),
        ("state".to_string(), s(c.state.as_str())),
        ("created_at_ms".to_string(), n(c.created_at_ms)),
    ]);
    if let Some(when) = c.when_ms {
        item.insert("when_ms".to_string(), n(when));
    }
    put_opt_s(&mut item, "phone", c.phone.as_ref().map(UserId::as_str));
    item
}

pub(super) fn call_request_from(item: &Item) -> Result<CallRequest> {
    let r = Reader::new(item, "call request");
    let state = r.str("state")?;
    Ok(CallRequest {
        id: r.str("id")?.to_string(),
        user_id: user_id_of(&r, "call request")?,
        phone_number_id: r.str("phone_number_id")?.to_string(),
        reason: r.str("reason")?.to_string(),
        when_ms: r.opt_i64("when_ms")?,
        language: r.str("language")?.to_string(),
        state: CallRequestState::parse(state)
            .ok_or_else(|| bad_item("call request", format!("unknown state {state:?}")))?,
        created_at_ms: r.i64("created_at_ms")?,
        phone: r
            .opt_str("phone")?
            .map(|p| UserId::phone(p).map_err(|e| bad_item("call request", e)))
            .transpose()?,
        // A campaign's call is not a request kept in a conversation.
        campaign: None,
    })
}

pub(super) fn memory_item(user_id: &UserId, m: &Memory) -> Item {
    let mut item = memory_key(user_id);
    item.extend([
        ("summary".to_string(), s(&m.summary)),
        ("summarized_until_ms".to_string(), n(m.summarized_until_ms)),
    ]);
    put_opt_s(&mut item, "language", m.language.as_deref());
    item
}

pub(super) fn memory_from(item: &Item) -> Result<Memory> {
    let r = Reader::new(item, "memory");
    Ok(Memory {
        summary: r.opt_str("summary")?.unwrap_or_default().to_string(),
        summarized_until_ms: r.i64("summarized_until_ms")?,
        language: r.opt_str("language")?.map(str::to_string),
    })
}

pub(super) fn usage_item(u: &TurnUsage) -> Item {
    let mut item = key(conv_pk(&u.user_id), format!("{USAGE_PREFIX}{}", u.turn_id));
    item.extend([
        ("turn_id".to_string(), s(&u.turn_id)),
        ("wa_id".to_string(), s(u.user_id.as_str())),
        ("model".to_string(), s(&u.model)),
        ("input_tokens".to_string(), count(u.usage.input_tokens)),
        ("output_tokens".to_string(), count(u.usage.output_tokens)),
        ("model_calls".to_string(), n(i64::from(u.model_calls))),
        ("tool_calls".to_string(), n(i64::from(u.tool_calls))),
        ("at_ms".to_string(), n(u.at_ms)),
    ]);
    item
}

pub(super) fn usage_from(item: &Item) -> Result<TurnUsage> {
    let r = Reader::new(item, "usage");
    Ok(TurnUsage {
        turn_id: r.str("turn_id")?.to_string(),
        user_id: user_id_of(&r, "usage")?,
        model: r.str("model")?.to_string(),
        usage: Usage {
            input_tokens: r.count("input_tokens")?,
            output_tokens: r.count("output_tokens")?,
        },
        model_calls: r.count("model_calls")?,
        tool_calls: r.count("tool_calls")?,
        at_ms: r.i64("at_ms")?,
    })
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

    fn wa() -> UserId {
        UserId::parse("5491155551234").expect("valid")
    }

    #[test]
    fn message_keys_sort_by_time() {
        assert_eq!(msg_sk(42, "w"), "MSG#0000000000042#w");
        assert!(msg_sk(999, "z") < msg_sk(1_000, "a"));
        assert_eq!(gsi1sk(7, &wa()), "0000000000007#5491155551234");
    }

    #[test]
    fn appointment_bounds_take_the_range_and_no_more() {
        let (lo, hi) = appt_gsi1sk_bounds(1_000, 2_000).expect("not empty");
        let inside = |start: i64| {
            let k = appt_gsi1sk(start, "wamid.x:appointment");
            lo <= k && k <= hi
        };
        assert!(!inside(999));
        assert!(inside(1_000));
        assert!(inside(1_999));
        assert!(!inside(2_000));
        assert_eq!(appt_gsi1sk_bounds(5, 5), None);
        assert_eq!(appt_gsi1sk_bounds(-10, 0), None);
    }

    #[test]
    fn records_round_trip_through_items() {
        let lead = Lead {
            id: "t:lead".into(),
            user_id: wa(),
            name: "Ana".into(),
            interest: "x".into(),
            notes: None,
            created_at_ms: 5,
        };
        assert_eq!(lead_from(&lead_item(&lead)).expect("lead"), lead);
        let memory = Memory::default();
        assert_eq!(
            memory_from(&memory_item(&wa(), &memory)).expect("memory"),
            memory
        );
        let mut item = usage_item(&TurnUsage {
            turn_id: "t".into(),
            user_id: wa(),
            model: "m".into(),
            usage: Usage::default(),
            model_calls: 1,
            tool_calls: 0,
            at_ms: 1,
        });
        item.insert("tool_calls".into(), n(-1));
        assert!(usage_from(&item).is_err(), "a negative count is refused");
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
