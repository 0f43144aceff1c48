//! escalation: hands conversations to people at the right moment.
//!
//! The escalation queue (SQS FIFO, one group per user) brings four kinds of
//! message ([`EscalationMessage`]):
//! - a turn the bot answered: the policy weighs it (sentiment through the
//!   port, in the conversation's language; requests for a person; keywords;
//!   fallbacks in a row; high-value intents), the decision is kept with its
//!   reasons, and an escalation starts when it says so;
//! - a hand-off request from the playbook or the agent's tool: an
//!   escalation starts (the agent has told the user already);
//! - a user message while people have the conversation: posted to the desk;
//! - the no-human check (from the timer queue): nobody answered within the
//!   profile's limit, so the user is told and offered a call-back.
//!
//! An escalation moves the state bot -> pending_human (conditional write),
//! opens the desk conversation (transcript and reasons as a private note),
//! notifies every notifier, tells the user once, and starts the timer. Each
//! step is marked done when it succeeded, and skipped when marked: a
//! redelivered message repeats nothing that was done. (FIFO groups hand one
//! user's messages to one consumer at a time, so checking the mark before a
//! step and setting it after does not race; a crash between a step and its
//! mark repeats that one step.)
//!
//! [`webhook`] is Chatwoot's way back: agents' replies and resolutions.

#[cfg(feature = "aws")]
pub mod aws;
pub mod config;
pub mod texts;
pub mod webhook;

use std::sync::Arc;

use agent::profile::Hours;
use agent::Profile;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use domain::agent::{CallRequest, CallRequestState};
use domain::escalation::{decide, EscalationNotice, EscalationPolicy, Reason, TranscriptLine};
use domain::handoff::{
    DecisionRecord, EscalationMessage, EscalationRecord, NoHumanCheck, OpenEscalation, TurnEvent,
    UserMessageEvent,
};
use domain::ports::{
    send_and_record, AgentRecords, Clock, ConversationStore, DeskRef, EscalationRecords, HumanDesk,
    MessageSender, Notifier, Queue, QueueMessage, SentimentAnalyzer, Timers, UsageLedger,
};
use domain::usage::UsageEvent;
use domain::whatsapp::outbound::{OutboundMessage, ReplyButton};
use domain::{Conversation, ConversationState, Direction, HandoffRequest, UserId};
use domain::{Error, Result};
use runtime::observability::{self, phone};
use tracing::{info, instrument, warn};

/// Messages of the conversation given to people (desk note, notices).
pub const TRANSCRIPT_MESSAGES: usize = 50;
/// The reply button that asks for a call-back.
pub const CALL_ME_BUTTON_ID: &str = "charla:request_call";
/// Conditional writes lost to another writer before giving up (retryable).
const WRITE_TRIES: usize = 3;

#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: EscalationPolicy,
    pub hours: Hours,
    pub default_language: String,
    /// Nobody answered within this: the user is told, a call-back offered.
    pub no_human_ms: u64,
    /// What the user is told to expect during business hours.
    pub expected_wait_minutes: u64,
    /// When a call-back goes out: the AI call keeps to the calling hours
    /// (`[voice] calling_hours`, `CHARLA_CALLING_HOURS`), not the business's.
    pub calling_hours: domain::voice::CallingHours,
    /// Where people find a conversation in the desk: the conversation id is
    /// appended (Chatwoot: `{url}/app/accounts/{account}/conversations/`).
    pub desk_conversation_url: Option<String>,
    /// The admin API's conversation URL; the wa_id is appended.
    pub admin_conversation_url: Option<String>,
}

impl Settings {
    /// The policy and limits from the agent profile's `[escalation]`.
    pub fn from_profile(profile: &Profile) -> Result<Settings> {
        let e = &profile.escalation;
        let mut policy = EscalationPolicy::default().with_profile_keywords(&e.keywords);
        if let Some(v) = e.negative_threshold {
            policy.negative_threshold = v;
        }
        if let Some(v) = e.negative_streak {
            policy.negative_streak = v;
        }
        if let Some(v) = e.very_negative_threshold {
            policy.very_negative_threshold = Some(v);
        }
        if let Some(v) = e.fallback_streak {
            policy.fallback_streak = v;
        }
        policy.high_value_intents = e.high_value_intents.clone();
        policy.validate()?;
        Ok(Settings {
            policy,
            hours: profile.hours.clone(),
            default_language: profile.default_language().to_string(),
            no_human_ms: e.no_human_minutes.saturating_mul(60_000),
            expected_wait_minutes: e.expected_wait_minutes,
            calling_hours: profile.voice.calling_hours,
            desk_conversation_url: None,
            admin_conversation_url: None,
        })
    }
}

pub struct Deps {
    pub store: Arc<dyn ConversationStore>,
    pub records: Arc<dyn AgentRecords>,
    pub escalations: Arc<dyn EscalationRecords>,
    pub sentiment: Arc<dyn SentimentAnalyzer>,
    /// SNS always (when configured), email when configured.
    pub notifiers: Vec<Arc<dyn Notifier>>,
    pub desk: Option<Arc<dyn HumanDesk>>,
    pub sender: Arc<dyn MessageSender>,
    /// The no-human check; `None`: never checked.
    pub timers: Option<Arc<dyn Timers>>,
    /// Where call-backs go (text-ai's call queue); `None`: none offered.
    pub call_queue: Option<Arc<dyn Queue>>,
    /// Hand-offs by reason, for the numbers and the transcript's timeline.
    pub usage: Arc<dyn UsageLedger>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
}

/// The adapters escalation runs on: AWS ones in Lambda ([`aws::deps`]),
/// embedded ones in the one-process runner.
pub struct Ports {
    pub store: Arc<dyn ConversationStore>,
    pub records: Arc<dyn AgentRecords>,
    pub escalations: Arc<dyn EscalationRecords>,
    pub sentiment: Arc<dyn SentimentAnalyzer>,
    pub notifiers: Vec<Arc<dyn Notifier>>,
    pub sender: Arc<dyn MessageSender>,
    pub timers: Arc<dyn Timers>,
    pub call_queue: Arc<dyn Queue>,
    pub usage: Arc<dyn UsageLedger>,
    pub clock: Arc<dyn Clock>,
}

impl Deps {
    /// The one constructor, for Lambda and the one-process runner: the
    /// policy and limits from the profile, the desk from the config and the
    /// secrets.
    pub fn new(
        config: &config::Settings,
        secrets: &runtime::config::WhatsAppSecrets,
        ports: Ports,
    ) -> Result<Deps> {
        let profile = Profile::load(&config.profile)?;
        let mut settings = Settings::from_profile(&profile)?;
        settings.admin_conversation_url = config.admin_conversation_url.clone();
        if let Some(hours) = config.calling_hours {
            settings.calling_hours = hours;
        }
        let desk = match &config.chatwoot {
            Some(place) => {
                let chatwoot = place.config(secrets)?;
                settings.desk_conversation_url = Some(chatwoot.conversation_url());
                Some(Arc::new(chatwoot.desk()?) as Arc<dyn HumanDesk>)
            }
            None => None,
        };
        Ok(Deps {
            store: ports.store,
            records: ports.records,
            escalations: ports.escalations,
            sentiment: ports.sentiment,
            notifiers: ports.notifiers,
            desk,
            sender: ports.sender,
            timers: Some(ports.timers),
            call_queue: Some(ports.call_queue),
            usage: ports.usage,
            clock: ports.clock,
            settings,
        })
    }
}

/// What a message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The policy kept the bot on.
    Kept,
    /// An escalation is open (new, or this one carried on after a retry).
    Escalated { id: String },
    /// Another escalation is open already: nothing new to tell.
    AlreadyWithPeople,
    /// Passed to the desk (or kept for the admin API when there is none).
    PassedOn,
    /// A call-back was requested.
    CallRequested,
    /// The no-human check came early and was put back.
    NotYet,
    /// The user was told nobody is free.
    ToldNoHuman,
    /// Nothing to do (people answered, the bot has it again, a repeat).
    Nothing,
}

/// The SQS entry point: partial batch failures; a FIFO group stops at its
/// first failure so that its order holds on redelivery.
pub async fn handle_batch(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    runtime::sqs_batch::run(
        event,
        "escalation message",
        runtime::observability::Metric::EscalationFailed,
        |record| async move { handle_record(deps, &record).await },
    )
    .await
}

async fn handle_record(deps: &Deps, record: &SqsMessage) -> Result<Outcome> {
    // A body that does not parse never will: it fails until the queue
    // moves it to the dead-letter queue, where it can be looked at.
    let msg = EscalationMessage::parse(record.body.as_deref().unwrap_or_default())?;
    handle_message(deps, &msg).await
}

#[instrument(skip_all, fields(user_id = %phone(msg.user_id().as_str())))]
pub async fn handle_message(deps: &Deps, msg: &EscalationMessage) -> Result<Outcome> {
    match msg {
        EscalationMessage::Turn(t) => on_turn(deps, t).await,
        EscalationMessage::Handoff(h) => on_handoff(deps, h).await,
        EscalationMessage::UserMessage(m) => on_user_message(deps, m).await,
        EscalationMessage::NoHumanCheck(c) => on_no_human(deps, c).await,
    }
}

async fn conversation(deps: &Deps, user_id: &UserId) -> Result<Conversation> {
    deps.store
        .conversation(user_id)
        .await?
        .ok_or_else(|| Error::NotFound("conversation of an escalation message".into()))
}

/// The conversation's language: the turn's, else the agent's memory, else
/// the profile's default.
async fn language(deps: &Deps, user_id: &UserId, given: &str) -> String {
    if !given.trim().is_empty() {
        return given.to_string();
    }
    match deps.records.memory(user_id).await {
        Ok(m) => m
            .language
            .unwrap_or_else(|| deps.settings.default_language.clone()),
        Err(_) => deps.settings.default_language.clone(),
    }
}

async fn on_turn(deps: &Deps, turn: &TurnEvent) -> Result<Outcome> {
    let conv = conversation(deps, &turn.user_id).await?;
    let lang = language(deps, &turn.user_id, &turn.language).await;
    let id = format!("{}:policy", turn.turn_id);
    if !conv.state.bot_answers() {
        // This turn's own escalation, redelivered after a failed step:
        // carry it on. Otherwise people have it already (a hand-off in the
        // same turn, or an earlier escalation).
        let (record, _) = deps.escalations.escalation(&turn.user_id).await?;
        return match record.open {
            Some(open) if open.id == id => {
                escalate(deps, conv, &id, open.reasons, &lang, false).await
            }
            _ => Ok(Outcome::Nothing),
        };
    }
    // A failed analyzer leaves the streaks alone rather than failing the turn.
    let sentiment = match deps.sentiment.sentiment(&turn.text, &lang).await {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(error = %e, "sentiment unknown for this turn");
            None
        }
    };
    let policy = &deps.settings.policy;
    let signals = policy.signals(
        &turn.turn_id,
        &turn.text,
        sentiment,
        turn.fallback,
        turn.intent.as_deref(),
    );
    let mut decision = None;
    for _ in 0..WRITE_TRIES {
        let (mut record, version) = deps.escalations.escalation(&turn.user_id).await?;
        let (d, next) = decide(policy, &record.policy, &signals);
        if record.policy == next {
            decision = Some(d);
            break;
        }
        record.policy = next;
        if deps
            .escalations
            .save_escalation(&turn.user_id, &record, version)
            .await?
        {
            decision = Some(d);
            break;
        }
    }
    let decision = decision.ok_or_else(|| conflict("the escalation record"))?;
    deps.escalations
        .record_decision(&DecisionRecord {
            user_id: turn.user_id.clone(),
            turn_id: turn.turn_id.clone(),
            decision: decision.clone(),
            sentiment: sentiment.map(|s| s.label.as_str().to_string()),
            negative: sentiment.map(|s| s.negative),
            at_ms: deps.clock.now_ms(),
        })
        .await?;
    let codes: Vec<&str> = decision.reasons.iter().map(Reason::code).collect();
    info!(escalate = decision.escalate, reasons = ?codes, "turn weighed");
    if !decision.escalate {
        return Ok(Outcome::Kept);
    }
    escalate(deps, conv, &id, decision.reasons, &lang, false).await
}

async fn on_handoff(deps: &Deps, req: &HandoffRequest) -> Result<Outcome> {
    let conv = conversation(deps, &req.user_id).await?;
    let lang = language(deps, &req.user_id, "").await;
    let reasons = vec![Reason::Requested {
        source: req.source.clone(),
        reason: req.reason.clone(),
    }];
    // The agent told the user in its answer already.
    escalate(deps, conv, &req.id, reasons, &lang, true).await
}

fn conflict(what: &str) -> Error {
    Error::dependency(
        "escalation",
        format!("{what} kept changing"),
        true,
        "conditional write lost",
    )
}

/// Runs `step` unless `key` is marked done; marks it when it succeeded.
async fn once<F, Fut>(deps: &Deps, key: &str, step: F) -> Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    if deps.escalations.claimed(key).await? {
        return Ok(());
    }
    step().await?;
    deps.escalations.claim(key, deps.clock.now_ms()).await?;
    Ok(())
}

async fn escalate(
    deps: &Deps,
    conv: Conversation,
    id: &str,
    reasons: Vec<Reason>,
    lang: &str,
    user_told: bool,
) -> Result<Outcome> {
    let user_id = conv.user_id.clone();
    // Whether the bot had the conversation when this escalation was asked
    // for: then any other open escalation is stale.
    let fresh = conv.state == ConversationState::Bot || user_told;
    // The agent moved it already for its own requests; the policy moves it here.
    if conv.state == ConversationState::Bot {
        deps.records
            .set_state(
                &user_id,
                ConversationState::Bot,
                ConversationState::PendingHuman,
            )
            .await?;
    }
    let conv = conversation(deps, &user_id).await?;
    if matches!(
        conv.state,
        ConversationState::Bot | ConversationState::Closed
    ) {
        // Handed back (or closed) before this message was handled.
        return Ok(Outcome::Nothing);
    }
    let now = deps.clock.now_ms();
    let mut open = None;
    for _ in 0..WRITE_TRIES {
        let (mut record, version) = deps.escalations.escalation(&user_id).await?;
        match &record.open {
            Some(o) if o.id == id => {
                open = Some((o.clone(), record.desk));
                break;
            }
            // Both callers come from a turn the bot answered, so the
            // conversation was the bot's: an escalation still open is one
            // that was handed back without being closed. This one replaces it.
            Some(o) if !fresh => {
                info!(open = %o.id, "people have this conversation already");
                return Ok(Outcome::AlreadyWithPeople);
            }
            _ => {
                let o = OpenEscalation {
                    id: id.to_string(),
                    reasons: reasons.clone(),
                    opened_at_ms: now,
                    human_joined: false,
                    no_human_told: false,
                };
                record.open = Some(o.clone());
                if deps
                    .escalations
                    .save_escalation(&user_id, &record, version)
                    .await?
                {
                    open = Some((o, record.desk));
                    break;
                }
            }
        }
    }
    let (open, mut desk) = open.ok_or_else(|| conflict("the escalation record"))?;
    let reasons = open.reasons.clone();
    let reason = reasons.first().map_or("unknown", |r| r.code());
    observability::count_by(observability::Metric::Escalated, "Reason", reason, 1);
    let event = UsageEvent::escalation(&user_id, id, open.opened_at_ms, reason);
    runtime::usage::record(deps.usage.as_ref(), &event).await;

    let transcript = transcript(deps, &user_id).await?;
    if let Some(hd) = &deps.desk {
        let key = format!("{id}:desk");
        if !deps.escalations.claimed(&key).await? {
            let d = hd.open_handoff(&conv, &transcript, &reasons).await?;
            deps.escalations.link_desk(&d, &user_id).await?;
            set_desk(deps, &user_id, d).await?;
            deps.escalations.claim(&key, deps.clock.now_ms()).await?;
            desk = Some(d);
        }
    }
    let notice = EscalationNotice {
        id: id.to_string(),
        user_id: user_id.clone(),
        phone_number_id: conv.phone_number_id.clone(),
        contact_name: conv.contact_name.clone(),
        reasons: reasons.clone(),
        summary: deps
            .records
            .memory(&user_id)
            .await
            .ok()
            .map(|m| m.summary)
            .filter(|s| !s.trim().is_empty()),
        excerpt: EscalationNotice::excerpt_of(&transcript),
        desk_url: desk.and_then(|d| {
            deps.settings
                .desk_conversation_url
                .as_ref()
                .map(|u| format!("{u}{}", d.conversation_id))
        }),
        admin_url: deps
            .settings
            .admin_conversation_url
            .as_ref()
            .map(|u| format!("{u}{user_id}")),
        created_at_ms: open.opened_at_ms,
    };
    for (i, n) in deps.notifiers.iter().enumerate() {
        once(deps, &format!("{id}:notify:{i}"), || n.notify(&notice)).await?;
    }
    if !user_told {
        let text = texts::person_coming(
            lang,
            now,
            &deps.settings.hours,
            deps.settings.expected_wait_minutes,
        );
        once(deps, &format!("{id}:told"), || {
            send_text(deps, &conv, OutboundMessage::texts(&text))
        })
        .await?;
    }
    if let Some(timers) = &deps.timers {
        let check = EscalationMessage::NoHumanCheck(NoHumanCheck {
            escalation_id: id.to_string(),
            user_id: user_id.clone(),
            phone_number_id: conv.phone_number_id.clone(),
        });
        let body = check.to_body()?;
        let delay = deps.settings.no_human_ms;
        once(deps, &format!("{id}:timer"), || {
            timers.schedule(&body, delay)
        })
        .await?;
    }
    info!(id, reasons = reasons.len(), "escalated");
    Ok(Outcome::Escalated { id: id.to_string() })
}

async fn set_desk(deps: &Deps, user_id: &UserId, desk: DeskRef) -> Result<()> {
    update_record(deps, user_id, |r| {
        if r.desk == Some(desk) {
            return false;
        }
        r.desk = Some(desk);
        true
    })
    .await
}

/// Applies `change` to the record with a conditional write, retried when
/// another writer came first. `change` returns false when nothing changes.
pub async fn update_record(
    deps: &Deps,
    user_id: &UserId,
    change: impl Fn(&mut EscalationRecord) -> bool,
) -> Result<()> {
    update_escalation(deps.escalations.as_ref(), user_id, change).await
}

/// [`update_record`] on any [`EscalationRecords`] (the webhook uses it too).
pub async fn update_escalation(
    escalations: &dyn EscalationRecords,
    user_id: &UserId,
    change: impl Fn(&mut EscalationRecord) -> bool,
) -> Result<()> {
    for _ in 0..WRITE_TRIES {
        let (mut record, version) = escalations.escalation(user_id).await?;
        if !change(&mut record) {
            return Ok(());
        }
        if escalations
            .save_escalation(user_id, &record, version)
            .await?
        {
            return Ok(());
        }
    }
    Err(conflict("the escalation record"))
}

async fn transcript(deps: &Deps, user_id: &UserId) -> Result<Vec<TranscriptLine>> {
    Ok(deps
        .store
        .recent_messages(user_id, TRANSCRIPT_MESSAGES)
        .await?
        .into_iter()
        .map(|m| TranscriptLine {
            from: match m.direction {
                Direction::Inbound => "user".into(),
                Direction::Outbound => "bot".into(),
            },
            text: m.text,
            at_ms: m.at_ms,
        })
        .collect())
}

/// Sends to the user and records what was sent.
async fn send_text(deps: &Deps, conv: &Conversation, parts: Vec<OutboundMessage>) -> Result<()> {
    for msg in parts {
        send_and_record(
            deps.sender.as_ref(),
            deps.store.as_ref(),
            deps.clock.as_ref(),
            &conv.phone_number_id,
            &conv.user_id,
            &msg,
        )
        .await?;
    }
    Ok(())
}

async fn on_user_message(deps: &Deps, m: &UserMessageEvent) -> Result<Outcome> {
    let conv = conversation(deps, &m.user_id).await?;
    if conv.state.bot_answers() {
        return Ok(Outcome::Nothing);
    }
    let lang = language(deps, &m.user_id, "").await;
    if let Some(queue) = &deps.call_queue {
        if texts::is_call_me(&m.text) {
            // "llámenme al +54 ...": the number they gave.
            let given = agent::text::phone_in(&m.text).and_then(|p| UserId::phone(&p).ok());
            let now = deps.clock.now_ms();
            let hours = &deps.settings.hours;
            // In the zone of the number called, as call-trigger places it.
            let zone = agent::timezone::for_user_id(given.as_ref().unwrap_or(&m.user_id))
                .map_or_else(|| hours.time_zone.clone(), |(_, tz)| tz);
            let later = match domain::voice::calling_window(now, deps.settings.calling_hours, &zone)
            {
                domain::voice::CallWindow::At(t) if t > now => Some(t),
                _ => None,
            };
            let request = CallRequest {
                id: format!("{}:call", m.wamid),
                user_id: m.user_id.clone(),
                phone_number_id: m.phone_number_id.clone(),
                reason: "no person was free for the escalated conversation".into(),
                when_ms: later,
                language: lang.clone(),
                state: CallRequestState::Requested,
                created_at_ms: deps.clock.now_ms(),
                phone: given,
                campaign: None,
            };
            deps.records.save_call_request(&request).await?;
            queue
                .send(&QueueMessage {
                    group_id: format!("{}:{}", m.phone_number_id, m.user_id),
                    dedup_id: request.id.clone(),
                    body: serde_json::to_string(&request)?,
                })
                .await?;
            let when = later.map(|t| agent::schedule::format_local(t, hours, &lang));
            let text = texts::call_requested(&lang, when.as_deref());
            once(deps, &format!("{}:call-told", m.wamid), || {
                send_text(deps, &conv, OutboundMessage::texts(&text))
            })
            .await?;
            return Ok(Outcome::CallRequested);
        }
    }
    let (record, _) = deps.escalations.escalation(&m.user_id).await?;
    // Without a desk, people read it in the admin API's transcript.
    if let (Some(desk), Some(d)) = (&deps.desk, record.desk) {
        let text = if m.message_type == "text" {
            m.text.clone()
        } else {
            format!("[{}] {}", m.message_type, m.text)
        };
        once(deps, &format!("{}:to-desk", m.wamid), || {
            desk.post_incoming(&d, &text)
        })
        .await?;
    }
    Ok(Outcome::PassedOn)
}

async fn on_no_human(deps: &Deps, check: &NoHumanCheck) -> Result<Outcome> {
    let (record, _) = deps.escalations.escalation(&check.user_id).await?;
    let Some(open) = record.open.filter(|o| o.id == check.escalation_id) else {
        return Ok(Outcome::Nothing);
    };
    if open.human_joined || open.no_human_told {
        return Ok(Outcome::Nothing);
    }
    let conv = conversation(deps, &check.user_id).await?;
    if conv.state != ConversationState::PendingHuman {
        return Ok(Outcome::Nothing);
    }
    let now = deps.clock.now_ms();
    let due = open
        .opened_at_ms
        .saturating_add(i64::try_from(deps.settings.no_human_ms).unwrap_or(i64::MAX));
    if now < due {
        // Early (a queue's delay is capped, or shorter): check again later.
        if let Some(timers) = &deps.timers {
            let left = u64::try_from(due - now).unwrap_or(0);
            timers
                .schedule(
                    &EscalationMessage::NoHumanCheck(check.clone()).to_body()?,
                    left,
                )
                .await?;
        }
        return Ok(Outcome::NotYet);
    }
    let lang = language(deps, &check.user_id, "").await;
    let offer_call = deps.call_queue.is_some();
    let body = texts::no_human(&lang, offer_call);
    let msg = if offer_call {
        OutboundMessage::buttons(
            body.clone(),
            vec![ReplyButton {
                id: CALL_ME_BUTTON_ID.into(),
                title: texts::call_me_title(&lang).into(),
            }],
        )
        .unwrap_or(OutboundMessage::Text { body })
    } else {
        OutboundMessage::Text { body }
    };
    let id = check.escalation_id.clone();
    once(deps, &format!("{id}:no-human"), || {
        send_text(deps, &conv, vec![msg])
    })
    .await?;
    update_record(deps, &check.user_id, |r| match &mut r.open {
        Some(o) if o.id == id && !o.no_human_told => {
            o.no_human_told = true;
            true
        }
        _ => false,
    })
    .await?;
    observability::count(observability::Metric::NoHumanInTime, 1);
    Ok(Outcome::ToldNoHuman)
}
