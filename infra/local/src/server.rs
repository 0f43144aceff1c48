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
use embedded::{Outbox, SqliteQueue};
use http::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::sync::watch;
use tracing::info;

use crate::config::Settings;
use crate::consumer;
use crate::wiring::{self, Functions, Health};

#[derive(Clone)]
struct AppState {
    ingestion: Arc<ingestion::Deps>,
    admin: Arc<admin::Deps>,
    campaigns: Arc<campaigns::Deps>,
    keys: Arc<authorizer::AdminKeys>,
    outbox: Option<Arc<Outbox>>,
    health: Health,
    /// The voice webhooks; `None` when no provider is configured.
    voice: Option<Arc<voice::Deps>>,
    chatwoot: Arc<escalation::webhook::WebhookDeps>,
}

pub async fn serve(mut settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    runtime::observability::set_log_content(settings.log_content());
    std::fs::create_dir_all(&settings.data_dir)?;
    let functions = if settings.aws {
        wiring::aws(&mut settings).await?
    } else {
        wiring::local(&settings).await?
    };
    let Functions {
        ingestion,
        text_ai,
        admin,
        campaigns,
        dispatcher,
        escalation,
        chatwoot,
        voice,
        media,
        sources,
        health,
        outbox,
        media_mode,
    } = functions;
    let (stop_tx, stop_rx) = watch::channel(false);
    // The work behind the 200s (the journal's applier, answering, calls,
    // media, campaigns) runs on a runtime of its own, whose threads yield
    // the CPU to this one, which answers Meta: under a flood, webhooks are
    // accepted at the machine's pace and the rest catches up behind.
    let background = tokio::runtime::Builder::new_multi_thread()
        .thread_name("charla-work")
        .on_thread_start(embedded::lower_thread_priority)
        .enable_all()
        .build()?;
    let workers = {
        let _inside = background.enter();
        let mut workers = match &voice {
            Some(v) => crate::voice::spawn(
                sources.calls,
                v.calls.clone(),
                settings.call_sweep_ms,
                stop_rx.clone(),
            ),
            None => Vec::new(),
        };
        workers.extend(spawn_turn_consumers(
            settings.workers,
            (sources.text, sources.escalations, sources.timers),
            text_ai.clone(),
            escalation.clone(),
            stop_rx.clone(),
        ));
        if let Some(media) = &media {
            workers.extend(crate::media_pipeline::spawn(2, media, stop_rx.clone()));
        }
        // The journal, and the turn queue its applier watches, are local.
        if let Health::Local {
            text,
            journal: Some(journal),
            ..
        } = &health
        {
            workers.push(crate::intake::spawn(
                journal.clone(),
                ingestion.clone(),
                Some(text.clone()),
                settings.turns_waiting_at_most,
                stop_rx.clone(),
            ));
        }
        if let Some(dispatcher) = dispatcher {
            workers.push(spawn_dispatcher(
                dispatcher,
                settings.campaign_tick_ms,
                stop_rx.clone(),
            ));
        }
        workers
    };
    if let Some(place) = &settings.escalation.chatwoot {
        eprintln!("  humans:   Chatwoot at {}", place.url);
    }
    let state = AppState {
        ingestion,
        admin,
        campaigns,
        keys: Arc::new(settings.admin_keys.clone()),
        outbox: outbox.clone(),
        health,
        voice,
        chatwoot,
    };

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
    // What did not stop in time is done again at the next start.
    background.shutdown_background();
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
            format!("Graph API at {}", settings.text_ai.graph.api_base)
        }
    );
    eprintln!("  media:    {media}");
    eprintln!("  agent:    {}", settings.text_ai.agent.profile.display());
    eprintln!(
        "  model:    {}",
        match &settings.text_ai.agent.model {
            agent_setup::ModelChoice::Local =>
                "local (playbook and knowledge base; set CHARLA_MODEL for an LLM)".to_string(),
            agent_setup::ModelChoice::Bedrock(id) => format!("Bedrock {id}"),
            agent_setup::ModelChoice::OpenAi(m) => format!(
                "{m} at {}",
                settings.text_ai.agent.model_url.as_deref().unwrap_or("?")
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
        .route("/local/simulate", get(simulator_info).post(simulate))
        // The operator's console: static, no auth (its API calls carry the key).
        .route("/", get(crate::console::index))
        .route("/index.html", get(crate::console::index))
        .route("/assets/{file}", get(crate::console::hashed_asset))
        .with_state(state)
}

/// The turns' consumers, as the server runs them and `local eval` too:
/// text-ai on the text queue (`text_workers` at once), escalation on its
/// queue and on the no-human timers'.
pub(crate) fn spawn_turn_consumers(
    text_workers: usize,
    (text, escalations, timers): (consumer::Source, consumer::Source, consumer::Source),
    text_ai: Arc<text_ai::Deps>,
    escalation: Arc<escalation::Deps>,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut workers = consumer::spawn(
        "text",
        text_workers,
        text,
        move |event| {
            let deps = text_ai.clone();
            async move { text_ai::handle_batch(&deps, event).await }
        },
        stop.clone(),
    );
    for (name, source) in [("escalations", escalations), ("escalation-timers", timers)] {
        let deps = escalation.clone();
        workers.extend(consumer::spawn(
            name,
            1,
            source,
            move |event| {
                let deps = deps.clone();
                async move { escalation::handle_batch(&deps, event).await }
            },
            stop.clone(),
        ));
    }
    workers
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

/// The campaigns' dispatcher every `every_ms` (EventBridge's minute on AWS),
/// until the stop.
fn spawn_dispatcher(
    dispatcher: Arc<campaigns::dispatch::Dispatcher>,
    every_ms: u64,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(every_ms));
        while !*stop.borrow() {
            tokio::select! {
                _ = every.tick() => {
                    if let Err(e) = campaigns::dispatch::tick(&dispatcher).await {
                        tracing::warn!(error = %e, "campaign tick failed; the next one tries again");
                    }
                }
                _ = stop.changed() => {}
            }
        }
    })
}

/// The authorizer's decision as API Gateway answers it: `None` when allowed,
/// else 401 without the identity source and 403 on a deny.
fn refused(state: &AppState, req: &Request) -> Option<Response> {
    let auth = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let decision = authorizer::authorize(&state.keys, auth, req.method().as_str());
    if decision.allowed {
        return None;
    }
    let status = if auth.is_none() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::FORBIDDEN
    };
    Some(
        (
            status,
            Json(serde_json::json!({"message": status.canonical_reason()})),
        )
            .into_response(),
    )
}

/// The same authorizer code API Gateway runs, then the admin handler.
async fn admin_route(State(state): State<AppState>, req: Request) -> Response {
    if let Some(refusal) = refused(&state, &req) {
        return refusal;
    }
    // The campaigns routes are the campaigns function's, as in template.yaml.
    let path = req.uri().path();
    if path.starts_with("/admin/campaigns") || path.starts_with("/admin/opt-outs") {
        return match body_bytes(req, campaigns::config::MAX_UPLOAD_BYTES).await {
            Ok(req) => to_axum(campaigns::handle(&state.campaigns, req).await),
            Err(resp) => resp,
        };
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
    let (queue, calls, escalations, journal) = match &state.health {
        Health::Local {
            text,
            calls,
            escalations,
            journal,
        } => (
            count(text.clone()).await,
            count(calls.clone()).await,
            count(escalations.clone()).await,
            journal.as_ref().map_or(serde_json::Value::Null, |j| {
                let waiting = j.backlog();
                serde_json::json!({
                    "waiting": waiting.entries,
                    "bytes": waiting.bytes,
                    "disk_free_bytes": j.free_bytes(),
                })
            }),
        ),
        #[cfg(feature = "aws")]
        Health::Remote => (
            serde_json::json!("sqs"),
            serde_json::json!("sqs"),
            serde_json::json!("sqs"),
            serde_json::Value::Null,
        ),
    };
    Json(serde_json::json!({
        "status": "ok",
        "queue": queue,
        "calls": calls,
        "escalations": escalations,
        "journal": journal,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct OutboxQuery {
    #[serde(alias = "wa_id")]
    user_id: String,
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
    let entries = outbox.wait_since(&q.user_id, q.after, wait).await;
    Json(serde_json::json!({ "entries": entries })).into_response()
}

/// Whether the console's chat simulator can be used here: it needs the
/// local outbox for the bot's answers. (On AWS the console is a static site
/// and this route does not exist: the console hides the simulator.)
async fn simulator_info(State(state): State<AppState>) -> Response {
    Json(serde_json::json!({ "simulator": state.outbox.is_some() })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Simulated {
    user_id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    button: Option<Choice>,
    #[serde(default)]
    list: Option<Choice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Choice {
    id: String,
    title: String,
    #[serde(default)]
    description: String,
}

/// The console's chat simulator: one user message (text, a reply button or
/// a list row), built and signed exactly as Meta sends it (`meta.rs`) and
/// put through ingestion's own handler, so the real signature check and
/// parsing run. Behind the admin authorizer (write scope), like the API:
/// it puts messages into conversations.
async fn simulate(State(state): State<AppState>, req: Request) -> Response {
    if let Some(refusal) = refused(&state, &req) {
        return refusal;
    }
    let bad = |why: String| {
        (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": format!("invalid input: {why}") })),
        )
            .into_response()
    };
    let body = match body_bytes(req, 64 * 1024).await {
        Ok(req) => req.into_body(),
        Err(resp) => return resp,
    };
    let sim: Simulated = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return bad(format!(
                "expected {{\"user_id\", \"text\" | \"button\" | \"list\"}}: {e}"
            ))
        }
    };
    if let Err(e) = domain::UserId::parse(&sim.user_id) {
        return bad(e);
    }
    let wamid = crate::meta::new_wamid();
    let user = sim.user_id.as_str();
    let message = match (&sim.text, &sim.button, &sim.list) {
        (Some(text), None, None) if !text.trim().is_empty() => {
            crate::meta::text_message(user, &wamid, text)
        }
        (None, Some(b), None) => crate::meta::button_reply_message(user, &wamid, &b.id, &b.title),
        (None, None, Some(r)) => {
            crate::meta::list_reply_message(user, &wamid, &r.id, &r.title, &r.description)
        }
        _ => return bad("send one of text, button or list".into()),
    };
    let name = sim.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let payload = crate::meta::message_webhook(user, name.unwrap_or("Ana"), message);
    // Neither can fail on a JSON value and a static URI; if one did, it is
    // ours, not the caller's.
    let internal = |e: String| {
        tracing::error!(error = %e, "building the simulated webhook");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({ "error": "internal error" })),
        )
            .into_response()
    };
    let bytes = match serde_json::to_vec(&payload) {
        Ok(b) => Bytes::from(b),
        Err(e) => return internal(e.to_string()),
    };
    let signature = domain::signature::meta_signature_header(
        state
            .ingestion
            .secrets
            .app_secret
            .expose_secret()
            .as_bytes(),
        &bytes,
    );
    let webhook = http::Request::builder()
        .method(http::Method::POST)
        .uri("/webhooks/whatsapp")
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("x-hub-signature-256", signature)
        .body(bytes);
    let webhook = match webhook {
        Ok(w) => w,
        Err(e) => return internal(e.to_string()),
    };
    let answer = ingestion::handle(&state.ingestion, webhook).await;
    let status = answer.status();
    if !status.is_success() {
        tracing::warn!(%status, "the simulated webhook was not accepted");
        return (
            status,
            Json(serde_json::json!({
                "error": String::from_utf8_lossy(answer.body()).into_owned(),
            })),
        )
            .into_response();
    }
    Json(serde_json::json!({ "wamid": wamid, "webhook": status.as_u16() })).into_response()
}
