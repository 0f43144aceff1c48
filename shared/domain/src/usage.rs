//! What Charla used, and what that cost.
//!
//! Each function records events as they happen (a turn answered, a photo
//! read, a call ended, a template sent, a hand-off) as counters that add up
//! per conversation and per day ([`UsageEvent`], the [`UsageLedger`] port).
//! Prices are applied when the numbers are read ([`Summary::of`]), so a new
//! price table re-prices the past, and the store keeps plain counts.
//!
//! Days are UTC dates.
//!
//! [`UsageLedger`]: crate::ports::UsageLedger

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ports::TurnNote;
use crate::UserId;

/// Counters by name ([`key`]); missing means zero.
pub type Counters = BTreeMap<String, u64>;

/// The counter names. Families are `prefix.name` (`tool.kb_search`).
pub mod key {
    /// Distinct conversations of a day: counted by the store, once per user
    /// and day, never in an event.
    pub const CONVERSATIONS: &str = "conversations";
    pub const TURNS: &str = "turns";
    pub const MODEL_CALLS: &str = "model_calls";
    pub const CALL_SECONDS: &str = "call_seconds";
    /// Free-form messages sent (replies, people's messages, notices).
    pub const MESSAGES_SENT: &str = "messages_sent";
    /// Template messages sent (re-engagement, campaigns): the ones Meta charges.
    pub const TEMPLATES_SENT: &str = "templates_sent";

    pub const VIA: &str = "via.";
    pub const TOKENS_IN: &str = "tokens_in.";
    pub const TOKENS_OUT: &str = "tokens_out.";
    pub const TOOL: &str = "tool.";
    pub const ESCALATION: &str = "escalation.";
    pub const CALL: &str = "call.";
    pub const MEDIA: &str = "media.";
    pub const LATENCY: &str = "latency_le.";
}

/// Upper bounds (ms) of the answer-latency buckets: a percentile is read as
/// the bound of the bucket it falls in (the last is "more than a minute").
pub const LATENCY_BOUNDS_MS: [u64; 14] = [
    5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 60_000, 600_000,
];

/// The bucket counter a latency falls in.
pub fn latency_key(ms: u64) -> String {
    let bound = LATENCY_BOUNDS_MS
        .iter()
        .copied()
        .find(|b| ms <= *b)
        .unwrap_or(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1]);
    format!("{}{bound}", key::LATENCY)
}

/// One thing that used something, counted once by `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    pub user_id: UserId,
    /// Unique per event (`turn:<wamid>`, `media:<wamid>`...): a retried
    /// handler records the same id, and the store counts it once.
    pub id: String,
    pub at_ms: i64,
    pub counters: Counters,
    /// Shown in the conversation's timeline (the admin transcript).
    pub log: Option<TurnLog>,
}

/// A turn as the timeline shows it: who answered, with what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnLog {
    pub at_ms: i64,
    /// `playbook`, `model`, `local`, or `escalation` for a hand-off.
    pub via: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    #[serde(default)]
    pub model_calls: u32,
    #[serde(default)]
    pub tokens_in: u64,
    #[serde(default)]
    pub tokens_out: u64,
    /// From the user's first message of the turn to the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Why people were asked in (a hand-off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
}

fn add(counters: &mut Counters, name: impl Into<String>, n: u64) {
    if n > 0 {
        *counters.entry(name.into()).or_default() += n;
    }
}

/// The UTC date of a moment, `YYYY-MM-DD`.
pub fn day_of(at_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(at_ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string()
}

impl UsageEvent {
    /// The UTC day it counts on.
    pub fn day(&self) -> String {
        day_of(self.at_ms)
    }

    fn new(user_id: &UserId, id: String, at_ms: i64) -> UsageEvent {
        UsageEvent {
            user_id: user_id.clone(),
            id,
            at_ms,
            counters: Counters::new(),
            log: None,
        }
    }

    /// A turn answered: who answered, the model's tokens, the tools, what
    /// was sent and how long the user waited.
    pub fn turn(
        user_id: &UserId,
        turn_id: &str,
        at_ms: i64,
        note: &TurnNote,
        sent: Sent,
        latency_ms: u64,
    ) -> UsageEvent {
        let mut e = UsageEvent::new(user_id, format!("turn:{turn_id}"), at_ms);
        let via = note.answered_by();
        let c = &mut e.counters;
        add(c, key::TURNS, 1);
        add(c, format!("{}{via}", key::VIA), 1);
        add(c, key::MODEL_CALLS, u64::from(note.model_calls));
        let model = if note.model.is_empty() {
            "model"
        } else {
            note.model.as_str()
        };
        add(c, format!("{}{model}", key::TOKENS_IN), note.tokens_in);
        add(c, format!("{}{model}", key::TOKENS_OUT), note.tokens_out);
        for tool in &note.tools {
            add(c, format!("{}{tool}", key::TOOL), 1);
        }
        add(c, key::MESSAGES_SENT, sent.messages);
        add(c, key::TEMPLATES_SENT, sent.templates);
        add(c, latency_key(latency_ms), 1);
        e.log = Some(TurnLog {
            at_ms,
            via: via.to_string(),
            tools: note.tools.iter().map(|t| t.to_string()).collect(),
            model_calls: note.model_calls,
            tokens_in: note.tokens_in,
            tokens_out: note.tokens_out,
            latency_ms: Some(latency_ms),
            escalation: None,
        });
        e
    }

    /// Messages sent outside a turn (a person's reply, a notice, a
    /// campaign's template), counted once by `id`.
    pub fn sent(user_id: &UserId, id: &str, at_ms: i64, sent: Sent) -> UsageEvent {
        let mut e = UsageEvent::new(user_id, format!("sent:{id}"), at_ms);
        add(&mut e.counters, key::MESSAGES_SENT, sent.messages);
        add(&mut e.counters, key::TEMPLATES_SENT, sent.templates);
        e
    }

    /// A hand-off to people, by its reason (`asked`, `sentiment`...).
    pub fn escalation(user_id: &UserId, id: &str, at_ms: i64, reason: &str) -> UsageEvent {
        let mut e = UsageEvent::new(user_id, format!("escalation:{id}"), at_ms);
        add(&mut e.counters, format!("{}{reason}", key::ESCALATION), 1);
        e.log = Some(TurnLog {
            at_ms,
            via: "escalation".into(),
            escalation: Some(reason.to_string()),
            ..TurnLog::default()
        });
        e
    }

    /// A photo, document or voice note the media pipeline looked at.
    pub fn media(user_id: &UserId, wamid: &str, at_ms: i64, kind: &str) -> UsageEvent {
        let mut e = UsageEvent::new(user_id, format!("media:{wamid}"), at_ms);
        add(&mut e.counters, format!("{}{kind}", key::MEDIA), 1);
        e
    }

    /// A call that ended, by outcome, with its billed length.
    pub fn call(
        user_id: &UserId,
        call_id: &str,
        at_ms: i64,
        outcome: &str,
        seconds: u64,
    ) -> UsageEvent {
        let mut e = UsageEvent::new(user_id, format!("call:{call_id}"), at_ms);
        add(&mut e.counters, format!("{}{outcome}", key::CALL), 1);
        add(&mut e.counters, key::CALL_SECONDS, seconds);
        e
    }
}

/// What a turn or an action sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub messages: u64,
    pub templates: u64,
}

impl Sent {
    /// `messages` split into free-form ones and templates (the ones that
    /// may go out with the window closed, and that Meta charges for).
    pub fn of(messages: &[crate::whatsapp::outbound::OutboundMessage]) -> Sent {
        let templates = messages.iter().filter(|m| !m.needs_open_window()).count() as u64;
        Sent {
            messages: messages.len() as u64 - templates,
            templates,
        }
    }
}

/// Adds `more` into `into`.
pub fn merge(into: &mut Counters, more: &Counters) {
    for (k, v) in more {
        *into.entry(k.clone()).or_default() += v;
    }
}

// ------------------------------------------------------------------ prices

/// Price of a model's tokens, per million.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPrice {
    pub input_per_million: f64,
    pub output_per_million: f64,
}

const fn tokens(input_per_million: f64, output_per_million: f64) -> TokenPrice {
    TokenPrice {
        input_per_million,
        output_per_million,
    }
}

/// What each thing costs, in `currency`. The defaults are public list prices
/// (us-east-1, on-demand, late 2026); a business sets its own in
/// `CHARLA_PRICES` (JSON, any subset of these keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prices {
    pub currency: String,
    /// By a part of the model's name (`claude-3-5-haiku`): the longest key
    /// the name contains wins; otherwise `other_model`.
    pub models: BTreeMap<String, TokenPrice>,
    pub other_model: TokenPrice,
    /// A free-form message: free inside the customer-service window.
    pub whatsapp_message: f64,
    /// A template message (Meta's marketing rate; utility is cheaper).
    pub whatsapp_template: f64,
    /// Rekognition DetectLabels + moderation, per photo.
    pub image: f64,
    /// Textract DetectDocumentText, per document (one page assumed).
    pub document: f64,
    /// Transcribe, per voice note (30 s assumed: $0.024 a minute).
    pub audio: f64,
    /// The voice provider's all-in price per call minute (platform,
    /// telephony, speech and its model).
    pub call_minute: f64,
    /// Lambda, SQS, DynamoDB, the HTTP API and logs for one turn on AWS (the
    /// README's bill of materials). The one-process runner applies it too:
    /// its numbers say what the same traffic would cost on AWS.
    pub aws_turn: f64,
}

impl Default for Prices {
    fn default() -> Self {
        let models = [
            ("claude-3-haiku", tokens(0.25, 1.25)),
            ("claude-3-5-haiku", tokens(0.80, 4.00)),
            ("claude-haiku-4-5", tokens(1.00, 5.00)),
            ("claude-3-5-sonnet", tokens(3.00, 15.00)),
            ("claude-3-7-sonnet", tokens(3.00, 15.00)),
            ("claude-sonnet-4", tokens(3.00, 15.00)),
            ("nova-micro", tokens(0.035, 0.14)),
            ("nova-lite", tokens(0.06, 0.24)),
            ("nova-pro", tokens(0.80, 3.20)),
            ("gpt-4o-mini", tokens(0.15, 0.60)),
            ("gpt-4o", tokens(2.50, 10.00)),
            ("gpt-4.1-nano", tokens(0.10, 0.40)),
            ("gpt-4.1-mini", tokens(0.40, 1.60)),
            ("gpt-4.1", tokens(2.00, 8.00)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Prices {
            currency: "USD".into(),
            models,
            other_model: tokens(1.00, 5.00),
            whatsapp_message: 0.0,
            whatsapp_template: 0.025,
            image: 0.001,
            document: 0.0015,
            audio: 0.012,
            call_minute: 0.10,
            aws_turn: 0.000_04,
        }
    }
}

impl Prices {
    /// The defaults with `json`'s keys over them; a key the table does not
    /// have is an error (a typo would otherwise price silently at defaults).
    pub fn from_json(json: &str) -> Result<Prices, String> {
        if json.trim().is_empty() {
            return Ok(Prices::default());
        }
        let overrides: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("prices: {e}"))?;
        let mut base = serde_json::to_value(Prices::default()).map_err(|e| e.to_string())?;
        let (Some(base_map), Some(over)) = (base.as_object_mut(), overrides.as_object()) else {
            return Err("prices: expected a JSON object".into());
        };
        for (k, v) in over {
            match (k.as_str(), base_map.get_mut(k)) {
                // Models add to the defaults rather than replace them all.
                ("models", Some(serde_json::Value::Object(models))) => {
                    let Some(more) = v.as_object() else {
                        return Err("prices: models must be an object".into());
                    };
                    models.extend(more.clone());
                }
                (_, Some(slot)) => *slot = v.clone(),
                (_, None) => return Err(format!("prices: unknown key `{k}`")),
            }
        }
        serde_json::from_value(base).map_err(|e| format!("prices: {e}"))
    }

    /// The price of a model's tokens, by its name (`bedrock:<id>`).
    pub fn model(&self, name: &str) -> TokenPrice {
        self.models
            .iter()
            .filter(|(k, _)| name.contains(k.as_str()))
            .max_by_key(|(k, _)| k.len())
            .map_or(self.other_model, |(_, p)| *p)
    }
}

/// Money, by what it was spent on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Cost {
    pub total: f64,
    pub model: f64,
    pub whatsapp: f64,
    pub media: f64,
    pub calls: f64,
    pub aws: f64,
}

/// Answer latency, from the histogram: each the upper bound of its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
}

/// Counters as people read them, priced.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub conversations: u64,
    pub turns: u64,
    pub playbook_turns: u64,
    pub model_turns: u64,
    pub model_calls: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub tool_calls: BTreeMap<String, u64>,
    pub escalations: BTreeMap<String, u64>,
    pub calls: BTreeMap<String, u64>,
    pub call_minutes: f64,
    pub media: BTreeMap<String, u64>,
    pub messages_sent: u64,
    pub templates_sent: u64,
    pub latency_ms: Option<Latency>,
    pub cost: Cost,
}

/// Cents are too coarse for one conversation: round to a millionth (and
/// an empty sum's -0.0 to 0).
fn money(x: f64) -> f64 {
    (x * 1e6).round() / 1e6 + 0.0
}

impl Summary {
    pub fn of(counters: &Counters, prices: &Prices) -> Summary {
        let get = |k: &str| counters.get(k).copied().unwrap_or(0);
        let family = |prefix: &str| -> BTreeMap<String, u64> {
            counters
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(prefix).map(|name| (name.to_string(), *v)))
                .collect()
        };
        let tokens_in = family(key::TOKENS_IN);
        let tokens_out = family(key::TOKENS_OUT);
        let model_cost: f64 = tokens_in
            .iter()
            .map(|(m, n)| *n as f64 * prices.model(m).input_per_million / 1e6)
            .chain(
                tokens_out
                    .iter()
                    .map(|(m, n)| *n as f64 * prices.model(m).output_per_million / 1e6),
            )
            .sum();
        let media = family(key::MEDIA);
        let media_cost: f64 = media
            .iter()
            .map(|(kind, n)| {
                *n as f64
                    * match kind.as_str() {
                        "image" | "sticker" => prices.image,
                        "document" => prices.document,
                        "audio" | "voice" => prices.audio,
                        _ => 0.0,
                    }
            })
            .sum();
        let call_minutes = get(key::CALL_SECONDS) as f64 / 60.0;
        let messages_sent = get(key::MESSAGES_SENT);
        let templates_sent = get(key::TEMPLATES_SENT);
        let turns = get(key::TURNS);
        let whatsapp = messages_sent as f64 * prices.whatsapp_message
            + templates_sent as f64 * prices.whatsapp_template;
        let calls = call_minutes * prices.call_minute;
        let aws = turns as f64 * prices.aws_turn;
        let model = model_cost;
        let cost = Cost {
            total: money(model + whatsapp + media_cost + calls + aws),
            model: money(model),
            whatsapp: money(whatsapp),
            media: money(media_cost),
            calls: money(calls),
            aws: money(aws),
        };
        let via = family(key::VIA);
        Summary {
            conversations: get(key::CONVERSATIONS),
            turns,
            playbook_turns: via.get("playbook").copied().unwrap_or(0),
            model_turns: via.get("model").copied().unwrap_or(0),
            model_calls: get(key::MODEL_CALLS),
            tokens_in: tokens_in.values().sum(),
            tokens_out: tokens_out.values().sum(),
            tool_calls: family(key::TOOL),
            escalations: family(key::ESCALATION),
            calls: family(key::CALL),
            call_minutes: (call_minutes * 100.0).round() / 100.0,
            media,
            messages_sent,
            templates_sent,
            latency_ms: latency(counters),
            cost,
        }
    }
}

/// p50, p90 and p99 from the latency buckets; `None` without any.
fn latency(counters: &Counters) -> Option<Latency> {
    let buckets: Vec<(u64, u64)> = LATENCY_BOUNDS_MS
        .iter()
        .map(|b| {
            let n = counters
                .get(&format!("{}{b}", key::LATENCY))
                .copied()
                .unwrap_or(0);
            (*b, n)
        })
        .collect();
    let total: u64 = buckets.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let at = |q: f64| {
        // The smallest bound with at least q of the turns at or under it.
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bound, n) in &buckets {
            seen += n;
            if seen >= rank {
                return *bound;
            }
        }
        LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1]
    };
    Some(Latency {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::parse("5491155551234").expect("user")
    }

    fn note(via: &'static str, model_calls: u32, tools: Vec<&'static str>) -> TurnNote {
        TurnNote {
            via,
            model_calls,
            model: "bedrock:anthropic.claude-3-haiku-20240307-v1:0".into(),
            tokens_in: 1_000_000,
            tokens_out: 100_000,
            tools,
            ..TurnNote::default()
        }
    }

    #[test]
    fn a_turn_counts_who_answered_its_tokens_tools_sends_and_latency() {
        let e = UsageEvent::turn(
            &user(),
            "wamid.A",
            0,
            &note("model", 2, vec!["kb_search", "kb_search", "create_lead"]),
            Sent {
                messages: 2,
                templates: 0,
            },
            42,
        );
        assert_eq!(e.id, "turn:wamid.A");
        assert_eq!(e.day(), "1970-01-01");
        let c = &e.counters;
        assert_eq!(c["turns"], 1);
        assert_eq!(c["via.model"], 1);
        assert_eq!(c["model_calls"], 2);
        assert_eq!(c["tool.kb_search"], 2);
        assert_eq!(c["tool.create_lead"], 1);
        assert_eq!(c["messages_sent"], 2);
        assert_eq!(c["latency_le.50"], 1);
        assert!(!c.contains_key("templates_sent"), "zeros are not stored");
        let log = e.log.expect("logged");
        assert_eq!(log.tools, ["kb_search", "kb_search", "create_lead"]);
        assert_eq!(log.latency_ms, Some(42));
    }

    #[test]
    fn a_summary_prices_tokens_by_model_templates_media_and_minutes() {
        let mut c = Counters::new();
        let turn = UsageEvent::turn(
            &user(),
            "t",
            0,
            &note("model", 1, vec![]),
            Sent::default(),
            7,
        );
        merge(&mut c, &turn.counters);
        merge(
            &mut c,
            &UsageEvent::media(&user(), "m", 0, "image").counters,
        );
        merge(
            &mut c,
            &UsageEvent::call(&user(), "c", 0, "completed", 90).counters,
        );
        merge(
            &mut c,
            &UsageEvent::sent(
                &user(),
                "s",
                0,
                Sent {
                    messages: 0,
                    templates: 2,
                },
            )
            .counters,
        );
        let s = Summary::of(&c, &Prices::default());
        // claude-3-haiku: 1M in at $0.25, 100k out at $1.25/M.
        assert!((s.cost.model - 0.375).abs() < 1e-9, "{:?}", s.cost);
        assert!((s.cost.whatsapp - 0.05).abs() < 1e-9);
        assert!((s.cost.media - 0.001).abs() < 1e-9);
        assert!((s.cost.calls - 0.15).abs() < 1e-9);
        assert!((s.cost.aws - 0.000_04).abs() < 1e-12);
        let parts = s.cost.model + s.cost.whatsapp + s.cost.media + s.cost.calls + s.cost.aws;
        assert!((s.cost.total - parts).abs() < 1e-6);
        assert_eq!(s.model_turns, 1);
        assert_eq!(s.call_minutes, 1.5);
        assert_eq!(s.calls["completed"], 1);
        assert_eq!(s.latency_ms.map(|l| l.p50), Some(10));
    }

    #[test]
    fn the_longest_model_key_the_name_contains_sets_the_price() {
        let p = Prices::default();
        assert_eq!(p.model("openai:gpt-4o-mini").input_per_million, 0.15);
        assert_eq!(p.model("openai:gpt-4o").input_per_million, 2.50);
        assert_eq!(
            p.model("bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0")
                .input_per_million,
            0.80
        );
        assert_eq!(p.model("scripted"), p.other_model);
    }

    #[test]
    fn prices_from_json_override_some_keys_and_refuse_unknown_ones() {
        let p = Prices::from_json(
            r#"{"whatsapp_template": 0.01, "models": {"my-model": {"input_per_million": 1, "output_per_million": 2}}}"#,
        )
        .expect("prices");
        assert_eq!(p.whatsapp_template, 0.01);
        assert_eq!(p.model("openai:my-model").output_per_million, 2.0);
        assert_eq!(
            p.model("openai:gpt-4o").input_per_million,
            2.50,
            "defaults kept"
        );
        assert_eq!(Prices::from_json("").expect("empty"), Prices::default());
        let err = Prices::from_json(r#"{"whatsap_template": 1}"#).expect_err("typo");
        assert!(err.contains("whatsap_template"), "{err}");
        assert!(Prices::from_json("[1]").is_err());
        assert!(Prices::from_json(r#"{"image": "cheap"}"#).is_err());
    }

    #[test]
    fn latency_percentiles_are_bucket_bounds() {
        let mut c = Counters::new();
        for ms in (0..100).map(|i| i * 10) {
            *c.entry(latency_key(ms)).or_default() += 1;
        }
        let l = latency(&c).expect("some");
        assert_eq!(l.p50, 500);
        assert_eq!(l.p90, 1_000);
        assert_eq!(l.p99, 1_000);
        assert_eq!(latency(&Counters::new()), None);
        let nothing = Summary::of(&Counters::new(), &Prices::default());
        assert!(nothing.cost.model.is_sign_positive(), "0, not -0");
        assert_eq!(latency_key(10_000_000), "latency_le.600000");
    }
}
