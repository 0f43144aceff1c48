//! The local server: API Gateway's routes on axum, calling the functions'
//! own handlers, plus `/healthz` and the outbox feed for `local chat`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use bytes::Bytes;
use http::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;
use shared::adapters::local::{FileArchive, Outbox, QueueSettings, SqliteQueue, SqliteStore};
use shared::ports::{
    AgentRecords, ConversationStore, MessageSender, PayloadArchive, Queue, SystemClock,
};
use tokio::sync::watch;
use tracing::info;

use crate::config::Settings;
use crate::consumer::{self, Source};

/// The queue's view for health: how much work is waiting.
#[derive(Clone)]
enum Health {
    Local {
        text: Arc<SqliteQueue>,
        calls: Arc<SqliteQueue>,
        escalations: Arc<SqliteQueue>,
    },
    Remote,
}

#[derive(Clone)]
struct AppState {
    ingestion: Arc<ingestion::Deps>,
    admin: Arc<admin::Deps>,
    keys: Arc<authorizer::AdminKeys>,
    outbox: Option<Arc<Outbox>>,
    health: Health,
    /// The voice webhooks; `None` when no provider is configured.
    voice: Option<Arc<voice::Deps>>,
    chatwoot: Arc<escalation::webhook::WebhookDeps>,
}

struct Parts {
    store: Arc<dyn ConversationStore>,
    records: Arc<dyn AgentRecords>,
    call_queue: Arc<dyn Queue>,
    escalation_queue: Arc<dyn Queue>,
    queue: Arc<dyn Queue>,
    source: Source,
    archive: Arc<dyn PayloadArchive>,
    health: Health,
    /// Voice: the call records and where call requests come from.
    calls: Arc<dyn shared::ports::CallRecords>,
    call_source: Source,
    /// `--aws` with a media bucket: media on S3 and the AWS analysers.
    media_aws: Option<crate::media_pipeline::AwsMedia>,
}

async fn local_parts(settings: &Settings) -> shared::Result<Parts> {
    let store = Arc::new(SqliteStore::open(&settings.data_dir.join("charla.db"))?);
    let open_queue = |name: &str| {
        SqliteQueue::open(
            &settings.data_dir.join("queue.db"),
            QueueSettings {
                name: name.into(),
                delay_ms: 0,
                visibility_timeout_ms: 60_000,
                max_receives: 5,
            },
        )
        .map(Arc::new)
    };
    let queue = open_queue("text")?;
    // Call requests and hand-offs wait here for their consumers (the voice
    // and escalation issues); /healthz counts them.
    let calls = open_queue("calls")?;
    let escalations = open_queue("escalations")?;
    // This process owns the local queue: jobs in flight were held by a
    // previous process that died (SIGKILL, power cut); give them back now.
    let recovered = queue.recover_in_flight().await?;
    if recovered > 0 {
        info!(
            recovered,
            "jobs in flight at the last stop are queued again"
        );
    }
    let archive = Arc::new(FileArchive::open(&settings.data_dir)?);
    let call_records = Arc::new(shared::adapters::local::SqliteCallRecords::open(
        &settings.data_dir.join("charla.db"),
    )?);
    Ok(Parts {
        calls: call_records,
        call_source: Source::Local(calls.clone()),
        store: store.clone(),
        records: store,
        queue: queue.clone(),
        call_queue: calls.clone(),
        escalation_queue: escalations.clone(),
        source: Source::Local(queue.clone()),
        archive,
        health: Health::Local {
            text: queue,
            calls,
            escalations,
        },
        media_aws: None,
    })
}

async fn aws_parts(settings: &Settings) -> shared::Result<Parts> {
    use shared::adapters::aws::{DynamoStore, S3Archive, SqsQueue};
    use shared::config::env_required;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let (table, queue_url, bucket, calls_url, escalations_url) = if settings.create_resources {
        let table =
            shared::config::env_optional("CHARLA_TABLE").unwrap_or_else(|| "charla-local".into());
        let store = DynamoStore::new(dynamo.clone(), table.clone());
        store.create_table().await?;
        let queue_name = shared::config::env_optional("CHARLA_TEXT_QUEUE_NAME")
            .unwrap_or_else(|| "charla-local-text".into());
        let (url, _dlq) = SqsQueue::create_fifo_with_dlq(&sqs, &queue_name, 5, 60).await?;
        let (calls_url, _) =
            SqsQueue::create_fifo_with_dlq(&sqs, &format!("{queue_name}-calls"), 5, 60).await?;
        let (escalations_url, _) =
            SqsQueue::create_fifo_with_dlq(&sqs, &format!("{queue_name}-escalations"), 5, 60)
                .await?;
        let bucket = shared::config::env_optional("CHARLA_QUARANTINE_BUCKET")
            .unwrap_or_else(|| "charla-local-quarantine".into());
        S3Archive::create_bucket(&s3, &bucket).await?;
        (table, url, bucket, calls_url, escalations_url)
    } else {
        (
            env_required("CHARLA_TABLE")?,
            env_required("CHARLA_TEXT_QUEUE_URL")?,
            env_required("CHARLA_QUARANTINE_BUCKET")?,
            env_required("CHARLA_CALL_QUEUE_URL")?,
            env_required("CHARLA_ESCALATION_QUEUE_URL")?,
        )
    };
    // Media on S3 with the AWS analysers when a bucket is named (or created);
    // otherwise the local ones, on disk.
    let media_bucket = match shared::config::env_optional("CHARLA_MEDIA_BUCKET") {
        Some(b) => Some(b),
        None if settings.create_resources => Some(format!("{bucket}-media")),
        None => None,
    };
    if let (Some(b), true) = (&media_bucket, settings.create_resources) {
        S3Archive::create_bucket(&s3, b).await?;
    }
    let media_aws = media_bucket.map(|bucket| crate::media_pipeline::AwsMedia {
        config: config.clone(),
        s3: s3.clone(),
        bucket,
        table: table.clone(),
    });
    let store = Arc::new(DynamoStore::new(dynamo.clone(), table.clone()));
    Ok(Parts {
        calls: Arc::new(shared::adapters::aws::DynamoCallRecords::new(dynamo, table)),
        call_source: Source::Sqs {
            client: sqs.clone(),
            url: calls_url.clone(),
        },
        store: store.clone(),
        records: store,
        queue: Arc::new(SqsQueue::new(sqs.clone(), queue_url.clone())),
        call_queue: Arc::new(SqsQueue::new(sqs.clone(), calls_url)),
        escalation_queue: Arc::new(SqsQueue::new(sqs.clone(), escalations_url)),
        source: Source::Sqs {
            client: sqs,
            url: queue_url,
        },
        archive: Arc::new(S3Archive::new(s3, bucket)),
        health: Health::Remote,
        media_aws,
    })
}

pub async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    std::fs::create_dir_all(&settings.data_dir)?;
    let parts = if settings.aws {
        aws_parts(&settings).await?
    } else {
        local_parts(&settings).await?
    };
    let (sender, outbox): (Arc<dyn MessageSender>, Option<Arc<Outbox>>) =
        match &settings.secrets.access_token {
            Some(token) => (
                Arc::new(shared::adapters::http::GraphClient::new(
                    settings.api_base.clone(),
                    token.clone(),
                    shared::adapters::http::GraphSettings::from_env()?,
                )?),
                None,
            ),
            None => {
                let outbox = Arc::new(Outbox::open(&settings.data_dir)?);
                (outbox.clone(), Some(outbox))
            }
        };
    let clock = Arc::new(SystemClock);
    let agent = text_ai::setup::build_agent(
        &settings.agent,
        &settings.secrets,
        text_ai::setup::AgentPorts {
            records: parts.records.clone(),
            call_queue: parts.call_queue.clone(),
            escalation_queue: parts.escalation_queue.clone(),
            clock: clock.clone(),
        },
        None,
    )
    .await?;
    let profile = agent.profile().clone();
    let escalation_sender = sender.clone();
    let admin_sender = sender.clone();
    let reengage_template = settings
        .reengage_template
        .clone()
        .or_else(|| text_ai::reengage_template(agent.profile()));
    let history_limit = agent.history_needed();
    let voice_wiring = crate::voice::build(
        crate::voice::VoicePorts {
            store: parts.store.clone(),
            records: parts.records.clone(),
            calls: parts.calls.clone(),
            sender: sender.clone(),
            clock: clock.clone(),
            archive: parts.archive.clone(),
        },
        agent.profile(),
        agent.registry().clone(),
    )?;
    // Media (issue 4): the pipeline's steps in-process, on a durable queue.
    let media_mode = match &parts.media_aws {
        Some(m) => format!("S3 bucket {} with Rekognition, Textract, Transcribe", m.bucket),
        None => "files, image headers and PDF text (no labels or speech: set --aws and CHARLA_MEDIA_BUCKET for them)".to_string(),
    };
    let local_media = crate::media_pipeline::build(
        &settings,
        crate::media_pipeline::MediaPorts {
            conversations: parts.store.clone(),
            records: parts.records.clone(),
            sender: sender.clone(),
            text_queue: parts.queue.clone(),
            escalation_queue: parts.escalation_queue.clone(),
            clock: clock.clone(),
            languages: profile.agent.languages.clone(),
            aws: parts.media_aws,
        },
    )?;
    let ingestion = Arc::new(ingestion::Deps {
        secrets: settings.secrets.clone(),
        store: parts.store.clone(),
        queue: parts.queue.clone(),
        archive: parts.archive.clone(),
        clock: clock.clone(),
        media: Some(Arc::new(media::QueuedPipeline {
            queue: local_media.queue.clone(),
        })),
    });
    let text_ai = Arc::new(text_ai::Deps {
        store: parts.store.clone(),
        sender,
        responder: Arc::new(agent),
        clock,
        settings: text_ai::Settings {
            debounce_ms: settings.debounce_ms,
            history_limit,
            reengage_template,
            escalation_queue: Some(text_ai::EscalationQueue(parts.escalation_queue.clone())),
            media: text_ai::media_hold::MediaHold {
                notes: Some(local_media.notes.clone()),
                ..Default::default()
            },
            ..Default::default()
        },
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let escalation = crate::escalation::wire(
        crate::escalation::Inputs {
            data_dir: &settings.data_dir,
            profile: &profile,
            store: parts.store.clone(),
            records: parts.records.clone(),
            sender: escalation_sender,
            clock: Arc::new(SystemClock),
            queue: match &parts.health {
                Health::Local { escalations, .. } => Some(escalations.clone()),
                Health::Remote => None,
            },
            call_queue: parts.call_queue.clone(),
            admin_base: format!("http://{}", settings.listen),
        },
        stop_rx.clone(),
    )
    .await?;
    let state = AppState {
        ingestion,
        admin: Arc::new(admin::Deps {
            store: parts.store.clone(),
            control: Some(admin::control::Control {
                records: parts.records.clone(),
                escalations: escalation.escalations.clone(),
                sender: admin_sender,
                clock: Arc::new(SystemClock),
                desk: escalation.human_desk.clone(),
            }),
        }),
        keys: Arc::new(settings.admin_keys.clone()),
        outbox: outbox.clone(),
        health: parts.health.clone(),
        voice: voice_wiring.as_ref().map(|v| v.webhooks.clone()),
        chatwoot: escalation.webhook.clone(),
    };
    let mut workers = match &voice_wiring {
        Some(v) => crate::voice::spawn(parts.call_source, v.trigger.clone(), stop_rx.clone())?,
        None => Vec::new(),
    };
    workers.extend(consumer::spawn(
        "text",
        settings.workers,
        parts.source,
        move |event| {
            let deps = text_ai.clone();
            async move { text_ai::handle_batch(&deps, event).await }
        },
        stop_rx.clone(),
    ));
    workers.extend(crate::media_pipeline::spawn(2, &local_media, stop_rx));
    workers.extend(escalation.workers);
    if let Some(desk) = &escalation.desk {
        eprintln!("  humans:   Chatwoot at {desk}");
    }

    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    banner(
        &settings,
        listener.local_addr()?,
        outbox.is_some(),
        &media_mode,
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            shutdown_signal().await;
        })
        .await?;
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
    }
    info!("stopped");
    Ok(())
}

fn banner(settings: &Settings, addr: std::net::SocketAddr, outbox: bool, media: &str) {
    eprintln!("Charla is listening on http://{addr}");
    eprintln!("  webhook:  http://{addr}/webhooks/whatsapp");
    eprintln!("  admin:    http://{addr}/admin/conversations");
    eprintln!("  data dir: {}", settings.data_dir.display());
    eprintln!(
        "  adapters: {}",
        if settings.aws {
            "AWS (DynamoDB, SQS, S3)"
        } else {
            "local (SQLite, files)"
        }
    );
    eprintln!(
        "  replies:  {}",
        if outbox {
            "local outbox (no WHATSAPP_ACCESS_TOKEN): see `local chat` and outbox.jsonl".to_string()
        } else {
            format!("Graph API at {}", settings.api_base)
        }
    );
    eprintln!("  media:    {media}");
    eprintln!("  agent:    {}", settings.agent.profile.display());
    eprintln!(
        "  model:    {}",
        match &settings.agent.model {
            text_ai::setup::ModelChoice::Local =>
                "local (playbook and knowledge base; set CHARLA_MODEL for an LLM)".to_string(),
            text_ai::setup::ModelChoice::Bedrock(id) => format!("Bedrock {id}"),
            text_ai::setup::ModelChoice::OpenAi(m) => format!(
                "{m} at {}",
                settings.agent.model_url.as_deref().unwrap_or("?")
            ),
        }
    );
    if !settings.dev_defaults.is_empty() {
        eprintln!("  development values in use (set these for anything real):");
        for name in &settings.dev_defaults {
            let value = match *name {
                "WHATSAPP_APP_SECRET" => crate::config::DEV_APP_SECRET,
                "WHATSAPP_VERIFY_TOKEN" => crate::config::DEV_VERIFY_TOKEN,
                _ => crate::config::DEV_ADMIN_KEY,
            };
            eprintln!("    {name}={value}");
        }
    }
    let _ = settings.secrets.verify_token.expose_secret();
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("CHARLA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.compact().try_init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/webhooks/whatsapp", any(webhook))
        .route("/webhooks/chatwoot", any(chatwoot_webhook))
        .route("/admin/{*rest}", any(admin_route))
        .route("/webhooks/voice/{provider}", any(voice_webhook))
        .route("/healthz", get(healthz))
        .route("/local/outbox", get(outbox_feed))
        .with_state(state)
}

/// Reads the body up to `limit`; past it, 413 without reading further.
async fn body_bytes(req: Request, limit: usize) -> Result<http::Request<Bytes>, Response> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(http::Request::from_parts(parts, bytes)),
        Err(_) => Err((StatusCode::PAYLOAD_TOO_LARGE, "payload too large").into_response()),
    }
}

fn to_axum(resp: http::Response<Bytes>) -> Response {
    resp.map(Body::from)
}

async fn webhook(State(state): State<AppState>, req: Request) -> Response {
    match body_bytes(req, ingestion::MAX_BODY_BYTES).await {
        Ok(req) => to_axum(ingestion::handle(&state.ingestion, req).await),
        Err(resp) => resp,
    }
}

/// The voice providers' webhooks: the voice function's own handler.
async fn voice_webhook(State(state): State<AppState>, req: Request) -> Response {
    let Some(deps) = &state.voice else {
        return (StatusCode::NOT_FOUND, "voice calls are not configured").into_response();
    };
    match body_bytes(req, voice::MAX_BODY_BYTES).await {
        Ok(req) => to_axum(voice::handle(deps, req).await),
        Err(resp) => resp,
    }
}

/// Chatwoot's webhook: the escalation crate's handler (token in the URL).
async fn chatwoot_webhook(State(state): State<AppState>, req: Request) -> Response {
    match body_bytes(req, escalation::webhook::MAX_BODY_BYTES).await {
        Ok(req) => to_axum(escalation::webhook::handle(&state.chatwoot, req).await),
        Err(resp) => resp,
    }
}

/// The same authorizer code API Gateway runs, then the admin handler.
async fn admin_route(State(state): State<AppState>, req: Request) -> Response {
    let auth = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let decision = authorizer::authorize(&state.keys, auth.as_deref(), req.method().as_str());
    if !decision.allowed {
        // API Gateway: 401 without the identity source, 403 on a deny.
        let status = if auth.is_none() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::FORBIDDEN
        };
        return (
            status,
            Json(serde_json::json!({"message": status.canonical_reason()})),
        )
            .into_response();
    }
    match body_bytes(req, 1024 * 1024).await {
        Ok(req) => to_axum(admin::handle(&state.admin, req).await),
        Err(resp) => resp,
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    let count = |q: Arc<SqliteQueue>| async move {
        serde_json::json!({
            "waiting": q.len().await.unwrap_or_default(),
            "dead_letters": q.dead_letters().await.map(|d| d.len()).unwrap_or_default(),
        })
    };
    let (queue, calls, escalations) = match &state.health {
        Health::Local {
            text,
            calls,
            escalations,
        } => (
            count(text.clone()).await,
            count(calls.clone()).await,
            count(escalations.clone()).await,
        ),
        Health::Remote => (
            serde_json::json!("sqs"),
            serde_json::json!("sqs"),
            serde_json::json!("sqs"),
        ),
    };
    Json(serde_json::json!({
        "status": "ok",
        "queue": queue,
        "calls": calls,
        "escalations": escalations,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct OutboxQuery {
    wa_id: String,
    #[serde(default)]
    after: u64,
    #[serde(default)]
    wait_ms: u64,
}

/// The replies the outbox holds for one user after `after`; waits up to
/// `wait_ms` for new ones. Used by `local chat`.
async fn outbox_feed(State(state): State<AppState>, Query(q): Query<OutboxQuery>) -> Response {
    let Some(outbox) = &state.outbox else {
        return (
            StatusCode::NOT_FOUND,
            "replies go to the Graph API, not the outbox",
        )
            .into_response();
    };
    let wait = Duration::from_millis(q.wait_ms.min(30_000));
    let entries = outbox.wait_since(&q.wa_id, q.after, wait).await;
    Json(serde_json::json!({ "entries": entries })).into_response()
}
