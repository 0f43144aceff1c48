//! ingestion's own work per webhook, without network I/O: signature,
//! parse, dedupe and enqueue. Run with `cargo bench -p ingestion`.
//!
//! Two stores: `memory` (a map behind a mutex, the handler's work alone)
//! and `sqlite` (the local store in memory, the real adapter's cost too).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use domain::identity::IdentityLinks;
use domain::ports::{ConversationStore, Queue, QueueMessage};
use domain::signature::meta_signature_header;
use domain::*;
use domain::{Error, Result};
use embedded::SqliteStore;
use ingestion::{receive, Deps};
use runtime::config::WhatsAppSecrets;
use test_support::memory::{FixedClock, MemoryArchive, MemoryIdentities};

const SECRET: &str = "bench-secret";

/// Dedup and recording in a map: what ingestion needs of a store, and
/// nothing more (the other calls are not made on this path).
#[derive(Default)]
struct MapStore {
    seen: Mutex<HashMap<String, bool>>,
}

fn not_on_this_path() -> Error {
    Error::Invalid("not used by ingestion's message path".into())
}

#[async_trait]
impl ConversationStore for MapStore {
    async fn record_inbound(&self, msg: &NewInbound) -> Result<RecordOutcome> {
        let mut seen = self.seen.lock().map_err(|_| not_on_this_path())?;
        Ok(match seen.get(&msg.wamid) {
            Some(&enqueued) => RecordOutcome::Duplicate { enqueued },
            None => {
                seen.insert(msg.wamid.clone(), false);
                RecordOutcome::Recorded
            }
        })
    }
    async fn mark_enqueued(&self, wamid: &str) -> Result<()> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(wamid.to_string(), true);
        }
        Ok(())
    }
    async fn apply_status(&self, _: &StatusUpdate) -> Result<StatusOutcome> {
        Ok(StatusOutcome::Unknown)
    }
    async fn close_window(&self, _: &UserId) -> Result<()> {
        Ok(())
    }
    async fn conversation(&self, _: &UserId) -> Result<Option<Conversation>> {
        Err(not_on_this_path())
    }
    async fn pending_inbound(&self, _: &UserId) -> Result<Vec<StoredMessage>> {
        Err(not_on_this_path())
    }
    async fn recent_messages(&self, _: &UserId, _: usize) -> Result<Vec<StoredMessage>> {
        Err(not_on_this_path())
    }
    async fn claim_turn(&self, _: &TurnRecord) -> Result<ClaimOutcome> {
        Err(not_on_this_path())
    }
    async fn record_sent_part(&self, _: &UserId, _: &str, _: usize, _: &SentRecord) -> Result<()> {
        Err(not_on_this_path())
    }
    async fn complete_turn(&self, _: &UserId, _: &str, _: &[String]) -> Result<()> {
        Err(not_on_this_path())
    }
    async fn record_outbound(&self, _: &UserId, _: &SentRecord) -> Result<()> {
        Err(not_on_this_path())
    }
    async fn list_conversations(&self, _: usize, _: Option<&str>) -> Result<Page<Conversation>> {
        Err(not_on_this_path())
    }
    async fn transcript(
        &self,
        _: &UserId,
        _: usize,
        _: Option<&str>,
    ) -> Result<Page<StoredMessage>> {
        Err(not_on_this_path())
    }
}

/// Counts sends: a queue's cost without its I/O.
#[derive(Default)]
struct CountingQueue(std::sync::atomic::AtomicU64);

#[async_trait]
impl Queue for CountingQueue {
    async fn send(&self, _: &QueueMessage) -> Result<()> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

fn deps(store: Arc<dyn ConversationStore>, identities: Arc<dyn IdentityLinks>) -> Deps {
    Deps {
        secrets: WhatsAppSecrets::new(SECRET.into(), "v".into(), None).expect("secrets"),
        store,
        identities,
        campaigns: None,
        queue: Arc::new(CountingQueue::default()),
        archive: Arc::new(MemoryArchive::default()),
        clock: Arc::new(FixedClock::at(1_732_147_201_000)),
        media: None,
        intake: None,
    }
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A text message from a user with a fresh number and, with `bsuid`, their
/// business-scoped user id beside it (as Meta sends every message since
/// 2026: both ids are resolved and linked on the first message).
fn message(n: u64, text: &str, bsuid: bool) -> serde_json::Value {
    let mut m = serde_json::json!({
        "from": format!("54911{:08}", n % 100_000_000),
        "id": format!("wamid.HBgLNTQ5MTE1NTU1MTIzNBUCABIYFDNBQjBFRkI0{n:016}AA=="),
        "timestamp": "1732147200",
        "type": "text",
        "text": { "body": text },
    });
    if bsuid {
        m["from_user_id"] = serde_json::json!(format!("AR.{n:019}"));
    }
    m
}

/// A signed webhook with `count` messages, each with a fresh wamid.
fn webhook(count: usize, text: &str, bsuid: bool) -> (Vec<u8>, String) {
    let messages: Vec<_> = (0..count)
        .map(|_| {
            message(
                COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                text,
                bsuid,
            )
        })
        .collect();
    let contacts: Vec<_> = messages
        .iter()
        .map(|m| serde_json::json!({"profile": {"name": "Lucía Fernández"}, "wa_id": m["from"]}))
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": contacts,
            "messages": messages,
        }}]}]
    }))
    .expect("json");
    let sig = meta_signature_header(SECRET.as_bytes(), &body);
    (body, sig)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // A text body that brings the webhook to about 1 KB.
    let text = "Hola, quisiera saber el precio del plan Plus y si el envío a Córdoba es gratis. "
        .repeat(7);
    let (sample, _) = webhook(1, &text, false);
    eprintln!("1-message webhook: {} bytes", sample.len());

    let mut group = c.benchmark_group("ingestion");
    let memory: Arc<dyn IdentityLinks> = Arc::new(MemoryIdentities::default());
    let sqlite = || Arc::new(SqliteStore::open_in_memory().expect("store"));
    let (phone_only, with_bsuid) = (sqlite(), sqlite());
    for (name, store, identities, bsuid) in [
        (
            "memory",
            Arc::new(MapStore::default()) as Arc<dyn ConversationStore>,
            memory,
            false,
        ),
        (
            "sqlite",
            phone_only.clone() as Arc<dyn ConversationStore>,
            phone_only as Arc<dyn IdentityLinks>,
            false,
        ),
        (
            "sqlite_bsuid",
            with_bsuid.clone() as Arc<dyn ConversationStore>,
            with_bsuid as Arc<dyn IdentityLinks>,
            true,
        ),
    ] {
        let d = deps(store, identities);
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("text_1kb/{name}"), |b| {
            b.to_async(&rt).iter_batched(
                || webhook(1, &text, bsuid),
                |(body, sig)| {
                    let d = &d;
                    async move { receive(d, Some(&sig), &body).await.expect("accepted") }
                },
                BatchSize::SmallInput,
            )
        });
        group.throughput(Throughput::Elements(50));
        group.bench_function(format!("batch_50/{name}"), |b| {
            b.to_async(&rt).iter_batched(
                || webhook(50, "hola, ¿cuánto cuesta?", bsuid),
                |(body, sig)| {
                    let d = &d;
                    async move { receive(d, Some(&sig), &body).await.expect("accepted") }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut parts = c.benchmark_group("parts");
    let (body, sig) = webhook(1, &text, false);
    parts.bench_function("signature_1kb", |b| {
        b.iter(|| domain::signature::verify_meta_signature(SECRET.as_bytes(), &body, Some(&sig)))
    });
    parts.bench_function("parse_1kb", |b| {
        b.iter(|| domain::whatsapp::inbound::parse_webhook(&body))
    });
    parts.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
