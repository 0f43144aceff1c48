//! Voice calls: what an outbound call carries, the call record, the events
//! and tool calls of a call as Charla reads them (the providers' wire formats
//! are in `voice_providers::webhooks`), and the rules for placing a call
//! (consent, calling hours, retries).

use std::collections::BTreeMap;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::agent::CallRequest;
use super::conversation::UserId;

/// again (see [`CallRecord::due_marker`]).
pub const DIAL_WATCHDOG_MS: i64 = 10 * 60 * 1000;
/// Calls placed for one request, the first included.
pub const MAX_ATTEMPTS: u32 = 3;
/// A call request older than this is not consent any more.
pub const CONSENT_MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;
/// Calling hours when neither the profile nor `CHARLA_CALLING_HOURS` says.
pub const DEFAULT_CALLING_HOURS: &str = "09:00-20:00";
/// Longest summary or transcript kept on a call record (the transcript
/// itself goes into the conversation, bounded the same way).
pub const CALL_TEXT_MAX: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Vapi,
    Retell,
}

impl ProviderKind {
    pub fn parse(s: &str) -> Result<ProviderKind, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vapi" => Ok(ProviderKind::Vapi),
            "retell" => Ok(ProviderKind::Retell),
            other => Err(format!("voice provider {other:?}: expected vapi or retell")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Vapi => "vapi",
            ProviderKind::Retell => "retell",
        }
    }
}

/// What the voice agent knows when it calls: the conversation so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallContext {
    /// The call request's id (`{turn_id}:call`): one call per request.
    pub request_id: String,
    /// The conversation: events come back here.
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    pub phone_number_id: String,
    pub customer_name: Option<String>,
    pub language: String,
    /// A summary of the WhatsApp conversation.
    pub summary: String,
    /// What the lead is interested in, when a lead was captured.
    pub interest: Option<String>,
    /// Why the call was asked for.
    pub reason: String,
    /// The number to dial when it is not the user id itself (a user known
    /// by BSUID: the number they shared, or gave for this call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<UserId>,
    /// A campaign's call: its outcome goes back to the campaign's contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<crate::campaign::CampaignCall>,
}

impl CallContext {
    /// The variables the voice agent's prompt can use (Vapi
    /// `variableValues`, Retell `retell_llm_dynamic_variables`: strings).
    pub fn variables(&self) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        v.insert(
            "customer_name".into(),
            self.customer_name.clone().unwrap_or_default(),
        );
        v.insert("language".into(), self.language.clone());
        v.insert("conversation_summary".into(), self.summary.clone());
        v.insert("interest".into(), self.interest.clone().unwrap_or_default());
        v.insert("call_reason".into(), self.reason.clone());
        // A campaign's columns (amount, due date...), without overriding the
        // names above.
        if let Some(c) = &self.campaign {
            for (k, value) in &c.variables {
                v.entry(k.clone()).or_insert_with(|| value.clone());
            }
        }
        v
    }

    /// The provider's assistant or agent for this call, when a campaign
    /// chose one.
    pub fn assistant(&self) -> Option<&str> {
        self.campaign.as_ref().and_then(|c| c.assistant.as_deref())
    }

    /// Sent as the call's metadata; every provider event carries it back.
    pub fn metadata(&self) -> Value {
        json!({
            "charla_request_id": self.request_id,
            "charla_conversation_id": self.user_id.as_str(),
            "charla_phone_number_id": self.phone_number_id,
        })
    }

    /// The number to dial, E.164 with the `+`: `phone`, else the user id
    /// when it is a number. `Error::Invalid` for a user with no number.
    pub fn to_e164(&self) -> crate::Result<String> {
        self.phone
            .as_ref()
            .unwrap_or(&self.user_id)
            .e164()
            .ok_or_else(|| crate::Error::Invalid("no phone number to call".into()))
    }
}

/// Which call request a provider event is about, from the call's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRef {
    pub request_id: String,
    pub user_id: UserId,
}

impl CallRef {
    /// `None` when the metadata is not ours (a call placed by hand in the
    /// provider's dashboard, say).
    pub fn from_metadata(metadata: &Value) -> Option<CallRef> {
        let request_id = metadata.get("charla_request_id")?.as_str()?;
        let user_id = UserId::parse(metadata.get("charla_conversation_id")?.as_str()?).ok()?;
        (!request_id.is_empty() && request_id.len() <= 200).then(|| CallRef {
            request_id: request_id.to_string(),
            user_id,
        })
    }
}

/// One outbound call to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOrder {
    pub context: CallContext,
    /// 1 for the first call of a request.
    pub attempt: u32,
}

/// The provider took the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedCall {
    pub call_id: String,
}

/// Where a call request stands. Only moves forward (see [`CallPhase::rank`]),
/// except `Scheduled` again for a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallPhase {
    /// Waiting for `due_at_ms` (outside calling hours, or a retry).
    Scheduled,
    /// Asked the provider to call.
    Dialing,
    Ringing,
    InProgress,
    /// Hung up; the report may still come.
    Ended,
    /// Will not be called again (attempts used up, refused).
    Failed,
    /// Ended and followed up.
    Done,
}

impl CallPhase {
    /// Order within one attempt: a late `ringing` never undoes `in-progress`.
    pub fn rank(self) -> u8 {
        match self {
            CallPhase::Scheduled => 0,
            CallPhase::Dialing => 1,
            CallPhase::Ringing => 2,
            CallPhase::InProgress => 3,
            CallPhase::Ended => 4,
            CallPhase::Failed | CallPhase::Done => 5,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, CallPhase::Failed | CallPhase::Done)
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    Completed,
    NoAnswer,
    Busy,
    Voicemail,
    Transferred,
    Failed,
}

impl CallOutcome {
    /// Reads a provider's end reason (Vapi `endedReason`, Retell
    /// `disconnection_reason`); both spell the same ideas differently.
    pub fn from_reason(reason: &str) -> CallOutcome {
        let r = reason.to_ascii_lowercase().replace('_', "-");
        if r.contains("busy") {
            CallOutcome::Busy
        } else if r.contains("no-answer") || r.contains("did-not-answer") {
            CallOutcome::NoAnswer
        } else if r.contains("voicemail") {
            CallOutcome::Voicemail
        } else if r.contains("forward") || r.contains("transfer") {
            CallOutcome::Transferred
        } else if r.contains("fail") || r.contains("error") || r.contains("invalid") {
            CallOutcome::Failed
        } else {
            CallOutcome::Completed
        }
    }

    /// Worth calling again later: nobody picked up.
    pub fn retry_later(self) -> bool {
        matches!(
            self,
            CallOutcome::NoAnswer | CallOutcome::Busy | CallOutcome::Voicemail
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Completed => "completed",
            CallOutcome::NoAnswer => "no_answer",
            CallOutcome::Busy => "busy",
            CallOutcome::Voicemail => "voicemail",
            CallOutcome::Transferred => "transferred",
            CallOutcome::Failed => "failed",
        }
    }
}

/// A call request's record: created once per request id, then changed only
/// by conditional writes on `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub context: CallContext,
    pub provider: ProviderKind,
    pub phase: CallPhase,
    /// Calls placed so far.
    pub attempts: u32,
    /// The provider's id of the current attempt's call.
    pub call_id: Option<String>,
    /// When a scheduled call is due, UTC ms.
    pub due_at_ms: Option<i64>,
    pub outcome: Option<CallOutcome>,
    pub ended_reason: Option<String>,
    pub summary: Option<String>,
    /// The user was told how the call went (summary, or that it failed).
    pub followed_up: bool,
    /// Bumped by every write; the condition of the next one.
    pub version: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl CallRecord {
    /// A new record, its first call due at `due_at_ms` (version 1).
    pub fn scheduled(
        context: CallContext,
        provider: ProviderKind,
        due_at_ms: i64,
        now_ms: i64,
    ) -> CallRecord {
        CallRecord {
            context,
            provider,
            phase: CallPhase::Scheduled,
            attempts: 0,
            call_id: None,
            due_at_ms: Some(due_at_ms),
            outcome: None,
            ended_reason: None,
            summary: None,
            followed_up: false,
            version: 1,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }

    pub fn request_id(&self) -> &str {
        &self.context.request_id
    }

    /// When the sweep should look at this record: a scheduled call when it
    /// is due, and a dial that has no call id yet when its watchdog fires
    /// (the worker died between claiming and calling, or the provider's
    /// answer was lost). Every adapter indexes this and only this.
    pub fn due_marker(&self) -> Option<i64> {
        match self.phase {
            CallPhase::Scheduled => self.due_at_ms,
            CallPhase::Dialing if self.call_id.is_none() => self.due_at_ms,
            _ => None,
        }
    }

    /// The record as the next write will store it.
    pub fn next(&self, now_ms: i64) -> CallRecord {
        let mut n = self.clone();
        n.version += 1;
        n.updated_at_ms = now_ms;
        n
    }

    /// Moves the phase forward for the current attempt; `false` when the
    /// event is late (reordered) or the record is final.
    pub fn advance(&mut self, phase: CallPhase) -> bool {
        if self.phase.is_final()
            || self.phase == CallPhase::Scheduled
            || phase.rank() <= self.phase.rank()
        {
            return false;
        }
        self.phase = phase;
        true
    }
}

/// A call's end as the record should take it: retry later, or final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCall {
    /// Call again at this time.
    RetryAt(i64),
    /// Nobody answered and the attempts are used up: tell the user.
    GiveUp,
    /// The call happened: follow up with the summary.
    FollowUp,
}

/// What follows a call that ended with `outcome` after `attempts` calls.
pub fn after_call(outcome: CallOutcome, attempts: u32, now_ms: i64) -> AfterCall {
    if outcome.retry_later() || outcome == CallOutcome::Failed {
        if attempts < MAX_ATTEMPTS {
            AfterCall::RetryAt(now_ms + retry_delay_ms(attempts))
        } else {
            AfterCall::GiveUp
        }
    } else {
        AfterCall::FollowUp
    }
}

/// Wait before calling again after `attempts` unanswered calls: 2, 6, 18
/// minutes... (people step away; calling back at once annoys them).
pub fn retry_delay_ms(attempts: u32) -> i64 {
    2 * 60_000 * 3i64.pow(attempts.saturating_sub(1).min(6))
}

// ------------------------------------------------------------- the rules

/// Why a call request is not called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConsentRefusal {
    /// The queue message matches no request the user made in their
    /// conversation (the agent records it before it queues it).
    #[error("no call request from this user with this id")]
    NotAsked,
    #[error("the call request is too old")]
    Expired,
}

/// Calls go only to users who asked, in their own conversation, recently:
/// `stored` are the user's requests as recorded by the agent.
pub fn check_consent(
    queued: &CallRequest,
    stored: &[CallRequest],
    now_ms: i64,
) -> Result<(), ConsentRefusal> {
    let asked = stored.iter().find(|r| {
        r.id == queued.id
            && r.user_id == queued.user_id
            && r.phone_number_id == queued.phone_number_id
            && r.phone == queued.phone
    });
    match asked {
        None => Err(ConsentRefusal::NotAsked),
        Some(r) if now_ms - r.created_at_ms > CONSENT_MAX_AGE_MS => Err(ConsentRefusal::Expired),
        Some(_) => Ok(()),
    }
}

/// When calls may be placed, in the customer's local time, every day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallingHours {
    Always,
    /// From `open` (included) to `close` (excluded).
    Window {
        open: Time,
        close: Time,
    },
}

impl CallingHours {
    /// `always`, or `HH:MM-HH:MM` with the opening before the close
    /// (`24:00` closes at the end of the day; `00:00-24:00` is `always`).
    pub fn parse(s: &str) -> Result<CallingHours, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("always") {
            return Ok(CallingHours::Always);
        }
        let bad = || format!("calling hours {s:?}: expected \"always\" or HH:MM-HH:MM");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let time = |t: &str| -> Result<Time, String> {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if (h, m) == (24, 0) {
                return Ok(Time::MAX);
            }
            Time::new(h, m, 0, 0).map_err(|_| bad())
        };
        let (open, close) = (time(a)?, time(b)?);
        if open == Time::midnight() && close == Time::MAX {
            return Ok(CallingHours::Always);
        }
        if open >= close {
            return Err(format!("calling hours {s:?}: opens after it closes"));
        }
        Ok(CallingHours::Window { open, close })
    }
}

/// Whether a call may go out now, or when it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallWindow {
    Now,
    /// The next opening, UTC ms.
    At(i64),
}

/// Checks `at_ms` against the calling hours in the customer's zone.
pub fn calling_window(at_ms: i64, hours: CallingHours, tz: &TimeZone) -> CallWindow {
    let CallingHours::Window { open, close } = hours else {
        return CallWindow::Now;
    };
    let Ok(ts) = Timestamp::from_millisecond(at_ms) else {
        return CallWindow::Now;
    };
    let local = ts.to_zoned(tz.clone());
    let t = local.time();
    if t >= open && t < close {
        return CallWindow::Now;
    }
    let day = if t < open {
        local.date()
    } else {
        local.date().tomorrow().unwrap_or(local.date())
    };
    match day.to_datetime(open).to_zoned(tz.clone()) {
        Ok(z) => CallWindow::At(z.timestamp().as_millisecond()),
        Err(_) => CallWindow::Now,
    }
}

/// Where a call goes when the caller wants a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// E.164 with the `+`.
    Number(String),
    /// `sip:` or `sips:` URI of the company's PBX.
    Sip(String),
}

impl TransferTarget {
    pub fn parse(s: &str) -> Result<TransferTarget, String> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            let rest = &s[s.find(':').map_or(0, |i| i + 1)..];
            let ok = rest.contains('@')
                && !rest.starts_with('@')
                && !rest.ends_with('@')
                && s.len() <= 256
                && !s.chars().any(|c| c.is_whitespace() || c.is_control());
            return if ok {
                Ok(TransferTarget::Sip(s.to_string()))
            } else {
                Err(format!(
                    "transfer target {s:?}: not a SIP URI (sip:user@host)"
                ))
            };
        }
        let digits = s.strip_prefix('+').unwrap_or("");
        if (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
        {
            Ok(TransferTarget::Number(s.to_string()))
        } else {
            Err(format!(
                "transfer target {s:?}: expected an E.164 number (+5411...) or a SIP URI"
            ))
        }
    }
}

// ------------------------------------------------------------ events

/// A provider event, as Charla reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceEvent {
    pub provider: ProviderKind,
    pub call_id: String,
    pub call_ref: Option<CallRef>,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Status(CallPhase),
    /// The call ended; the transcript and summary when the provider sent them.
    Ended {
        reason: String,
        transcript: Option<String>,
        summary: Option<String>,
        /// How long it lasted, when said.
        duration_secs: Option<u32>,
        /// What the voice agent extracted (Vapi `analysis.structuredData`).
        results: Option<Value>,
    },
    /// The analysis came after the end (Retell `call_analyzed`).
    Analysed {
        summary: Option<String>,
        /// Retell `call_analysis.custom_analysis_data`.
        results: Option<Value>,
    },
    /// Known, nothing to do (partial transcripts, transfer notices...).
    Ignored(String),
}

impl VoiceEvent {
    /// The key under which this event is applied once.
    pub fn dedup_key(&self) -> String {
        let what = match &self.kind {
            EventKind::Status(p) => format!("status:{p:?}"),
            EventKind::Ended { .. } => "ended".into(),
            EventKind::Analysed { .. } => "analysed".into(),
            EventKind::Ignored(t) => format!("ignored:{t}"),
        };
        format!("{}:{}:{what}", self.provider.as_str(), self.call_id)
    }
}

/// A tool call from a voice agent.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub args: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::CallRequestState;

    fn request(id: &str, wa: &str, created: i64) -> CallRequest {
        CallRequest {
            id: id.into(),
            user_id: UserId::parse(wa).expect("wa"),
            phone_number_id: "PN".into(),
            reason: "r".into(),
            when_ms: None,
            language: "es".into(),
            state: CallRequestState::Requested,
            created_at_ms: created,
            phone: None,
            campaign: None,
        }
    }

    #[test]
    fn consent_needs_the_users_own_recent_request() {
        let now = 10 * CONSENT_MAX_AGE_MS;
        let queued = request("t1:call", "5491155550001", now - 1000);
        let cases: Vec<(&str, Vec<CallRequest>, Result<(), ConsentRefusal>)> = vec![
            (
                "asked",
                vec![request("t1:call", "5491155550001", now - 1000)],
                Ok(()),
            ),
            ("nothing stored", vec![], Err(ConsentRefusal::NotAsked)),
            (
                "another request",
                vec![request("t2:call", "5491155550001", now)],
                Err(ConsentRefusal::NotAsked),
            ),
            (
                "another user's",
                vec![request("t1:call", "5491155550002", now)],
                Err(ConsentRefusal::NotAsked),
            ),
            (
                "old",
                vec![request(
                    "t1:call",
                    "5491155550001",
                    now - CONSENT_MAX_AGE_MS - 1,
                )],
                Err(ConsentRefusal::Expired),
            ),
        ];
        for (name, stored, expected) in cases {
            assert_eq!(check_consent(&queued, &stored, now), expected, "{name}");
        }
    }

    fn ms(s: &str, tz: &str) -> i64 {
        let tz = jiff::tz::TimeZone::get(tz).expect("tz");
        s.parse::<jiff::civil::DateTime>()
            .expect("dt")
            .to_zoned(tz)
            .expect("zoned")
            .timestamp()
            .as_millisecond()
    }

    #[test]
    fn calling_hours_parse_and_refuse_nonsense() {
        assert_eq!(CallingHours::parse("always"), Ok(CallingHours::Always));
        assert!(matches!(
            CallingHours::parse(" 09:00-20:00 "),
            Ok(CallingHours::Window { .. })
        ));
        assert_eq!(CallingHours::parse("00:00-24:00"), Ok(CallingHours::Always));
        assert_eq!(
            CallingHours::parse("18:00-24:00"),
            Ok(CallingHours::Window {
                open: Time::new(18, 0, 0, 0).expect("time"),
                close: Time::MAX
            })
        );
        for bad in [
            "24:00-09:00",
            "00:00-24:30",
            "",
            "9-5",
            "20:00-09:00",
            "09:00-09:00",
            "25:00-26:00",
            "09:00",
            "nine-ten",
        ] {
            assert!(CallingHours::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn calling_window_in_the_customers_zone() {
        let hours = CallingHours::parse("09:00-20:00").expect("hours");
        let ba = "America/Argentina/Buenos_Aires";
        let tz = jiff::tz::TimeZone::get(ba).expect("tz");
        let cases = [
            ("2026-03-02T10:00", CallWindow::Now),
            ("2026-03-02T09:00", CallWindow::Now),
            ("2026-03-02T19:59", CallWindow::Now),
            (
                "2026-03-02T20:00",
                CallWindow::At(ms("2026-03-03T09:00", ba)),
            ),
            (
                "2026-03-02T23:30",
                CallWindow::At(ms("2026-03-03T09:00", ba)),
            ),
            (
                "2026-03-02T06:15",
                CallWindow::At(ms("2026-03-02T09:00", ba)),
            ),
        ];
        for (local, expected) in cases {
            assert_eq!(
                calling_window(ms(local, ba), hours, &tz),
                expected,
                "{local}"
            );
        }
        // 23:00 UTC is 20:00 in Buenos Aires (closed) but 00:00 in Madrid.
        let madrid = jiff::tz::TimeZone::get("Europe/Madrid").expect("tz");
        let t = ms("2026-03-02T23:00", "UTC");
        assert!(matches!(calling_window(t, hours, &tz), CallWindow::At(_)));
        assert!(matches!(
            calling_window(t, hours, &madrid),
            CallWindow::At(_)
        ));
        assert_eq!(
            calling_window(t, CallingHours::Always, &tz),
            CallWindow::Now
        );
    }

    #[test]
    fn outcomes_from_both_providers_reasons() {
        let cases = [
            ("customer-busy", CallOutcome::Busy),
            ("dial_busy", CallOutcome::Busy),
            ("customer-did-not-answer", CallOutcome::NoAnswer),
            ("dial_no_answer", CallOutcome::NoAnswer),
            ("voicemail", CallOutcome::Voicemail),
            ("voicemail_reached", CallOutcome::Voicemail),
            ("assistant-forwarded-call", CallOutcome::Transferred),
            ("call_transfer", CallOutcome::Transferred),
            ("dial_failed", CallOutcome::Failed),
            ("twilio-failed-to-connect-call", CallOutcome::Failed),
            ("customer-ended-call", CallOutcome::Completed),
            ("user_hangup", CallOutcome::Completed),
        ];
        for (reason, expected) in cases {
            assert_eq!(CallOutcome::from_reason(reason), expected, "{reason}");
        }
    }

    #[test]
    fn unanswered_calls_are_retried_a_bounded_number_of_times() {
        assert_eq!(
            after_call(CallOutcome::NoAnswer, 1, 0),
            AfterCall::RetryAt(120_000)
        );
        assert_eq!(
            after_call(CallOutcome::Busy, 2, 0),
            AfterCall::RetryAt(360_000)
        );
        assert_eq!(
            after_call(CallOutcome::Busy, MAX_ATTEMPTS, 0),
            AfterCall::GiveUp
        );
        assert_eq!(
            after_call(CallOutcome::Completed, 1, 0),
            AfterCall::FollowUp
        );
        assert_eq!(
            after_call(CallOutcome::Transferred, 1, 0),
            AfterCall::FollowUp
        );
    }

    #[test]
    fn phases_never_go_back() {
        let mut r = CallRecord {
            context: CallContext {
                request_id: "t:call".into(),
                user_id: UserId::parse("5491155550001").expect("wa"),
                phone_number_id: "PN".into(),
                customer_name: None,
                language: "es".into(),
                summary: String::new(),
                interest: None,
                reason: "r".into(),
                phone: None,
                campaign: None,
            },
            provider: ProviderKind::Vapi,
            phase: CallPhase::Dialing,
            attempts: 1,
            call_id: Some("c".into()),
            due_at_ms: None,
            outcome: None,
            ended_reason: None,
            summary: None,
            followed_up: false,
            version: 1,
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        assert!(r.advance(CallPhase::InProgress));
        assert!(!r.advance(CallPhase::Ringing));
        assert!(r.advance(CallPhase::Ended));
        assert!(!r.advance(CallPhase::InProgress));
        r.phase = CallPhase::Done;
        assert!(!r.advance(CallPhase::Ended));
    }

    #[test]
    fn transfer_targets_are_numbers_or_sip_uris() {
        assert_eq!(
            TransferTarget::parse("+541143215678"),
            Ok(TransferTarget::Number("+541143215678".into()))
        );
        assert_eq!(
            TransferTarget::parse("sip:ventas@pbx.example.com"),
            Ok(TransferTarget::Sip("sip:ventas@pbx.example.com".into()))
        );
        for bad in [
            "541143215678",
            "+0123",
            "sip:pbx",
            "sip:@x",
            "sip:a @b",
            "tel:+5411",
            "",
        ] {
            assert!(TransferTarget::parse(bad).is_err(), "{bad}");
        }
    }
}
