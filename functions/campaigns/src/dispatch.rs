//! The dispatcher: one tick a minute (EventBridge on AWS, a task in the
//! one-process runner). For each running campaign, the contacts that are
//! due: inside their own window, under the campaign's `max_concurrent` and
//! the business number's own limit of calls in flight, not on the
//! do-not-contact list. Each one is claimed with a conditional write before
//! anything goes out, so a contact is never dialled twice at once, whatever
//! runs twice. Calls go on the call queue (call-trigger places them);
//! templates go through the same sending path as replies.

use std::sync::Arc;

use domain::campaign::{
    self, Attempt, Campaign, CampaignCall, CampaignContact, CampaignState, Channel, ContactState,
    Decision,
};
use domain::error::Result;
use domain::identity::{self, IdentityLinks};
use domain::ports::{
    send_and_record, CallRecords, CampaignStore, Clock, ConversationStore, MessageSender, Queue,
    QueueMessage,
};
use domain::whatsapp::outbound::OutboundMessage;
use domain::{CallRequest, CallRequestState};
use runtime::observability;
use serde_json::json;
use tracing::{info, warn};

/// Campaigns looked at per tick.
const CAMPAIGNS_PER_TICK: usize = 200;

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// The business number templates go out from (`WHATSAPP_PHONE_NUMBER_ID`);
    /// `None`: templates wait (a warning each tick).
    pub phone_number_id: Option<String>,
    /// Calls in flight across all campaigns, at most: the voice number's
    /// own limit (`CHARLA_CAMPAIGN_NUMBER_CALLS`).
    pub number_calls: u32,
    /// Due contacts read per campaign per tick.
    pub batch: usize,
    /// For contacts without a language.
    pub default_language: String,
    /// How long a tick goes on writing uploads that their request left
    /// part-way (the rest at the next tick).
    pub import_budget: std::time::Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            phone_number_id: None,
            number_calls: 10,
            batch: 200,
            default_language: "es".into(),
            import_budget: std::time::Duration::from_secs(25),
        }
    }
}

pub struct Dispatcher {
    pub campaigns: Arc<dyn CampaignStore>,
    pub call_queue: Arc<dyn Queue>,
    /// call-trigger's records: a claimed call without one never reached it.
    pub calls: Arc<dyn CallRecords>,
    /// Templates; `None` without a Graph API token (templates wait).
    pub sender: Option<Arc<dyn MessageSender>>,
    /// The template is recorded in the contact's conversation.
    pub store: Arc<dyn ConversationStore>,
    pub identities: Arc<dyn IdentityLinks>,
    /// Templates sent: what Meta charges for, in the numbers and costs.
    pub usage: Arc<dyn domain::ports::UsageLedger>,
    pub clock: Arc<dyn Clock>,
    pub settings: DispatchSettings,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    pub campaigns: usize,
    pub calls: usize,
    pub templates: usize,
    pub deferred: usize,
    pub opted_out: usize,
    pub completed: usize,
    /// Uploads finished writing this tick.
    pub imported: usize,
    /// Claimed calls put on the queue again ([`requeue_claimed`]).
    pub requeued: usize,
    /// Claims another worker won (nothing sent).
    pub raced: usize,
    /// Running campaigns with contacts due now, room to reach them, and
    /// nothing sent this tick (the `CampaignStuck` alarm).
    pub stuck: usize,
}

/// One tick over every running campaign.
pub async fn tick(d: &Dispatcher) -> Result<Tick> {
    let now = d.clock.now_ms();
    let mut out = Tick::default();
    let listed = d.campaigns.campaigns(CAMPAIGNS_PER_TICK).await?;
    let started = std::time::Instant::now();
    for c in listed.iter().filter(|c| c.import.is_some()) {
        let budget = d.settings.import_budget.saturating_sub(started.elapsed());
        if budget.is_zero() {
            break;
        }
        let left = crate::import_within(d.campaigns.as_ref(), &c.id, budget, now).await?;
        match left {
            None => {
                info!(campaign = %c.id, "upload written");
                out.imported += 1;
            }
            Some(i) => {
                info!(campaign = %c.id, written = i.written, total = i.total, "upload being written")
            }
        }
    }
    out.requeued = requeue_among(d, &listed, REQUEUE_AFTER_MS).await?;
    let running: Vec<Campaign> = listed
        .into_iter()
        .filter(|c| c.state == CampaignState::Running)
        .collect();
    let mut counts = Vec::with_capacity(running.len());
    for c in &running {
        counts.push(d.campaigns.counts(&c.id).await?);
    }
    let calling = |n: &std::collections::BTreeMap<ContactState, u64>| {
        u32::try_from(n.get(&ContactState::Calling).copied().unwrap_or(0)).unwrap_or(u32::MAX)
    };
    let in_flight: u32 = counts.iter().map(calling).sum();
    let mut number_room = d.settings.number_calls.saturating_sub(in_flight);
    for (c, n) in running.iter().zip(&counts) {
        if c.spec.start_at.is_some_and(|t| t.as_millisecond() > now) {
            continue;
        }
        out.campaigns += 1;
        let waiting = n.get(&ContactState::Pending).copied().unwrap_or(0)
            + n.get(&ContactState::Scheduled).copied().unwrap_or(0);
        if waiting == 0 && calling(n) == 0 {
            if d.campaigns
                .set_campaign_state(
                    &c.id,
                    &[CampaignState::Running],
                    CampaignState::Completed,
                    now,
                )
                .await?
            {
                info!(campaign = %c.id, "campaign completed");
                out.completed += 1;
            }
            continue;
        }
        let used = campaign_tick(d, c, calling(n), number_room, now, &mut out).await?;
        number_room = number_room.saturating_sub(used);
    }
    observability::count(observability::Metric::CampaignCalls, out.calls as u64);
    observability::count(
        observability::Metric::CampaignTemplates,
        out.templates as u64,
    );
    observability::count(observability::Metric::CampaignStuck, out.stuck as u64);
    Ok(out)
}

/// One campaign's due contacts; answers the calls it placed.
async fn campaign_tick(
    d: &Dispatcher,
    c: &Campaign,
    in_flight: u32,
    number_room: u32,
    now: i64,
    out: &mut Tick,
) -> Result<u32> {
    let schedule = match c.spec.validate() {
        Ok(s) => s,
        Err(e) => {
            warn!(campaign = %c.id, error = %e, "campaign spec no longer valid: skipped");
            return Ok(0);
        }
    };
    let due = d
        .campaigns
        .due_contacts(&c.id, now, d.settings.batch)
        .await?;
    let phones: Vec<_> = due.iter().map(|c| c.phone.clone()).collect();
    let opted = d.campaigns.opted_out_among(&phones).await?;
    let room = campaign::call_room(&c.spec, in_flight, number_room);
    let plan = campaign::plan_tick(
        &c.spec,
        &schedule,
        &due,
        room,
        now,
        |p| opted.contains(p),
        campaign::zone_named,
    );
    let mut calls = 0;
    let due_now = plan
        .iter()
        .filter(|(_, d)| matches!(d, Decision::Call | Decision::Template))
        .count();
    let sent_before = out.calls + out.templates;
    for (contact, decision) in plan {
        match decision {
            Decision::Call => {
                if call(d, c, contact, now).await? {
                    calls += 1;
                    out.calls += 1;
                } else {
                    out.raced += 1;
                }
            }
            Decision::Template => match template(d, c, contact, &schedule, now).await? {
                Some(true) => out.templates += 1,
                Some(false) => out.raced += 1,
                None => {}
            },
            Decision::Defer(at) => {
                let mut next = contact.next();
                next.next_at_ms = Some(at);
                d.campaigns.update_contact(&next).await?;
                out.deferred += 1;
            }
            Decision::OptOut => {
                let mut next = contact.next();
                next.state = ContactState::OptedOut;
                next.next_at_ms = None;
                d.campaigns.update_contact(&next).await?;
                out.opted_out += 1;
            }
            Decision::Never => {
                let mut next = contact.next();
                next.state = ContactState::Failed;
                next.next_at_ms = None;
                d.campaigns.update_contact(&next).await?;
                warn!(campaign = %c.id, row = contact.row, "no allowed day within a year: not called");
            }
        }
    }
    // Due, with room, and nothing went out: templates without a sender or
    // business number, or every send failing.
    if due_now > 0 && out.calls + out.templates == sent_before && out.raced == 0 {
        warn!(campaign = %c.id, due = due_now, "campaign stuck: contacts due, nothing sent");
        out.stuck += 1;
    }
    Ok(calls)
}

/// The number's messages become replies to this campaign. Written before
/// the claim, so that nothing but the send itself can fail between the
/// claim and the send (a lost claim leaves the touch on the same contact).
async fn touch(d: &Dispatcher, contact: &CampaignContact, now: i64) -> Result<()> {
    d.campaigns
        .touch(&campaign::Touch {
            phone: contact.phone.clone(),
            campaign_id: contact.campaign_id.clone(),
            row: contact.row,
            at_ms: now,
        })
        .await
}

/// Claims the contact (calling, one more call), then puts the call on the
/// queue. A lost claim sends nothing. A failed enqueue gives the claim back.
async fn call(d: &Dispatcher, c: &Campaign, contact: &CampaignContact, now: i64) -> Result<bool> {
    touch(d, contact, now).await?;
    let mut claimed = contact.next();
    claimed.state = ContactState::Calling;
    claimed.next_at_ms = None;
    claimed.attempts.push(Attempt::new("call", now));
    if !d.campaigns.update_contact(&claimed).await? {
        return Ok(false);
    }
    let sent = d.call_queue.send(&call_message(d, c, &claimed, now)?).await;
    if let Err(e) = sent {
        // Not on the queue: the contact waits for the next tick.
        let mut back = claimed.next();
        back.state = contact.state;
        back.next_at_ms = contact.next_at_ms;
        back.attempts.pop();
        d.campaigns.update_contact(&back).await?;
        return Err(e);
    }
    Ok(true)
}

/// The call-queue message of a contact claimed for its latest call: the
/// same message (request id, dedup id, body) however often it is built.
fn call_message(
    d: &Dispatcher,
    c: &Campaign,
    claimed: &CampaignContact,
    claimed_at: i64,
) -> Result<QueueMessage> {
    let attempt = claimed.calls();
    let request = CallRequest {
        id: format!("campaign:{}:{}:{attempt}", c.id, claimed.row),
        user_id: claimed.phone.clone(),
        phone_number_id: d.settings.phone_number_id.clone().unwrap_or_default(),
        reason: format!("campaign: {}", c.spec.name),
        when_ms: None,
        language: claimed
            .language
            .clone()
            .unwrap_or_else(|| d.settings.default_language.clone()),
        state: CallRequestState::Requested,
        created_at_ms: claimed_at,
        phone: None,
        campaign: Some(CampaignCall {
            campaign_id: c.id.clone(),
            row: claimed.row,
            attempt,
            assistant: c.spec.assistant.clone(),
            name: claimed.name.clone(),
            variables: claimed.variables.clone(),
        }),
    };
    Ok(QueueMessage {
        group_id: format!("campaign:{}:{}", c.id, claimed.row),
        dedup_id: request.id.clone(),
        body: serde_json::to_string(&request)?,
    })
}

/// A claimed call that has not reached call-trigger this long after its
/// claim is put on the queue again.
pub const REQUEUE_AFTER_MS: i64 = 2 * 60_000;
/// Calling contacts looked at per campaign per tick.
const CALLING_PER_TICK: usize = 1_000;

/// Puts the call of each contact claimed for one (`calling`) at least
/// `older_than_ms` ago, in a running or paused campaign, that call-trigger
/// has no record of, on the call queue again; answers how many.
///
/// The claim and the enqueue are two writes: a process that dies between
/// them (the dispatcher's Lambda, the runner) leaves a contact `calling`
/// with no call on its way, for ever (its campaign never completes, and it
/// holds a place of `max_concurrent`). Sent again, the message is the same
/// one: the queue drops it within its deduplication window, and
/// call-trigger places a request id once (a call it has seen has its
/// record: a duplicate, nothing happens). Every tick looks at the claims
/// older than [`REQUEUE_AFTER_MS`]; the one-process runner also at its
/// start, with 0.
pub async fn requeue_claimed(d: &Dispatcher, older_than_ms: i64) -> Result<usize> {
    let listed = d.campaigns.campaigns(CAMPAIGNS_PER_TICK).await?;
    requeue_among(d, &listed, older_than_ms).await
}

/// [`requeue_claimed`] over campaigns already listed (a tick's).
async fn requeue_among(d: &Dispatcher, listed: &[Campaign], older_than_ms: i64) -> Result<usize> {
    let now = d.clock.now_ms();
    let mut sent = 0;
    for c in listed {
        if !matches!(c.state, CampaignState::Running | CampaignState::Paused) {
            continue;
        }
        for contact in d
            .campaigns
            .calling_contacts(&c.id, CALLING_PER_TICK)
            .await?
        {
            let Some(claimed_at) = contact
                .attempts
                .iter()
                .rev()
                .find(|a| a.channel == "call")
                .map(|a| a.at_ms)
            else {
                continue;
            };
            if now - claimed_at < older_than_ms {
                continue;
            }
            let message = call_message(d, c, &contact, claimed_at)?;
            if d.calls.get(&message.dedup_id).await?.is_some() {
                continue;
            }
            warn!(campaign = %c.id, row = contact.row, "a claimed call never reached call-trigger: queued again");
            d.call_queue.send(&message).await?;
            sent += 1;
        }
    }
    observability::count(observability::Metric::CampaignCallRequeued, sent as u64);
    Ok(sent)
}

/// The template's body parameters from the contact's columns (a column the
/// upload did not keep as a variable is the name column).
fn template_message(c: &Campaign, contact: &CampaignContact) -> Option<OutboundMessage> {
    let t = c.spec.template.as_ref()?;
    let parameters: Vec<serde_json::Value> = t
        .parameters
        .iter()
        .map(|p| {
            let text = contact
                .variables
                .get(p)
                .cloned()
                .or_else(|| contact.name.clone())
                .unwrap_or_default();
            json!({"type": "text", "text": text})
        })
        .collect();
    let components = if parameters.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "body", "parameters": parameters})]
    };
    Some(OutboundMessage::Template {
        name: t.name.clone(),
        language: t.language.clone(),
        components,
    })
}

/// Claims the contact (the template counted as sent), then sends it: at
/// most once, never twice (a crash between the two loses the template, and
/// the report shows the attempt without a message id). `None`: no sender
/// or business number here yet.
async fn template(
    d: &Dispatcher,
    c: &Campaign,
    contact: &CampaignContact,
    schedule: &campaign::CallingSchedule,
    now: i64,
) -> Result<Option<bool>> {
    let (Some(sender), Some(number)) = (&d.sender, &d.settings.phone_number_id) else {
        warn!(campaign = %c.id, "templates wait: no Graph API token or WHATSAPP_PHONE_NUMBER_ID");
        return Ok(None);
    };
    let Some(message) = template_message(c, contact) else {
        return Ok(None);
    };
    let (state, next_at) = campaign::after_template(&c.spec, schedule, now, &contact.zone());
    touch(d, contact, now).await?;
    let mut claimed = contact.next();
    claimed.state = state;
    claimed.next_at_ms = next_at;
    claimed.attempts.push(Attempt::new("whatsapp", now));
    if !d.campaigns.update_contact(&claimed).await? {
        return Ok(Some(false));
    }
    let user = identity::user_of(d.identities.as_ref(), &contact.phone).await?;
    let sent = send_and_record(
        sender.as_ref(),
        d.store.as_ref(),
        d.clock.as_ref(),
        number,
        &user,
        &message,
    )
    .await;
    match sent {
        Ok(wamid) => {
            let sent = domain::usage::Sent {
                messages: 0,
                templates: 1,
            };
            let used = domain::usage::UsageEvent::sent(&user, &wamid, now, sent);
            runtime::usage::record(d.usage.as_ref(), &used).await;
            let mut noted = claimed.next();
            if let Some(last) = noted.attempts.last_mut() {
                last.reference = Some(wamid);
            }
            d.campaigns.update_contact(&noted).await?;
            Ok(Some(true))
        }
        Err(e) => {
            warn!(campaign = %c.id, row = contact.row, error = %e, "template not sent");
            let mut failed = claimed.next();
            if c.spec.channel == Channel::Whatsapp {
                failed.state = ContactState::Failed;
                failed.next_at_ms = None;
            }
            if let Some(last) = failed.attempts.last_mut() {
                last.summary = Some(format!("not sent: {}", e.public_message()));
            }
            d.campaigns.update_contact(&failed).await?;
            Ok(Some(true))
        }
    }
}
