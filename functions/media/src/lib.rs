//! media: the tasks of the media state machine
//! (`infra/statemachine/media.asl.json`), one handler dispatching on the
//! task's `step`. Each task reads the pipeline's document ([`MediaJob`]) and
//! returns it with its part filled in; the state machine chooses the next
//! state from it, waits between polls, retries and catches.
//!
//! - A verdict on the media (too large, wrong hash, expired, unsafe) is not
//!   an error: the task sets `problem` and the machine goes to `fail`.
//! - A fault that may pass fails the task as `Charla.Retryable` (the
//!   machine's Retry matches it, with backoff); any other as `Charla.Final`
//!   (straight to the Catch, then `fail`).
//! - `deliver` and `fail` end every run: the outcome is noted by wamid (what
//!   text-ai reads in place of "[image]"), and the user's held turn is
//!   queued again. `fail` also tells the user, once, what could not be read
//!   (in the conversation's language), and hands a conversation that sent
//!   unsafe content to people for review.
//!
//! Locally ([`run_local`]) the same steps run in-process in the same order.

#[cfg(feature = "aws")]
pub mod aws;
pub mod config;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use domain::handoff::EscalationMessage;
use domain::media::{media_key, JobState, MediaKeySalt};
use domain::media_pipeline::*;
use domain::ports::{
    AgentRecords, Clock, ConversationStore, DocumentReader, ImageAnalyzer, MediaNotes,
    MediaPipeline, MediaSource, MediaStore, MessageSender, PipelineStart, Queue, QueueMessage,
    Transcriber, UsageLedger,
};
use domain::usage::UsageEvent;
use domain::whatsapp::outbound::OutboundMessage;
use domain::{
    ClaimOutcome, ConversationState, HandoffRequest, SentRecord, TurnJob, TurnRecord, TurnState,
    UserId,
};
use domain::{Error, Result};
use runtime::observability::{self, phone};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument, warn};

/// The profile's languages (`[agent] languages` of the agent profile, the
/// layer's `/opt/agent.toml`): the transcriber chooses among them, and the
/// first is the notice's default. Only that key is read: the rest of the
/// profile is the agent's business, validated where it is used.
pub fn profile_languages(profile_toml: &str) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Profile {
        agent: AgentPart,
    }
    #[derive(Deserialize)]
    struct AgentPart {
        languages: Vec<String>,
    }
    let profile: Profile =
        toml::from_str(profile_toml).map_err(|e| Error::Config(format!("agent profile: {e}")))?;
    let languages: Vec<String> = profile
        .agent
        .languages
        .into_iter()
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| !l.is_empty())
        .collect();
    if languages.is_empty() {
        return Err(Error::Config(
            "agent profile: agent.languages is empty".into(),
        ));
    }
    Ok(languages)
}

/// The error names the state machine's Retry and Catch match.
pub const RETRYABLE: &str = "Charla.Retryable";
pub const FINAL: &str = "Charla.Final";

#[derive(Debug, Clone)]
pub struct Settings {
    /// The profile's languages: the transcriber chooses among them.
    pub languages: Vec<String>,
    /// The notice's language when the conversation has none yet (a photo
    /// as the first message): the profile's first language.
    pub notice_language: String,
    /// Where downloads land before they are stored (`/tmp` in Lambda).
    pub work_dir: PathBuf,
}

pub struct Deps {
    pub source: Arc<dyn MediaSource>,
    pub store: Arc<dyn MediaStore>,
    pub images: Arc<dyn ImageAnalyzer>,
    pub documents: Arc<dyn DocumentReader>,
    pub speech: Arc<dyn Transcriber>,
    pub notes: Arc<dyn MediaNotes>,
    pub conversations: Arc<dyn ConversationStore>,
    /// The agent's memory of the conversation: its language.
    pub records: Arc<dyn AgentRecords>,
    pub sender: Arc<dyn MessageSender>,
    /// text-ai's queue: the held turn goes back on it.
    pub text_queue: Arc<dyn Queue>,
    /// Unsafe content hands the conversation to people for review.
    pub escalation_queue: Arc<dyn Queue>,
    /// Media analysed, by kind, for the numbers and costs.
    pub usage: Arc<dyn UsageLedger>,
    pub clock: Arc<dyn Clock>,
    pub salt: MediaKeySalt,
    pub settings: Settings,
}

/// Where media is kept, what reads it, and where its notes go: S3 and the
/// AWS analysers in Lambda ([`aws::analysers`]), files and the local ones on
/// one machine.
pub struct Analysers {
    pub store: Arc<dyn MediaStore>,
    pub images: Arc<dyn ImageAnalyzer>,
    pub documents: Arc<dyn DocumentReader>,
    pub speech: Arc<dyn Transcriber>,
    pub notes: Arc<dyn MediaNotes>,
}

/// The adapters the media steps run on.
pub struct Ports {
    pub analysers: Analysers,
    pub conversations: Arc<dyn ConversationStore>,
    pub records: Arc<dyn AgentRecords>,
    pub sender: Arc<dyn MessageSender>,
    pub text_queue: Arc<dyn Queue>,
    pub escalation_queue: Arc<dyn Queue>,
    pub usage: Arc<dyn UsageLedger>,
    pub clock: Arc<dyn Clock>,
}

/// How long one download may take, body included.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

impl Deps {
    /// The one constructor, for Lambda and the one-process runner: media
    /// is fetched from the Graph API with `access_token`, the languages come
    /// from the config or the profile.
    pub fn new(
        config: &config::Settings,
        access_token: secrecy::SecretString,
        salt: MediaKeySalt,
        ports: Ports,
    ) -> Result<Deps> {
        let languages = match &config.languages {
            Some(list) if !list.is_empty() => list.clone(),
            _ => {
                let text = std::fs::read_to_string(&config.profile).map_err(|e| {
                    Error::Config(format!("agent profile {}: {e}", config.profile.display()))
                })?;
                profile_languages(&text)?
            }
        };
        Ok(Deps {
            source: Arc::new(whatsapp_graph::GraphMedia::new(
                config.graph.api_base.clone(),
                access_token,
                config.graph.settings.clone(),
                DOWNLOAD_TIMEOUT,
            )?),
            store: ports.analysers.store,
            images: ports.analysers.images,
            documents: ports.analysers.documents,
            speech: ports.analysers.speech,
            notes: ports.analysers.notes,
            conversations: ports.conversations,
            records: ports.records,
            sender: ports.sender,
            text_queue: ports.text_queue,
            escalation_queue: ports.escalation_queue,
            usage: ports.usage,
            clock: ports.clock,
            salt,
            settings: Settings {
                notice_language: languages.first().cloned().unwrap_or_else(|| "en".into()),
                languages,
                work_dir: config.work_dir.clone(),
            },
        })
    }
}

/// The task states of the machine, in the order they can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Download,
    AnalyzeImage,
    ReadDocument,
    StartDocumentJob,
    PollDocumentJob,
    StartTranscription,
    PollTranscription,
    RecordOnly,
    Deliver,
    Fail,
}

/// A task's input: `{"step": "...", "job": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepInput {
    pub step: Step,
    pub job: serde_json::Value,
}

/// How a task failed, as the state machine sees it (`Error`, `Cause`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub error_type: &'static str,
    pub message: String,
}

impl From<&Error> for StepFailure {
    fn from(e: &Error) -> Self {
        StepFailure {
            error_type: if e.is_retryable() { RETRYABLE } else { FINAL },
            // The shared error's text names the dependency and context,
            // never message content.
            message: e.to_string(),
        }
    }
}

impl From<StepFailure> for lambda_runtime::Diagnostic {
    fn from(f: StepFailure) -> Self {
        lambda_runtime::Diagnostic {
            error_type: f.error_type.to_string(),
            error_message: f.message,
        }
    }
}

/// The Lambda entry point.
pub async fn handle(deps: &Deps, input: serde_json::Value) -> Result<MediaJob, StepFailure> {
    let result = async {
        let input: StepInput = serde_json::from_value(input)
            .map_err(|e| Error::Invalid(format!("not a media step: {e}")))?;
        let job = parse_job(input.job)?;
        run_step(deps, input.step, job).await
    }
    .await;
    result.map_err(|e| {
        if e.is_retryable() {
            warn!(error = %e, "media step failed, will be retried");
        } else {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "media step failed");
        }
        StepFailure::from(&e)
    })
}

/// One task.
#[instrument(skip_all, fields(step = ?step, kind = %job.media.kind, user_id = %phone(job.media.user_id.as_str())))]
pub async fn run_step(deps: &Deps, step: Step, mut job: MediaJob) -> Result<MediaJob> {
    match step {
        Step::Download => download(deps, &mut job).await?,
        Step::AnalyzeImage => {
            let key = stored_key(&job)?;
            let analysis = deps.images.analyze_image(&key).await?;
            if !analysis.moderation.is_empty() {
                job.problem = Some(MediaFailure::Unsafe {
                    categories: analysis.moderation.iter().map(|l| l.name.clone()).collect(),
                });
            } else {
                job.description = Some(describe_image(&job.media, &analysis));
            }
        }
        Step::ReadDocument => {
            let text = deps.documents.read_document(&stored_key(&job)?).await?;
            job.description = Some(describe_document(&job.media, &text));
        }
        Step::StartDocumentJob => {
            let key = stored_key(&job)?;
            let id = deps
                .documents
                .start_document_job(&key, &job.execution_name())
                .await?;
            job.job_id = Some(id);
            job.polls = 0;
            job.done = false;
        }
        Step::PollDocumentJob => {
            let id = job
                .job_id
                .clone()
                .ok_or_else(|| Error::Invalid("poll without a job id".into()))?;
            job.polls += 1;
            match deps.documents.document_job(&id).await? {
                JobState::Running => give_up_after_polls(&mut job),
                JobState::Done { result } => {
                    job.description = Some(describe_document(&job.media, &result));
                    job.done = true;
                }
                JobState::Failed { reason } => fail_job(&mut job, reason),
            }
        }
        Step::StartTranscription => {
            let key = stored_key(&job)?;
            let name = job.execution_name();
            match deps
                .speech
                .start_transcription(&name, &key, &deps.settings.languages)
                .await
            {
                Ok(()) => {
                    job.job_id = Some(name);
                    job.polls = 0;
                    job.done = false;
                }
                // No speech service here (locally, without AWS): said plainly
                // to the responder, who tells the user, rather than "failed".
                Err(e) if !e.is_retryable() && !matches!(e, Error::Invalid(_)) => {
                    job.description = Some(describe_unavailable(&job, &e));
                    job.done = true;
                }
                Err(e) => return Err(e),
            }
        }
        Step::PollTranscription => {
            let name = job
                .job_id
                .clone()
                .ok_or_else(|| Error::Invalid("poll without a job name".into()))?;
            job.polls += 1;
            match deps.speech.transcription(&name).await? {
                JobState::Running => give_up_after_polls(&mut job),
                JobState::Done { result } => {
                    job.description = Some(describe_transcript(&job.media, &result));
                    job.done = true;
                }
                JobState::Failed { reason } => fail_job(&mut job, reason),
            }
        }
        Step::RecordOnly => {
            let mime = job
                .stored
                .as_ref()
                .map(|s| s.mime.clone())
                .unwrap_or_else(|| "unknown".into());
            job.description = Some(describe_unread(&job.media, &mime));
        }
        Step::Deliver => deliver(deps, &job).await?,
        Step::Fail => fail(deps, &job).await?,
    }
    Ok(job)
}

fn stored_key(job: &MediaJob) -> Result<String> {
    job.stored
        .as_ref()
        .map(|s| s.key.clone())
        .ok_or_else(|| Error::Invalid("step before the download".into()))
}

fn give_up_after_polls(job: &mut MediaJob) {
    if job.polls >= MAX_POLLS {
        fail_job(job, format!("still running after {} polls", job.polls));
    }
}

fn fail_job(job: &mut MediaJob, detail: String) {
    job.problem = Some(MediaFailure::Unreadable { detail });
    job.done = true;
}

fn describe_unavailable(job: &MediaJob, e: &Error) -> String {
    let noun = if job.media.voice {
        "a voice note"
    } else {
        "an audio file"
    };
    format!(
        "[The user sent {noun}; it cannot be transcribed here ({e}). Tell the user honestly and ask them to write it.]"
    )
}

async fn download(deps: &Deps, job: &mut MediaJob) -> Result<()> {
    let now_secs = deps.clock.now_ms() / 1000;
    if job.media.is_expired(now_secs) {
        job.problem = Some(MediaFailure::Refused {
            problem: domain::media::MediaProblem::Expired,
        });
        return Ok(());
    }
    tokio::fs::create_dir_all(&deps.settings.work_dir)
        .await
        .map_err(|e| Error::dependency("files", "work dir", true, e))?;
    let dest = deps.settings.work_dir.join(job.execution_name());
    let fetched = match deps.source.fetch(&job.media, &dest).await? {
        Ok(f) => f,
        Err(problem) => {
            info!(%problem, "media refused");
            observability::count_by(
                observability::Metric::MediaRefused,
                "Kind",
                job.media.kind.as_str(),
                1,
            );
            job.problem = Some(MediaFailure::Refused { problem });
            return Ok(());
        }
    };
    let key = media_key(&deps.salt, &job.media)?;
    let stored = deps.store.put_file(&key, &dest, &fetched).await;
    // The temp file goes whether or not the store took it: a retry fetches
    // again (Lambda's /tmp is small and shared by warm invocations).
    if let Err(e) = tokio::fs::remove_file(&dest).await {
        warn!(error = %e, "temp media file not removed");
    }
    let stored = stored?;
    job.route = Some(route_for(job.media.kind, &stored.mime));
    info!(bytes = stored.bytes, mime = %stored.mime, route = ?job.route, "media stored");
    job.stored = Some(stored);
    Ok(())
}

/// Understood: noted by wamid, and the user's turn queued again.
async fn deliver(deps: &Deps, job: &MediaJob) -> Result<()> {
    let description = job
        .description
        .clone()
        .ok_or_else(|| Error::Invalid("deliver without a description".into()))?;
    deps.notes
        .record_note(&job.media.wamid, &MediaNote::Understood { description })
        .await?;
    observability::count_by(
        observability::Metric::MediaUnderstood,
        "Kind",
        job.media.kind.as_str(),
        1,
    );
    count_analysed(deps, job).await;
    release_turn(deps, job).await
}

/// Media that reached an analyser (stored), understood or not, is what
/// costs: a file refused before (too large, expired) is not counted.
async fn count_analysed(deps: &Deps, job: &MediaJob) {
    if job.stored.is_some() {
        let event = UsageEvent::media(
            &job.media.user_id,
            &job.media.wamid,
            deps.clock.now_ms(),
            job.media.kind.as_str(),
        );
        runtime::usage::record(deps.usage.as_ref(), &event).await;
    }
}

/// Not understood: noted, the user told once, the turn queued again.
async fn fail(deps: &Deps, job: &MediaJob) -> Result<()> {
    let failure = match (&job.problem, &job.error) {
        (Some(p), _) => p.clone(),
        (None, Some(e)) => MediaFailure::from_step_error(e),
        (None, None) => MediaFailure::Failed {
            detail: "no reason recorded".into(),
        },
    };
    if let MediaFailure::Unsafe { categories } = &failure {
        flag_for_review(deps, job, categories).await?;
    }
    info!(reason = %failure.summary(), "media not understood");
    observability::count_by(
        observability::Metric::MediaFailed,
        "Kind",
        job.media.kind.as_str(),
        1,
    );
    count_analysed(deps, job).await;
    deps.notes
        .record_note(
            &job.media.wamid,
            &MediaNote::Failed {
                summary: failure.summary(),
            },
        )
        .await?;
    let language = conversation_language(deps, &job.media.user_id).await;
    let notice = failure.notice(job.media.kind, &language);
    tell_once(deps, job, &notice).await?;
    release_turn(deps, job).await
}

/// Unsafe content: the conversation goes to people (the escalation
/// function moves it to `pending_human`, notifies the team with the reason,
/// and the bot stays quiet until they hand it back). The notice the user
/// gets says a person will review it, so the hand-off counts as told.
/// Keyed on the wamid: a retried `fail` queues the same request, which the
/// queue and the escalation function each take once.
async fn flag_for_review(deps: &Deps, job: &MediaJob, categories: &[String]) -> Result<()> {
    warn!(?categories, wamid = %job.media.wamid, "unsafe media: conversation handed to people for review");
    observability::count_by(
        observability::Metric::MediaUnsafe,
        "Kind",
        job.media.kind.as_str(),
        1,
    );
    let request = EscalationMessage::Handoff(HandoffRequest {
        id: format!("{}:unsafe", job.media.wamid),
        user_id: job.media.user_id.clone(),
        phone_number_id: job.phone_number_id.clone(),
        reason: format!(
            "unsafe content in the {} the user sent ({})",
            job.media.kind,
            categories.join(", ")
        ),
        source: "media pipeline".into(),
        created_at_ms: deps.clock.now_ms(),
    });
    deps.escalation_queue
        .send(&QueueMessage {
            group_id: request.group_id(),
            dedup_id: request.dedup_id(),
            body: request.to_body()?,
        })
        .await?;
    // As the agent's hand-off tool does: quiet at once, so the held turn
    // released below goes to people rather than to the bot. Already with
    // people (or closed): nothing to change.
    deps.records
        .set_state(
            &job.media.user_id,
            ConversationState::Bot,
            ConversationState::PendingHuman,
        )
        .await?;
    Ok(())
}

/// The conversation's language as the agent last detected it, else the
/// profile's first. A store fault does not stop the notice.
async fn conversation_language(deps: &Deps, user_id: &UserId) -> String {
    match deps.records.memory(user_id).await {
        Ok(memory) => memory
            .language
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| deps.settings.notice_language.clone()),
        Err(e) => {
            warn!(error = %e, "conversation language not read; the default is used");
            deps.settings.notice_language.clone()
        }
    }
}

/// Sends `notice` as the answer to the media message, once: the same
/// claimed turn as text-ai's (atomic on its id), so a retried `fail` sends
/// only what was not sent yet.
async fn tell_once(deps: &Deps, job: &MediaJob, notice: &str) -> Result<()> {
    let store = &deps.conversations;
    let user_id = &job.media.user_id;
    let turn = TurnRecord {
        turn_id: format!("media-notice:{}", job.media.wamid),
        user_id: user_id.clone(),
        phone_number_id: job.phone_number_id.clone(),
        inbound: vec![job.media.wamid.clone()],
        replies: OutboundMessage::texts(notice),
        sent_parts: 0,
        state: TurnState::Claimed,
        created_at_ms: deps.clock.now_ms(),
    };
    let turn = match store.claim_turn(&turn).await? {
        ClaimOutcome::Claimed => turn,
        ClaimOutcome::Existing(t) if t.state == TurnState::Sent => return Ok(()),
        ClaimOutcome::Existing(t) => t,
    };
    for (i, reply) in turn.replies.iter().enumerate().skip(turn.sent_parts) {
        match deps
            .sender
            .send(
                &turn.phone_number_id,
                user_id,
                reply,
                Some(&job.media.wamid),
            )
            .await
        {
            Ok(wamid) => {
                let sent = SentRecord::of(wamid, reply, deps.clock.now_ms());
                store
                    .record_sent_part(user_id, &turn.turn_id, i, &sent)
                    .await?;
            }
            // Refused for good (outside the window, blocked): recorded and
            // closed; the note still tells the responder.
            Err(Error::Graph { code, class, .. }) if !class.is_retryable() => {
                warn!(code, ?class, "media notice refused");
                break;
            }
            Err(e) => return Err(e),
        }
    }
    store
        .complete_turn(user_id, &turn.turn_id, &turn.inbound)
        .await
}

/// Queues the user's turn again: text-ai held it while this media message
/// was in the works (see `text_ai::media_hold`). The first unanswered
/// message keys the job, as ingestion's would.
async fn release_turn(deps: &Deps, job: &MediaJob) -> Result<()> {
    let pending = deps
        .conversations
        .pending_inbound(&job.media.user_id)
        .await?;
    let Some(first) = pending.first() else {
        return Ok(());
    };
    let turn = TurnJob {
        phone_number_id: job.phone_number_id.clone(),
        user_id: job.media.user_id.clone(),
        wamid: first.wamid.clone(),
        received_at_ms: deps.clock.now_ms(),
    };
    deps.text_queue
        .send(&QueueMessage {
            group_id: turn.group_id(),
            // One release per media message (a retried step is deduplicated).
            dedup_id: format!("after-{}", job.execution_name()),
            body: serde_json::to_string(&turn)?,
        })
        .await
}

// ------------------------------------------------------------------ locally

/// The state machine's path, run in-process: the same steps in the same
/// order, with its retries (backoff, retryable errors only) and its catch.
/// `poll_wait` stands for the Wait states.
pub async fn run_local(deps: &Deps, job: MediaJob, poll_wait: Duration) -> Result<MediaJob> {
    match run_path(deps, job.clone(), poll_wait).await {
        Ok(job) => Ok(job),
        // The Catch: any failure left after the retries ends in `fail`.
        Err(e) => {
            let mut caught = job;
            caught.error = Some(StepError {
                error: StepFailure::from(&e).error_type.to_string(),
                cause: e.to_string(),
            });
            retried(deps, Step::Fail, caught).await
        }
    }
}

async fn run_path(deps: &Deps, job: MediaJob, poll_wait: Duration) -> Result<MediaJob> {
    let mut job = retried(deps, Step::Download, job).await?;
    if job.problem.is_none() {
        job = match job.route {
            Some(Route::Image) => retried(deps, Step::AnalyzeImage, job).await?,
            Some(Route::DocumentSync) => retried(deps, Step::ReadDocument, job).await?,
            Some(Route::DocumentJob) => {
                poll(
                    deps,
                    Step::StartDocumentJob,
                    Step::PollDocumentJob,
                    job,
                    poll_wait,
                )
                .await?
            }
            Some(Route::Speech) => {
                poll(
                    deps,
                    Step::StartTranscription,
                    Step::PollTranscription,
                    job,
                    poll_wait,
                )
                .await?
            }
            Some(Route::RecordOnly) | None => retried(deps, Step::RecordOnly, job).await?,
        };
    }
    let last = if job.problem.is_some() {
        Step::Fail
    } else {
        Step::Deliver
    };
    retried(deps, last, job).await
}

async fn poll(
    deps: &Deps,
    start: Step,
    check: Step,
    job: MediaJob,
    wait: Duration,
) -> Result<MediaJob> {
    let mut job = retried(deps, start, job).await?;
    while !job.done {
        tokio::time::sleep(wait).await;
        job = retried(deps, check, job).await?;
    }
    Ok(job)
}

/// A step with the state machine's Retry: 3 more tries, backoff from 2 s
/// doubling, for retryable errors only.
async fn retried(deps: &Deps, step: Step, job: MediaJob) -> Result<MediaJob> {
    use backon::{ExponentialBuilder, Retryable};
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(2))
        .with_factor(2.0)
        .with_max_times(3)
        .with_jitter();
    (|| run_step(deps, step, job.clone()))
        .retry(backoff)
        .when(|e: &Error| e.is_retryable())
        .await
}

/// [`MediaPipeline`] for one machine: jobs on a durable local queue, run by
/// a worker with [`run_local`].
pub struct QueuedPipeline {
    pub queue: Arc<dyn Queue>,
}

#[async_trait::async_trait]
impl MediaPipeline for QueuedPipeline {
    async fn start(&self, job: &MediaJob) -> Result<PipelineStart> {
        self.queue
            .send(&QueueMessage {
                group_id: job.execution_name(),
                // The queue drops a second send of the same name: the
                // local equivalent of ExecutionAlreadyExists.
                dedup_id: job.execution_name(),
                body: serde_json::to_string(job)?,
            })
            .await?;
        Ok(PipelineStart::Started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_come_from_the_profile_in_its_order() {
        let langs = profile_languages(
            "[agent]\nname = \"x\"\nlanguages = [\"PT\", \"es\"]\n[other]\nkey = 1\n",
        )
        .expect("languages");
        assert_eq!(langs, vec!["pt".to_string(), "es".to_string()]);
    }

    #[test]
    fn a_profile_without_languages_is_a_config_error() {
        for text in [
            "[agent]\nlanguages = []\n",
            "[agent]\nname = \"x\"\n",
            "not toml =",
        ] {
            assert!(
                matches!(profile_languages(text), Err(Error::Config(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn the_demo_profile_reads() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../profiles/demo/agent.toml"
        ))
        .expect("demo profile");
        assert_eq!(
            profile_languages(&text).expect("languages"),
            vec!["es".to_string(), "en".to_string(), "pt".to_string()]
        );
    }
}
