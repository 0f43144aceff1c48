//! Campaigns: AI calls and WhatsApp templates to the contacts of a
//! spreadsheet, each at the right local time, never over the limits. The
//! rules only: what an operator may ask for, when a contact may be called,
//! what follows each outcome, and what one dispatcher tick does. The stores,
//! the queue and the clock are the callers'.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conversation::UserId;
use crate::voice::{CallOutcome, CallingHours};

/// The most calls one campaign may have in flight (the provider's own
/// concurrency is the real cap; this bounds a typo).
pub const MAX_CONCURRENT: u32 = 200;
/// How far ahead a schedule looks for an allowed day (a year of holidays).
const SEARCH_DAYS: i32 = 370;
const MINUTE_MS: i64 = 60_000;

/// How a campaign reaches its contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// An AI phone call.
    Call,
    /// An approved WhatsApp template.
    Whatsapp,
    /// The template first; the call after the user answers it, or after
    /// `call_after_minutes` without an answer.
    WhatsappThenCall,
}

impl Channel {
    pub fn calls(self) -> bool {
        matches!(self, Channel::Call | Channel::WhatsappThenCall)
    }

    pub fn messages(self) -> bool {
        matches!(self, Channel::Whatsapp | Channel::WhatsappThenCall)
    }
}

/// The approved template a campaign sends, and which columns fill its
/// body parameters (`{{1}}`, `{{2}}`, ... in order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// How often, and how long after, a call that ended one way is tried again.
/// `attempts` counts every call to the contact, the first included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRule {
    pub attempts: u32,
    pub retry_after_minutes: u32,
}

/// The retry rule per outcome that can be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retries {
    #[serde(default = "Retries::no_answer")]
    pub no_answer: RetryRule,
    #[serde(default = "Retries::busy")]
    pub busy: RetryRule,
    #[serde(default = "Retries::voicemail")]
    pub voicemail: RetryRule,
    #[serde(default = "Retries::failed")]
    pub failed: RetryRule,
}

impl Retries {
    fn no_answer() -> RetryRule {
        RetryRule {
            attempts: 3,
            retry_after_minutes: 120,
        }
    }
    fn busy() -> RetryRule {
        RetryRule {
            attempts: 3,
            retry_after_minutes: 15,
        }
    }
    fn voicemail() -> RetryRule {
        RetryRule {
            attempts: 2,
            retry_after_minutes: 240,
        }
    }
    fn failed() -> RetryRule {
        RetryRule {
            attempts: 2,
            retry_after_minutes: 30,
        }
    }

    /// The rule for `outcome`; `None` for outcomes that are not retried.
    pub fn rule(&self, outcome: CallOutcome) -> Option<RetryRule> {
        match outcome {
            CallOutcome::NoAnswer => Some(self.no_answer),
            CallOutcome::Busy => Some(self.busy),
            CallOutcome::Voicemail => Some(self.voicemail),
            CallOutcome::Failed => Some(self.failed),
            CallOutcome::Completed | CallOutcome::Transferred => None,
        }
    }
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            no_answer: Retries::no_answer(),
            busy: Retries::busy(),
            voicemail: Retries::voicemail(),
            failed: Retries::failed(),
        }
    }
}

/// What an operator posts to create a campaign (`POST /admin/campaigns`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub name: String,
    pub channel: Channel,
    #[serde(default)]
    pub template: Option<TemplateSpec>,
    /// `HH:MM-HH:MM` in each contact's own time zone.
    #[serde(default = "CampaignSpec::default_window")]
    pub window: String,
    /// `mon`..`sun`; default Monday to Friday.
    #[serde(default = "CampaignSpec::default_days")]
    pub days: Vec<String>,
    /// Dates (`YYYY-MM-DD`, local to each contact) on which nobody is
    /// called or messaged.
    #[serde(default)]
    pub holidays: Vec<Date>,
    #[serde(default = "CampaignSpec::default_max_concurrent")]
    pub max_concurrent: u32,
    #[serde(default)]
    pub retries: Retries,
    /// Not before this instant (RFC 3339).
    #[serde(default)]
    pub start_at: Option<Timestamp>,
    /// `whatsapp_then_call`: call this long after the template when the
    /// user has not answered it.
    #[serde(default = "CampaignSpec::default_call_after")]
    pub call_after_minutes: u32,
    /// The voice provider's assistant (Vapi) or agent (Retell) for these
    /// calls, instead of the configured one.
    #[serde(default)]
    pub assistant: Option<String>,
    /// For contacts without a `time_zone` column value; default: the
    /// business's.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// ISO 3166 alpha-2 country for numbers written without `+`.
    #[serde(default)]
    pub default_country: Option<String>,
}

impl CampaignSpec {
    fn default_window() -> String {
        "09:00-20:00".into()
    }
    fn default_days() -> Vec<String> {
        ["mon", "tue", "wed", "thu", "fri"]
            .map(String::from)
            .to_vec()
    }
    fn default_max_concurrent() -> u32 {
        5
    }
    fn default_call_after() -> u32 {
        24 * 60
    }

    /// Checks what JSON cannot say; answers the calling schedule. Each
    /// problem names the field.
    pub fn validate(&self) -> Result<CallingSchedule, String> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 120 {
            return Err("name: 1 to 120 characters".into());
        }
        match (&self.template, self.channel.messages()) {
            (None, true) => return Err("template: required for a WhatsApp channel".into()),
            (Some(_), false) => return Err("template: only for the whatsapp channels".into()),
            (Some(t), true) => {
                if t.name.trim().is_empty() || t.name.len() > 512 {
                    return Err("template.name: required".into());
                }
                if t.language.trim().is_empty() || t.language.len() > 15 {
                    return Err("template.language: required (es, en_US, pt_BR...)".into());
                }
                if t.parameters.len() > 20 {
                    return Err("template.parameters: at most 20".into());
                }
            }
            (None, false) => {}
        }
        if self.max_concurrent == 0 || self.max_concurrent > MAX_CONCURRENT {
            return Err(format!("max_concurrent: 1 to {MAX_CONCURRENT}"));
        }
        for (outcome, rule) in [
            ("no_answer", self.retries.no_answer),
            ("busy", self.retries.busy),
            ("voicemail", self.retries.voicemail),
            ("failed", self.retries.failed),
        ] {
            if rule.attempts == 0 || rule.attempts > 10 {
                return Err(format!("retries.{outcome}.attempts: 1 to 10"));
            }
            if rule.retry_after_minutes > 7 * 24 * 60 {
                return Err(format!(
                    "retries.{outcome}.retry_after_minutes: at most a week"
                ));
            }
        }
        if let Some(a) = &self.assistant {
            if a.trim().is_empty() || a.len() > 200 {
                return Err("assistant: 1 to 200 characters".into());
            }
        }
        if let Some(c) = &self.default_country {
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err("default_country: a two-letter country code (AR, MX, BR)".into());
            }
        }
        let schedule = CallingSchedule::new(&self.window, &self.days, &self.holidays)?;
        if self.holidays.len() > 400 {
            return Err("holidays: at most 400 dates".into());
        }
        Ok(schedule)
    }
}

/// When contacts may be reached: a daily window on some weekdays, in each
/// contact's own zone, except holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingSchedule {
    open: jiff::civil::Time,
    close: jiff::civil::Time,
    days: [bool; 7],
    holidays: BTreeSet<Date>,
}

/// A weekday in English, Spanish or Portuguese, by its first three letters
/// (accents ignored): `mon`, `lunes`, `sáb`, `quarta`...
fn weekday(s: &str) -> Option<Weekday> {
    let folded: String = crate::text::fold(s).trim().chars().take(3).collect();
    Some(match folded.as_str() {
        "mon" | "lun" | "seg" => Weekday::Monday,
        "tue" | "mar" | "ter" => Weekday::Tuesday,
        "wed" | "mie" | "qua" => Weekday::Wednesday,
        "thu" | "jue" | "qui" => Weekday::Thursday,
        "fri" | "vie" | "sex" => Weekday::Friday,
        "sat" | "sab" => Weekday::Saturday,
        "sun" | "dom" => Weekday::Sunday,
        _ => return None,
    })
}

impl CallingSchedule {
    pub fn new(window: &str, days: &[String], holidays: &[Date]) -> Result<Self, String> {
        let (open, close) = match CallingHours::parse(window) {
            Ok(CallingHours::Window { open, close }) => (open, close),
            Ok(CallingHours::Always) => (jiff::civil::Time::midnight(), jiff::civil::Time::MAX),
            Err(e) => return Err(format!("window: {e}")),
        };
        let mut allowed = [false; 7];
        for d in days {
            let day =
                weekday(d).ok_or_else(|| format!("days: {d:?} is not a weekday (mon..sun)"))?;
            allowed[day.to_monday_zero_offset() as usize] = true;
        }
        if !allowed.iter().any(|d| *d) {
            return Err("days: at least one weekday".into());
        }
        Ok(CallingSchedule {
            open,
            close,
            days: allowed,
            holidays: holidays.iter().copied().collect(),
        })
    }

    fn day_allowed(&self, date: Date) -> bool {
        self.days[date.weekday().to_monday_zero_offset() as usize] && !self.holidays.contains(&date)
    }

    /// Whether a contact in `tz` may be reached at `at_ms`.
    pub fn allows(&self, at_ms: i64, tz: &TimeZone) -> bool {
        self.next_allowed(at_ms, tz) == Some(at_ms)
    }

    /// The first instant at or after `at_ms` at which a contact in `tz` may
    /// be reached; `None` when no day in the next year is allowed.
    pub fn next_allowed(&self, at_ms: i64, tz: &TimeZone) -> Option<i64> {
        let local = Timestamp::from_millisecond(at_ms)
            .ok()?
            .to_zoned(tz.clone());
        let today = local.date();
        for offset in 0..SEARCH_DAYS {
            let date = today.checked_add(jiff::Span::new().days(offset)).ok()?;
            if !self.day_allowed(date) {
                continue;
            }
            let opens = date.to_datetime(self.open).to_zoned(tz.clone()).ok()?;
            let closes = date.to_datetime(self.close).to_zoned(tz.clone()).ok()?;
            let (opens, closes) = (
                opens.timestamp().as_millisecond(),
                closes.timestamp().as_millisecond(),
            );
            if at_ms < opens {
                return Some(opens);
            }
            if at_ms < closes {
                return Some(at_ms);
            }
        }
        None
    }
}

/// Where a campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Contacts may be uploaded (again); nothing is sent.
    Draft,
    Running,
    /// No new dial or template; calls in progress finish.
    Paused,
    Cancelled,
    /// Every contact reached a final state.
    Completed,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::Cancelled => "cancelled",
            CampaignState::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => CampaignState::Draft,
            "running" => CampaignState::Running,
            "paused" => CampaignState::Paused,
            "cancelled" => CampaignState::Cancelled,
            "completed" => CampaignState::Completed,
            _ => return None,
        })
    }
}

/// What an operator does to a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    Start,
    Pause,
    Resume,
    Cancel,
}

impl CampaignAction {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "start" => CampaignAction::Start,
            "pause" => CampaignAction::Pause,
            "resume" => CampaignAction::Resume,
            "cancel" => CampaignAction::Cancel,
            _ => return None,
        })
    }

    /// The states the action may be taken from, and the state it leads to.
    pub fn transition(self) -> (&'static [CampaignState], CampaignState) {
        use CampaignState::*;
        match self {
            CampaignAction::Start => (&[Draft], Running),
            CampaignAction::Pause => (&[Running], Paused),
            CampaignAction::Resume => (&[Paused], Running),
            CampaignAction::Cancel => (&[Draft, Running, Paused], Cancelled),
        }
    }
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub spec: CampaignSpec,
    pub state: CampaignState,
    /// The current upload's id: contacts of earlier uploads are not the
    /// campaign's (an upload replaces them in one write).
    pub upload: Option<String>,
    pub contacts: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// An upload still being written: the campaign keeps its earlier
    /// contacts until it is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportState>,
}

impl Campaign {
    /// A new draft, without contacts.
    pub fn draft(id: impl Into<String>, spec: CampaignSpec, now_ms: i64) -> Campaign {
        Campaign {
            id: id.into(),
            spec,
            state: CampaignState::Draft,
            upload: None,
            contacts: 0,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            import: None,
        }
    }
}

/// How far the writing of an upload has come (a large one, on DynamoDB, is
/// written over several steps, see `CampaignStore::import_step`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportState {
    pub upload: String,
    pub total: u64,
    pub written: u64,
}

/// Where one contact of a campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactState {
    /// Not reached yet; due at `next_at_ms` once the campaign runs.
    Pending,
    /// Reached before; due again at `next_at_ms` (a retry, or the call
    /// after the template).
    Scheduled,
    /// A call is in flight (counts against `max_concurrent`).
    Calling,
    /// The call was answered (or transferred to a person).
    Answered,
    NoAnswer,
    Busy,
    Voicemail,
    Failed,
    /// On the do-not-contact list: never reached.
    OptedOut,
    /// The template went out and nothing else follows (or the user answered
    /// it and talks with the agent).
    Done,
}

impl ContactState {
    pub const ALL: [ContactState; 10] = [
        ContactState::Pending,
        ContactState::Scheduled,
        ContactState::Calling,
        ContactState::Answered,
        ContactState::NoAnswer,
        ContactState::Busy,
        ContactState::Voicemail,
        ContactState::Failed,
        ContactState::OptedOut,
        ContactState::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContactState::Pending => "pending",
            ContactState::Scheduled => "scheduled",
            ContactState::Calling => "calling",
            ContactState::Answered => "answered",
            ContactState::NoAnswer => "no_answer",
            ContactState::Busy => "busy",
            ContactState::Voicemail => "voicemail",
            ContactState::Failed => "failed",
            ContactState::OptedOut => "opted_out",
            ContactState::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ContactState::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Waiting for its time (the dispatcher's to pick).
    pub fn is_waiting(self) -> bool {
        matches!(self, ContactState::Pending | ContactState::Scheduled)
    }

    /// Nothing more happens to it.
    pub fn is_final(self) -> bool {
        !self.is_waiting() && self != ContactState::Calling
    }

    /// The final state of an outcome whose retries are used up.
    fn of_outcome(outcome: CallOutcome) -> ContactState {
        match outcome {
            CallOutcome::Completed | CallOutcome::Transferred => ContactState::Answered,
            CallOutcome::NoAnswer => ContactState::NoAnswer,
            CallOutcome::Busy => ContactState::Busy,
            CallOutcome::Voicemail => ContactState::Voicemail,
            CallOutcome::Failed => ContactState::Failed,
        }
    }
}

/// One try to reach a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// `call` or `whatsapp`.
    pub channel: String,
    pub at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<CallOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What the voice agent extracted (the provider's structured data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Value>,
    /// The provider's call id, or the template's wamid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl Attempt {
    /// A try on `channel` (`call`, `whatsapp`) at `at_ms`, its outcome to come.
    pub fn new(channel: &str, at_ms: i64) -> Attempt {
        Attempt {
            channel: channel.to_string(),
            at_ms,
            outcome: None,
            duration_secs: None,
            summary: None,
            results: None,
            reference: None,
        }
    }
}

/// One contact of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignContact {
    pub campaign_id: String,
    /// The spreadsheet row it came from: its key within the campaign.
    pub row: u32,
    pub phone: UserId,
    pub name: Option<String>,
    /// IANA zone name: the contact's own, else the campaign's.
    pub time_zone: String,
    pub language: Option<String>,
    pub variables: BTreeMap<String, String>,
    pub state: ContactState,
    /// When it is due (waiting states only).
    pub next_at_ms: Option<i64>,
    pub attempts: Vec<Attempt>,
    /// What the contact wrote back on WhatsApp, oldest first, at most
    /// [`MAX_REPLIES`].
    #[serde(default)]
    pub replies: Vec<Reply>,
    /// Moves by one with every change: the condition of every write.
    pub version: u64,
}

/// The zone `name` names; UTC for a name this build does not know (uploads
/// check zones, so only an older upload under a newer tz database).
pub fn zone_named(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

impl CampaignContact {
    /// The contact's own time zone.
    pub fn zone(&self) -> TimeZone {
        zone_named(&self.time_zone)
    }

    /// The contact as the next write will store it (one version on: the
    /// store writes it only over this version).
    pub fn next(&self) -> CampaignContact {
        let mut n = self.clone();
        n.version += 1;
        n
    }

    /// Calls placed so far.
    pub fn calls(&self) -> u32 {
        let n = self.attempts.iter().filter(|a| a.channel == "call").count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    pub fn template_sent(&self) -> bool {
        self.attempts.iter().any(|a| a.channel == "whatsapp")
    }

    /// The contact with those of `messages` it has not recorded yet (by
    /// wamid: a retried turn adds nothing twice), one version on; `None`
    /// when there is nothing new. Keeps the newest [`MAX_REPLIES`], each cut
    /// to [`MAX_REPLY_CHARS`].
    pub fn with_replies(&self, messages: &[Reply]) -> Option<CampaignContact> {
        let new: Vec<&Reply> = messages
            .iter()
            .filter(|m| !m.text.trim().is_empty())
            .filter(|m| !self.replies.iter().any(|r| r.wamid == m.wamid))
            .collect();
        if new.is_empty() {
            return None;
        }
        let mut next = self.next();
        next.replies.extend(new.into_iter().map(|m| Reply {
            wamid: m.wamid.clone(),
            at_ms: m.at_ms,
            text: m.text.chars().take(MAX_REPLY_CHARS).collect(),
        }));
        let over = next.replies.len().saturating_sub(MAX_REPLIES);
        next.replies.drain(..over);
        Some(next)
    }

    /// What happens next, said to the operator in the report.
    pub fn next_step(&self) -> String {
        match (self.state, self.next_at_ms) {
            (ContactState::Pending, _) => "first contact when due".into(),
            (ContactState::Scheduled, Some(t)) => match Timestamp::from_millisecond(t) {
                Ok(ts) => format!("try again at {ts}"),
                Err(_) => "try again".into(),
            },
            (ContactState::Scheduled, None) => "try again".into(),
            (ContactState::Calling, _) => "call in progress".into(),
            (ContactState::OptedOut, _) => "do not contact".into(),
            (ContactState::Answered, _) | (ContactState::Done, _) => "none".into(),
            _ => "none: attempts used up".into(),
        }
    }
}

/// Replies kept per contact (the conversation keeps them all).
pub const MAX_REPLIES: usize = 50;
/// Characters kept of each reply.
pub const MAX_REPLY_CHARS: usize = 1000;
/// How long after a campaign reached a number a message from it is a reply
/// to the campaign.
pub const REPLY_WINDOW_MS: i64 = 30 * 24 * 60 * MINUTE_MS;

/// A WhatsApp message from a campaign's contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub wamid: String,
    pub at_ms: i64,
    pub text: String,
}

/// The campaign that last reached a number (a template sent, a call
/// placed): a message from that number within [`REPLY_WINDOW_MS`] is a
/// reply to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touch {
    pub phone: UserId,
    pub campaign_id: String,
    pub row: u32,
    pub at_ms: i64,
}

impl Touch {
    /// Whether a message at `now_ms` still answers this touch.
    pub fn current(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.at_ms) <= REPLY_WINDOW_MS
    }
}

/// What the agent is told about the campaign that reached the user it is
/// talking to: the campaign's name, how it reached them, and the contact's
/// spreadsheet columns (operator data, given as data).
pub fn agent_context(campaign: &Campaign, contact: &CampaignContact) -> String {
    let how = match (campaign.spec.channel, &campaign.spec.template) {
        (Channel::Call, _) => "an AI phone call".to_string(),
        (_, Some(t)) => format!("the WhatsApp template \"{}\"", t.name),
        (_, None) => "WhatsApp".to_string(),
    };
    let mut s = format!(
        "This user was reached by the business's campaign \"{}\" ({how}); \
         their message may answer it. What the business's list says about them:",
        campaign.spec.name
    );
    if let Some(name) = &contact.name {
        s.push_str(&format!("\n- name: {name}"));
    }
    for (k, v) in &contact.variables {
        s.push_str(&format!("\n- {k}: {v}"));
    }
    for a in contact.attempts.iter().filter(|a| a.summary.is_some()) {
        if let Some(summary) = &a.summary {
            s.push_str(&format!("\n- the earlier {}: {summary}", a.channel));
        }
    }
    s
}

/// A campaign's call on the call queue: the contact it is for and which of
/// its calls it is. call-trigger places it only while the contact is
/// `calling` with that many calls (the campaign's consent: the operator's
/// upload, not the user's request); the voice webhooks bring its outcome
/// back to the contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignCall {
    pub campaign_id: String,
    pub row: u32,
    /// 1 for the contact's first call.
    pub attempt: u32,
    /// The voice provider's assistant (Vapi) or agent (Retell) override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The contact's columns, for the voice agent's prompt.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// A number on the do-not-contact list: every campaign checks it before
/// each dial and each template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOut {
    pub phone: UserId,
    pub reason: String,
    /// `whatsapp` (they wrote STOP), `call` (they asked on the call),
    /// `operator`, `meta` (marketing stopped in WhatsApp).
    pub source: String,
    pub at_ms: i64,
}

/// What a user writes on WhatsApp to leave every campaign, by language
/// (folded: lowercase, no accents).
const OPT_OUT_PHRASES: &[(&str, &str)] = &[
    ("en", "stop"),
    ("en", "unsubscribe"),
    ("en", "do not call me"),
    ("en", "dont call me"),
    ("en", "stop calling me"),
    ("en", "stop messaging me"),
    ("es", "baja"),
    ("es", "darme de baja"),
    ("es", "no me llamen"),
    ("es", "no me llames"),
    ("es", "no me contacten"),
    ("es", "no me escriban"),
    ("pt", "parar"),
    ("pt", "sair"),
    ("pt", "cancelar inscricao"),
    ("pt", "nao me ligue"),
    ("pt", "nao me liguem"),
    ("pt", "nao me mandem mensagens"),
];

/// The language of an opt-out request, when `text` is one: the phrase with
/// at most two words around it ("STOP", "BAJA por favor", "no me llamen
/// más"), so that a sentence that merely holds the word ("no puedo parar de
/// reír") is not one. `extra` adds a business's own phrases, as
/// `(language, phrase)`. `parar` is Spanish and Portuguese: answered in
/// Portuguese only when nothing else says Spanish.
pub fn opt_out_request<'a>(text: &str, extra: &'a [(String, String)]) -> Option<&'a str> {
    let folded = crate::text::fold(text);
    let words = folded.split_whitespace().count();
    if words == 0 {
        return None;
    }
    let fits = |phrase: &str| {
        let p = crate::text::fold(phrase);
        let n = p.split_whitespace().count();
        n > 0 && words <= n + 2 && crate::text::has_phrase(&folded, &p)
    };
    if fits("parar") {
        let spanish = ["por favor", "ya", "ahora"]
            .iter()
            .any(|w| fits(&format!("parar {w}")));
        return Some(if spanish { "es" } else { "pt" });
    }
    OPT_OUT_PHRASES
        .iter()
        .find(|(_, p)| fits(p))
        .map(|(lang, _)| *lang)
        .or_else(|| {
            extra
                .iter()
                .find(|(_, p)| fits(p))
                .map(|(lang, _)| lang.as_str())
        })
}

/// The structured results keys (the voice agent's extraction) that say
/// the person asked not to be contacted again.
pub const NO_CONTACT_KEYS: [&str; 3] = ["do_not_contact", "opt_out", "do_not_call"];

/// Whether a call's structured results say the person asked not to be
/// contacted again: one of [`NO_CONTACT_KEYS`] true (or "true", "yes",
/// "sí", "sim").
pub fn asks_no_contact(results: &Value) -> bool {
    NO_CONTACT_KEYS
        .iter()
        .filter_map(|k| results.get(k))
        .any(|v| match v {
            Value::Bool(b) => *b,
            Value::String(s) => {
                matches!(crate::text::fold(s).trim(), "true" | "yes" | "si" | "sim")
            }
            _ => false,
        })
}

/// What the user is told once they are on the do-not-contact list.
pub fn opt_out_confirmation(lang: &str) -> &'static str {
    match lang {
        "en" => "Done: we won't call or message you again for our campaigns. If you change your mind, just write to us.",
        "pt" => "Pronto: não vamos mais ligar nem mandar mensagens das nossas campanhas. Se mudar de ideia, é só escrever.",
        _ => "Listo: no te vamos a llamar ni escribir más por nuestras campañas. Si cambiás de idea, escribinos.",
    }
}

/// What follows a call that ended with `outcome` (the attempt already in
/// `contact.attempts`): the contact's new state and when it is due.
pub fn after_call(
    spec: &CampaignSpec,
    schedule: &CallingSchedule,
    contact: &CampaignContact,
    outcome: CallOutcome,
    now_ms: i64,
    tz: &TimeZone,
) -> (ContactState, Option<i64>) {
    match spec.retries.rule(outcome) {
        Some(rule) if contact.calls() < rule.attempts => {
            let wanted = now_ms + i64::from(rule.retry_after_minutes) * MINUTE_MS;
            match schedule.next_allowed(wanted, tz) {
                Some(at) => (ContactState::Scheduled, Some(at)),
                None => (ContactState::of_outcome(outcome), None),
            }
        }
        _ => (ContactState::of_outcome(outcome), None),
    }
}

/// What follows the template for a contact: done for `whatsapp`; for
/// `whatsapp_then_call`, the call `call_after_minutes` later (sooner if the
/// user answers, see [`after_reply`]).
pub fn after_template(
    spec: &CampaignSpec,
    schedule: &CallingSchedule,
    now_ms: i64,
    tz: &TimeZone,
) -> (ContactState, Option<i64>) {
    if spec.channel != Channel::WhatsappThenCall {
        return (ContactState::Done, None);
    }
    let wanted = now_ms + i64::from(spec.call_after_minutes) * MINUTE_MS;
    match schedule.next_allowed(wanted, tz) {
        Some(at) => (ContactState::Scheduled, Some(at)),
        None => (ContactState::Done, None),
    }
}

/// What a reply to the campaign changes: for `whatsapp_then_call`, the
/// call waiting after the template comes forward to the next allowed
/// moment; for `whatsapp`, a contact done with its template counts as
/// answered. `None`: the state stays.
pub fn after_reply(
    spec: &CampaignSpec,
    schedule: &CallingSchedule,
    contact: &CampaignContact,
    now_ms: i64,
    tz: &TimeZone,
) -> Option<(ContactState, Option<i64>)> {
    match spec.channel {
        Channel::WhatsappThenCall
            if contact.state == ContactState::Scheduled && contact.calls() == 0 =>
        {
            let at = schedule.next_allowed(now_ms, tz)?;
            (contact.next_at_ms != Some(at) && contact.next_at_ms.is_none_or(|t| t > at))
                .then_some((ContactState::Scheduled, Some(at)))
        }
        Channel::Whatsapp if contact.state == ContactState::Done => {
            Some((ContactState::Answered, None))
        }
        _ => None,
    }
}

/// What the dispatcher does with one due contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Place the call now.
    Call,
    /// Send the template now.
    Template,
    /// Not inside the contact's window now: due again then.
    Defer(i64),
    /// On the do-not-contact list.
    OptOut,
    /// No allowed moment in the coming year (no day allowed around the
    /// holidays): nothing will ever be sent.
    Never,
}

/// The room one tick has: the campaign's `max_concurrent` less its calls in
/// flight, and the business number's own limit less all calls in flight.
pub fn call_room(spec: &CampaignSpec, campaign_in_flight: u32, number_room: u32) -> u32 {
    spec.max_concurrent
        .saturating_sub(campaign_in_flight)
        .min(number_room)
}

/// One dispatcher tick for a running campaign: a decision per due contact
/// (oldest due first, as given), calls only while there is room (`room`,
/// from [`call_room`]). `opted_out` says whether a number is on the
/// do-not-contact list; `zone` resolves a contact's zone name. Contacts
/// beyond the room are left for the next tick (absent from the answer).
pub fn plan_tick<'a>(
    spec: &CampaignSpec,
    schedule: &CallingSchedule,
    due: &'a [CampaignContact],
    room: u32,
    now_ms: i64,
    opted_out: impl Fn(&UserId) -> bool,
    zone: impl Fn(&str) -> TimeZone,
) -> Vec<(&'a CampaignContact, Decision)> {
    let mut room = room;
    let mut out = Vec::new();
    for contact in due {
        if !contact.state.is_waiting() {
            continue;
        }
        if opted_out(&contact.phone) {
            out.push((contact, Decision::OptOut));
            continue;
        }
        let tz = zone(&contact.time_zone);
        match schedule.next_allowed(now_ms, &tz) {
            None => out.push((contact, Decision::Never)),
            Some(at) if at > now_ms => out.push((contact, Decision::Defer(at))),
            Some(_) => {
                let template_first = spec.channel.messages() && !contact.template_sent();
                if template_first {
                    out.push((contact, Decision::Template));
                } else if spec.channel.calls() {
                    if room == 0 {
                        continue;
                    }
                    room -= 1;
                    out.push((contact, Decision::Call));
                }
            }
        }
    }
    out
}

/// When a newly started campaign's contact is first due: the start (or
/// now), moved into the contact's window.
pub fn first_due(
    spec: &CampaignSpec,
    schedule: &CallingSchedule,
    now_ms: i64,
    tz: &TimeZone,
) -> Option<i64> {
    let start = spec
        .start_at
        .map(|t| t.as_millisecond())
        .unwrap_or(now_ms)
        .max(now_ms);
    schedule.next_allowed(start, tz)
}

#[cfg(test)]
mod tests;
