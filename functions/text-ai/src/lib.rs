//! text-ai: answers each user turn. Context from the store, the responder
//! decides, the Graph API sends.
//!
//! Idempotency: the answer is recorded (claimed) under the wamid of the
//! first message it answers before anything is sent, and each part sent is
//! recorded as it is accepted. A retry after a crash sends the same answer,
//! only the parts not yet recorded as sent; so nothing is answered twice
//! except a part whose send was in flight at the crash.
//!
//! Bursts: a job waits until the user has been quiet for the debounce, then
//! answers every unanswered message at once. FIFO groups hold the later
//! jobs of the same user back meanwhile, and they find their messages
//! already answered.

#[cfg(feature = "aws")]
pub mod aws;
pub mod campaign_reply;
pub mod config;
pub mod escalation_hook;
pub mod media_hold;

use domain::identity::{self, IdentityLinks};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use domain::ports::{
    AgentRecords, CampaignStore, Clock, ConversationStore, MediaNotes, MessageSender, Queue,
    Responder, TurnInput, TurnNote, UsageLedger,
};
use domain::usage::{Sent, UsageEvent};
use domain::whatsapp::errors::GraphErrorClass;
use domain::whatsapp::outbound::OutboundMessage;
use domain::{ClaimOutcome, SentRecord, TurnJob, TurnRecord, TurnState};
use domain::{Error, Result};
use runtime::config::WhatsAppSecrets;
use runtime::observability::{self, phone};
use tracing::{info, instrument, warn};

/// How the handler answers (no ports here: those are in [`Deps`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Quiet time after the last user message before answering.
    pub debounce_ms: u64,
    /// Longest a job keeps waiting for a user who keeps typing.
    pub max_wait_ms: u64,
    /// Earlier messages given to the responder.
    pub history_limit: usize,
    /// Template sent when free text is not allowed (outside the window).
    pub reengage_template: Option<(String, String)>,
    /// Longest a media message holds its turn without a note.
    pub media_hold_ms: i64,
    /// A business's own opt-out phrases, (language, phrase): the profile's
    /// `[campaigns] opt_out_words` and `CHARLA_OPT_OUT_WORDS`.
    pub opt_out_words: Vec<(String, String)>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            debounce_ms: 1500,
            max_wait_ms: 20_000,
            history_limit: 20,
            reengage_template: None,
            media_hold_ms: media_hold::DEFAULT_HOLD_MS,
            opt_out_words: Vec::new(),
        }
    }
}

pub struct Deps {
    pub store: Arc<dyn ConversationStore>,
    /// The number a user known by BSUID shared (for calls).
    pub identities: Arc<dyn IdentityLinks>,
    /// The do-not-contact list: "STOP", "BAJA"... put the number on it.
    /// `None`: no campaigns here.
    pub campaigns: Option<Arc<dyn CampaignStore>>,
    pub sender: Arc<dyn MessageSender>,
    pub responder: Arc<dyn Responder>,
    /// Answered turns go here for the escalation policy, and user messages
    /// for the people while they have the conversation.
    pub escalation_queue: Arc<dyn Queue>,
    /// Media messages hold the turn until the media pipeline noted them.
    pub media: media_hold::MediaHold,
    /// What each answered turn used, for the numbers and costs.
    pub usage: Arc<dyn UsageLedger>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
}

/// The adapters text-ai runs on: AWS ones in Lambda ([`aws::ports`]),
/// embedded ones in the one-process runner.
pub struct Ports {
    pub store: Arc<dyn ConversationStore>,
    pub identities: Arc<dyn IdentityLinks>,
    pub campaigns: Option<Arc<dyn CampaignStore>>,
    /// What the agent's tools write (leads, appointments, call requests).
    pub records: Arc<dyn AgentRecords>,
    pub sender: Arc<dyn MessageSender>,
    pub call_queue: Arc<dyn Queue>,
    pub escalation_queue: Arc<dyn Queue>,
    /// `None`: no media pipeline; media messages are plain turns.
    pub media_notes: Option<Arc<dyn MediaNotes>>,
    pub usage: Arc<dyn UsageLedger>,
    pub clock: Arc<dyn Clock>,
}

impl Deps {
    /// The one constructor, for Lambda and the one-process runner: the
    /// agent from its profile, the settings from the config and the profile.
    /// `aws` is the SDK config for Bedrock, when the config chooses it.
    pub async fn new(
        config: &config::Settings,
        secrets: &WhatsAppSecrets,
        ports: Ports,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<Deps> {
        let agent = agent_setup::build_agent(
            &config.agent,
            secrets,
            agent_setup::AgentPorts {
                records: ports.records,
                call_queue: ports.call_queue,
                escalation_queue: ports.escalation_queue.clone(),
                clock: ports.clock.clone(),
            },
            aws,
        )
        .await?;
        let settings = Settings {
            debounce_ms: config.debounce_ms,
            history_limit: agent.history_needed(),
            reengage_template: config
                .reengage_template
                .clone()
                .or_else(|| agent.profile().reengage_template()),
            opt_out_words: agent
                .profile()
                .opt_out_words
                .iter()
                .cloned()
                .chain(config.opt_out_words.iter().map(|w| {
                    // Written without a language: answered in the profile's first.
                    (agent.profile().default_language().to_string(), w.clone())
                }))
                .collect(),
            ..Settings::default()
        };
        Ok(Deps {
            store: ports.store,
            identities: ports.identities,
            campaigns: ports.campaigns,
            sender: ports.sender,
            responder: Arc::new(agent),
            escalation_queue: ports.escalation_queue,
            media: media_hold::MediaHold {
                notes: ports.media_notes,
                hold_ms: settings.media_hold_ms,
            },
            usage: ports.usage,
            clock: ports.clock,
            settings,
        })
    }
}

/// "STOP", "BAJA", "no me llamen": the user's number goes on the
/// do-not-contact list every campaign checks, and the answer says so (the
/// playbook and the model never see it). `None`: not such a message.
async fn opt_out(deps: &Deps, turn: &TurnInput) -> Result<Option<Vec<OutboundMessage>>> {
    let Some(campaigns) = &deps.campaigns else {
        return Ok(None);
    };
    let Some((message, lang)) = turn.new_messages.iter().rev().find_map(|m| {
        domain::campaign::opt_out_request(&m.text, &deps.settings.opt_out_words).map(|l| (m, l))
    }) else {
        return Ok(None);
    };
    if let Some(phone) = &turn.phone {
        campaigns
            .opt_out(&domain::campaign::OptOut {
                phone: phone.clone(),
                reason: message.text.chars().take(300).collect(),
                source: "whatsapp".into(),
                at_ms: deps.clock.now_ms(),
            })
            .await?;
        observability::count(observability::Metric::OptOutByMessage, 1);
        info!(user = %observability::phone(phone.as_str()), "opted out on WhatsApp");
    }
    Ok(Some(OutboundMessage::texts(
        domain::campaign::opt_out_confirmation(lang),
    )))
}

/// What a job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent this many parts.
    Answered { parts: usize },
    /// The message was answered already (by an earlier job of the burst, or
    /// before a redelivery).
    AlreadyAnswered,
    /// A human has the conversation.
    NotForTheBot,
    /// The Graph API refused for good; recorded, not retried.
    GaveUp { code: i64 },
    /// A media message of the turn is still being understood; the media
    /// pipeline queues the turn again when it is done.
    HeldForMedia,
}

/// The SQS entry point: partial batch failures, order kept per FIFO group.
pub async fn handle_batch(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    runtime::sqs_batch::run(
        event,
        "turn",
        runtime::observability::Metric::TurnFailed,
        |record| async move { handle_record(deps, &record).await },
    )
    .await
}

async fn handle_record(deps: &Deps, record: &SqsMessage) -> Result<Outcome> {
    let body = record.body.as_deref().unwrap_or_default();
    // A body that does not parse never will: it fails until the queue moves
    // it to the dead-letter queue, where it can be looked at.
    let job: TurnJob = serde_json::from_str(body)
        .map_err(|e| Error::Invalid(format!("queue message is not a turn job: {e}")))?;
    handle_job(deps, &job).await
}

/// Answers the turn that `job`'s message belongs to, once.
#[instrument(skip_all, fields(user_id = %phone(job.user_id.as_str())))]
pub async fn handle_job(deps: &Deps, job: &TurnJob) -> Result<Outcome> {
    let store = &deps.store;
    let started = deps.clock.now_ms();
    let mut pending = store.pending_inbound(&job.user_id).await?;
    loop {
        if !pending.iter().any(|m| m.wamid == job.wamid) {
            return Ok(Outcome::AlreadyAnswered);
        }
        let newest = pending.iter().map(|m| m.at_ms).max().unwrap_or(0);
        let now = deps.clock.now_ms();
        let quiet_at = newest.saturating_add(deps.settings.debounce_ms as i64);
        let waited = now - started;
        if now >= quiet_at || waited >= deps.settings.max_wait_ms as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis((quiet_at - now) as u64)).await;
        pending = store.pending_inbound(&job.user_id).await?;
    }

    let conversation = store
        .conversation(&job.user_id)
        .await?
        .ok_or_else(|| Error::NotFound("conversation of a pending message".into()))?;
    let phone = identity::phone_of(deps.identities.as_ref(), &job.user_id).await?;
    // A reply to a campaign is the campaign's whoever answers it (the bot
    // or people).
    let context = match &deps.campaigns {
        Some(c) => {
            campaign_reply::note(c.as_ref(), deps.clock.as_ref(), phone.as_ref(), &pending).await?
        }
        None => None,
    };
    if !conversation.state.bot_answers() {
        // People have it: the messages go to them, and are theirs to answer
        // (marked answered, so the bot does not answer them after a hand-back).
        // Media goes with the pipeline's description, not as "[image]": held
        // like a bot turn until it is noted.
        let mut for_people = pending.clone();
        if media_hold::apply(&deps.media, deps.clock.now_ms(), &mut for_people, &mut []).await? {
            info!("message for people held for media being understood");
            return Ok(Outcome::HeldForMedia);
        }
        escalation_hook::pass_to_humans(&deps.escalation_queue, &conversation, &for_people).await?;
        let inbound: Vec<String> = pending.iter().map(|m| m.wamid.clone()).collect();
        if let Some(first) = inbound.first() {
            store
                .complete_turn(&job.user_id, &format!("{first}:to-humans"), &inbound)
                .await
                .or_else(escalation_hook::no_turn_is_fine)?;
        }
        return Ok(Outcome::NotForTheBot);
    }

    let turn_id = pending
        .first()
        .map(|m| m.wamid.clone())
        .unwrap_or_else(|| job.wamid.clone());
    let inbound: Vec<String> = pending.iter().map(|m| m.wamid.clone()).collect();

    let newest = pending.last().map(|m| m.wamid.clone());
    if let Some(wamid) = &newest {
        // Best effort: a failed read receipt does not stop the answer.
        if let Err(e) = deps
            .sender
            .mark_read(&job.phone_number_id, wamid, true)
            .await
        {
            warn!(error = %e, "mark as read failed");
        }
    }
    let mut history: Vec<_> = store
        .recent_messages(&job.user_id, deps.settings.history_limit + pending.len())
        .await?
        .into_iter()
        .filter(|m| !inbound.contains(&m.wamid))
        .collect();
    let mut new_messages = pending.clone();
    if media_hold::apply(
        &deps.media,
        deps.clock.now_ms(),
        &mut new_messages,
        &mut history,
    )
    .await?
    {
        info!("turn held for media being understood");
        return Ok(Outcome::HeldForMedia);
    }
    let input = TurnInput {
        turn_id: turn_id.clone(),
        conversation: conversation.clone(),
        new_messages,
        history,
        phone,
        context,
    };
    let deciding = deps.clock.now_ms();
    let (mut replies, note) = match opt_out(deps, &input).await? {
        Some(confirmation) => (confirmation, TurnNote::default()),
        None => deps.responder.respond_noted(&input).await?,
    };
    if !conversation.window_open(deps.clock.now_ms()) {
        replies = window_closed_replies(deps);
    }
    let turn = TurnRecord {
        turn_id,
        user_id: job.user_id.clone(),
        phone_number_id: job.phone_number_id.clone(),
        inbound,
        replies,
        sent_parts: 0,
        state: TurnState::Claimed,
        created_at_ms: deps.clock.now_ms(),
    };
    // The claim is the one atomic guard. A retry (after a crash, or a
    // redelivery while the first try still ran) finds the turn recorded
    // before and carries that one on, so the user never gets two answers.
    let turn = match store.claim_turn(&turn).await? {
        ClaimOutcome::Claimed => turn,
        ClaimOutcome::Existing(t) if t.state == TurnState::Sent => {
            store
                .complete_turn(&job.user_id, &t.turn_id, &t.inbound)
                .await?;
            return Ok(Outcome::AlreadyAnswered);
        }
        ClaimOutcome::Existing(t) => t,
    };
    let decided = deps.clock.now_ms();
    let outcome = send_turn(deps, turn.clone()).await?;
    if let Outcome::Answered { .. } = &outcome {
        let now = deps.clock.now_ms();
        let first = pending.iter().map(|m| m.at_ms).min();
        let latency = turn_metrics(&note, first, [deciding, decided, now]);
        let sent = Sent::of(&turn.replies);
        let event = UsageEvent::turn(&job.user_id, &turn.turn_id, now, &note, sent, latency);
        runtime::usage::record(deps.usage.as_ref(), &event).await;
        // After the answer: a failure here must not fail the job (its retry
        // would find the turn sent and stop), so it is logged and counted.
        if let Err(e) = escalation_hook::turn_answered(
            &deps.escalation_queue,
            &turn,
            &pending,
            &note,
            deps.clock.now_ms(),
        )
        .await
        {
            warn!(error = %e, "the turn did not reach the escalation queue");
            observability::count(observability::Metric::TurnEventLost, 1);
        }
    }
    Ok(outcome)
}

/// What an answered turn used, and how long the user waited for it (ms,
/// returned): from `first` (the user's first message of the turn) to the
/// answer, by stage at the moments it was `deciding`, `decided` and sent
/// (`now_ms`).
fn turn_metrics(note: &TurnNote, first: Option<i64>, [deciding, decided, now_ms]: [i64; 3]) -> u64 {
    use observability::Metric;
    observability::count_by(Metric::TurnAnswered, "Via", note.answered_by(), 1);
    for tool in &note.tools {
        observability::count_by(Metric::ToolCalls, "Tool", tool, 1);
    }
    for (stage, ms) in [
        ("waited", deciding - first.unwrap_or(deciding)),
        ("decided", decided - deciding),
        ("sent", now_ms - decided),
    ] {
        observability::record_by(Metric::TurnStageLatency, "Stage", stage, ms.max(0) as f64);
    }
    let waited = first.map_or(0, |first| (now_ms - first).max(0));
    observability::record(&[
        (Metric::TurnLatency, waited as f64),
        (Metric::ModelCalls, f64::from(note.model_calls)),
        (Metric::TokensIn, note.tokens_in as f64),
        (Metric::TokensOut, note.tokens_out as f64),
    ]);
    waited as u64
}

fn window_closed_replies(deps: &Deps) -> Vec<OutboundMessage> {
    match &deps.settings.reengage_template {
        Some((name, lang)) => vec![OutboundMessage::template(name, lang)],
        None => Vec::new(),
    }
}

async fn send_turn(deps: &Deps, turn: TurnRecord) -> Result<Outcome> {
    let store = &deps.store;
    let mut sent = 0;
    for (i, reply) in turn.replies.iter().enumerate().skip(turn.sent_parts) {
        match deps
            .sender
            .send(&turn.phone_number_id, &turn.user_id, reply, None)
            .await
        {
            Ok(wamid) => {
                let record = SentRecord::of(wamid, reply, deps.clock.now_ms());
                store
                    .record_sent_part(&turn.user_id, &turn.turn_id, i, &record)
                    .await?;
                sent += 1;
            }
            Err(Error::Graph { code, class, .. }) if !class.is_retryable() => {
                return give_up(deps, &turn, code, class, reply).await;
            }
            Err(e) => return Err(e),
        }
    }
    store
        .complete_turn(&turn.user_id, &turn.turn_id, &turn.inbound)
        .await?;
    info!(parts = sent, "turn answered");
    Ok(Outcome::Answered { parts: sent })
}

/// A final Graph error: recorded, the turn closed, never retried. Outside
/// the window, the re-engagement template goes out instead, once.
async fn give_up(
    deps: &Deps,
    turn: &TurnRecord,
    code: i64,
    class: GraphErrorClass,
    reply: &OutboundMessage,
) -> Result<Outcome> {
    let store = &deps.store;
    warn!(code, ?class, "the Graph API refused the answer");
    observability::count(observability::Metric::ReplyRefused, 1);
    if class == GraphErrorClass::OutsideWindow {
        store.close_window(&turn.user_id).await?;
        if let (Some((name, lang)), true) =
            (&deps.settings.reengage_template, reply.needs_open_window())
        {
            let template = OutboundMessage::template(name, lang);
            match deps
                .sender
                .send(&turn.phone_number_id, &turn.user_id, &template, None)
                .await
            {
                Ok(wamid) => {
                    store
                        .record_outbound(
                            &turn.user_id,
                            &SentRecord::of(wamid, &template, deps.clock.now_ms()),
                        )
                        .await?
                }
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => warn!(error = %e, "re-engagement template refused"),
            }
        }
    }
    store
        .complete_turn(&turn.user_id, &turn.turn_id, &turn.inbound)
        .await?;
    Ok(Outcome::GaveUp { code })
}
