//! ingestion: Meta's WhatsApp webhook. Verifies, parses, deduplicates,
//! records and enqueues, and nothing slower, so that Meta gets its 200 fast.
//!
//! The handler is framework-neutral (`http::Request<Bytes>`): Lambda
//! (`main.rs`) and `infra/local` call this same code.

#[cfg(feature = "aws")]
pub mod aws;
pub mod config;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use domain::identity::{self, IdentityLinks, SeenUser};
use domain::media_pipeline::MediaJob;
use domain::ports::{
    ArchiveKind, CampaignStore, Clock, ConversationStore, MediaPipeline, PayloadArchive, Queue,
    QueueMessage, WebhookIntake,
};
use domain::signature::{secrets_equal, verify_meta_signature};
use domain::whatsapp::inbound::{
    parse_webhook, DeliveryState, InboundMessage, Metadata, WebhookEvent,
};
use domain::{Delivery, NewInbound, RecordOutcome, StatusUpdate, TurnJob, UserId};
use domain::{Error, Result};
use futures::{stream, StreamExt, TryStreamExt};
use http::{header, Method, Request, Response, StatusCode};
use runtime::config::WhatsAppSecrets;
use runtime::observability::{self, phone};
use secrecy::ExposeSecret;
use tracing::{info, instrument, warn};

/// Meta sends a few MB at most; API Gateway's own limit is 10 MB.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The code Meta uses for "outside the 24-hour window".
const OUTSIDE_WINDOW: i64 = 131047;

/// Users handled at once, per webhook being processed. Each message costs
/// three round trips to the store and queue; one after another, a
/// 50-message batch on DynamoDB would keep Meta waiting for a second or
/// more.
const USERS_AT_ONCE: usize = 8;

pub struct Deps {
    pub secrets: WhatsAppSecrets,
    pub store: Arc<dyn ConversationStore>,
    /// Which user a number or BSUID belongs to (the store's links).
    pub identities: Arc<dyn IdentityLinks>,
    /// The do-not-contact list: a user who stops marketing messages in
    /// WhatsApp is put on it. `None`: no campaigns here.
    pub campaigns: Option<Arc<dyn CampaignStore>>,
    pub queue: Arc<dyn Queue>,
    pub archive: Arc<dyn PayloadArchive>,
    pub clock: Arc<dyn Clock>,
    /// Starts the media pipeline for media messages; `None`: media messages
    /// are answered from their caption alone, as plain turns.
    pub media: Option<Arc<dyn MediaPipeline>>,
    /// Where a verified webhook is kept before it is processed (the
    /// one-machine runner's journal, whose applier calls [`process`]);
    /// `None`: processed before the 200, as on Lambda.
    pub intake: Option<Arc<dyn WebhookIntake>>,
}

/// What one POST led to, for logs, tests and benchmarks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub recorded: usize,
    pub duplicates: usize,
    pub enqueued: usize,
    pub statuses: usize,
    pub other: usize,
    /// Webhooks kept in quarantine (signed, not wholly understood).
    pub quarantined: usize,
    /// Media messages handed to the media pipeline (their turn waits for it).
    pub media_started: usize,
}

/// Entry point for both Lambda and the local server.
pub async fn handle(deps: &Deps, req: Request<Bytes>) -> Response<Bytes> {
    let result = match *req.method() {
        Method::GET => verify_subscription(deps, req.uri().query()),
        Method::POST => {
            let signature = req
                .headers()
                .get("x-hub-signature-256")
                .and_then(|v| v.to_str().ok());
            accept(deps, signature, req.body())
                .await
                .map(|()| text(StatusCode::OK, "EVENT_RECEIVED"))
        }
        _ => Ok(text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Bytes> {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Maps an error to a response (`runtime::http_answer`).
pub fn error_response(e: &Error) -> Response<Bytes> {
    runtime::http_answer::error(e, "webhook")
}

/// Meta's GET check: the challenge back when the token matches, else 403.
fn verify_subscription(deps: &Deps, query: Option<&str>) -> Result<Response<Bytes>> {
    let (mut mode, mut token, mut challenge) = (None, None, None);
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "hub.mode" => mode = Some(v.into_owned()),
            "hub.verify_token" => token = Some(v.into_owned()),
            "hub.challenge" => challenge = Some(v.into_owned()),
            _ => {}
        }
    }
    let expected = deps.secrets.verify_token.expose_secret().as_bytes();
    let token_ok = token.is_some_and(|t| secrets_equal(t.as_bytes(), expected));
    match (mode.as_deref(), challenge) {
        (Some("subscribe"), Some(challenge)) if token_ok => Ok(text(StatusCode::OK, challenge)),
        _ => Ok(text(StatusCode::FORBIDDEN, "forbidden")),
    }
}

/// A signed POST, kept in the intake when there is one, else processed:
/// either way durable before the 200.
async fn accept(deps: &Deps, signature: Option<&str>, body: &Bytes) -> Result<()> {
    verify(deps, signature, body)?;
    match &deps.intake {
        Some(intake) => intake.keep(deps.clock.now_ms(), body.clone()).await,
        None => process_now(deps, body).await.map(|_| ()),
    }
}

/// A signed POST processed now (what Lambda does): see [`process`].
pub async fn receive(deps: &Deps, signature: Option<&str>, body: &[u8]) -> Result<Summary> {
    verify(deps, signature, body)?;
    process_now(deps, body).await
}

/// One verified webhook, received now.
async fn process_now(deps: &Deps, body: &[u8]) -> Result<Summary> {
    let webhook = Webhook {
        body,
        received_at_ms: deps.clock.now_ms(),
    };
    process(deps, &[webhook]).await
}

/// The size limit and Meta's signature.
pub fn verify(deps: &Deps, signature: Option<&str>, body: &[u8]) -> Result<()> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::TooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    verify_meta_signature(deps.secrets.app_secret_bytes(), body, signature).map_err(|e| {
        observability::count(observability::Metric::WebhookSignatureRejected, 1);
        Error::Unauthorized(match e {
            domain::signature::SignatureError::Missing => "signature missing",
            domain::signature::SignatureError::Malformed => "signature malformed",
            domain::signature::SignatureError::Mismatch => "signature mismatch",
        })
    })
}

/// A verified webhook's body and when it was received.
#[derive(Debug, Clone, Copy)]
pub struct Webhook<'a> {
    pub body: &'a [u8],
    pub received_at_ms: i64,
}

/// A user message waiting for its sender to be resolved.
struct Incoming {
    /// Its webhook's index in the batch.
    webhook: usize,
    business: Metadata,
    contact_name: Option<String>,
    message: Box<InboundMessage>,
}

/// Verified webhooks, in the order they were received: everything
/// understood is recorded and enqueued; anything not understood is kept
/// whole in quarantine, last. Errors from the store or queue fail the call,
/// so that the caller has it done again (Meta's redelivery, the journal's
/// applier): every step is idempotent, and nothing is archived before the
/// rest succeeded.
///
/// A user's messages are recorded and enqueued in order, different users at
/// the same time ([`USERS_AT_ONCE`] per webhook); statuses at the same time
/// (a delivery state only moves forward); the rarer events (id changes,
/// preferences) one after another, before the messages.
#[instrument(skip_all, fields(webhooks = webhooks.len()))]
pub async fn process(deps: &Deps, webhooks: &[Webhook<'_>]) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut problems: Vec<Vec<String>> = vec![Vec::new(); webhooks.len()];
    // Messages by sender as Meta names them, in order.
    let mut senders: Vec<Vec<Incoming>> = Vec::new();
    let mut sender_index: HashMap<(String, Option<String>, Option<String>), usize> = HashMap::new();
    let mut statuses = Vec::new();
    // Whole webhooks to keep, last (once the rest is done, so that a call
    // failed and made again keeps each once): those with problems (above),
    // and those with other events, by the field of the first.
    let mut events: Vec<Option<String>> = vec![None; webhooks.len()];
    for (i, webhook) in webhooks.iter().enumerate() {
        let parsed = match parse_webhook(webhook.body) {
            Ok(p) => p,
            Err(reason) => {
                problems[i].push(reason);
                continue;
            }
        };
        problems[i] = parsed.problems;
        let now = webhook.received_at_ms;
        for event in parsed.events {
            match event {
                WebhookEvent::Message {
                    business,
                    contact_name,
                    message,
                    ..
                } => {
                    let key = (
                        business.phone_number_id.clone(),
                        message
                            .from
                            .clone()
                            .or_else(|| message.content.own_number_shared()),
                        message.from_user_id.clone(),
                    );
                    let lane = *sender_index.entry(key).or_insert_with(|| {
                        senders.push(Vec::new());
                        senders.len() - 1
                    });
                    senders[lane].push(Incoming {
                        webhook: i,
                        business,
                        contact_name,
                        message,
                    });
                }
                WebhookEvent::Status { status, .. } => {
                    summary.statuses += 1;
                    statuses.push(status);
                }
                WebhookEvent::Errors { errors, .. } => {
                    for e in errors {
                        warn!(code = e.code, title = %e.title, "webhook reported an error");
                    }
                    observability::count(observability::Metric::WebhookErrors, 1);
                }
                WebhookEvent::IdChanged { previous, current } => {
                    if let Err(reason) = id_changed(deps, &previous, &current, now).await? {
                        problems[i].push(reason);
                    }
                }
                WebhookEvent::Preference { preference, .. } => {
                    summary.other += 1;
                    let seen = SeenUser::from_raw(
                        preference.wa_id.as_deref(),
                        preference.user_id.as_deref(),
                    );
                    match seen {
                        Ok(seen) => {
                            let user =
                                identity::resolve(deps.identities.as_ref(), &seen, now).await?;
                            observability::count(observability::Metric::MarketingPreference, 1);
                            info!(
                                user = %phone(user.user.as_str()),
                                stopped = ?preference.marketing_stopped(),
                                category = %preference.category,
                                "marketing preference"
                            );
                            marketing_preference(deps, &user.user, &preference, now).await?;
                        }
                        Err(e) => problems[i].push(format!("user_preferences: {e}")),
                    }
                    // Kept whole with the other events, for the record.
                    events[i].get_or_insert_with(|| "field user_preferences".into());
                }
                WebhookEvent::Other { field, .. } => {
                    summary.other += 1;
                    events[i].get_or_insert_with(|| format!("field {field}"));
                }
            }
        }
    }
    let at_once = USERS_AT_ONCE.saturating_mul(webhooks.len().max(1));
    stream::iter(statuses)
        .map(|status| apply_status(deps, status))
        .buffer_unordered(at_once)
        .try_collect::<()>()
        .await?;
    let per_sender: Vec<(Summary, Vec<(usize, String)>)> = stream::iter(senders)
        .map(|messages| record_sender(deps, webhooks, messages))
        .buffer_unordered(at_once)
        .try_collect()
        .await?;
    for (user, refused) in per_sender {
        summary.recorded += user.recorded;
        summary.duplicates += user.duplicates;
        summary.enqueued += user.enqueued;
        summary.media_started += user.media_started;
        for (webhook, reason) in refused {
            problems[webhook].push(reason);
        }
    }
    for (i, webhook) in webhooks.iter().enumerate() {
        if let Some(field) = &events[i] {
            deps.archive
                .put(ArchiveKind::Event, webhook.body, field)
                .await?;
        }
        if !problems[i].is_empty() {
            quarantine(deps, webhook.body, &problems[i].join("; ")).await?;
            summary.quarantined += 1;
        }
    }
    if summary.recorded + summary.duplicates > 0 {
        observability::record(&[
            (
                observability::Metric::WebhookAccepted,
                summary.recorded as f64,
            ),
            (
                observability::Metric::WebhookDuplicate,
                summary.duplicates as f64,
            ),
        ]);
    }
    Ok(summary)
}

/// One sender's messages, in order: each resolved to its user, recorded and
/// enqueued. A message that cannot be (a malformed id) is returned with its
/// webhook's index, for the quarantine.
async fn record_sender(
    deps: &Deps,
    webhooks: &[Webhook<'_>],
    messages: Vec<Incoming>,
) -> Result<(Summary, Vec<(usize, String)>)> {
    let mut summary = Summary::default();
    let mut refused = Vec::new();
    for m in messages {
        let now = webhooks[m.webhook].received_at_ms;
        let user = match sender(deps, &m.message, now).await? {
            Ok(user) => user,
            Err(reason) => {
                refused.push((m.webhook, reason));
                continue;
            }
        };
        match new_inbound(&m.business, user, m.contact_name, &m.message, now) {
            Ok(msg) => {
                let media = media_job(deps, &m.message, &msg.user_id, &m.business.phone_number_id);
                record_and_enqueue(deps, &msg, media.as_ref(), &mut summary).await?;
            }
            Err(reason) => refused.push((m.webhook, reason)),
        }
    }
    Ok((summary, refused))
}

/// A delivery state for one of the business's messages; a 131047 (outside
/// the 24-hour window) also closes the user's window.
async fn apply_status(deps: &Deps, status: domain::whatsapp::inbound::Status) -> Result<()> {
    let delivery = match status.status {
        DeliveryState::Sent => Delivery::Sent,
        DeliveryState::Delivered => Delivery::Delivered,
        DeliveryState::Read => Delivery::Read,
        DeliveryState::Failed => Delivery::Failed,
        DeliveryState::Other(_) => return Ok(()),
    };
    let error_code = status.errors.first().map(|e| e.code);
    let update = StatusUpdate {
        wamid: status.id.clone(),
        delivery,
        at_ms: status.timestamp.saturating_mul(1000),
        error_code,
    };
    let outcome = deps.store.apply_status(&update).await?;
    if error_code == Some(OUTSIDE_WINDOW) {
        let recipient = status
            .recipient_user_id
            .as_deref()
            .unwrap_or(&status.recipient_id);
        if let Ok(id) = UserId::parse(recipient) {
            let user = identity::user_of(deps.identities.as_ref(), &id).await?;
            deps.store.close_window(&user).await?;
            observability::count(observability::Metric::WindowClosedByStatus, 1);
        }
    }
    tracing::debug!(?outcome, status = delivery.as_str(), "status");
    Ok(())
}

/// A user's id changed (Meta's `user_id_change`): both ids are the same
/// user from now on. `Ok(Err(..))`: an id that is not one.
async fn id_changed(
    deps: &Deps,
    previous: &str,
    current: &str,
    now_ms: i64,
) -> Result<std::result::Result<(), String>> {
    let (previous, current) = match (UserId::parse(previous), UserId::parse(current)) {
        (Ok(previous), Ok(current)) => (previous, current),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(format!("id change: {e}"))),
    };
    let user = identity::moved(deps.identities.as_ref(), &previous, &current, now_ms).await?;
    observability::count(observability::Metric::UserIdChanged, 1);
    info!(
        previous = %phone(previous.as_str()),
        current = %phone(current.as_str()),
        user = %phone(user.as_str()),
        "a user's id changed: linked to the same user"
    );
    Ok(Ok(()))
}

/// Keeps `body` whole in quarantine with `reason`, for a replay after a fix.
pub async fn quarantine(deps: &Deps, body: &[u8], reason: &str) -> Result<()> {
    let key = deps
        .archive
        .put(ArchiveKind::Quarantine, body, reason)
        .await?;
    warn!(%key, %reason, "webhook quarantined: signed but not understood");
    observability::count(observability::Metric::WebhookQuarantined, 1);
    Ok(())
}

/// A stop puts the user's number on the do-not-contact list (source
/// `meta`); a resume takes it off, unless someone else put it there (the
/// user asked on a call, an operator did).
async fn marketing_preference(
    deps: &Deps,
    user: &UserId,
    preference: &domain::whatsapp::inbound::UserPreference,
    now_ms: i64,
) -> Result<()> {
    let (Some(campaigns), Some(stopped)) = (&deps.campaigns, preference.marketing_stopped()) else {
        return Ok(());
    };
    let Some(number) = identity::phone_of(deps.identities.as_ref(), user).await? else {
        // A campaign reaches numbers only: a username-only user is on no list.
        return Ok(());
    };
    if stopped {
        let reason = match preference.detail.trim() {
            "" => "stopped marketing messages in WhatsApp".to_string(),
            d => d.chars().take(300).collect(),
        };
        campaigns
            .opt_out(&domain::campaign::OptOut {
                phone: number,
                reason,
                source: "meta".into(),
                at_ms: now_ms,
            })
            .await?;
    } else if campaigns
        .opted_out(&number)
        .await?
        .is_some_and(|o| o.source == "meta")
    {
        campaigns.remove_opt_out(&number).await?;
    }
    Ok(())
}

/// The user a message is from: its number and BSUID resolved to the one
/// user they belong to (linked when both are new together). A malformed id
/// is the message's problem (`Ok(Err(..))`); a store failure fails the POST.
async fn sender(
    deps: &Deps,
    message: &InboundMessage,
    now_ms: i64,
) -> Result<std::result::Result<UserId, String>> {
    // A user known by username who shares their own number on request is
    // that number's user from now on.
    let shared = message.content.own_number_shared();
    let number = message.from.as_deref().or(shared.as_deref());
    let seen = match SeenUser::from_raw(number, message.from_user_id.as_deref()) {
        Ok(seen) => seen,
        Err(reason) => return Ok(Err(reason)),
    };
    let resolved = identity::resolve(deps.identities.as_ref(), &seen, now_ms).await?;
    if let Some(other) = &resolved.conflict {
        // A number and a BSUID that were two users are one: new messages go
        // to the BSUID's; the other history stays where it was.
        observability::count(observability::Metric::IdentityConflict, 1);
        warn!(
            user = %phone(resolved.user.as_str()),
            other = %phone(other.as_str()),
            "a number and a BSUID seen apart belong to one user"
        );
    }
    Ok(Ok(resolved.user))
}

fn new_inbound(
    business: &Metadata,
    user_id: UserId,
    contact_name: Option<String>,
    message: &InboundMessage,
    now_ms: i64,
) -> std::result::Result<NewInbound, String> {
    if business.phone_number_id.is_empty() {
        return Err("metadata.phone_number_id is empty".into());
    }
    Ok(NewInbound {
        wamid: message.id.clone(),
        user_id,
        phone_number_id: business.phone_number_id.clone(),
        contact_name,
        kind: message.content.stored_kind().to_string(),
        text: message.content.summary(),
        payload: serde_json::to_value(message).unwrap_or(serde_json::Value::Null),
        sent_at_ms: message.timestamp.saturating_mul(1000),
        received_at_ms: now_ms,
        starts_turn: message.content.starts_turn(),
    })
}

/// The media pipeline's job for a media message, when there is a pipeline.
/// A media message that cannot make one (no media id) stays a plain turn.
fn media_job(
    deps: &Deps,
    message: &InboundMessage,
    user: &UserId,
    phone_number_id: &str,
) -> Option<MediaJob> {
    deps.media.as_ref()?;
    match MediaJob::from_inbound(message, user, phone_number_id)? {
        Ok(job) => Some(job),
        Err(e) => {
            warn!(error = %e, "media message without usable media: answered as text");
            None
        }
    }
}

async fn record_and_enqueue(
    deps: &Deps,
    msg: &NewInbound,
    media: Option<&MediaJob>,
    summary: &mut Summary,
) -> Result<()> {
    let outcome = deps.store.record_inbound(msg).await?;
    let must_enqueue = match outcome {
        RecordOutcome::Recorded => {
            summary.recorded += 1;
            msg.starts_turn
        }
        // Recorded earlier but the enqueue was never confirmed (a crash or a
        // queue failure between the two): enqueue now; the queue's dedup id
        // and text-ai's turn records make a second enqueue harmless.
        RecordOutcome::Duplicate { enqueued } => {
            summary.duplicates += 1;
            msg.starts_turn && !enqueued
        }
    };
    if let (true, Some(job), Some(pipeline)) = (must_enqueue, media, deps.media.as_ref()) {
        // The pipeline queues the turn once the media is understood (or
        // failed); text-ai holds later texts until then. The start is
        // idempotent on the wamid, so a redelivery may start it again.
        let started = pipeline.start(job).await?;
        deps.store.mark_enqueued(&msg.wamid).await?;
        summary.media_started += 1;
        info!(?started, kind = %msg.kind, "media pipeline started");
        return Ok(());
    }
    if must_enqueue {
        let job = TurnJob {
            phone_number_id: msg.phone_number_id.clone(),
            user_id: msg.user_id.clone(),
            wamid: msg.wamid.clone(),
            received_at_ms: msg.received_at_ms,
        };
        let body = serde_json::to_string(&job)?;
        deps.queue
            .send(&QueueMessage {
                group_id: job.group_id(),
                dedup_id: job.wamid.clone(),
                body,
            })
            .await?;
        deps.store.mark_enqueued(&msg.wamid).await?;
        summary.enqueued += 1;
    }
    info!(
        user_id = %phone(msg.user_id.as_str()),
        kind = %msg.kind,
        duplicate = matches!(outcome, RecordOutcome::Duplicate { .. }),
        enqueued = must_enqueue,
        "message"
    );
    Ok(())
}
