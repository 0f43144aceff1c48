//! voice: the voice providers' webhooks.
//!
//! - `POST /webhooks/voice/vapi`: Vapi server messages, authenticated by the
//!   `x-vapi-secret` header;
//! - `POST /webhooks/voice/retell`: Retell webhooks and custom function
//!   calls, authenticated by `X-Retell-Signature` over the raw body.
//!
//! Authentication comes before anything else: a request that fails it gets
//! 401 and changes nothing. Lifecycle events move the call record forward
//! (never back: reordered events are ignored), put the transcript into the
//! same conversation as the WhatsApp messages, schedule a retry after a
//! no-answer or busy line, and send the follow-up once. Tool calls are served
//! by the agent's tool registry within the providers' time limits.

#[cfg(feature = "aws")]
pub mod aws;
pub mod config;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::voice::*;
use domain::{Error, Result};
use domain::{Lead, SentRecord};
use http::{Request, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tracing::{info, warn};
use voice_providers::webhooks::{
    parse_retell, parse_vapi, verify_retell_signature, verify_vapi_secret, RetellMessage,
    VapiMessage,
};

/// Transcripts make these bodies larger than WhatsApp's; past this, 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// All tool calls of one request are answered within this: under Retell's
/// 10 s and Vapi's 20 s, with room for the network.
pub const TOOL_BUDGET: Duration = Duration::from_secs(8);

pub struct Deps {
    /// The call records, the stores, the sender and the rules.
    pub calls: Arc<call_lifecycle::Deps>,
    /// The same tools as the text agent.
    pub registry: agent::Registry,
    pub vapi_secret: Option<SecretString>,
    /// Retell signs with the API key.
    pub retell_key: Option<SecretString>,
    pub transfer_to: Option<TransferTarget>,
    /// Authenticated bodies that cannot be read are kept here (quarantine)
    /// and answered 200, so that a fix can replay them.
    pub archive: Arc<dyn domain::ports::PayloadArchive>,
}

/// The adapters the voice webhooks run on.
pub struct Ports {
    pub store: Arc<dyn domain::ports::ConversationStore>,
    pub identities: Arc<dyn domain::identity::IdentityLinks>,
    /// Campaigns' contacts: a campaign's call ends there.
    pub campaigns: Option<Arc<dyn domain::ports::CampaignStore>>,
    pub records: Arc<dyn domain::ports::AgentRecords>,
    pub calls: Arc<dyn domain::ports::CallRecords>,
    pub sender: Arc<dyn domain::ports::MessageSender>,
    pub call_queue: Arc<dyn domain::ports::Queue>,
    pub escalation_queue: Arc<dyn domain::ports::Queue>,
    pub archive: Arc<dyn domain::ports::PayloadArchive>,
    pub usage: Arc<dyn domain::ports::UsageLedger>,
    pub clock: Arc<dyn domain::ports::Clock>,
}

impl Deps {
    /// The one constructor, for Lambda and the one-process runner: the
    /// agent (for its tools) and the calls from the config, the profile and
    /// the ports. `settings.calls.voice` carries the providers' keys.
    pub async fn new(
        settings: &config::Settings,
        secrets: &runtime::config::WhatsAppSecrets,
        ports: Ports,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<Deps> {
        let agent = agent_setup::build_agent(
            &settings.agent,
            secrets,
            agent_setup::AgentPorts {
                records: ports.records.clone(),
                call_queue: ports.call_queue,
                escalation_queue: ports.escalation_queue,
                clock: ports.clock.clone(),
            },
            aws,
        )
        .await?;
        let profile = agent.profile();
        let calls = call_lifecycle::Deps::new(
            &settings.calls,
            profile,
            call_lifecycle::Ports {
                records: ports.records,
                store: ports.store,
                identities: ports.identities,
                campaigns: ports.campaigns,
                calls: ports.calls,
                sender: ports.sender,
                usage: ports.usage,
                clock: ports.clock,
            },
        )?;
        let voice = &settings.calls.voice;
        Ok(Deps {
            calls: Arc::new(calls),
            registry: agent.registry().clone(),
            vapi_secret: voice.vapi.webhook_secret.clone(),
            retell_key: voice.retell.api_key.clone(),
            transfer_to: settings
                .transfer_to
                .clone()
                .or_else(|| profile.voice.transfer_to.clone()),
            archive: ports.archive,
        })
    }
}

fn respond(status: StatusCode, body: Value) -> Response<Bytes> {
    runtime::http_answer::json(status, &body)
}

fn error(e: &Error) -> Response<Bytes> {
    runtime::http_answer::error(e, "voice webhook")
}

fn header<'a>(req: &'a Request<Bytes>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The one entry: routes by the path's last segment.
pub async fn handle(deps: &Deps, req: Request<Bytes>) -> Response<Bytes> {
    if req.method() != http::Method::POST {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "POST only"}),
        );
    }
    if req.body().len() > MAX_BODY_BYTES {
        return error(&Error::TooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let path = req.uri().path().trim_end_matches('/');
    let result = if path.ends_with("/vapi") {
        vapi(deps, &req).await
    } else if path.ends_with("/retell") {
        retell(deps, &req).await
    } else {
        Err(Error::NotFound("no such voice webhook".into()))
    };
    match result {
        Ok(r) => r,
        Err(e) => error(&e),
    }
}

async fn vapi(deps: &Deps, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    let secret = deps
        .vapi_secret
        .as_ref()
        .map(|s| s.expose_secret().as_bytes())
        .unwrap_or(b"");
    verify_vapi_secret(secret, header(req, "x-vapi-secret"))
        .map_err(|_| Error::Unauthorized("x-vapi-secret"))?;
    let msg = match parse_vapi(req.body()) {
        Ok(m) => m,
        Err(why) => return quarantine(deps, req.body(), "vapi", &why).await,
    };
    Ok(match msg {
        VapiMessage::Event(e) => {
            apply_event(deps, &e).await?;
            respond(StatusCode::OK, json!({"ok": true}))
        }
        VapiMessage::ToolCalls {
            call_ref, calls, ..
        } => {
            let mut results = Vec::new();
            let answers = run_tools(deps, call_ref.as_ref(), &calls).await?;
            for (call, answer) in calls.iter().zip(answers) {
                results.push(match answer {
                    Ok(result) => {
                        json!({"name": call.name, "toolCallId": call.id, "result": result})
                    }
                    Err(problem) => {
                        json!({"name": call.name, "toolCallId": call.id, "error": problem})
                    }
                });
            }
            respond(StatusCode::OK, json!({"results": results}))
        }
        VapiMessage::TransferDestinationRequest { call_ref, .. } => respond(
            StatusCode::OK,
            transfer_answer(deps, call_ref.as_ref()).await?,
        ),
        VapiMessage::Other(kind) => respond(StatusCode::OK, json!({"ok": true, "ignored": kind})),
    })
}

async fn retell(deps: &Deps, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    let key = deps
        .retell_key
        .as_ref()
        .map(|s| s.expose_secret().as_bytes())
        .unwrap_or(b"");
    let now = deps.calls.clock.now_ms();
    verify_retell_signature(key, req.body(), header(req, "x-retell-signature"), now)
        .map_err(|_| Error::Unauthorized("x-retell-signature"))?;
    let msg = match parse_retell(req.body()) {
        Ok(m) => m,
        Err(why) => return quarantine(deps, req.body(), "retell", &why).await,
    };
    Ok(match msg {
        RetellMessage::Event(e) => {
            apply_event(deps, &e).await?;
            respond(StatusCode::OK, json!({"ok": true}))
        }
        RetellMessage::Function { call_ref, call, .. } => {
            // The answer's body is the result, for the voice agent to read.
            let calls = [call];
            let mut answers = run_tools(deps, call_ref.as_ref(), &calls).await?;
            match answers.pop().unwrap_or_else(|| Err("no answer".into())) {
                Ok(result) => respond(
                    StatusCode::OK,
                    serde_json::from_str(&result).unwrap_or(Value::String(result)),
                ),
                Err(problem) => respond(StatusCode::OK, json!({"error": problem})),
            }
        }
    })
}

/// Keeps an authenticated body Charla cannot read, and says so with a 200:
/// the provider's retries would fail the same way.
async fn quarantine(
    deps: &Deps,
    body: &[u8],
    provider: &str,
    why: &str,
) -> Result<Response<Bytes>> {
    let key = deps
        .archive
        .put(
            domain::ports::ArchiveKind::Quarantine,
            body,
            &format!("voice {provider}: {why}"),
        )
        .await?;
    warn!(provider, %key, reason = why, "voice webhook body not understood; quarantined");
    Ok(respond(
        StatusCode::OK,
        json!({"ok": false, "quarantined": true}),
    ))
}

/// Runs the tool calls for the call's conversation, each as the text agent
/// would, all within [`TOOL_BUDGET`]. A call that is not ours gets no tools.
pub async fn run_tools(
    deps: &Deps,
    call_ref: Option<&CallRef>,
    calls: &[ToolCall],
) -> Result<Vec<std::result::Result<String, String>>> {
    let Some(call_ref) = call_ref else {
        return Ok(calls
            .iter()
            .map(|_| Err("this call is not one Charla placed".to_string()))
            .collect());
    };
    let record = deps.calls.calls.get(&call_ref.request_id).await?;
    let Some(record) = record.filter(|r| r.context.user_id == call_ref.user_id) else {
        return Ok(calls
            .iter()
            .map(|_| Err("unknown call".to_string()))
            .collect());
    };
    let run = async {
        let mut out = Vec::new();
        let mut effects = agent::TurnEffects::default();
        for c in calls {
            let ctx = agent::ToolContext {
                // A tool call id makes the tool's records idempotent
                // (`{turn_id}:lead`...) across provider retries.
                turn_id: format!("voice:{}", c.id),
                user_id: record.context.user_id.clone(),
                phone_number_id: record.context.phone_number_id.clone(),
                // On the phone: the number this call reached.
                phone: record.context.phone.clone().or_else(|| {
                    record
                        .context
                        .user_id
                        .is_phone()
                        .then(|| record.context.user_id.clone())
                }),
                language: record.context.language.clone(),
                source: "voice",
            };
            if c.name == DO_NOT_CONTACT_TOOL {
                out.push(do_not_contact(deps, &record, &c.args).await?);
                continue;
            }
            out.push(
                match deps
                    .registry
                    .call(&ctx, &mut effects, &c.name, &c.args)
                    .await?
                {
                    agent::ToolOutcome::Done(v) => Ok(v.to_string()),
                    agent::ToolOutcome::Refused(reason) => Err(reason),
                },
            );
        }
        Ok::<_, Error>(out)
    };
    match tokio::time::timeout(TOOL_BUDGET, run).await {
        Ok(r) => r,
        Err(_) => Ok(calls
            .iter()
            .map(|_| {
                Err("the tools did not answer in time; say it is not available now".to_string())
            })
            .collect()),
    }
}

/// The voice agent's tool for "do not call me again": the number the call
/// reached goes on the do-not-contact list every campaign checks. Served
/// here, not by the text agent's registry (on WhatsApp, "STOP" does it).
pub const DO_NOT_CONTACT_TOOL: &str = "do_not_contact";

async fn do_not_contact(
    deps: &Deps,
    record: &CallRecord,
    args: &Value,
) -> Result<std::result::Result<String, String>> {
    let reason = args
        .get("reason")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
        .unwrap_or("asked on the call");
    if call_lifecycle::campaign::opt_out_on_call(&deps.calls, record, reason).await? {
        Ok(Ok(
            json!({"done": true, "say": "confirm they will not be called or written to again"})
                .to_string(),
        ))
    } else {
        Ok(Err("the do-not-contact list is not available".to_string()))
    }
}

/// Vapi's answer to `transfer-destination-request`.
async fn transfer_answer(deps: &Deps, call_ref: Option<&CallRef>) -> Result<Value> {
    let Some(target) = &deps.transfer_to else {
        return Ok(json!({"error": "no transfer destination is configured"}));
    };
    let summary = match call_ref {
        Some(r) => deps
            .calls
            .calls
            .get(&r.request_id)
            .await?
            .map(|rec| rec.context.summary)
            .unwrap_or_default(),
        None => String::new(),
    };
    let mut destination = match target {
        TransferTarget::Number(n) => json!({"type": "number", "number": n}),
        TransferTarget::Sip(uri) => json!({"type": "sip", "sipUri": uri}),
    };
    // The person who picks up gets what the call was about: said before the
    // customer is connected on a number (a warm transfer), in the
    // X-Transfer-Summary SIP header on a PBX (Vapi's warm modes need a
    // phone leg).
    let mode = match target {
        TransferTarget::Number(_) => "warm-transfer-say-summary",
        TransferTarget::Sip(_) => "blind-transfer-add-summary-to-sip-header",
    };
    destination["transferPlan"] = json!({"mode": mode, "summaryPlan": {"enabled": true}});
    if !summary.is_empty() {
        destination["description"] = json!(summary.chars().take(500).collect::<String>());
    }
    Ok(json!({"destination": destination}))
}

/// Applies a lifecycle event once. Duplicates are noticed by the event mark
/// (after a success) and, before that, by the record's own state.
pub async fn apply_event(deps: &Deps, event: &VoiceEvent) -> Result<()> {
    let key = event.dedup_key();
    let Some(call_ref) = &event.call_ref else {
        info!(call_id = %event.call_id, "event for a call Charla did not place; ignored");
        return Ok(());
    };
    if matches!(event.kind, EventKind::Ignored(_)) {
        return Ok(());
    }
    let c = &deps.calls;
    for _ in 0..5 {
        let Some(record) = c.calls.get(&call_ref.request_id).await? else {
            info!(request = %call_ref.request_id, "event for an unknown call request; ignored");
            return Ok(());
        };
        if record.context.user_id != call_ref.user_id {
            return Err(Error::Invalid(
                "call metadata does not match its record".into(),
            ));
        }
        // An event of an earlier attempt (its call id is not the current one).
        if record
            .call_id
            .as_deref()
            .is_some_and(|id| id != event.call_id)
        {
            return Ok(());
        }
        match step(deps, &record, event).await? {
            Step::Done => {
                c.calls.mark_event(&key, c.clock.now_ms()).await?;
                return Ok(());
            }
            Step::Lost => continue,
        }
    }
    Err(Error::Conflict("call record kept changing".into()))
}

enum Step {
    Done,
    /// Another writer changed the record: read again.
    Lost,
}

async fn step(deps: &Deps, record: &CallRecord, event: &VoiceEvent) -> Result<Step> {
    let c = &deps.calls;
    let now = c.clock.now_ms();
    let mut next = record.next(now);
    if next.call_id.is_none() && !record.phase.is_final() && record.phase != CallPhase::Scheduled {
        // The provider's events may know the call before call-trigger does.
        next.call_id = Some(event.call_id.clone());
        next.due_at_ms = None;
    }
    match &event.kind {
        EventKind::Ignored(_) => Ok(Step::Done),
        EventKind::Status(phase) => {
            if !next.advance(*phase) {
                return Ok(Step::Done);
            }
            Ok(if c.calls.update(record, &next).await? {
                Step::Done
            } else {
                Step::Lost
            })
        }
        EventKind::Ended {
            reason,
            transcript,
            summary,
            duration_secs,
            results,
        } => {
            if record.outcome.is_some() && record.call_id.as_deref() == Some(event.call_id.as_str())
                || record.phase.is_final()
                // Waiting for a retry: the call this reports on is over.
                || record.phase == CallPhase::Scheduled
            {
                // This attempt's end is known: a redelivery. A campaign's
                // contact may not have it yet (the process died, or the
                // contact's write failed, after the record's write): it gets
                // it now, only while it still waits for this call.
                if let (Some(_), Some(outcome)) = (&record.context.campaign, record.outcome) {
                    let report = call_lifecycle::campaign::CallReport {
                        summary: summary.clone().or(record.summary.clone()),
                        duration_secs: *duration_secs,
                        results: results.clone(),
                    };
                    call_lifecycle::campaign::apply_outcome(c, record, outcome, &report).await?;
                }
                return Ok(Step::Done);
            }
            if let Some(t) = transcript {
                store_transcript(deps, record, &event.call_id, t).await?;
            }
            let outcome = CallOutcome::from_reason(reason);
            runtime::observability::count_by(
                runtime::observability::Metric::CallEnded,
                "Outcome",
                outcome.as_str(),
                1,
            );
            let used = domain::usage::UsageEvent::call(
                &record.context.user_id,
                &event.call_id,
                now,
                outcome.as_str(),
                u64::from(duration_secs.unwrap_or(0)),
            );
            runtime::usage::record(c.usage.as_ref(), &used).await;
            if record.context.campaign.is_some() {
                // One attempt per record: the campaign's rules retry.
                next.outcome = Some(outcome);
                next.ended_reason = Some(reason.chars().take(200).collect());
                next.summary = summary.clone().or(next.summary);
                next.phase = CallPhase::Done;
                if !c.calls.update(record, &next).await? {
                    return Ok(Step::Lost);
                }
                let report = call_lifecycle::campaign::CallReport {
                    summary: next.summary.clone(),
                    duration_secs: *duration_secs,
                    results: results.clone(),
                };
                call_lifecycle::campaign::apply_outcome(c, &next, outcome, &report).await?;
                return Ok(Step::Done);
            }
            next.outcome = Some(outcome);
            next.ended_reason = Some(reason.chars().take(200).collect());
            next.summary = summary.clone().or(next.summary);
            match after_call(outcome, record.attempts.max(1), now) {
                AfterCall::RetryAt(at) => {
                    let due = c.next_window(&record.context.user_id, at);
                    next.phase = CallPhase::Scheduled;
                    next.due_at_ms = Some(due);
                    next.call_id = None;
                    if !c.calls.update(record, &next).await? {
                        return Ok(Step::Lost);
                    }
                    info!(
                        outcome = outcome.as_str(),
                        due, "no answer: calling again later"
                    );
                    Ok(Step::Done)
                }
                AfterCall::GiveUp => {
                    next.phase = CallPhase::Failed;
                    if !c.calls.update(record, &next).await? {
                        return Ok(Step::Lost);
                    }
                    save_outcome(deps, &next).await?;
                    call_lifecycle::follow_up_failed(c, next).await?;
                    Ok(Step::Done)
                }
                AfterCall::FollowUp => {
                    next.phase = CallPhase::Ended;
                    // Retell's summary comes with `call_analyzed`, after the end.
                    let wait_for_analysis =
                        next.summary.is_none() && event.provider == ProviderKind::Retell;
                    if !wait_for_analysis {
                        next.phase = CallPhase::Done;
                    }
                    if !c.calls.update(record, &next).await? {
                        return Ok(Step::Lost);
                    }
                    if !wait_for_analysis {
                        finish(deps, next).await?;
                    }
                    Ok(Step::Done)
                }
            }
        }
        EventKind::Analysed { summary, results } if record.context.campaign.is_some() => {
            let report = call_lifecycle::campaign::CallReport {
                summary: summary.clone(),
                results: results.clone(),
                ..Default::default()
            };
            call_lifecycle::campaign::add_summary(c, record, &report).await?;
            Ok(Step::Done)
        }
        EventKind::Analysed { summary, .. } => {
            if record.followed_up || record.phase == CallPhase::Scheduled {
                return Ok(Step::Done);
            }
            next.summary = summary.clone().or(next.summary);
            if record.phase == CallPhase::Ended {
                next.phase = CallPhase::Done;
            }
            if !c.calls.update(record, &next).await? {
                return Ok(Step::Lost);
            }
            if next.phase == CallPhase::Done {
                finish(deps, next).await?;
            }
            Ok(Step::Done)
        }
    }
}

/// After a call that happened: the lead gets the outcome, the user the
/// summary and the next step.
async fn finish(deps: &Deps, record: CallRecord) -> Result<()> {
    save_outcome(deps, &record).await?;
    let text =
        call_lifecycle::messages::after_call(&record.context.language, record.summary.as_deref());
    call_lifecycle::follow_up(&deps.calls, record, &text, "call_follow_up").await
}

/// The lead, with the call's outcome (idempotent on the request id).
async fn save_outcome(deps: &Deps, record: &CallRecord) -> Result<()> {
    let ctx = &record.context;
    let outcome = record.outcome.map(CallOutcome::as_str).unwrap_or("unknown");
    let notes = match &record.summary {
        Some(s) => format!("call {outcome}: {s}"),
        None => format!("call {outcome}"),
    };
    deps.calls
        .records
        .save_lead(&Lead {
            id: format!("{}:outcome", ctx.request_id),
            user_id: ctx.user_id.clone(),
            name: ctx.customer_name.clone().unwrap_or_else(|| "-".into()),
            interest: ctx.interest.clone().unwrap_or_else(|| ctx.reason.clone()),
            notes: Some(notes.chars().take(1000).collect()),
            created_at_ms: deps.calls.clock.now_ms(),
        })
        .await
        .map(|_| ())
}

/// The call's transcript, in the same conversation as the WhatsApp
/// messages (idempotent on the call id).
async fn store_transcript(
    deps: &Deps,
    record: &CallRecord,
    call_id: &str,
    transcript: &str,
) -> Result<()> {
    deps.calls
        .store
        .record_outbound(
            &record.context.user_id,
            &SentRecord {
                wamid: format!("call:{call_id}:transcript"),
                kind: "call_transcript".into(),
                text: transcript.to_string(),
                at_ms: deps.calls.clock.now_ms(),
            },
        )
        .await
}
