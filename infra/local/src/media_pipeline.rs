//! The media pipeline on one machine: the media function's own steps, run
//! in-process in the state machine's order ([`media::run_local`]) by
//! workers reading a durable local queue.
//! - By default with the local analysers (image format and size, PDF text)
//!   and "not available locally" for labels and speech; files on disk, notes
//!   in SQLite.
//! - With `--aws` and a media bucket: S3, Rekognition, Textract, Transcribe
//!   and notes in the DynamoDB table, as the media function uses them (the
//!   runner stays in-process: no Step Functions here).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use shared::adapters::http::{GraphMedia, GraphSettings};
use shared::adapters::local::{
    FileMediaStore, LocalDocuments, LocalImages, NoSpeech, QueueSettings, SqliteMediaNotes,
    SqliteQueue,
};
use shared::config::env_optional;
use shared::domain::media::MediaKeySalt;
use shared::domain::media_pipeline::parse_job;
use shared::ports::{
    AgentRecords, Clock, ConversationStore, DocumentReader, ImageAnalyzer, MediaNotes, MediaStore,
    MessageSender, Queue, Transcriber,
};
use shared::Result;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Settings;

/// Used when `CHARLA_MEDIA_KEY_SALT` is unset (printed by the banner).
pub const DEV_MEDIA_KEY_SALT: &str = "dev-media-key-salt-not-secret";

/// How long the in-process runner waits between polls of a long job (the
/// state machine's Wait states).
const POLL_WAIT: Duration = Duration::from_millis(500);

pub struct LocalMedia {
    pub deps: Arc<media::Deps>,
    pub queue: Arc<SqliteQueue>,
    pub notes: Arc<dyn MediaNotes>,
}

/// What the pipeline shares with the rest of the process.
pub struct MediaPorts {
    pub conversations: Arc<dyn ConversationStore>,
    pub records: Arc<dyn AgentRecords>,
    pub sender: Arc<dyn MessageSender>,
    pub text_queue: Arc<dyn Queue>,
    pub escalation_queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// The profile's languages, the first being the notices' default.
    pub languages: Vec<String>,
    /// `--aws` with a media bucket: the AWS adapters.
    pub aws: Option<AwsMedia>,
}

/// Where media goes in `--aws` mode.
pub struct AwsMedia {
    pub config: aws_config::SdkConfig,
    /// Path-style, as for the quarantine bucket (moto, S3-compatible stores).
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub table: String,
}

pub fn build(settings: &Settings, ports: MediaPorts) -> Result<LocalMedia> {
    let queue = Arc::new(SqliteQueue::open(
        &settings.data_dir.join("queue.db"),
        QueueSettings {
            name: "media".into(),
            delay_ms: 0,
            // A 100 MB document read locally takes a while.
            visibility_timeout_ms: 10 * 60_000,
            max_receives: 5,
        },
    )?);
    let analysers = match &ports.aws {
        Some(aws) => aws_analysers(aws),
        None => local_analysers(settings)?,
    };
    // Without a Graph token (the outbox set-up) media is fetched with a
    // placeholder one, so that a local fake Graph API can serve it.
    let token = settings
        .secrets
        .access_token
        .clone()
        .unwrap_or_else(|| SecretString::from("local-dev-token"));
    let salt = MediaKeySalt::parse(SecretString::from(
        env_optional("CHARLA_MEDIA_KEY_SALT").unwrap_or_else(|| DEV_MEDIA_KEY_SALT.to_string()),
    ))?;
    let deps = Arc::new(media::Deps {
        source: Arc::new(GraphMedia::new(
            settings.api_base.clone(),
            token,
            GraphSettings::from_env()?,
            Duration::from_secs(120),
        )?),
        store: analysers.store,
        images: analysers.images,
        documents: analysers.documents,
        speech: analysers.speech,
        notes: analysers.notes.clone(),
        conversations: ports.conversations,
        records: ports.records,
        sender: ports.sender,
        text_queue: ports.text_queue,
        escalation_queue: ports.escalation_queue,
        clock: ports.clock,
        salt,
        settings: media::Settings {
            notice_language: ports
                .languages
                .first()
                .cloned()
                .unwrap_or_else(|| "en".into()),
            languages: ports.languages,
            work_dir: settings.data_dir.join("media-tmp"),
        },
    });
    Ok(LocalMedia {
        deps,
        queue,
        notes: analysers.notes,
    })
}

struct Analysers {
    store: Arc<dyn MediaStore>,
    images: Arc<dyn ImageAnalyzer>,
    documents: Arc<dyn DocumentReader>,
    speech: Arc<dyn Transcriber>,
    notes: Arc<dyn MediaNotes>,
}

fn local_analysers(settings: &Settings) -> Result<Analysers> {
    let files = FileMediaStore::open(&settings.data_dir.join("media"))?;
    Ok(Analysers {
        store: Arc::new(files.clone()),
        images: Arc::new(LocalImages::new(files.clone())),
        documents: Arc::new(LocalDocuments::new(files)),
        speech: Arc::new(NoSpeech),
        notes: Arc::new(SqliteMediaNotes::open(
            &settings.data_dir.join("charla.db"),
        )?),
    })
}

fn aws_analysers(aws: &AwsMedia) -> Analysers {
    use shared::adapters::aws::{
        DynamoMediaNotes, MediaEncryption, RekognitionImages, S3MediaStore, TextractDocuments,
        TranscribeSpeech,
    };
    let bucket = aws.bucket.clone();
    Analysers {
        store: Arc::new(S3MediaStore::new(
            aws.s3.clone(),
            bucket.clone(),
            MediaEncryption::S3Managed,
        )),
        images: Arc::new(RekognitionImages::new(
            aws_sdk_rekognition::Client::new(&aws.config),
            bucket.clone(),
        )),
        documents: Arc::new(TextractDocuments::new(
            aws_sdk_textract::Client::new(&aws.config),
            bucket.clone(),
        )),
        speech: Arc::new(TranscribeSpeech::new(
            aws_sdk_transcribe::Client::new(&aws.config),
            aws.s3.clone(),
            bucket.clone(),
            bucket,
        )),
        notes: Arc::new(DynamoMediaNotes::new(
            aws_sdk_dynamodb::Client::new(&aws.config),
            aws.table.clone(),
        )),
    }
}

/// Runs `workers` pipeline workers until `shutdown` turns true.
pub fn spawn(
    workers: usize,
    media: &LocalMedia,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|_| {
            let (queue, deps, mut shutdown) =
                (media.queue.clone(), media.deps.clone(), shutdown.clone());
            tokio::spawn(async move {
                while !*shutdown.borrow() {
                    let jobs = match queue.receive(1).await {
                        Ok(jobs) => jobs,
                        Err(e) => {
                            warn!(error = %e, "media receive failed");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    };
                    if jobs.is_empty() {
                        tokio::select! {
                            _ = queue.wait(Duration::from_millis(500)) => {}
                            _ = shutdown.changed() => {}
                        }
                        continue;
                    }
                    for job in jobs {
                        let ran = match serde_json::from_str::<serde_json::Value>(&job.body)
                            .map_err(shared::Error::from)
                            .and_then(parse_job)
                        {
                            Ok(parsed) => {
                                media::run_local(&deps, parsed, POLL_WAIT).await.map(|_| ())
                            }
                            Err(e) => Err(e),
                        };
                        let settled = match ran {
                            Ok(()) => queue.delete(&job.receipt).await,
                            Err(e) => {
                                // Even `fail` failed (the store or queue is
                                // down): the job comes back, and after
                                // `max_receives` waits in dead letters.
                                warn!(error = %e, "media pipeline failed, will be retried");
                                queue
                                    .release(&job.receipt, 1000u64 << job.receive_count.min(6))
                                    .await
                            }
                        };
                        if let Err(e) = settled {
                            warn!(error = %e, "could not settle a media job");
                        }
                    }
                }
                info!("media worker stopped");
            })
        })
        .collect()
}
