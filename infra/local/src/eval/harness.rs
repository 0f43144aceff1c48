//! One case's pipeline: every function on the embedded adapters in a fresh
//! data dir, the consumers running as `local` runs them, each turn posted as
//! a signed webhook to ingestion's own handler, and the replies read from
//! the outbox once every queue the turn touches is empty again.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::{Path as UrlPath, State};
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use domain::ports::{Clock, Responder, Transcriber, TurnInput, TurnNote};
use domain::whatsapp::outbound::OutboundMessage;
use domain::{ConversationState, Result, UserId};
use embedded::{Outbox, OutboxKind, SqliteQueue};
use runtime::config::Vars;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::config::Settings;
use crate::meta;
use crate::wiring::{self, LocalOptions};

/// The app secret webhooks are signed with inside an eval.
const SECRET: &str = "eval-app-secret";
/// The longest a turn may take to settle (a model on a CPU is slow).
const TURN_LIMIT: Duration = Duration::from_secs(180);

/// The wall clock moved by `offset`: time flows (the debounce, the model's
/// time limits work), but a case can start on a Sunday evening and a
/// `wait` turn jumps ahead without sleeping.
#[derive(Debug, Default)]
pub struct SimClock {
    offset_ms: AtomicI64,
}

impl SimClock {
    pub fn set(&self, at_ms: i64) {
        let now = jiff::Timestamp::now().as_millisecond();
        self.offset_ms.store(at_ms - now, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        jiff::Timestamp::now().as_millisecond() + self.offset_ms.load(Ordering::SeqCst)
    }
}

/// The agent, seen: every turn's report kept for the checks and figures.
pub struct Recorder {
    pub agent: Arc<agent::Agent>,
    reports: Mutex<Vec<agent::TurnReport>>,
}

impl Recorder {
    fn take(&self) -> Vec<agent::TurnReport> {
        self.reports
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

#[async_trait]
impl Responder for Recorder {
    async fn respond(&self, turn: &TurnInput) -> Result<Vec<OutboundMessage>> {
        self.respond_noted(turn).await.map(|(r, _)| r)
    }

    async fn respond_noted(&self, turn: &TurnInput) -> Result<(Vec<OutboundMessage>, TurnNote)> {
        let (replies, report) = self.agent.answer(turn).await?;
        let note = report.note();
        if let Ok(mut r) = self.reports.lock() {
            r.push(report);
        }
        Ok((replies, note))
    }
}

/// Voice notes' transcripts, as the suite gives them, in order.
#[derive(Default)]
pub struct ScriptedSpeech {
    next: Mutex<VecDeque<String>>,
    jobs: Mutex<HashMap<String, String>>,
}

#[async_trait]
impl Transcriber for ScriptedSpeech {
    async fn start_transcription(&self, job: &str, _key: &str, _langs: &[String]) -> Result<()> {
        let mut jobs = self.jobs.lock().map_err(|_| poisoned())?;
        if !jobs.contains_key(job) {
            let text = self
                .next
                .lock()
                .map_err(|_| poisoned())?
                .pop_front()
                .unwrap_or_default();
            jobs.insert(job.to_string(), text);
        }
        Ok(())
    }

    async fn transcription(
        &self,
        job: &str,
    ) -> Result<domain::media::JobState<domain::media::Transcript>> {
        let text = self
            .jobs
            .lock()
            .map_err(|_| poisoned())?
            .get(job)
            .cloned()
            .unwrap_or_default();
        Ok(domain::media::JobState::Done {
            result: domain::media::Transcript {
                text,
                language: None,
            },
        })
    }
}

fn poisoned() -> domain::Error {
    domain::Error::Invalid("eval: a lock was poisoned".into())
}

/// A media id's MIME type and bytes.
type Served = HashMap<String, (String, Vec<u8>)>;

/// The Graph API's media endpoints, serving the suite's files.
#[derive(Clone, Default)]
struct MediaFiles {
    files: Arc<Mutex<Served>>,
    base: String,
}

async fn media_meta(
    State(m): State<MediaFiles>,
    UrlPath(id): UrlPath<String>,
) -> axum::response::Response {
    let found = m.files.lock().ok().and_then(|f| f.get(&id).cloned());
    match found {
        Some((mime, bytes)) => axum::Json(json!({
            "url": format!("{}/files/{id}", m.base),
            "mime_type": mime,
            "file_size": bytes.len(),
            "id": id,
            "messaging_product": "whatsapp",
        }))
        .into_response(),
        None => (http::StatusCode::NOT_FOUND, "no such media").into_response(),
    }
}

async fn media_file(
    State(m): State<MediaFiles>,
    UrlPath(id): UrlPath<String>,
) -> axum::response::Response {
    let found = m.files.lock().ok().and_then(|f| f.get(&id).cloned());
    match found {
        Some((mime, bytes)) => ([(http::header::CONTENT_TYPE, mime)], bytes).into_response(),
        None => (http::StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// What one turn showed.
#[derive(Debug, Default)]
pub struct Observed {
    pub replies: Vec<OutboundMessage>,
    pub reports: Vec<agent::TurnReport>,
    pub state: Option<ConversationState>,
    pub leads: usize,
    pub appointments: usize,
    pub call_requests: usize,
    /// The admin API's transcript of the conversation (JSON), when asked.
    pub transcript: Option<String>,
    pub elapsed: Duration,
}

/// A case's running pipeline.
pub struct Pipeline {
    pub user: UserId,
    name: String,
    pub clock: Arc<SimClock>,
    pub recorder: Arc<Recorder>,
    speech: Arc<ScriptedSpeech>,
    media: MediaFiles,
    ingestion: Arc<ingestion::Deps>,
    admin: Arc<admin::Deps>,
    store: Arc<dyn domain::ports::ConversationStore>,
    outbox: Arc<Outbox>,
    queues: Vec<Arc<SqliteQueue>>,
    seq: u64,
    stop: watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    server: tokio::task::JoinHandle<()>,
    data_dir: PathBuf,
    /// The buttons and list rows last offered: (id, title, is a list row).
    offered: Vec<(String, String, bool)>,
    /// The last webhook posted, for a `duplicate` turn.
    last_posted: Option<Value>,
    /// The bot's last message, for a `status` turn.
    last_reply_wamid: Option<String>,
}

pub struct CaseSetup<'a> {
    pub profile: &'a Path,
    pub env: &'a std::collections::BTreeMap<String, String>,
    pub user: UserId,
    pub name: String,
    pub start_ms: Option<i64>,
}

impl Pipeline {
    pub async fn start(
        setup: CaseSetup<'_>,
    ) -> std::result::Result<Pipeline, Box<dyn std::error::Error>> {
        let data_dir =
            std::env::temp_dir().join(format!("charla-eval-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir)?;
        // The fake Graph API for media downloads.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let media = MediaFiles {
            files: Arc::default(),
            base: base.clone(),
        };
        let app = axum::Router::new()
            .route("/{id}", get(media_meta))
            .route("/files/{id}", get(media_file))
            .with_state(media.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let mut vars = Vars::from_process();
        for (k, v) in setup.env {
            vars.set(k, v.clone());
        }
        vars.set("CHARLA_AGENT", setup.profile.display().to_string());
        vars.set("WHATSAPP_APP_SECRET", SECRET);
        vars.set("WHATSAPP_API_BASE", base);
        // Replies go to the outbox, whatever the environment says.
        vars.set("WHATSAPP_ACCESS_TOKEN", "");
        vars.set("CHARLA_DEBOUNCE_MS", "0");
        vars.set("CHARLA_MEDIA_KEY_SALT", "eval-media-key-salt-0123456789");
        // Nothing leaves this process: no desk, no notifications.
        for name in [
            "CHATWOOT_URL",
            "CHARLA_ESCALATION_TOPIC_ARN",
            "CHARLA_SES_FROM",
            "CHARLA_SES_TO",
        ] {
            vars.set(name, "");
        }
        let settings =
            Settings::from_vars(vars, "127.0.0.1:0".parse()?, data_dir.clone(), false, false)?;
        let clock = Arc::new(SimClock::default());
        if let Some(at) = setup.start_ms {
            clock.set(at);
        }
        let speech = Arc::new(ScriptedSpeech::default());
        let recorder_slot: Arc<Mutex<Option<Arc<Recorder>>>> = Arc::default();
        let slot = recorder_slot.clone();
        let functions = wiring::local_with(
            &settings,
            LocalOptions {
                clock: clock.clone(),
                speech: Some(speech.clone()),
                echo_outbox: false,
                journal: false,
                wrap_agent: Some(Box::new(move |agent| {
                    let recorder = Arc::new(Recorder {
                        agent: Arc::new(agent),
                        reports: Mutex::default(),
                    });
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(recorder.clone());
                    }
                    recorder
                })),
            },
        )
        .await?;
        let recorder = recorder_slot
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .ok_or("eval: the agent was not built")?;
        let outbox = functions.outbox.clone().ok_or("eval: no outbox")?;
        let (stop, stop_rx) = watch::channel(false);
        let text_ai = functions.text_ai.clone();
        let store = text_ai.store.clone();
        let (text_source, escalation_source, timer_source) = (
            functions.sources.text.clone(),
            functions.sources.escalations.clone(),
            functions.sources.timers.clone(),
        );
        let mut workers = crate::server::spawn_turn_consumers(
            1,
            (
                functions.sources.text,
                functions.sources.escalations,
                functions.sources.timers,
            ),
            text_ai,
            functions.escalation.clone(),
            stop_rx.clone(),
        );
        let mut queues = Vec::new();
        if let Some(m) = &functions.media {
            workers.extend(crate::media_pipeline::spawn(1, m, stop_rx.clone()));
            queues.push(m.queue.clone());
        }
        queues.extend(local_queue(&text_source));
        queues.extend(local_queue(&escalation_source));
        queues.extend(local_queue(&timer_source));
        Ok(Pipeline {
            user: setup.user,
            name: setup.name,
            clock,
            recorder,
            speech,
            media,
            ingestion: functions.ingestion,
            admin: functions.admin,
            store,
            seq: outbox.last_seq(),
            outbox,
            queues,
            stop,
            workers,
            server,
            data_dir,
            offered: Vec::new(),
            last_posted: None,
            last_reply_wamid: None,
        })
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for w in self.workers {
            let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
        }
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }

    fn now_secs(&self) -> String {
        (self.clock.now_ms() / 1000).to_string()
    }

    /// The webhook for what the user does, as Meta sends it; `None` when
    /// nothing is posted (a wait); `Err` when it cannot be made (a button
    /// that was not offered, a file that is not there).
    pub fn message(
        &mut self,
        action: &super::suite::Action,
    ) -> std::result::Result<Option<Value>, String> {
        use super::suite::Action;
        match action {
            Action::Duplicate => {
                return self
                    .last_posted
                    .clone()
                    .map(Some)
                    .ok_or_else(|| "duplicate: no earlier message to send again".into())
            }
            Action::Status(status) => {
                let wamid = self
                    .last_reply_wamid
                    .clone()
                    .ok_or_else(|| format!("status {status}: the bot has sent nothing yet"))?;
                return Ok(Some(meta::status_webhook(
                    self.user.as_str(),
                    &wamid,
                    status,
                )));
            }
            _ => {}
        }
        let from = self.user.as_str().to_string();
        let id = meta::new_wamid();
        let ts = self.now_secs();
        let base = json!({"from": from, "id": id, "timestamp": ts});
        let with = |mut v: Value, extra: Value| {
            if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            v
        };
        let message = match action {
            Action::Say(text) => with(base, json!({"type": "text", "text": {"body": text}})),
            Action::Tap(which) | Action::Choose(which) => {
                let list = matches!(action, Action::Choose(_));
                let want = which.to_lowercase();
                let (bid, title, _) = self
                    .offered
                    .iter()
                    .find(|(i, t, l)| {
                        *l == list && (i.to_lowercase() == want || t.to_lowercase() == want)
                    })
                    .cloned()
                    .ok_or_else(|| {
                        let offered: Vec<&str> = self
                            .offered
                            .iter()
                            .filter(|o| o.2 == list)
                            .map(|o| o.1.as_str())
                            .collect();
                        format!(
                            "no {} {which:?} was offered (offered: {offered:?})",
                            if list { "list row" } else { "button" }
                        )
                    })?;
                if list {
                    with(
                        base,
                        json!({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": bid, "title": title}}}),
                    )
                } else {
                    with(
                        base,
                        json!({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": bid, "title": title}}}),
                    )
                }
            }
            Action::Photo { file, caption } | Action::Document { file, caption } => {
                let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
                let mime = mime_of(file);
                let media_id = self.serve(mime, bytes);
                let (kind, mut media) = match action {
                    Action::Photo { .. } => ("image", json!({"id": media_id, "mime_type": mime})),
                    _ => (
                        "document",
                        json!({"id": media_id, "mime_type": mime,
                        "filename": file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()}),
                    ),
                };
                if let Some(c) = caption {
                    media["caption"] = json!(c);
                }
                with(base, json!({"type": kind, kind: media}))
            }
            Action::Voice(transcript) => {
                if let Ok(mut next) = self.speech.next.lock() {
                    next.push_back(transcript.clone());
                }
                // An Ogg page header: enough for the type to be sniffed.
                let mut bytes = b"OggS\0\x02".to_vec();
                bytes.resize(256, 0);
                let media_id = self.serve("audio/ogg", bytes);
                with(
                    base,
                    json!({"type": "audio", "audio": {"id": media_id, "mime_type": "audio/ogg; codecs=opus", "voice": true}}),
                )
            }
            Action::CallPermission(accepted) => with(
                base,
                json!({"type": "interactive", "interactive": {
                "type": "call_permission_reply",
                "call_permission_reply": {
                    "response": if *accepted { "accept" } else { "reject" },
                    "is_permanent": false,
                    "expiration_timestamp": self.clock.now_ms() / 1000 + 7 * 86_400,
                    "response_source": "user_action",
                }}}),
            ),
            Action::Wait(ms) => {
                self.clock.advance(*ms);
                return Ok(None);
            }
            Action::Duplicate | Action::Status(_) => return Ok(None),
        };
        let webhook = meta::message_webhook(self.user.as_str(), &self.name, message);
        self.last_posted = Some(webhook.clone());
        Ok(Some(webhook))
    }

    fn serve(&self, mime: &str, bytes: Vec<u8>) -> String {
        let id = format!(
            "{}",
            10_000_000 + (uuid::Uuid::new_v4().as_u128() % 89_999_999)
        );
        if let Ok(mut f) = self.media.files.lock() {
            f.insert(id.clone(), (mime.to_string(), bytes));
        }
        id
    }

    /// The transcript operators read: the admin function's own handler
    /// (behind the authorizer in production).
    async fn transcript(&self) -> std::result::Result<String, Box<dyn std::error::Error>> {
        let req = http::Request::builder()
            .method("GET")
            .uri(format!("/admin/conversations/{}", self.user.as_str()))
            .body(Bytes::new())?;
        let resp = admin::handle_at(&self.admin, req, self.clock.now_ms()).await;
        Ok(String::from_utf8_lossy(resp.body()).into_owned())
    }

    /// Posts `message` (a webhook body), signed as Meta signs it, and waits
    /// for the pipeline to settle.
    pub async fn turn(
        &mut self,
        message: Option<Value>,
        with_transcript: bool,
    ) -> std::result::Result<Observed, Box<dyn std::error::Error>> {
        let started = Instant::now();
        let posted_ms = domain::ports::SystemClock.now_ms();
        if let Some(webhook) = message {
            let body = serde_json::to_vec(&webhook)?;
            let req = http::Request::builder()
                .method("POST")
                .uri("/webhooks/whatsapp")
                .header("content-type", "application/json")
                .header(
                    "x-hub-signature-256",
                    domain::signature::meta_signature_header(SECRET.as_bytes(), &body),
                )
                .body(Bytes::from(body))?;
            let resp = ingestion::handle(&self.ingestion, req).await;
            if resp.status() != http::StatusCode::OK {
                return Err(format!(
                    "the webhook was answered {}: {}",
                    resp.status(),
                    String::from_utf8_lossy(resp.body())
                )
                .into());
            }
        }
        self.settle().await?;
        let entries = self.outbox.all_since(self.seq);
        let mut replies = Vec::new();
        let mut last_reply_ms = None;
        for e in entries {
            self.seq = self.seq.max(e.seq);
            if e.kind == OutboxKind::Message && e.to.as_deref() == Some(self.user.as_str()) {
                if let Some(m) = e.message {
                    replies.push(m);
                    last_reply_ms = Some(e.at_ms);
                    self.last_reply_wamid = Some(e.wamid.clone());
                }
            }
        }
        // Webhook in to the last reply out (the outbox stamps the wall
        // clock); a turn with no reply, until the pipeline settled.
        let elapsed = match last_reply_ms {
            Some(at) => Duration::from_millis(u64::try_from(at - posted_ms).unwrap_or(0)),
            None => started.elapsed(),
        };
        let offered = offered_in(&replies);
        if !offered.is_empty() {
            self.offered = offered;
        }
        let records = self.recorder.agent.registry().records().clone();
        let state = self.store.conversation(&self.user).await?.map(|c| c.state);
        let leads = records.leads(&self.user).await?.len();
        let call_requests = records.call_requests(&self.user).await?.len();
        let appointments = records
            .appointments_between(0, i64::MAX)
            .await?
            .iter()
            .filter(|a| a.user_id == self.user)
            .count();
        let transcript = match with_transcript {
            true => Some(self.transcript().await?),
            false => None,
        };
        Ok(Observed {
            transcript,
            replies,
            reports: self.recorder.take(),
            state,
            leads,
            appointments,
            call_requests,
            elapsed,
        })
    }

    /// Until no queue a turn goes through has work due or in flight, twice
    /// in a row (a delayed no-human check is not due until a case waits).
    async fn settle(&self) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let deadline = Instant::now() + TURN_LIMIT;
        let mut quiet = 0;
        while quiet < 2 {
            if Instant::now() > deadline {
                return Err(
                    format!("the turn did not finish within {} s", TURN_LIMIT.as_secs()).into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
            let mut busy = false;
            for q in &self.queues {
                let due = q.next_visible_in().await? == Some(Duration::ZERO);
                if due || q.stats().await?.in_flight > 0 {
                    busy = true;
                }
            }
            quiet = if busy { 0 } else { quiet + 1 };
        }
        Ok(())
    }
}

fn local_queue(source: &crate::consumer::Source) -> Option<Arc<SqliteQueue>> {
    match source {
        crate::consumer::Source::Local(q) => Some(q.clone()),
        #[cfg(feature = "aws")]
        crate::consumer::Source::Sqs { .. } => None,
    }
}

/// The buttons and list rows in `replies`: (id, title, is a list row).
pub fn offered_in(replies: &[OutboundMessage]) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for r in replies {
        match r {
            OutboundMessage::Buttons { buttons, .. } => out.extend(
                buttons
                    .iter()
                    .map(|b| (b.id.clone(), b.title.clone(), false)),
            ),
            OutboundMessage::List { sections, .. } => {
                for s in sections {
                    out.extend(s.rows.iter().map(|r| (r.id.clone(), r.title.clone(), true)));
                }
            }
            _ => {}
        }
    }
    out
}

fn mime_of(file: &Path) -> &'static str {
    match file
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .as_deref()
    {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}
