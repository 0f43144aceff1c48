//! The call lifecycle: placing the outbound calls users asked for and
//! following them up, shared by call-trigger (the call queue and the
//! sweep), the voice webhooks (the providers' events) and, next, campaigns.
//!
//! A call request comes from the call queue (the agent's `request_call`).
//! It is called only when the user asked in their own conversation
//! ([`check_consent`]), once per request id (the call record is created
//! once, then changed by conditional writes on its version), and only
//! inside the calling hours in the customer's time zone; outside them the
//! record is scheduled for the next opening and the user is told when.
//! [`sweep`] (every minute: EventBridge in AWS, a task locally) places the
//! scheduled calls that are due, including the retries the voice webhooks
//! schedule after a no-answer or busy line.

#[cfg(feature = "aws")]
pub mod aws;
pub mod campaign;
pub mod config;
pub mod messages;

use domain::identity::{self, IdentityLinks};
use std::sync::Arc;

use domain::ports::{
    send_and_record, AgentRecords, CallRecords, CampaignStore, Clock, ConversationStore,
    MessageSender, VoiceProvider,
};
use domain::voice::*;
use domain::whatsapp::outbound::OutboundMessage;
use domain::{CallRequest, UserId};
use domain::{Error, Result};
use jiff::tz::TimeZone;
use runtime::observability::phone;
use tracing::{info, instrument, warn};

/// A call-queue body larger than this is not a call request.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Scheduled calls placed per sweep (the next sweep takes the rest).
pub const SWEEP_BATCH: usize = 20;
/// A start that failed before reaching the provider is tried again after this.
pub const START_RETRY_MS: i64 = 30_000;
/// The conversation summary handed to the voice agent, at most.
pub const SUMMARY_MAX_CHARS: usize = 1_500;

#[derive(Debug, Clone)]
pub struct Settings {
    pub calling_hours: CallingHours,
    /// Used when the number does not tell its zone (the business's).
    pub default_zone: (String, TimeZone),
    /// Sent instead of free text outside the 24-hour window.
    pub reengage_template: Option<(String, String)>,
}

pub struct Deps {
    pub records: Arc<dyn AgentRecords>,
    pub store: Arc<dyn ConversationStore>,
    /// The number a user known by BSUID shared.
    pub identities: Arc<dyn IdentityLinks>,
    /// Campaigns' contacts: a campaign's call is placed while its contact
    /// waits for it, and its outcome goes back there. `None`: no campaigns.
    pub campaigns: Option<Arc<dyn CampaignStore>>,
    pub calls: Arc<dyn CallRecords>,
    pub provider: Arc<dyn VoiceProvider>,
    pub sender: Arc<dyn MessageSender>,
    /// Calls by outcome and their minutes, for the numbers and costs.
    pub usage: Arc<dyn domain::ports::UsageLedger>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
}

/// The adapters call-trigger runs on.
pub struct Ports {
    pub records: Arc<dyn AgentRecords>,
    pub store: Arc<dyn ConversationStore>,
    pub identities: Arc<dyn IdentityLinks>,
    pub campaigns: Option<Arc<dyn CampaignStore>>,
    pub calls: Arc<dyn CallRecords>,
    pub sender: Arc<dyn MessageSender>,
    pub usage: Arc<dyn domain::ports::UsageLedger>,
    pub clock: Arc<dyn Clock>,
}

impl Settings {
    /// From the profile, with the configured calling hours where set.
    pub fn new(calling_hours: Option<CallingHours>, profile: &agent::Profile) -> Settings {
        Settings {
            calling_hours: calling_hours.unwrap_or(profile.voice.calling_hours),
            default_zone: (
                profile.hours.time_zone_name.clone(),
                profile.hours.time_zone.clone(),
            ),
            reengage_template: profile.reengage_template(),
        }
    }
}

impl Deps {
    /// The one constructor, for Lambda, the voice function and the
    /// one-process runner: the provider and the settings from the config
    /// (its voice keys filled in) and the profile.
    pub fn new(config: &config::Settings, profile: &agent::Profile, ports: Ports) -> Result<Deps> {
        Ok(Deps {
            records: ports.records,
            store: ports.store,
            identities: ports.identities,
            campaigns: ports.campaigns,
            calls: ports.calls,
            provider: provider(&config.voice, profile)?,
            sender: ports.sender,
            usage: ports.usage,
            clock: ports.clock,
            settings: Settings::new(config.calling_hours, profile),
        })
    }
}

impl Deps {
    /// The customer's zone: from their number, else the business's.
    pub fn zone(&self, user_id: &UserId) -> (String, TimeZone) {
        agent::timezone::for_user_id(user_id).unwrap_or_else(|| self.settings.default_zone.clone())
    }

    /// The first moment at or after `at_ms` inside the calling hours.
    pub fn next_window(&self, user_id: &UserId, at_ms: i64) -> i64 {
        match calling_window(at_ms, self.settings.calling_hours, &self.zone(user_id).1) {
            CallWindow::Now => at_ms,
            CallWindow::At(t) => t,
        }
    }
}

/// What a call request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider is calling.
    Calling(String),
    /// Outside the calling hours (or asked for later): due then.
    Scheduled(i64),
    /// This request has a record already (a redelivery): nothing done.
    Duplicate,
    Refused(ConsentRefusal),
    /// No number to call (a user known only by username who gave none):
    /// the user was asked for one.
    NoNumber,
    /// The provider refused the call; the user was told.
    Failed,
    /// Could not reach the provider; scheduled again shortly.
    RetryLater,
    /// Another worker placed it meanwhile.
    Raced,
}

#[instrument(skip_all, fields(request = %req.id, to = %phone(req.user_id.as_str())))]
pub async fn handle_request(deps: &Deps, req: &CallRequest) -> Result<Outcome> {
    if let Some(call) = &req.campaign {
        return campaign::handle(deps, req, call).await;
    }
    let now = deps.clock.now_ms();
    let stored = deps.records.call_requests(&req.user_id).await?;
    if let Err(refusal) = check_consent(req, &stored, now) {
        warn!(%refusal, "call request refused");
        return Ok(Outcome::Refused(refusal));
    }
    if deps.calls.get(&req.id).await?.is_some() {
        return Ok(Outcome::Duplicate);
    }
    let context = context_for(deps, req).await?;
    if context.to_e164().is_err() {
        warn!("call request without a number to call");
        tell(
            deps,
            &context,
            &messages::needs_number(&req.language),
            "needs-number",
        )
        .await?;
        return Ok(Outcome::NoNumber);
    }
    let wanted = req.when_ms.unwrap_or(now).max(now);
    let due = deps.next_window(&req.user_id, wanted);
    let record = CallRecord::scheduled(context, deps.provider.kind(), due, now);
    if !deps.calls.create(&record).await? {
        return Ok(Outcome::Duplicate);
    }
    if due > now {
        // Asked for later, or outside the calling hours: say when. The
        // agent already said when for a time the user chose; the calling
        // hours may move it, and then the user hears the new time.
        if due != wanted || req.when_ms.is_none() {
            let (zone_name, tz) = deps.zone(&req.user_id);
            let when = agent::schedule::format_in(due, &tz, &zone_name, &req.language);
            tell(
                deps,
                &record.context,
                &messages::scheduled(&req.language, &when),
                "scheduled",
            )
            .await?;
        }
        return Ok(Outcome::Scheduled(due));
    }
    place(deps, record).await
}

/// Places the calls that are due.
pub async fn sweep(deps: &Deps) -> Result<Vec<Outcome>> {
    let now = deps.clock.now_ms();
    let mut outcomes = Vec::new();
    for record in deps.calls.due(now, SWEEP_BATCH).await? {
        if record.phase == CallPhase::Dialing {
            outcomes.push(recover_dial(deps, record).await?);
            continue;
        }
        // A retry that came due outside the calling hours waits again.
        let due = window_for(deps, &record, now).await?;
        if due > now {
            let mut next = record.next(now);
            next.due_at_ms = Some(due);
            deps.calls.update(&record, &next).await?;
            outcomes.push(Outcome::Scheduled(due));
            continue;
        }
        match place(deps, record).await {
            Ok(o) => outcomes.push(o),
            Err(e) => warn!(error = %e, "placing a due call failed; the next sweep tries again"),
        }
    }
    Ok(outcomes)
}

/// The first moment at or after `at_ms` the call may be placed: inside its
/// campaign's window for a campaign's call, else the calling hours.
async fn window_for(deps: &Deps, record: &CallRecord, at_ms: i64) -> Result<i64> {
    match campaign::next_window(deps, record, at_ms).await? {
        Some(at) => Ok(at),
        None => Ok(deps.next_window(&record.context.user_id, at_ms)),
    }
}

/// A dial claimed long ago that never got a call id: the worker died
/// before asking the provider, or the provider's answer was lost and no
/// event came since. The attempt counts (it may have rung); the next one is
/// scheduled, or the user told when none is left.
async fn recover_dial(deps: &Deps, record: CallRecord) -> Result<Outcome> {
    let now = deps.clock.now_ms();
    warn!(request = %record.request_id(), attempts = record.attempts, "a dial never got a call id; recovering");
    let mut next = record.next(now);
    if record.attempts < MAX_ATTEMPTS {
        next.phase = CallPhase::Scheduled;
        next.due_at_ms = Some(window_for(deps, &record, now).await?);
        deps.calls.update(&record, &next).await?;
        Ok(Outcome::RetryLater)
    } else {
        next.phase = CallPhase::Failed;
        next.outcome = Some(CallOutcome::Failed);
        next.due_at_ms = None;
        if deps.calls.update(&record, &next).await? {
            follow_up_failed(deps, next).await?;
        }
        Ok(Outcome::Failed)
    }
}

/// Claims the record (Scheduled → Dialing, one more attempt) and asks the
/// provider to call. Only the claim's winner calls.
pub async fn place(deps: &Deps, record: CallRecord) -> Result<Outcome> {
    let now = deps.clock.now_ms();
    if record.phase != CallPhase::Scheduled {
        return Ok(Outcome::Raced);
    }
    let mut dialing = record.next(now);
    dialing.phase = CallPhase::Dialing;
    dialing.attempts += 1;
    dialing.due_at_ms = Some(now + DIAL_WATCHDOG_MS);
    dialing.call_id = None;
    if !deps.calls.update(&record, &dialing).await? {
        return Ok(Outcome::Raced);
    }
    let order = CallOrder {
        context: dialing.context.clone(),
        attempt: dialing.attempts,
    };
    match deps.provider.start_call(&order).await {
        Ok(started) => {
            set_call_id(deps, dialing, &started.call_id).await?;
            info!(call_id = %started.call_id, attempt = order.attempt, "calling");
            Ok(Outcome::Calling(started.call_id))
        }
        Err(e) if e.is_retryable() && !voice_providers::config::maybe_processed(&e) => {
            // Never reached the provider: the attempt does not count.
            let mut again = dialing.next(deps.clock.now_ms());
            again.phase = CallPhase::Scheduled;
            again.attempts -= 1;
            again.due_at_ms = Some(again.updated_at_ms + START_RETRY_MS);
            deps.calls.update(&dialing, &again).await?;
            warn!(error = %e, "the provider could not be reached; trying again shortly");
            Ok(Outcome::RetryLater)
        }
        Err(e) if e.is_retryable() => {
            // The provider may be calling: its webhooks will say. Calling
            // again now could ring the customer twice.
            warn!(error = %e, "the provider may have placed the call; waiting for its events");
            Ok(Outcome::RetryLater)
        }
        Err(e) => {
            warn!(error = %e, "the provider refused the call");
            let mut failed = dialing.next(deps.clock.now_ms());
            failed.phase = CallPhase::Failed;
            failed.outcome = Some(CallOutcome::Failed);
            if deps.calls.update(&dialing, &failed).await? {
                follow_up_failed(deps, failed).await?;
            }
            Ok(Outcome::Failed)
        }
    }
}

/// Notes the provider's call id; a webhook may have moved the record
/// already, so read and try again on a lost race.
async fn set_call_id(deps: &Deps, mut current: CallRecord, call_id: &str) -> Result<()> {
    for _ in 0..5 {
        if current.call_id.as_deref() == Some(call_id) {
            return Ok(());
        }
        let mut next = current.next(deps.clock.now_ms());
        next.call_id = Some(call_id.to_string());
        next.due_at_ms = None;
        if deps.calls.update(&current, &next).await? {
            return Ok(());
        }
        match deps.calls.get(current.request_id()).await? {
            Some(r) => current = r,
            None => return Err(Error::Conflict("call record vanished".into())),
        }
    }
    Err(Error::Conflict("call record kept changing".into()))
}

/// Tells the user the call did not happen (once: `followed_up` is claimed
/// first). Public for the voice webhooks.
pub async fn follow_up_failed(deps: &Deps, record: CallRecord) -> Result<()> {
    if record.context.campaign.is_some() {
        // Nobody asked in a conversation: the campaign's contact learns it.
        let outcome = record.outcome.unwrap_or(CallOutcome::Failed);
        return campaign::apply_outcome(deps, &record, outcome, &Default::default()).await;
    }
    let lang = record.context.language.clone();
    follow_up(
        deps,
        record,
        &messages::could_not_connect(&lang),
        "call_failed",
    )
    .await
}

/// Sends `text` as the call's follow-up unless one was sent: claims
/// `followed_up` with a conditional write first, so that a redelivered
/// event does not send it twice. A failed send gives the claim back.
pub async fn follow_up(deps: &Deps, record: CallRecord, text: &str, kind: &str) -> Result<()> {
    // A campaign's call has no conversation to follow up in.
    if record.followed_up || record.context.campaign.is_some() {
        return Ok(());
    }
    let mut claimed = record.next(deps.clock.now_ms());
    claimed.followed_up = true;
    if !deps.calls.update(&record, &claimed).await? {
        return Ok(());
    }
    if let Err(e) = tell(deps, &claimed.context, text, kind).await {
        let mut back = claimed.next(deps.clock.now_ms());
        back.followed_up = false;
        let _ = deps.calls.update(&claimed, &back).await;
        return Err(e);
    }
    Ok(())
}

/// Sends a WhatsApp message to the caller's conversation and records it
/// there: free text inside the 24-hour window, else the re-engagement
/// template (or nothing, said in the logs, when there is none).
pub async fn tell(deps: &Deps, ctx: &CallContext, text: &str, kind: &str) -> Result<()> {
    let now = deps.clock.now_ms();
    let open = deps
        .store
        .conversation(&ctx.user_id)
        .await?
        .is_some_and(|c| c.window_open(now));
    let msg = if open {
        OutboundMessage::Text {
            body: text.to_string(),
        }
    } else if let Some((name, lang)) = &deps.settings.reengage_template {
        OutboundMessage::template(name.clone(), lang.clone())
    } else {
        warn!(
            kind,
            "outside the 24-hour window and no template: the user is not told"
        );
        return Ok(());
    };
    send_and_record(
        deps.sender.as_ref(),
        deps.store.as_ref(),
        deps.clock.as_ref(),
        &ctx.phone_number_id,
        &ctx.user_id,
        &msg,
    )
    .await
    .map(|_| ())
}

/// What the voice agent is told about the customer.
async fn context_for(deps: &Deps, req: &CallRequest) -> Result<CallContext> {
    let conversation = deps.store.conversation(&req.user_id).await?;
    let leads = deps.records.leads(&req.user_id).await?;
    let memory = deps.records.memory(&req.user_id).await?;
    let recent = deps.store.recent_messages(&req.user_id, 12).await?;
    let mut summary = memory.summary.trim().to_string();
    for m in &recent {
        if m.text.trim().is_empty() {
            continue;
        }
        let who = match m.direction {
            domain::Direction::Inbound => "Cliente",
            domain::Direction::Outbound => "Agente",
        };
        if !summary.is_empty() {
            summary.push('\n');
        }
        summary.push_str(&format!("{who}: {}", m.text.trim()));
    }
    // The newest lines matter most: cut from the front.
    let chars: Vec<char> = summary.chars().collect();
    let summary: String = chars[chars.len().saturating_sub(SUMMARY_MAX_CHARS)..]
        .iter()
        .collect();
    let lead = leads.last();
    let phone = match &req.phone {
        Some(given) => Some(given.clone()),
        None if req.user_id.is_phone() => None,
        None => identity::phone_of(deps.identities.as_ref(), &req.user_id).await?,
    };
    Ok(CallContext {
        request_id: req.id.clone(),
        user_id: req.user_id.clone(),
        phone_number_id: req.phone_number_id.clone(),
        customer_name: lead
            .map(|l| l.name.clone())
            .or_else(|| conversation.and_then(|c| c.contact_name)),
        language: req.language.clone(),
        summary,
        interest: lead.map(|l| l.interest.clone()),
        reason: req.reason.clone(),
        phone,
        campaign: None,
    })
}

/// The provider: `CHARLA_VOICE_PROVIDER`, else the profile's, else Vapi.
/// One whose settings are missing (no key, no number) is [`Unconfigured`]:
/// the function still starts (a deployment without voice calls is a normal
/// one), and each call request is refused with the reason, the user told.
pub fn provider(
    config: &voice_providers::VoiceConfig,
    profile: &agent::Profile,
) -> Result<Arc<dyn VoiceProvider>> {
    use voice_providers::{RetellClient, VapiClient};
    let kind = config
        .provider
        .or(profile.voice.provider)
        .unwrap_or(ProviderKind::Vapi);
    let built: Result<Arc<dyn VoiceProvider>> = match kind {
        ProviderKind::Vapi => {
            VapiClient::new(&config.vapi, VapiClient::DEFAULT_POLICY).map(|c| Arc::new(c) as _)
        }
        ProviderKind::Retell => RetellClient::new(&config.retell, RetellClient::DEFAULT_POLICY)
            .map(|c| Arc::new(c) as _),
    };
    match built {
        Err(Error::Config(why)) => {
            warn!(provider = kind.as_str(), %why, "voice calls are off: call requests are refused");
            Ok(Arc::new(Unconfigured { kind, why }))
        }
        other => other,
    }
}

/// A provider without its settings: refuses every call, saying why.
pub struct Unconfigured {
    kind: ProviderKind,
    why: String,
}

#[async_trait::async_trait]
impl VoiceProvider for Unconfigured {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn ready(&self) -> std::result::Result<(), String> {
        Err(self.why.clone())
    }

    async fn start_call(&self, _order: &CallOrder) -> Result<StartedCall> {
        Err(Error::dependency(
            self.kind.as_str(),
            "voice calls are not configured",
            false,
            self.why.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_profile() -> agent::Profile {
        agent::Profile::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../profiles/demo/agent.toml"),
        )
        .expect("demo profile")
    }

    #[test]
    fn without_its_settings_the_provider_is_off_and_says_why() {
        let config = voice_providers::VoiceConfig::from_vars(&runtime::config::Vars::default())
            .expect("config");
        let provider = provider(&config, &demo_profile()).expect("a provider, off");
        assert!(matches!(provider.ready(), Err(why) if why.contains("VAPI_API_KEY")));
    }
}
