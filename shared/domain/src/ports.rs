//! One small trait per capability, in domain terms. Adapters implement them;
//! handlers depend on them as trait objects.

use async_trait::async_trait;

use crate::error::Result;
use crate::whatsapp::outbound::OutboundMessage;
use crate::*;

/// Conversations, their messages and turns. Every write that guards
/// idempotency is one atomic conditional write, never read-then-write.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Records a user message once: dedup on the wamid (kept
    /// `DEDUP_TTL_SECS`), the message in its conversation, the conversation
    /// created or refreshed (name, `last_user_at_ms`, window reopened), all
    /// in one atomic write.
    async fn record_inbound(&self, msg: &NewInbound) -> Result<RecordOutcome>;

    /// Notes that the message's turn job is on the queue.
    async fn mark_enqueued(&self, wamid: &str) -> Result<()>;

    /// Moves an outbound message's delivery state forward (never back).
    async fn apply_status(&self, update: &StatusUpdate) -> Result<StatusOutcome>;

    /// Marks the window closed after a 131047 until the user writes again.
    async fn close_window(&self, user_id: &UserId) -> Result<()>;

    async fn conversation(&self, user_id: &UserId) -> Result<Option<Conversation>>;

    /// Unanswered inbound messages that ask for an answer, oldest first.
    async fn pending_inbound(&self, user_id: &UserId) -> Result<Vec<StoredMessage>>;

    /// The last `limit` messages either way, oldest first.
    async fn recent_messages(&self, user_id: &UserId, limit: usize) -> Result<Vec<StoredMessage>>;

    /// Records a turn's answer before it is sent. Atomic on `turn_id`.
    async fn claim_turn(&self, turn: &TurnRecord) -> Result<ClaimOutcome>;

    /// Part `index` of a turn was accepted by the Graph API: records the
    /// outbound message and moves `sent_parts` to `index + 1`. Idempotent.
    async fn record_sent_part(
        &self,
        user_id: &UserId,
        turn_id: &str,
        index: usize,
        sent: &SentRecord,
    ) -> Result<()>;

    /// The turn is sent: its inbound messages are answered.
    async fn complete_turn(
        &self,
        user_id: &UserId,
        turn_id: &str,
        inbound: &[String],
    ) -> Result<()>;

    /// An outbound message outside a turn (templates, later: human agents).
    async fn record_outbound(&self, user_id: &UserId, sent: &SentRecord) -> Result<()>;

    /// Conversations, most recent message first.
    async fn list_conversations(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Conversation>>;

    /// A conversation's messages, oldest first.
    async fn transcript(
        &self,
        user_id: &UserId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<StoredMessage>>;
}

/// A message for a FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// Messages of one group are delivered in order, one at a time.
    pub group_id: String,
    /// A second send with the same id (within the queue's window) is dropped.
    pub dedup_id: String,
    pub body: String,
}

#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, msg: &QueueMessage) -> Result<()>;
}

/// What a raw payload is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// Signed but not understood: kept to be replayed after a fix.
    Quarantine,
    /// Understood, but not for us (other webhook fields): kept for the record.
    Event,
}

impl ArchiveKind {
    pub fn prefix(self) -> &'static str {
        match self {
            ArchiveKind::Quarantine => "quarantine",
            ArchiveKind::Event => "events",
        }
    }
}

/// Raw payloads, kept whole.
#[async_trait]
pub trait PayloadArchive: Send + Sync {
    /// Stores `body`, returns its key.
    async fn put(&self, kind: ArchiveKind, body: &[u8], reason: &str) -> Result<String>;
}

/// Where a verified webhook is kept before it is processed: the one-machine
/// runner's journal, which answers Meta as soon as the body is on disk and
/// has it processed behind. Lambda has none: it processes before the 200.
#[async_trait]
pub trait WebhookIntake: Send + Sync {
    /// Keeps `body`, received at `received_at_ms`; `Ok` once a crash of the
    /// process can no longer lose it. A retryable error (full, failing
    /// disk) makes the webhook's answer a 503, and Meta delivers it again.
    async fn keep(&self, received_at_ms: i64, body: bytes::Bytes) -> Result<()>;
}

/// Sends WhatsApp messages for a business number.
#[async_trait]
pub trait MessageSender: Send + Sync {
    /// Returns the wamid the Graph API gave the message.
    async fn send(
        &self,
        phone_number_id: &str,
        to: &UserId,
        msg: &OutboundMessage,
        reply_to: Option<&str>,
    ) -> Result<String>;

    /// Marks a user message read and shows the typing indicator.
    async fn mark_read(&self, phone_number_id: &str, wamid: &str, typing: bool) -> Result<()>;
}

/// Sends `msg` to the user, then records it in the conversation (its kind and
/// summary from the message itself, the same in every function); answers the
/// wamid.
pub async fn send_and_record(
    sender: &dyn MessageSender,
    store: &dyn ConversationStore,
    clock: &dyn Clock,
    phone_number_id: &str,
    to: &UserId,
    msg: &OutboundMessage,
) -> Result<String> {
    let wamid = sender.send(phone_number_id, to, msg, None).await?;
    store
        .record_outbound(to, &SentRecord::of(wamid.clone(), msg, clock.now_ms()))
        .await?;
    Ok(wamid)
}

/// What the responder sees of a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnInput {
    /// The wamid of the first message the turn answers: the key that makes
    /// what the responder records (leads, bookings, requests) idempotent.
    pub turn_id: String,
    pub conversation: Conversation,
    /// The user messages this turn answers, oldest first.
    pub new_messages: Vec<StoredMessage>,
    /// Earlier messages, oldest first, bounded.
    pub history: Vec<StoredMessage>,
    /// The number the user can be called on (`identity::phone_of`): `None`
    /// for a user known only by username.
    pub phone: Option<UserId>,
    /// What the business knows about why the user writes (the campaign
    /// that reached them, [`campaign::agent_context`]), for the model.
    pub context: Option<String>,
}

/// Decides the answer to a turn.
#[async_trait]
pub trait Responder: Send + Sync {
    async fn respond(&self, turn: &TurnInput) -> Result<Vec<OutboundMessage>>;

    /// The answer and what the turn showed, for the escalation policy. The
    /// default knows nothing beyond the answer.
    async fn respond_noted(&self, turn: &TurnInput) -> Result<(Vec<OutboundMessage>, TurnNote)> {
        Ok((self.respond(turn).await?, TurnNote::default()))
    }
}

/// What a responder noticed about a turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnNote {
    /// The language it answered in; empty when it did not say.
    pub language: String,
    /// It did not understand and answered with its fallback.
    pub fallback: bool,
    /// The playbook intent the turn matched.
    pub intent: Option<String>,
    /// Who answered: `playbook`, `model`, or `local` (no model: the
    /// knowledge passages and the fallback); empty when it did not say.
    pub via: &'static str,
    pub model_calls: u32,
    /// The model's name ([`ChatModel::name`]) when it was called.
    pub model: String,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// The tools the turn called, in order.
    pub tools: Vec<&'static str>,
}

impl TurnNote {
    /// Who answered, `other` when the responder did not say: the name
    /// metrics and usage count the turn under.
    pub fn answered_by(&self) -> &'static str {
        if self.via.is_empty() {
            "other"
        } else {
            self.via
        }
    }
}

pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        jiff::Timestamp::now().as_millisecond()
    }
}

// ------------------------------------------------------------------ the agent

/// A chat model that can use tools (Bedrock Converse, an OpenAI-compatible
/// server). One call is one model round; the agent runs the tool loop.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// What usage records and logs call it, e.g. `bedrock:anthropic.claude-3-haiku`.
    fn name(&self) -> &str;

    /// Throttling and timeouts come back as retryable `Error::Dependency`
    /// (after the adapter's own bounded retries); a refused request as a
    /// non-retryable one.
    async fn converse(&self, req: &ModelRequest) -> Result<ModelReply>;
}

/// The business's knowledge: passages that answer a query.
#[async_trait]
pub trait KnowledgeBase: Send + Sync {
    /// At most `limit` passages, best first; empty when nothing matches.
    async fn search(&self, query: &str, limit: usize) -> Result<Vec<Passage>>;
}

/// Customers by national ID or account number.
#[async_trait]
pub trait CustomerDirectory: Send + Sync {
    /// `None` when no customer has that id.
    async fn lookup(&self, id: &str) -> Result<Option<Customer>>;
}

/// Where leads go besides the store (a CRM endpoint).
#[async_trait]
pub trait LeadSink: Send + Sync {
    /// Idempotent on `lead.id` at the receiving end (sent as a header).
    async fn export(&self, lead: &Lead) -> Result<()>;
}

/// What the agent's tools record, beside the conversation. Every write that
/// a retried turn could repeat is idempotent on the record's `id`.
#[async_trait]
pub trait AgentRecords: Send + Sync {
    /// Returns `false` when a lead with this id exists already.
    async fn save_lead(&self, lead: &Lead) -> Result<bool>;

    /// A user's leads, oldest first.
    async fn leads(&self, user_id: &UserId) -> Result<Vec<Lead>>;

    /// One atomic conditional write on the slot start: no double booking.
    async fn book(&self, appointment: &Appointment) -> Result<BookOutcome>;

    /// Appointments starting in `[from_ms, to_ms)`, by start.
    async fn appointments_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Appointment>>;

    /// Returns `false` when a request with this id exists already.
    async fn save_call_request(&self, request: &CallRequest) -> Result<bool>;

    /// A user's call requests, oldest first.
    async fn call_requests(&self, user_id: &UserId) -> Result<Vec<CallRequest>>;

    /// Changes the conversation's state only if it is `from` now (one
    /// conditional write). Returns whether it changed.
    async fn set_state(
        &self,
        user_id: &UserId,
        from: ConversationState,
        to: ConversationState,
    ) -> Result<bool>;

    /// The conversation's memory; the default when none is kept yet.
    async fn memory(&self, user_id: &UserId) -> Result<Memory>;

    async fn save_memory(&self, user_id: &UserId, memory: &Memory) -> Result<()>;

    /// Idempotent on `(wa_id, turn_id)`.
    async fn record_usage(&self, usage: &TurnUsage) -> Result<()>;
}

// ----------------------------------------------------------------- escalation

/// The sentiment of a user's text (Comprehend, or the local lexicon).
#[async_trait]
pub trait SentimentAnalyzer: Send + Sync {
    /// `language` is the conversation's (`es`, `pt-BR`, ...). Empty text,
    /// and text in a language the analyzer cannot read, is neutral.
    async fn sentiment(&self, text: &str, language: &str) -> Result<escalation::Sentiment>;
}

/// Tells people that a conversation was escalated (an SNS topic, email).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, notice: &escalation::EscalationNotice) -> Result<()>;
}

/// A conversation in a human help desk (Chatwoot-like).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DeskRef {
    /// The desk's conversation id (Chatwoot: the display id in its URLs).
    pub conversation_id: u64,
    pub contact_id: u64,
}

/// A help desk where human agents pick up escalated conversations. Their
/// replies come back by the desk's webhook.
#[async_trait]
pub trait HumanDesk: Send + Sync {
    /// Finds or creates the contact and an open conversation for it, posts
    /// the transcript so far and the reasons as a private note, and opens
    /// the conversation to agents. A retry reuses the contact and the open
    /// conversation.
    async fn open_handoff(
        &self,
        conversation: &Conversation,
        transcript: &[escalation::TranscriptLine],
        reasons: &[escalation::Reason],
    ) -> Result<DeskRef>;

    /// A later user message, posted as the contact's (incoming).
    async fn post_incoming(&self, desk: &DeskRef, text: &str) -> Result<()>;

    /// The conversation was handed back outside the desk (the admin API):
    /// `note` posted privately for the agents, and the desk conversation
    /// resolved. Resolving a resolved one is fine.
    async fn resolve(&self, desk: &DeskRef, note: &str) -> Result<()>;
}

/// What the escalation function keeps: per-conversation records, decisions,
/// once-only markers, and which desk conversation is whose.
#[async_trait]
pub trait EscalationRecords: Send + Sync {
    /// The conversation's record and its version (0: none yet).
    async fn escalation(&self, user_id: &UserId) -> Result<(handoff::EscalationRecord, u64)>;

    /// Writes `record` only if the stored version is still `version` (one
    /// conditional write); the new version is `version + 1`. Returns whether
    /// it was written.
    async fn save_escalation(
        &self,
        user_id: &UserId,
        record: &handoff::EscalationRecord,
        version: u64,
    ) -> Result<bool>;

    /// Keeps a decision with its reasons. Idempotent on `(wa_id, turn_id)`.
    async fn record_decision(&self, decision: &handoff::DecisionRecord) -> Result<()>;

    /// A conversation's decisions, oldest first.
    async fn decisions(&self, user_id: &UserId) -> Result<Vec<handoff::DecisionRecord>>;

    /// Takes `key` if nobody has (one atomic insert-if-absent). Returns
    /// `false` when it was taken before: the step is done (or being done).
    async fn claim(&self, key: &str, at_ms: i64) -> Result<bool>;

    /// Gives `key` back after the step it guarded failed, so a retry can
    /// take it again.
    async fn release(&self, key: &str) -> Result<()>;

    /// Whether `key` is taken.
    async fn claimed(&self, key: &str) -> Result<bool>;

    /// Remembers whose conversation a desk conversation is.
    async fn link_desk(&self, desk: &DeskRef, user_id: &UserId) -> Result<()>;

    /// The user of a desk conversation, if it is one of ours.
    async fn desk_owner(&self, desk_conversation_id: u64) -> Result<Option<UserId>>;
}

/// Delayed work: a message delivered to the escalation function after a
/// delay (an SQS standard queue with `DelaySeconds`; locally a queue whose
/// messages become visible later). The receiver checks whether the time has
/// really come, so a timer that fires early or twice does no harm.
#[async_trait]
pub trait Timers: Send + Sync {
    async fn schedule(&self, body: &str, delay_ms: u64) -> Result<()>;
}

// ------------------------------------------------------------------ media

/// A readable stored media file.
pub type MediaReader = std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// Where users' media comes from (the Graph API's two-step download).
#[async_trait]
pub trait MediaSource: Send + Sync {
    /// Downloads `media` to `dest`, streamed (never whole in memory), and
    /// checks it: size against the kind's limit, hash against the webhook's,
    /// type of the bytes against the declared one. `dest` exists only when
    /// the file passed; a refusal or an error leaves nothing behind.
    ///
    /// `Ok(Err(problem))` is a verdict on the media (final; tell the user);
    /// `Err` is a fault (retry when `is_retryable`).
    async fn fetch(
        &self,
        media: &media::MediaRef,
        dest: &std::path::Path,
    ) -> Result<media::MediaVerdict<media::FetchedMedia>>;
}

/// Where media files are kept, by the keys of [`media::media_key`].
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Stores the file at `path` (read from disk, not loaded whole) under
    /// `key`. Idempotent: the same key and file give the same object.
    async fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        fetched: &media::FetchedMedia,
    ) -> Result<media::StoredMedia>;

    /// A stream of the stored bytes; `Error::NotFound` when there is none.
    async fn open(&self, key: &str) -> Result<MediaReader>;
}

/// What an image shows: labels, unsafe content, text.
#[async_trait]
pub trait ImageAnalyzer: Send + Sync {
    /// Analyses the stored image at `key`.
    async fn analyze_image(&self, key: &str) -> Result<media::ImageAnalysis>;
}

/// Text in documents. Short ones in one call; long ones as a job that the
/// caller polls, so a state machine can wait between polls.
#[async_trait]
pub trait DocumentReader: Send + Sync {
    /// An image or a one-page document, read at once.
    async fn read_document(&self, key: &str) -> Result<media::DocumentText>;

    /// Starts reading a multi-page document; returns the job id.
    /// `request_token` makes a retried start return the same job.
    async fn start_document_job(&self, key: &str, request_token: &str) -> Result<String>;

    /// The job's state; the text (all pages) once done.
    async fn document_job(&self, job_id: &str) -> Result<media::JobState<media::DocumentText>>;
}

/// Speech to text for voice notes and audio files.
#[async_trait]
pub trait Transcriber: Send + Sync {
    /// Starts transcribing the stored audio at `key` under `job_name` (a
    /// retried start with the same name is not a second job). The language
    /// is identified among `languages` (the profile's: `es`, `en`, `pt`).
    async fn start_transcription(
        &self,
        job_name: &str,
        key: &str,
        languages: &[String],
    ) -> Result<()>;

    /// The job's state; the transcript once done.
    async fn transcription(&self, job_name: &str) -> Result<media::JobState<media::Transcript>>;
}

// ------------------------------------------------------------------ voice

/// A voice-call provider (Vapi, Retell) that places outbound calls.
#[async_trait]
pub trait VoiceProvider: Send + Sync {
    fn kind(&self) -> voice::ProviderKind;

    /// Whether calls can be placed; `Err` says what setting is missing.
    fn ready(&self) -> std::result::Result<(), String> {
        Ok(())
    }

    /// Asks the provider to call `order.context.to_e164()` now. A refusal
    /// (bad number, bad key) is a non-retryable `Error::Dependency`.
    async fn start_call(&self, order: &voice::CallOrder) -> Result<voice::StartedCall>;
}

/// Call records, keyed by the call request id. Every change is one
/// conditional write on the record's version, never read-then-write.
#[async_trait]
pub trait CallRecords: Send + Sync {
    /// Creates the record unless one with its request id exists. Returns
    /// whether it did.
    async fn create(&self, record: &voice::CallRecord) -> Result<bool>;

    async fn get(&self, request_id: &str) -> Result<Option<voice::CallRecord>>;

    /// Replaces `prev` by `next` (`next.version == prev.version + 1`) only
    /// if the stored version is still `prev.version`. Returns whether it did;
    /// `false` means another writer got there first: read again.
    async fn update(&self, prev: &voice::CallRecord, next: &voice::CallRecord) -> Result<bool>;

    /// Records whose `due_marker()` is at or before `now_ms`, soonest
    /// first, at most `limit`.
    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<voice::CallRecord>>;

    /// Notes that the provider event `key` was applied. Returns `false`
    /// when it had been already (a redelivery).
    async fn mark_event(&self, key: &str, at_ms: i64) -> Result<bool>;
}

// ------------------------------------------------------------- media pipeline

/// How a start of the pipeline went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineStart {
    Started,
    /// This message's pipeline was started before (a redelivered webhook).
    Duplicate,
}

/// Starts the media pipeline for one media message (Step Functions, or the
/// local in-process runner). Idempotent on the message's wamid.
#[async_trait]
pub trait MediaPipeline: Send + Sync {
    async fn start(&self, job: &media_pipeline::MediaJob) -> Result<PipelineStart>;
}

/// How each media message ended, by wamid: what text-ai reads in place of
/// "[image]", and what holds a turn while a media message is in the works.
#[async_trait]
pub trait MediaNotes: Send + Sync {
    /// Records the note; a second write of the same wamid replaces it.
    async fn record_note(&self, wamid: &str, note: &media_pipeline::MediaNote) -> Result<()>;

    /// The notes of those of `wamids` that have one.
    async fn notes(
        &self,
        wamids: &[String],
    ) -> Result<std::collections::HashMap<String, media_pipeline::MediaNote>>;
}

// ------------------------------------------------------------------ usage

/// What was used, counted per conversation and per UTC day
/// ([`usage`]), read by the admin API's numbers and costs.
#[async_trait]
pub trait UsageLedger: Send + Sync {
    /// Adds the event's counters to its conversation and its day, and keeps
    /// its log entry, once per `event.id` (a second add does nothing). The
    /// day's `conversations` counts each user once.
    async fn add(&self, event: &usage::UsageEvent) -> Result<()>;

    /// The counters of the days in `[from, to]` (`YYYY-MM-DD`), by day; a day
    /// without usage is absent.
    async fn days(&self, from: &str, to: &str) -> Result<Vec<(String, usage::Counters)>>;

    /// A conversation's counters, all time.
    async fn conversation(&self, user_id: &UserId) -> Result<usage::Counters>;

    /// A conversation's log entries at `[from_ms, to_ms]`, oldest first.
    async fn log(&self, user_id: &UserId, from_ms: i64, to_ms: i64) -> Result<Vec<usage::TurnLog>>;
}

// ------------------------------------------------------------------ downloads

/// Files too large for an HTTP answer through the API (a Lambda answer is
/// at most 6 MB), kept a short while and fetched by a link: campaign
/// reports on AWS.
#[async_trait]
pub trait Downloads: Send + Sync {
    /// Stores `body` as `file_name`; answers a link that fetches it for a
    /// while (minutes), without other credentials.
    async fn publish(&self, file_name: &str, content_type: &str, body: Vec<u8>) -> Result<String>;
}

// ------------------------------------------------------------------ campaigns

/// Campaigns, their contacts and the do-not-contact list. Every write that
/// moves a contact is conditional on its version, so that a contact is never
/// dialled twice at once whatever is redelivered or retried.
#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Creates `campaign`; `Error::Conflict` when its id exists.
    async fn create_campaign(&self, campaign: &campaign::Campaign) -> Result<()>;

    async fn campaign(&self, id: &str) -> Result<Option<campaign::Campaign>>;

    /// The newest `limit` campaigns, newest first.
    async fn campaigns(&self, limit: usize) -> Result<Vec<campaign::Campaign>>;

    /// Moves the campaign to `to` when it is in one of `from`; answers
    /// whether it moved.
    async fn set_campaign_state(
        &self,
        id: &str,
        from: &[campaign::CampaignState],
        to: campaign::CampaignState,
        at_ms: i64,
    ) -> Result<bool>;

    /// Stages `contacts` as the draft's next upload `upload` (replacing an
    /// upload still being written). The campaign keeps its current contacts
    /// until [`CampaignStore::import_step`] has written these and switched
    /// to them in one write; a store that can write them at once does it
    /// here. `false`, and nothing changed, when the campaign is not a draft.
    async fn stage_contacts(
        &self,
        id: &str,
        upload: &str,
        contacts: &[campaign::CampaignContact],
        at_ms: i64,
    ) -> Result<bool>;

    /// Writes about `max` more of the staged contacts (at least one chunk);
    /// once they are all written, switches the campaign to them. Answers
    /// what is left; `None` when nothing is staged (switched, or dropped
    /// because the campaign left the draft state).
    async fn import_step(
        &self,
        id: &str,
        max: usize,
        at_ms: i64,
    ) -> Result<Option<campaign::ImportState>>;

    /// A draft's contacts become `contacts` (under the new `upload` id; the
    /// earlier upload's are not the campaign's any more), staged and
    /// written to the end. `false` when the campaign is not a draft (or
    /// left it meanwhile).
    async fn replace_contacts(
        &self,
        id: &str,
        upload: &str,
        contacts: &[campaign::CampaignContact],
        at_ms: i64,
    ) -> Result<bool> {
        if !self.stage_contacts(id, upload, contacts, at_ms).await? {
            return Ok(false);
        }
        // Each step writes at least a chunk; the bound only stops a store
        // that never finishes.
        for _ in 0..=contacts.len() {
            if self.import_step(id, usize::MAX, at_ms).await?.is_none() {
                break;
            }
        }
        Ok(self
            .campaign(id)
            .await?
            .is_some_and(|c| c.upload.as_deref() == Some(upload) && c.import.is_none()))
    }

    /// Waiting contacts (pending, scheduled) due at or before `now_ms`,
    /// oldest due first, at most `limit`. May include a contact that was
    /// just moved (an index read); writes are what guard.
    async fn due_contacts(
        &self,
        id: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<campaign::CampaignContact>>;

    async fn contact(&self, id: &str, row: u32) -> Result<Option<campaign::CampaignContact>>;

    /// The current upload's contacts in `calling` (an index read), at most
    /// `limit`: a claimed call to check on.
    async fn calling_contacts(
        &self,
        id: &str,
        limit: usize,
    ) -> Result<Vec<campaign::CampaignContact>>;

    /// The current upload's contacts in row order, after `after_row`.
    async fn contacts_page(
        &self,
        id: &str,
        after_row: Option<u32>,
        limit: usize,
    ) -> Result<Vec<campaign::CampaignContact>>;

    /// Writes `contact` when the stored one is at `contact.version - 1`
    /// (and moves the campaign's counts with it); `false` when another
    /// writer moved it first (nothing written).
    async fn update_contact(&self, contact: &campaign::CampaignContact) -> Result<bool>;

    /// The current upload's contacts per state.
    async fn counts(
        &self,
        id: &str,
    ) -> Result<std::collections::BTreeMap<campaign::ContactState, u64>>;

    /// Puts `phone` on the do-not-contact list (again: the reason is
    /// replaced).
    async fn opt_out(&self, entry: &campaign::OptOut) -> Result<()>;

    /// Takes `phone` off the list; `false` when it was not on it.
    async fn remove_opt_out(&self, phone: &UserId) -> Result<bool>;

    async fn opted_out(&self, phone: &UserId) -> Result<Option<campaign::OptOut>>;

    /// Those of `phones` on the list (an upload's 100,000 in a few
    /// requests, not one each).
    async fn opted_out_among(&self, phones: &[UserId])
        -> Result<std::collections::HashSet<UserId>>;

    /// The list, most recent first, at most `limit`.
    async fn opt_outs(&self, limit: usize) -> Result<Vec<campaign::OptOut>>;

    /// Records that a campaign reached `touch.phone` (the latest wins, by
    /// `at_ms`: a late write of an older touch changes nothing).
    async fn touch(&self, touch: &campaign::Touch) -> Result<()>;

    /// The campaign that last reached `phone`.
    async fn touch_of(&self, phone: &UserId) -> Result<Option<campaign::Touch>>;
}
