//! Every function built with its own constructor, as Lambda builds it: on
//! the embedded adapters (SQLite, files, the outbox), or with `--aws` on the
//! functions' own AWS wiring (`<function>::aws`), from the same variables.
//! The only differences are the ports: local queues, stores and analysers
//! in place of SQS, DynamoDB, S3 and the AWS analysers, and the media
//! pipeline run in-process in place of Step Functions.

use std::sync::Arc;

use domain::media::MediaKeySalt;
use domain::ports::{Clock, MessageSender, SystemClock, WebhookIntake};
use domain::Result;
use embedded::{
    FileArchive, FileMediaStore, Journal, JournalSettings, LexiconSentiment, LocalDocuments,
    LocalImages, NoSpeech, Outbox, QueueSettings, QueueTimers, SqliteCallRecords, SqliteCampaigns,
    SqliteEscalations, SqliteMediaNotes, SqliteQueue, SqliteStore, SqliteUsage,
};
use secrecy::SecretString;
use tracing::info;

use crate::config::Settings;
use crate::consumer::Source;
use crate::media_pipeline::LocalMedia;

/// The functions, ready to serve and consume.
pub struct Functions {
    pub ingestion: Arc<ingestion::Deps>,
    pub text_ai: Arc<text_ai::Deps>,
    pub admin: Arc<admin::Deps>,
    pub campaigns: Arc<campaigns::Deps>,
    /// The campaigns' dispatcher (EventBridge's minute on AWS): `None` with
    /// `--aws`, where the campaign-dispatcher function runs it.
    pub dispatcher: Option<Arc<campaigns::dispatch::Dispatcher>>,
    pub escalation: Arc<escalation::Deps>,
    pub chatwoot: Arc<escalation::webhook::WebhookDeps>,
    /// The voice webhooks (and, in `calls`, call-trigger); `None` when no
    /// voice provider is configured.
    pub voice: Option<Arc<voice::Deps>>,
    /// The media pipeline's steps, run in-process; `None` with `--aws` and
    /// no media bucket (media messages are then plain turns, as in Lambda
    /// without the state machine).
    pub media: Option<LocalMedia>,
    pub sources: Sources,
    pub health: Health,
    /// Replies go here when there is no Graph API token (local mode).
    pub outbox: Option<Arc<Outbox>>,
    /// What the banner says about media.
    pub media_mode: String,
}

/// Where each consumer reads from.
pub struct Sources {
    pub text: Source,
    pub calls: Source,
    pub escalations: Source,
    pub timers: Source,
}

/// The local queues and journal: how much work is waiting (/healthz), and
/// what the journal's applier reads and watches.
#[derive(Clone)]
pub enum Health {
    Local {
        text: Arc<SqliteQueue>,
        calls: Arc<SqliteQueue>,
        escalations: Arc<SqliteQueue>,
        /// The webhook journal, for /healthz and its applier
        /// (`crate::intake`); `None` when ingestion processes each webhook
        /// before its 200 (`local eval`).
        journal: Option<Journal>,
    },
    /// SQS, and no journal: webhooks are processed before the 200, into
    /// DynamoDB and SQS, as on Lambda.
    #[cfg(feature = "aws")]
    Remote,
}

/// One local queue in `queue.db`.
fn open_queue(
    settings: &Settings,
    name: &str,
    delay_ms: u64,
    clock: &Arc<dyn Clock>,
) -> Result<Arc<SqliteQueue>> {
    SqliteQueue::open(
        &settings.data_dir.join("queue.db"),
        QueueSettings {
            name: name.into(),
            delay_ms,
            visibility_timeout_ms: 60_000,
            max_receives: 5,
        },
    )
    .map(|q| Arc::new(q.with_clock(clock.clone())))
}

/// The profile's no-human limit: the local timer queue's delay (SQS takes
/// it per message).
fn no_human_ms(settings: &Settings) -> Result<u64> {
    let profile = agent::Profile::load(&settings.escalation.profile)?;
    Ok(escalation::Settings::from_profile(&profile)?.no_human_ms)
}

/// Voice is off, and the banner says why, when no provider is configured.
fn voice_or_off(built: Result<voice::Deps>, say: bool) -> Result<Option<Arc<voice::Deps>>> {
    let deps = built?;
    match deps.calls.provider.ready() {
        Ok(()) => {
            if say {
                eprintln!(
                    "  voice:    {} calls; webhooks at /webhooks/voice/{{vapi,retell}}",
                    deps.calls.provider.kind().as_str()
                );
            }
            Ok(Some(Arc::new(deps)))
        }
        Err(why) => {
            if say {
                eprintln!("  voice:    off ({why})");
            }
            Ok(None)
        }
    }
}

/// Turns the agent, built as text-ai builds it, into the responder text-ai
/// runs (`local eval` wraps it to see each turn's report).
pub type WrapAgent = Box<dyn FnOnce(agent::Agent) -> Arc<dyn domain::ports::Responder> + Send>;

/// What `local eval` changes in the embedded wiring; the default is what
/// `local` serves with.
pub struct LocalOptions {
    pub clock: Arc<dyn Clock>,
    /// Speech to text for voice notes (none locally by default).
    pub speech: Option<Arc<dyn domain::ports::Transcriber>>,
    pub wrap_agent: Option<WrapAgent>,
    /// Each reply echoed to stderr, and the voice banner line (off for
    /// `local eval`'s own table).
    pub echo_outbox: bool,
    /// Webhooks kept in the journal and answered before they are processed
    /// (`local`), or processed before the 200 (`local eval`, which checks
    /// each turn as soon as its webhook is answered).
    pub journal: bool,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            clock: Arc::new(SystemClock),
            speech: None,
            wrap_agent: None,
            echo_outbox: true,
            journal: true,
        }
    }
}

/// The embedded adapters: SQLite, files, the outbox.
pub async fn local(settings: &Settings) -> Result<Functions> {
    local_with(settings, LocalOptions::default()).await
}

/// [`local`] with `local eval`'s clock, speech and agent wrapper.
pub async fn local_with(settings: &Settings, options: LocalOptions) -> Result<Functions> {
    let db = settings.data_dir.join("charla.db");
    let store = Arc::new(SqliteStore::open(&db)?);
    // The queues keep the functions' time: `local eval`'s simulated clock
    // makes a delayed no-human check due when a case waits.
    let clock: Arc<dyn Clock> = options.clock.clone();
    let text = open_queue(settings, "text", 0, &clock)?;
    let calls = open_queue(settings, "calls", 0, &clock)?;
    let escalations = open_queue(settings, "escalations", 0, &clock)?;
    let timers = open_queue(
        settings,
        "escalation-timers",
        no_human_ms(settings)?,
        &clock,
    )?;
    // This process owns the local queues: jobs in flight were held by a
    // previous process that died (SIGKILL, power cut); give them back now.
    let mut recovered = 0;
    for q in [&text, &calls, &escalations, &timers] {
        recovered += q.recover_in_flight().await?;
    }
    if recovered > 0 {
        info!(
            recovered,
            "jobs in flight at the last stop are queued again"
        );
    }
    let archive = Arc::new(FileArchive::open(&settings.data_dir)?);
    let journal = match options.journal {
        true => Some(Journal::open(
            &settings.data_dir.join("journal"),
            JournalSettings {
                max_backlog_bytes: settings.journal_max_bytes,
                min_free_bytes: settings.disk_min_free_bytes,
                ..JournalSettings::default()
            },
        )?),
        false => None,
    };
    let secrets = &settings.secrets;
    let (sender, outbox): (Arc<dyn MessageSender>, Option<Arc<Outbox>>) = match &secrets
        .access_token
    {
        Some(token) => (
            Arc::new(settings.text_ai.graph.client(Some(token), "local")?),
            None,
        ),
        None => {
            let outbox = Arc::new(Outbox::open(&settings.data_dir)?.with_echo(options.echo_outbox));
            (outbox.clone(), Some(outbox))
        }
    };
    let escalation_records = Arc::new(SqliteEscalations::open(&db)?);
    let campaign_store = Arc::new(SqliteCampaigns::open(&db)?);

    let media = crate::media_pipeline::open(settings)?;
    let files = FileMediaStore::open(&settings.data_dir.join("media"))?;
    let media_notes = Arc::new(SqliteMediaNotes::open(&db)?);
    let usage = Arc::new(SqliteUsage::open(&db)?);
    let media_deps = media::Deps::new(
        &settings.media,
        media_token(settings),
        media_salt(settings)?,
        media::Ports {
            analysers: media::Analysers {
                store: Arc::new(files.clone()),
                images: Arc::new(LocalImages::new(files.clone())),
                documents: Arc::new(LocalDocuments::new(files)),
                speech: options.speech.clone().unwrap_or_else(|| Arc::new(NoSpeech)),
                notes: media_notes.clone(),
            },
            conversations: store.clone(),
            records: store.clone(),
            sender: sender.clone(),
            text_queue: text.clone(),
            escalation_queue: escalations.clone(),
            usage: usage.clone(),
            clock: clock.clone(),
        },
    )?;

    let mut text_ai = text_ai::Deps::new(
        &settings.text_ai,
        secrets,
        text_ai::Ports {
            store: store.clone(),
            identities: store.clone(),
            campaigns: Some(campaign_store.clone()),
            records: store.clone(),
            sender: sender.clone(),
            call_queue: calls.clone(),
            escalation_queue: escalations.clone(),
            media_notes: Some(media_notes.clone()),
            usage: usage.clone(),
            clock: clock.clone(),
        },
        None,
    )
    .await?;
    if let Some(wrap) = options.wrap_agent {
        // The same agent Deps::new builds, on the same ports, kept concrete
        // for the wrapper.
        let agent = agent_setup::build_agent(
            &settings.text_ai.agent,
            secrets,
            agent_setup::AgentPorts {
                records: store.clone(),
                call_queue: calls.clone(),
                escalation_queue: escalations.clone(),
                clock: clock.clone(),
            },
            None,
        )
        .await?;
        text_ai.responder = wrap(agent);
    }
    // The operators' re-engagement template is the one text-ai sends: the
    // variable, else the agent profile's `[templates] reengage`.
    let mut admin_settings = settings.admin.clone();
    if admin_settings.reengage_template.is_none() {
        admin_settings.reengage_template = text_ai.settings.reengage_template.clone();
    }
    let admin = admin::Deps::new(
        &admin_settings,
        secrets,
        admin::Ports {
            store: store.clone(),
            identities: store.clone(),
            records: store.clone(),
            escalations: escalation_records.clone(),
            sender: Some(sender.clone()),
            media_notes: media_notes.clone(),
            usage: usage.clone(),
            clock: clock.clone(),
        },
    )?;
    let notifiers = notifiers(settings).await?;
    let escalation = escalation::Deps::new(
        &settings.escalation,
        secrets,
        escalation::Ports {
            store: store.clone(),
            records: store.clone(),
            escalations: escalation_records.clone(),
            sentiment: Arc::new(LexiconSentiment),
            notifiers,
            sender: sender.clone(),
            timers: Arc::new(QueueTimers::new((*timers).clone())),
            call_queue: calls.clone(),
            usage: usage.clone(),
            clock: clock.clone(),
        },
    )?;
    let chatwoot = escalation::webhook::WebhookDeps::new(
        secrets,
        store.clone(),
        store.clone(),
        escalation_records,
        sender.clone(),
        clock.clone(),
    );
    let voice = voice_or_off(
        voice::Deps::new(
            &settings.voice,
            secrets,
            voice::Ports {
                store: store.clone(),
                identities: store.clone(),
                campaigns: Some(campaign_store.clone()),
                records: store.clone(),
                calls: Arc::new(SqliteCallRecords::open(&db)?),
                sender: sender.clone(),
                call_queue: calls.clone(),
                escalation_queue: escalations.clone(),
                archive: archive.clone(),
                usage: usage.clone(),
                clock: clock.clone(),
            },
            None,
        )
        .await,
        options.echo_outbox,
    )?;
    let dispatcher = campaigns::dispatch::Dispatcher {
        campaigns: campaign_store.clone(),
        call_queue: calls.clone(),
        calls: Arc::new(SqliteCallRecords::open(&db)?),
        sender: Some(sender),
        store: store.clone(),
        identities: store.clone(),
        usage: usage.clone(),
        clock: clock.clone(),
        settings: settings.dispatch.clone(),
    };
    // A contact claimed for a call by a process that died before the call
    // reached the queue: queued again now rather than at the ticks' two
    // minutes (one call-trigger has seen is not placed twice).
    let requeued = campaigns::dispatch::requeue_claimed(&dispatcher, 0).await?;
    if requeued > 0 {
        info!(
            requeued,
            "campaign calls claimed before the last stop are queued again"
        );
    }
    let ingestion = ingestion::Deps {
        secrets: secrets.clone(),
        store: store.clone(),
        identities: store,
        campaigns: Some(campaign_store.clone()),
        queue: text.clone(),
        archive,
        clock: clock.clone(),
        media: Some(Arc::new(media::QueuedPipeline {
            queue: media.clone(),
        })),
        intake: journal
            .clone()
            .map(|j| Arc::new(j) as Arc<dyn WebhookIntake>),
    };
    let campaigns = campaigns::Deps {
        campaigns: campaign_store,
        downloads: None,
        clock: clock.clone(),
        settings: settings.campaigns.clone(),
    };
    Ok(Functions {
        ingestion: Arc::new(ingestion),
        text_ai: Arc::new(text_ai),
        admin: Arc::new(admin),
        campaigns: Arc::new(campaigns),
        dispatcher: Some(Arc::new(dispatcher)),
        escalation: Arc::new(escalation),
        chatwoot: Arc::new(chatwoot),
        voice,
        media: Some(LocalMedia {
            deps: Arc::new(media_deps),
            queue: media,
        }),
        sources: Sources {
            text: Source::Local(text.clone()),
            calls: Source::Local(calls.clone()),
            escalations: Source::Local(escalations.clone()),
            timers: Source::Local(timers),
        },
        health: Health::Local {
            text,
            calls,
            escalations,
            journal,
        },
        outbox,
        media_mode: "files, image headers and PDF text (no labels or speech: --aws, with \
                     CHARLA_MEDIA_BUCKET, in a build with --features aws)"
            .into(),
    })
}

/// Without a Graph token (the outbox set-up) media is fetched with a
/// placeholder one, so that a local fake Graph API can serve it.
/// SNS and SES when set, on the AWS endpoints of the environment.
#[cfg(feature = "aws")]
async fn notifiers(settings: &Settings) -> Result<Vec<Arc<dyn domain::ports::Notifier>>> {
    if settings.escalation.notify.is_empty() {
        return Ok(Vec::new());
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    escalation::aws::notifiers(&settings.escalation.notify, &sdk)
}

#[cfg(not(feature = "aws"))]
async fn notifiers(settings: &Settings) -> Result<Vec<Arc<dyn domain::ports::Notifier>>> {
    if settings.escalation.notify.is_empty() {
        Ok(Vec::new())
    } else {
        Err(without_aws("SNS and SES notifications"))
    }
}

/// What a build without the `aws` feature answers when asked for AWS.
#[cfg(not(feature = "aws"))]
pub fn without_aws(what: &str) -> domain::Error {
    domain::Error::Config(format!(
        "{what} need the AWS wiring, which this build leaves out: \
         cargo run --release -p local --features aws -- ..."
    ))
}

fn media_token(settings: &Settings) -> SecretString {
    settings
        .secrets
        .access_token
        .clone()
        .unwrap_or_else(|| SecretString::from("local-dev-token"))
}

fn media_salt(settings: &Settings) -> Result<MediaKeySalt> {
    let salt = settings.vars.required("CHARLA_MEDIA_KEY_SALT")?;
    MediaKeySalt::parse(SecretString::from(salt))
}

#[cfg(not(feature = "aws"))]
pub async fn aws(_: &mut Settings) -> Result<Functions> {
    Err(without_aws("--aws and --create-resources"))
}

/// `--aws`: each function's own AWS wiring, from the variables Lambda gets
/// (created first with `--create-resources`).
#[cfg(feature = "aws")]
pub async fn aws(settings: &mut Settings) -> Result<Functions> {
    use runtime::config::FromVars;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    if settings.create_resources {
        crate::resources::create(settings, &sdk).await?;
    }
    let vars = &settings.vars;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let text_config = text_ai::config::Config::from_vars(vars)?;
    let escalation_config = escalation::config::Config::from_vars(vars)?;
    let ingestion_config = ingestion::config::Config::from_vars(vars)?;

    // Media: the function's steps in-process on a local queue, with S3 and
    // the AWS analysers, when there is a media bucket (Lambda: the state
    // machine); otherwise media messages are plain turns.
    let media_config = match vars.optional("CHARLA_MEDIA_BUCKET") {
        Some(_) => Some(media::config::Config::from_vars(vars)?),
        None => None,
    };
    let media = match &media_config {
        Some(config) => Some(LocalMedia {
            deps: Arc::new(media::aws::deps(config, &sdk).await?),
            queue: crate::media_pipeline::open(settings)?,
        }),
        None => None,
    };
    let media_mode = match &media_config {
        Some(c) => format!(
            "S3 bucket {} with Rekognition, Textract, Transcribe",
            c.media_bucket
        ),
        None => {
            "off (no CHARLA_MEDIA_BUCKET): media messages are answered from their caption".into()
        }
    };

    let mut ingestion = ingestion::aws::deps(&ingestion_config, &sdk).await?;
    ingestion.media = media.as_ref().map(|m| {
        Arc::new(media::QueuedPipeline {
            queue: m.queue.clone(),
        }) as Arc<dyn domain::ports::MediaPipeline>
    });
    let secrets = text_ai::aws::secrets(&text_config, &sdk).await?;
    let mut text_ports = text_ai::aws::ports(&text_config, &sdk, &secrets)?;
    if media.is_none() {
        text_ports.media_notes = None;
    }
    let text_ai =
        text_ai::Deps::new(&text_config.settings, &secrets, text_ports, Some(&sdk)).await?;
    let admin = admin::aws::deps(&admin::config::Config::from_vars(vars)?, &sdk).await?;
    let escalation = escalation::aws::deps(&escalation_config, &sdk).await?;
    let chatwoot =
        escalation::aws::webhook_deps(&escalation::config::WebhookConfig::from_vars(vars)?, &sdk)
            .await?;
    let voice = voice_or_off(
        voice::aws::deps(&voice::config::Config::from_vars(vars)?, &sdk).await,
        true,
    )?;
    let source = |url: &str| Source::Sqs {
        client: sqs.clone(),
        url: url.to_string(),
    };
    Ok(Functions {
        sources: Sources {
            text: source(&ingestion_config.text_queue_url),
            calls: source(&text_config.resources.call_queue_url),
            escalations: source(&text_config.resources.escalation_queue_url),
            timers: source(&escalation_config.timer_queue_url),
        },
        ingestion: Arc::new(ingestion),
        text_ai: Arc::new(text_ai),
        admin: Arc::new(admin),
        campaigns: Arc::new(campaigns::aws::deps(
            &campaigns::config::Config::from_vars(vars)?,
            &sdk,
        )),
        dispatcher: None,
        escalation: Arc::new(escalation),
        chatwoot: Arc::new(chatwoot),
        voice,
        media,
        health: Health::Remote,
        outbox: None,
        media_mode,
    })
}
