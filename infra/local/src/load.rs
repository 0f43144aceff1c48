//! `local load`: signed webhooks at a running server, as Meta would send
//! them, bounded in count and time. Reports accepted webhooks per second
//! and, with `--graph-listen`, answered turns per second and the
//! webhook-to-answer latency, measured at a fake Graph API that the server
//! sends its replies to. (For rates past what this client sends,
//! `scripts/load/` has the same webhooks for wrk.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::meta;

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub server: String,
    #[arg(long, env = "WHATSAPP_APP_SECRET", default_value = crate::config::DEV_APP_SECRET, hide_env_values = true)]
    pub app_secret: String,
    /// Webhooks per second; 0 sends as fast as `--concurrency` allows.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Serve a fake Graph API here and measure webhook-to-answer latency
    /// (start the server with WHATSAPP_API_BASE=http://<this> and any
    /// WHATSAPP_ACCESS_TOKEN).
    #[arg(long)]
    pub graph_listen: Option<SocketAddr>,
    /// With `--graph-listen`: how long to wait, after the last webhook, for
    /// the answers still coming, in seconds. With `--duration 0`, nothing
    /// is sent and the fake Graph API counts the answers to webhooks sent
    /// by something else (wrk) until no answer came for this long.
    #[arg(long, default_value_t = 10)]
    pub drain: u64,
    /// Business numbers the users write to (the demo's and the next ones):
    /// sends are paced per number, and a demo turn sends two messages, so
    /// one number at Meta's highest tier answers at most 500 turns/s.
    #[arg(long, default_value_t = 1)]
    pub numbers: u64,
    /// With `--duration 0`: stop counting this many seconds after the first
    /// answer, even if answers still come (a flood's backlog can take many
    /// minutes to answer at one number's pace).
    #[arg(long)]
    pub at_most: Option<u64>,
}

type Sent = Arc<Mutex<HashMap<String, Instant>>>;

#[derive(Clone, Default)]
struct Fake {
    sent: Sent,
    /// Webhook-to-answer latency of each answer to this run's webhooks,
    /// and when it came.
    answers: Arc<Mutex<Vec<(Duration, Instant)>>>,
    /// Every send, this run's or not (wrk's, with `--duration 0`).
    sends: Arc<Mutex<Vec<Instant>>>,
}

async fn fake_send(State(fake): State<Fake>, Json(body): Json<Value>) -> Json<Value> {
    if body["type"].is_string() {
        // A message (a read receipt has no type); a turn may send several.
        if let Ok(mut s) = fake.sends.lock() {
            s.push(Instant::now());
        }
    }
    if let Some(to) = body["to"].as_str() {
        let started = fake.sent.lock().ok().and_then(|mut m| m.remove(to));
        if let (Some(t), Ok(mut a)) = (started, fake.answers.lock()) {
            a.push((t.elapsed(), Instant::now()));
        }
    }
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": body["to"], "wa_id": body["to"] }],
        "messages": [{ "id": meta::new_wamid() }],
        "success": true,
    }))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn describe(name: &str, mut d: Vec<Duration>) {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    println!(
        "{name}: n={} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        d.len(),
        ms(percentile(&d, 0.50)),
        ms(percentile(&d, 0.90)),
        ms(percentile(&d, 0.99)),
        ms(d.last().copied().unwrap_or_default()),
    );
}

pub async fn run(args: LoadArgs) -> Result<(), Box<dyn std::error::Error>> {
    let fake = Fake::default();
    if let Some(addr) = args.graph_listen {
        let app = Router::new()
            .route("/{phone}/messages", post(fake_send))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let server = args.server.trim_end_matches('/').to_string();
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let accepts = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(0u64));
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let start = Instant::now();
    let mut tick = (args.rate > 0)
        .then(|| tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64)));
    let mut handles = Vec::new();
    let run_id = uuid::Uuid::new_v4().as_u128() % 1_000_000;
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        let permit = permits.clone().acquire_owned().await?;
        // One user per message, so that every webhook is its own turn.
        let user_id = format!("549{:06}{:04}", run_id, n % 10_000);
        n += 1;
        let wamid = meta::new_wamid();
        let mut webhook = meta::message_webhook(
            &user_id,
            "Load",
            meta::text_message(&user_id, &wamid, "hola, ¿cuánto cuesta el plan?"),
        );
        if args.numbers > 1 {
            let first: u64 = meta::DEMO_PHONE_NUMBER_ID.parse()?;
            webhook["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] =
                (first + n % args.numbers).to_string().into();
        }
        let body = serde_json::to_vec(&webhook)?;
        let (client, server, secret) = (client.clone(), server.clone(), args.app_secret.clone());
        let (accepts, failures, sent) = (accepts.clone(), failures.clone(), fake.sent.clone());
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            if let Ok(mut s) = sent.lock() {
                s.insert(user_id.clone(), t);
            }
            match meta::post_signed(&client, &server, &secret, &body).await {
                Ok(200) => {
                    if let Ok(mut a) = accepts.lock() {
                        a.push(t.elapsed());
                    }
                }
                _ => {
                    if let Ok(mut f) = failures.lock() {
                        *f += 1;
                    }
                }
            }
            drop(permit);
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let elapsed = start.elapsed();
    let accepted = accepts.lock().map(|a| a.clone()).unwrap_or_default();
    let failed = failures.lock().map(|f| *f).unwrap_or_default();
    println!(
        "sent {n} webhooks in {:.2}s: {} accepted ({:.0}/s), {failed} failed",
        elapsed.as_secs_f64(),
        accepted.len(),
        accepted.len() as f64 / elapsed.as_secs_f64()
    );
    describe("accept latency", accepted.clone());
    if args.graph_listen.is_some() {
        let wait_until = Instant::now() + Duration::from_secs(args.drain);
        let sends = |f: &Fake| f.sends.lock().map(|s| s.len()).unwrap_or_default();
        if args.duration == 0 {
            // Counting someone else's flood: from its first answer (a minute
            // at most for it to start) until it has been quiet a while.
            let started = Instant::now();
            while sends(&fake) == 0 && started.elapsed() < Duration::from_secs(60) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut seen = (sends(&fake), Instant::now());
            let until = args
                .at_most
                .map(|s| Instant::now() + Duration::from_secs(s));
            while seen.1.elapsed() < Duration::from_secs(args.drain.max(1))
                && until.is_none_or(|u| Instant::now() < u)
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let n = sends(&fake);
                if n != seen.0 {
                    seen = (n, Instant::now());
                }
            }
        }
        // Give the last answers a moment to arrive.
        while args.duration > 0 && Instant::now() < wait_until {
            let answered = fake.answers.lock().map(|a| a.len()).unwrap_or_default();
            if answered >= accepted.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let all = fake.sends.lock().map(|s| s.clone()).unwrap_or_default();
        if let (Some(first), Some(last)) = (all.first(), all.last()) {
            let span = last.duration_since(*first).as_secs_f64().max(f64::EPSILON);
            println!(
                "messages sent: {} in {span:.2}s from the first to the last ({:.0}/s)",
                all.len(),
                all.len() as f64 / span
            );
        }
        if args.duration > 0 {
            let answers = fake.answers.lock().map(|a| a.clone()).unwrap_or_default();
            // From the first webhook to the last answer: the rate at which
            // the turns were answered, the flood's backlog included.
            let last = answers.iter().map(|(_, at)| *at).max().unwrap_or(start);
            let span = last.duration_since(start).as_secs_f64().max(f64::EPSILON);
            println!(
                "answered {} of {} accepted in {span:.2}s ({:.0}/s)",
                answers.len(),
                accepted.len(),
                answers.len() as f64 / span
            );
            describe(
                "webhook-to-answer",
                answers.into_iter().map(|(d, _)| d).collect(),
            );
        }
    }
    Ok(())
}
