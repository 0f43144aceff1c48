//! Conversations, the messages in them, turns and the 24-hour window.

use serde::{Deserialize, Serialize};

use super::whatsapp::outbound::OutboundMessage;

/// Meta's retry horizon: dedup records live this long.
pub const DEDUP_TTL_SECS: i64 = 7 * 24 * 3600;
/// The customer-service window opened by each user message.
pub const WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Who a conversation is with, as WhatsApp names users: the phone number
/// (Meta's `wa_id`: E.164 digits, no `+`) or, for a user who hides it behind
/// a username, the business-scoped user id (BSUID: `AR.1502576394655843`, a
/// parent BSUID `US.ENT.11815799212886844830`). The two forms never collide
/// (a BSUID has a dot, a number has none), so either is a store key as is;
/// which one a user is known by is decided once, by the identity links (see
/// `ports::IdentityStore`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

/// A BSUID's id part: Meta documents up to 128 alphanumeric characters.
const BSUID_MAX_ID: usize = 128;

impl UserId {
    /// A phone number or a BSUID.
    pub fn parse(s: &str) -> Result<UserId, String> {
        UserId::phone(s).or_else(|_| UserId::bsuid(s))
    }

    /// A phone number only. E.164 without the `+`: 6 to 15 digits, no
    /// leading zero.
    pub fn phone(s: &str) -> Result<UserId, String> {
        let digits = s.trim().trim_start_matches('+');
        let ok = (6..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(UserId(digits.to_string()))
        } else {
            Err(format!("not a WhatsApp id: {:?}", mask(s)))
        }
    }

    /// A business-scoped user id only: a two-letter country code, a dot,
    /// `ENT.` for a parent BSUID, then 1 to 128 letters and digits.
    pub fn bsuid(s: &str) -> Result<UserId, String> {
        let s = s.trim();
        let ok = match s.split_once('.') {
            Some((country, rest)) => {
                let id = rest.strip_prefix("ENT.").unwrap_or(rest);
                country.len() == 2
                    && country.bytes().all(|b| b.is_ascii_uppercase())
                    && (1..=BSUID_MAX_ID).contains(&id.len())
                    && id.bytes().all(|b| b.is_ascii_alphanumeric())
            }
            None => false,
        };
        if ok {
            Ok(UserId(s.to_string()))
        } else {
            Err(format!("not a business-scoped user id: {:?}", mask(s)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a phone number (and not a BSUID).
    pub fn is_phone(&self) -> bool {
        !self.0.contains('.')
    }

    /// The number in E.164 (`+5491155551234`), if this is a phone number.
    pub fn e164(&self) -> Option<String> {
        self.is_phone().then(|| format!("+{}", self.0))
    }
}

impl TryFrom<String> for UserId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        UserId::parse(&s)
    }
}

impl From<UserId> for String {
    fn from(w: UserId) -> String {
        w.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Masks a phone number, BSUID or other id for logs: keeps the last 4
/// characters (a BSUID's country prefix is masked with the rest).
pub fn mask(s: &str) -> String {
    let n = s.chars().count();
    if n <= 4 {
        return "*".repeat(n);
    }
    let tail: String = s.chars().skip(n - 4).collect();
    format!("{}{}", "*".repeat(n - 4), tail)
}

/// Who is talking for the business in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConversationState {
    #[default]
    Bot,
    PendingHuman,
    Human,
    Closed,
}

impl ConversationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationState::Bot => "bot",
            ConversationState::PendingHuman => "pending_human",
            ConversationState::Human => "human",
            ConversationState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "bot" => ConversationState::Bot,
            "pending_human" => ConversationState::PendingHuman,
            "human" => ConversationState::Human,
            "closed" => ConversationState::Closed,
            _ => return None,
        })
    }

    /// Only the bot answers automatically.
    pub fn bot_answers(self) -> bool {
        self == ConversationState::Bot
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "inbound" => Direction::Inbound,
            "outbound" => Direction::Outbound,
            _ => return None,
        })
    }
}

/// Delivery state of a message we sent, ordered so that it only moves forward:
/// `read` may arrive before `delivered`, and then `delivered` is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Accepted by the Graph API (we have its wamid).
    Accepted,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Accepted => "accepted",
            Delivery::Sent => "sent",
            Delivery::Delivered => "delivered",
            Delivery::Read => "read",
            Delivery::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "accepted" => Delivery::Accepted,
            "sent" => Delivery::Sent,
            "delivered" => Delivery::Delivered,
            "read" => Delivery::Read,
            "failed" => Delivery::Failed,
            _ => return None,
        })
    }

    /// The rank stores compare in their conditional writes.
    pub fn rank(self) -> i64 {
        self as i64
    }
}

/// An inbound user message as ingestion records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewInbound {
    pub wamid: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub phone_number_id: String,
    pub contact_name: Option<String>,
    /// Meta's `type`.
    pub kind: String,
    /// Human-readable text (the body, or a summary of media).
    pub text: String,
    /// The whole message as parsed, for later stages (media, replies).
    pub payload: serde_json::Value,
    /// Meta's timestamp, in ms.
    pub sent_at_ms: i64,
    /// When we received it, in ms.
    pub received_at_ms: i64,
    /// Whether the agent should answer it (reactions, system notices: no).
    pub starts_turn: bool,
}

/// A message in a conversation, either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub wamid: String,
    pub direction: Direction,
    pub kind: String,
    pub text: String,
    /// When it was received (inbound) or accepted by the Graph API (outbound), ms.
    pub at_ms: i64,
    /// Outbound only.
    pub delivery: Option<Delivery>,
    pub delivery_at_ms: Option<i64>,
    pub error_code: Option<i64>,
    /// Inbound only: answered by a turn.
    pub answered: bool,
    /// Inbound only: whether it asks for an answer.
    pub starts_turn: bool,
}

/// What ingestion's atomic write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    Recorded,
    /// Seen before. `enqueued` says whether its enqueue was confirmed.
    Duplicate {
        enqueued: bool,
    },
}

/// A status report for a message we sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub wamid: String,
    pub delivery: Delivery,
    pub at_ms: i64,
    pub error_code: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusOutcome {
    Applied,
    /// Older than what we know (e.g. `delivered` after `read`).
    Stale,
    /// Not a message we know (sent by another system, or expired).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub phone_number_id: String,
    pub contact_name: Option<String>,
    pub state: ConversationState,
    /// Last message from the user (opens the 24-hour window), ms.
    pub last_user_at_ms: i64,
    /// Last message either way, ms.
    pub last_message_at_ms: i64,
    /// A send failed with 131047 after the last user message.
    pub window_closed: bool,
}

impl Conversation {
    /// Free text may be sent: a user message in the last 24 hours, and no
    /// 131047 since.
    pub fn window_open(&self, now_ms: i64) -> bool {
        !self.window_closed && now_ms - self.last_user_at_ms < WINDOW_MS
    }
}

/// A page of results and the cursor to the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// The job text-ai receives for each user message (the queue body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnJob {
    pub phone_number_id: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub wamid: String,
    pub received_at_ms: i64,
}

impl TurnJob {
    /// FIFO group: one business number and one user, handled in order.
    pub fn group_id(&self) -> String {
        format!("{}:{}", self.phone_number_id, self.user_id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnState {
    /// The answer is decided and recorded; sending may be under way.
    Claimed,
    /// Every part was accepted by the Graph API.
    Sent,
}

impl TurnState {
    pub fn as_str(self) -> &'static str {
        match self {
            TurnState::Claimed => "claimed",
            TurnState::Sent => "sent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "claimed" => TurnState::Claimed,
            "sent" => TurnState::Sent,
            _ => return None,
        })
    }
}

/// One answer to one or more user messages. Recorded before sending, so a
/// retry after a crash sends the same answer, and only the parts not yet sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// The wamid of the first user message the turn answers.
    pub turn_id: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub phone_number_id: String,
    pub inbound: Vec<String>,
    pub replies: Vec<OutboundMessage>,
    /// How many of `replies` the Graph API has accepted.
    pub sent_parts: usize,
    pub state: TurnState,
    pub created_at_ms: i64,
}

/// An outbound message the Graph API accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentRecord {
    pub wamid: String,
    pub kind: String,
    pub text: String,
    pub at_ms: i64,
}

impl SentRecord {
    /// The record of `msg`, sent as `wamid` at `at_ms`.
    pub fn of(wamid: String, msg: &OutboundMessage, at_ms: i64) -> SentRecord {
        SentRecord {
            wamid,
            kind: msg.kind().to_string(),
            text: msg.summary(),
            at_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    Claimed,
    /// A turn with this id exists (a retry): carry it on.
    Existing(TurnRecord),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn phone_ids_are_digits() {
        assert_eq!(
            UserId::parse("5491155551234").map(|w| w.to_string()),
            Ok("5491155551234".into())
        );
        assert_eq!(
            UserId::parse("+15551234567").map(|w| w.to_string()),
            Ok("15551234567".into())
        );
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("12345").is_err());
        assert!(UserId::parse("0123456789").is_err());
        assert!(UserId::parse("12345678901234567").is_err());
        assert!(UserId::parse("54911abc").is_err());
        assert!(UserId::parse("5491155551234").is_ok_and(|u| u.is_phone()));
    }

    #[test]
    fn bsuids_are_country_dot_alphanumerics() {
        for ok in [
            "AR.1502576394655843",
            "US.13491208655302741918",
            "US.ENT.11815799212886844830",
            "BR.abcDEF123",
        ] {
            let id = UserId::parse(ok).expect(ok);
            assert_eq!(id.as_str(), ok);
            assert!(!id.is_phone());
            assert_eq!(id.e164(), None);
        }
        let long = format!("AR.{}", "9".repeat(128));
        assert!(UserId::bsuid(&long).is_ok());
        for bad in [
            "ar.1502576394655843",
            "ARG.150257",
            "AR.",
            "AR.15025-76",
            "AR.1502.576",
            ".1502576394655843",
            "AR1502576394655843",
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad}");
        }
        assert!(UserId::bsuid(&format!("AR.{}", "9".repeat(129))).is_err());
        assert!(UserId::phone("AR.1502576394655843").is_err());
        assert_eq!(
            UserId::parse("5491155551234").ok().and_then(|u| u.e164()),
            Some("+5491155551234".into())
        );
    }

    #[test]
    fn masking_keeps_the_last_four() {
        assert_eq!(mask("5491155551234"), "*********1234");
        assert_eq!(mask("AR.1502576394655843"), "***************5843");
        assert_eq!(mask("12"), "**");
    }

    #[test]
    fn delivery_only_moves_forward() {
        assert!(Delivery::Read > Delivery::Delivered);
        assert!(Delivery::Delivered > Delivery::Sent);
        assert!(Delivery::Failed > Delivery::Read);
        for d in [
            Delivery::Accepted,
            Delivery::Sent,
            Delivery::Delivered,
            Delivery::Read,
            Delivery::Failed,
        ] {
            assert_eq!(Delivery::parse(d.as_str()), Some(d));
        }
    }

    /// The stores write `as_str`; it must stay the serde name, and parse
    /// back.
    fn assert_codec<T>(all: &[T], as_str: fn(T) -> &'static str, parse: fn(&str) -> Option<T>)
    where
        T: Copy + PartialEq + std::fmt::Debug + Serialize,
    {
        for &v in all {
            assert_eq!(parse(as_str(v)), Some(v));
            assert_eq!(serde_json::to_value(v).ok(), Some(as_str(v).into()));
        }
        assert_eq!(parse("no such value"), None);
    }

    #[test]
    fn conversation_states_and_deliveries_round_trip_as_strings() {
        assert_codec(
            &[
                ConversationState::Bot,
                ConversationState::PendingHuman,
                ConversationState::Human,
                ConversationState::Closed,
            ],
            ConversationState::as_str,
            ConversationState::parse,
        );
        assert_codec(
            &[
                Delivery::Accepted,
                Delivery::Sent,
                Delivery::Delivered,
                Delivery::Read,
                Delivery::Failed,
            ],
            Delivery::as_str,
            Delivery::parse,
        );
    }

    #[test]
    fn directions_round_trip_as_strings() {
        assert_codec(
            &[Direction::Inbound, Direction::Outbound],
            Direction::as_str,
            Direction::parse,
        );
        assert_eq!(Direction::Inbound.as_str(), "inbound");
        assert_eq!(Direction::Outbound.as_str(), "outbound");
    }

    #[test]
    fn turn_states_round_trip_as_strings() {
        assert_codec(
            &[TurnState::Claimed, TurnState::Sent],
            TurnState::as_str,
            TurnState::parse,
        );
        assert_eq!(TurnState::Claimed.as_str(), "claimed");
        assert_eq!(TurnState::Sent.as_str(), "sent");
    }

    #[test]
    fn window_is_24_hours_from_the_last_user_message() {
        let c = Conversation {
            user_id: UserId::parse("5491155551234").expect("valid"),
            phone_number_id: "1".into(),
            contact_name: None,
            state: ConversationState::Bot,
            last_user_at_ms: 1_000,
            last_message_at_ms: 1_000,
            window_closed: false,
        };
        assert!(c.window_open(1_000 + WINDOW_MS - 1));
        assert!(!c.window_open(1_000 + WINDOW_MS));
        let closed = Conversation {
            window_closed: true,
            ..c
        };
        assert!(!closed.window_open(1_001));
    }

    proptest! {
        #[test]
        fn wa_id_parse_never_panics(s in "\\PC{0,30}") {
            let _ = UserId::parse(&s);
        }
    }
}
