//! The media function's steps with the local adapters (SQLite, files, the
//! outbox) and a fake Graph API over real HTTP, fed the sample events in
//! `events/media/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::agent::Memory;
use domain::handoff::EscalationMessage;
use domain::media::MediaKeySalt;
use domain::media::{ImageAnalysis, Label};
use domain::media_pipeline::{MediaJob, MediaNote, Route};
use domain::ports::{AgentRecords, ConversationStore, ImageAnalyzer, MediaNotes};
use domain::{ConversationState, NewInbound, TurnJob, UserId};
use domain::{Error, Result};
use embedded::{
    FileMediaStore, LocalDocuments, LocalImages, NoSpeech, Outbox, QueueSettings, SqliteMediaNotes,
    SqliteQueue, SqliteStore,
};
use media::{handle, Deps, Settings, FINAL, RETRYABLE};
use secrecy::SecretString;
use serde_json::{json, Value};
use test_support::media_samples as samples;
use test_support::memory::{FixedClock, MemoryQueue};
use whatsapp_graph::{GraphMedia, GraphSettings};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const USER: &str = "5491100000301";
const WAMID: &str = "wamid.HBgNNTQ5MTEwMDAwMDMwMRUCABIYFDNBMDAwMDAwMDAwMDAwMDAwMDAxAA==";
/// The sample events' message time, plus a minute.
const NOW_MS: i64 = 1_763_900_060_000;

/// The download event with the message sent a minute ago: the Graph media
/// adapter checks the 7-day expiry against the wall clock.
fn fresh_download() -> Value {
    let mut e = event("download");
    e["job"]["media"]["timestamp"] = json!(jiff::Timestamp::now().as_second() - 60);
    e
}

fn event(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/media")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).expect("sample event");
    serde_json::from_str(&text).expect("json")
}

struct Harness {
    deps: Deps,
    conversations: Arc<SqliteStore>,
    notes: Arc<SqliteMediaNotes>,
    outbox: Arc<Outbox>,
    queue: Arc<SqliteQueue>,
    escalations: Arc<MemoryQueue>,
    usage: Arc<test_support::memory::MemoryUsage>,
    dir: tempfile::TempDir,
}

fn harness(graph: &str, notes_override: Option<Arc<dyn MediaNotes>>) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = FileMediaStore::open(&dir.path().join("media")).expect("files");
    let conversations = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let notes = Arc::new(SqliteMediaNotes::open_in_memory().expect("notes"));
    let outbox = Arc::new(Outbox::open(dir.path()).expect("outbox"));
    let queue = Arc::new(
        SqliteQueue::open_in_memory(QueueSettings {
            name: "text".into(),
            delay_ms: 0,
            visibility_timeout_ms: 60_000,
            max_receives: 5,
        })
        .expect("queue"),
    );
    let escalations = Arc::new(MemoryQueue::default());
    let usage = Arc::new(test_support::memory::MemoryUsage::default());
    let deps = Deps {
        source: Arc::new(
            GraphMedia::new(
                graph.to_string(),
                SecretString::from("test-token"),
                GraphSettings::default(),
                Duration::from_secs(10),
            )
            .expect("graph media"),
        ),
        store: Arc::new(files.clone()),
        images: Arc::new(LocalImages::new(files.clone())),
        documents: Arc::new(LocalDocuments::new(files)),
        speech: Arc::new(NoSpeech),
        notes: notes_override.unwrap_or_else(|| notes.clone()),
        conversations: conversations.clone(),
        records: conversations.clone(),
        sender: outbox.clone(),
        text_queue: queue.clone(),
        escalation_queue: escalations.clone(),
        usage: usage.clone(),
        clock: Arc::new(FixedClock::at(NOW_MS)),
        salt: MediaKeySalt::parse(SecretString::from("test-media-salt-0123456789")).expect("salt"),
        settings: Settings {
            languages: vec!["es".into()],
            notice_language: "es".into(),
            work_dir: dir.path().join("tmp"),
        },
    };
    Harness {
        deps,
        conversations,
        notes,
        outbox,
        queue,
        escalations,
        usage,
        dir,
    }
}

async fn user_sent(store: &SqliteStore, wamid: &str, kind: &str, at_ms: i64) {
    store
        .record_inbound(&NewInbound {
            wamid: wamid.into(),
            user_id: UserId::parse(USER).expect("wa id"),
            phone_number_id: "106540352242922".into(),
            contact_name: None,
            kind: kind.into(),
            text: format!("[{kind}]"),
            payload: Value::Null,
            sent_at_ms: at_ms,
            received_at_ms: at_ms,
            starts_turn: true,
        })
        .await
        .expect("recorded");
}

fn files_under(dir: &Path) -> usize {
    walk(dir)
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p)
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn serve(graph: &MockServer, id: &str, mime: &str, bytes: &[u8], size: Option<u64>) {
    Mock::given(method("GET"))
        .and(path(format!("/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "url": format!("{}/files/{id}", graph.uri()), "mime_type": mime,
            "file_size": size.unwrap_or(bytes.len() as u64), "id": id,
        })))
        .mount(graph)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/files/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes.to_vec()))
        .mount(graph)
        .await;
}

#[tokio::test]
async fn download_stores_the_file_under_a_key_without_the_number_and_routes_it() {
    let graph = MockServer::start().await;
    serve(&graph, "3001", "image/png", &samples::png(64, 48), None).await;
    let h = harness(&graph.uri(), None);
    let job = handle(&h.deps, fresh_download()).await.expect("downloaded");
    let stored = job.stored.clone().expect("stored");
    assert_eq!(job.route, Some(Route::Image));
    assert_eq!(stored.mime, "image/png");
    assert!(domain::media::is_media_key(&stored.key), "{}", stored.key);
    assert!(!stored.key.contains(USER) && !stored.key.contains("wamid"));
    // The temp file is gone; the stored one is the only file.
    assert_eq!(files_under(&h.dir.path().join("tmp")), 0);
    assert_eq!(files_under(&h.dir.path().join("media")), 1);
    // A retried download writes the same key.
    let again = handle(&h.deps, fresh_download()).await.expect("again");
    assert_eq!(again.stored.map(|s| s.key), Some(stored.key));
    assert_eq!(files_under(&h.dir.path().join("media")), 1);

    // The next step describes it.
    let analysed = handle(&h.deps, json!({"step": "analyze_image", "job": job}))
        .await
        .expect("analysed");
    let description = analysed.description.expect("description");
    assert!(
        description.starts_with("[The user sent a photo (png, 64x48)."),
        "{description}"
    );
    assert!(description.contains("Not available here"), "{description}");
}

#[tokio::test]
async fn an_oversized_file_is_a_verdict_not_an_error_and_is_never_fetched() {
    let graph = MockServer::start().await;
    serve(
        &graph,
        "3001",
        "image/png",
        &samples::png(1, 1),
        Some(6 * 1024 * 1024),
    )
    .await;
    let h = harness(&graph.uri(), None);
    let job = handle(&h.deps, fresh_download()).await.expect("a verdict");
    assert!(job.stored.is_none());
    assert_eq!(
        serde_json::to_value(&job.problem).expect("json")["problem"]["problem"],
        "too_large"
    );
    let fetched = graph
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().starts_with("/files/"))
        .count();
    assert_eq!(fetched, 0);
}

#[tokio::test]
async fn bad_events_fail_final_and_faults_fail_retryable() {
    let h = harness("http://127.0.0.1:9", None);
    for name in ["unknown_step", "not_a_job"] {
        let failure = handle(&h.deps, event(name)).await.expect_err(name);
        assert_eq!(failure.error_type, FINAL, "{name}");
    }
    let failure = handle(&h.deps, json!("not even an object"))
        .await
        .expect_err("refused");
    assert_eq!(failure.error_type, FINAL);
    // Deliver before any description: a bug, not retried.
    let mut deliver = event("deliver");
    deliver["job"]
        .as_object_mut()
        .expect("job")
        .remove("description");
    assert_eq!(
        handle(&h.deps, deliver)
            .await
            .expect_err("refused")
            .error_type,
        FINAL
    );

    // The notes store is down: the state machine's Retry takes it.
    struct Down;
    #[async_trait]
    impl MediaNotes for Down {
        async fn record_note(&self, _: &str, _: &MediaNote) -> Result<()> {
            Err(Error::dependency("test", "notes", true, "down"))
        }
        async fn notes(
            &self,
            _: &[String],
        ) -> Result<std::collections::HashMap<String, MediaNote>> {
            Err(Error::dependency("test", "notes", true, "down"))
        }
    }
    let down = harness("http://127.0.0.1:9", Some(Arc::new(Down)));
    let failure = handle(&down.deps, event("deliver"))
        .await
        .expect_err("down");
    assert_eq!(failure.error_type, RETRYABLE);
    // Lambda reports it under that name, which the state machine matches.
    let diagnostic: lambda_runtime::Diagnostic = failure.into();
    assert_eq!(diagnostic.error_type, RETRYABLE);
}

#[tokio::test]
async fn deliver_notes_the_description_and_queues_the_held_turn_once() {
    let h = harness("http://127.0.0.1:9", None);
    user_sent(&h.conversations, WAMID, "image", NOW_MS - 5_000).await;
    user_sent(&h.conversations, "wamid.LATER", "text", NOW_MS - 4_000).await;
    handle(&h.deps, event("deliver")).await.expect("delivered");
    handle(&h.deps, event("deliver")).await.expect("retried");
    let notes = h.notes.notes(&[WAMID.to_string()]).await.expect("notes");
    assert_eq!(
        notes[WAMID],
        MediaNote::Understood {
            description: "[The user sent a photo (png, 640x480).]".into()
        }
    );
    let jobs = h.queue.receive(10).await.expect("receive");
    assert_eq!(jobs.len(), 1, "the retry was deduplicated");
    let job: TurnJob = serde_json::from_str(&jobs[0].body).expect("turn job");
    assert_eq!(job.wamid, WAMID, "keyed by the first unanswered message");
    assert_eq!(jobs[0].group_id, format!("106540352242922:{USER}"));
    assert!(h.outbox.all_since(0).is_empty(), "nothing said to the user");
    let used = h.usage.all();
    assert_eq!(used.len(), 1, "analysed once, counted once: {used:?}");
    assert_eq!(used[0].counters["media.image"], 1);
}

#[tokio::test]
async fn fail_tells_the_user_once_and_releases_the_later_text() {
    let h = harness("http://127.0.0.1:9", None);
    user_sent(&h.conversations, WAMID, "image", NOW_MS - 5_000).await;
    user_sent(&h.conversations, "wamid.LATER", "text", NOW_MS - 4_000).await;
    for _ in 0..3 {
        handle(&h.deps, event("fail_too_large"))
            .await
            .expect("failed");
    }
    let sent: Vec<_> = h
        .outbox
        .all_since(0)
        .into_iter()
        .filter(|e| e.message.is_some())
        .collect();
    assert_eq!(sent.len(), 1, "told once: {sent:?}");
    let text = serde_json::to_value(&sent[0].message)
        .expect("json")
        .to_string();
    assert!(
        text.contains("la imagen que enviaste es demasiado grande"),
        "{text}"
    );
    assert_eq!(sent[0].reply_to.as_deref(), Some(WAMID));
    // The photo is answered by the notice; the later text is what is pending.
    let wa = UserId::parse(USER).expect("wa id");
    let pending = h.conversations.pending_inbound(&wa).await.expect("pending");
    assert_eq!(
        pending.iter().map(|m| m.wamid.as_str()).collect::<Vec<_>>(),
        vec!["wamid.LATER"]
    );
    let jobs = h.queue.receive(10).await.expect("receive");
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].body.contains("wamid.LATER"));
    let notes = h.notes.notes(&[WAMID.to_string()]).await.expect("notes");
    assert_eq!(
        notes[WAMID],
        MediaNote::Failed {
            summary: "too large".into()
        }
    );
    assert!(h.usage.all().is_empty(), "refused before analysis: no cost");
}

#[tokio::test]
async fn a_caught_error_becomes_a_notice_too() {
    let h = harness("http://127.0.0.1:9", None);
    user_sent(&h.conversations, WAMID, "image", NOW_MS - 5_000).await;
    let job: MediaJob = handle(&h.deps, event("fail_after_catch"))
        .await
        .expect("failed");
    assert!(job.error.is_some());
    let sent = h.outbox.all_since(0);
    let text = serde_json::to_value(sent.last().and_then(|e| e.message.clone()))
        .expect("json")
        .to_string();
    assert!(text.contains("no se pudo leer"), "{text}");
}

#[tokio::test]
async fn the_local_runner_follows_the_machine_to_a_description() {
    let graph = MockServer::start().await;
    let pdf = samples::pdf("Contrato de servicio");
    serve(&graph, "3001", "application/pdf", &pdf, None).await;
    let h = harness(&graph.uri(), None);
    user_sent(&h.conversations, WAMID, "document", NOW_MS - 5_000).await;
    let mut input = fresh_download();
    input["job"]["media"]["kind"] = json!("document");
    input["job"]["media"]["mime_type"] = json!("application/pdf");
    let job: MediaJob = serde_json::from_value(input["job"].clone()).expect("job");
    let done = media::run_local(&h.deps, job, Duration::from_millis(10))
        .await
        .expect("ran");
    assert_eq!(done.route, Some(Route::DocumentJob));
    assert!(done.done && done.polls == 1);
    let notes = h.notes.notes(&[WAMID.to_string()]).await.expect("notes");
    match &notes[WAMID] {
        MediaNote::Understood { description } => assert!(
            description.contains("a document (1 page). Text in it: Contrato de servicio"),
            "{description}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.queue.receive(10).await.expect("receive").len(), 1);
}

/// An analyser that finds unsafe content in every image (Rekognition's
/// moderation labels, as the AWS adapter returns them).
struct FindsUnsafe;

#[async_trait]
impl ImageAnalyzer for FindsUnsafe {
    async fn analyze_image(&self, _key: &str) -> Result<ImageAnalysis> {
        Ok(ImageAnalysis {
            labels: vec![Label {
                name: "Person".into(),
                confidence: 99.0,
            }],
            moderation: vec![Label {
                name: "Graphic Violence".into(),
                confidence: 91.0,
            }],
            ..Default::default()
        })
    }
}

#[tokio::test]
async fn unsafe_content_stops_the_pipeline_and_hands_the_conversation_to_people() {
    let graph = MockServer::start().await;
    serve(&graph, "3001", "image/png", &samples::png(64, 48), None).await;
    let mut h = harness(&graph.uri(), None);
    h.deps.images = Arc::new(FindsUnsafe);
    let wa = UserId::parse(USER).expect("wa id");
    user_sent(&h.conversations, WAMID, "image", NOW_MS - 5_000).await;
    // The agent had answered this user in Portuguese before.
    h.conversations
        .save_memory(
            &wa,
            &Memory {
                language: Some("pt".into()),
                ..Default::default()
            },
        )
        .await
        .expect("memory");
    let job: MediaJob = serde_json::from_value(fresh_download()["job"].clone()).expect("job");
    let done = media::run_local(&h.deps, job.clone(), Duration::from_millis(10))
        .await
        .expect("ran");
    assert!(done.description.is_none(), "not described: {done:?}");

    let handoffs = h.escalations.messages();
    assert_eq!(handoffs.len(), 1, "{handoffs:?}");
    match EscalationMessage::parse(&handoffs[0].body).expect("escalation message") {
        EscalationMessage::Handoff(req) => {
            assert_eq!(req.user_id, wa);
            assert_eq!(req.id, format!("{WAMID}:unsafe"));
            assert!(req.reason.contains("Graphic Violence"), "{}", req.reason);
            assert_eq!(req.source, "media pipeline");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(handoffs[0].group_id, format!("106540352242922:{USER}"));
    let conv = h
        .conversations
        .conversation(&wa)
        .await
        .expect("read")
        .expect("conversation");
    assert_eq!(conv.state, ConversationState::PendingHuman);
    let notes = h.notes.notes(&[WAMID.to_string()]).await.expect("notes");
    assert_eq!(
        notes[WAMID],
        MediaNote::Failed {
            summary: "unsafe content".into()
        }
    );
    // Told once, in the conversation's language, that a person will look.
    let told = |h: &Harness| -> Vec<String> {
        h.outbox
            .all_since(0)
            .into_iter()
            .filter_map(|e| e.message)
            .map(|m| serde_json::to_value(m).expect("json").to_string())
            .collect()
    };
    let sent = told(&h);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("pessoa"), "{}", sent[0]);

    // `fail` retried (a lost answer): the same request, state unchanged,
    // nothing said twice.
    handle(
        &h.deps,
        json!({"step": "fail", "job": serde_json::to_value(&done).expect("json")}),
    )
    .await
    .expect("failed again");
    let handoffs = h.escalations.messages();
    assert!(handoffs.iter().all(|m| m.dedup_id == handoffs[0].dedup_id));
    assert_eq!(told(&h).len(), 1);
}

#[tokio::test]
async fn a_notice_uses_the_profile_language_until_the_conversation_has_one() {
    let h = harness("http://127.0.0.1:9", None);
    user_sent(&h.conversations, WAMID, "image", NOW_MS - 5_000).await;
    handle(&h.deps, event("fail_too_large"))
        .await
        .expect("failed");
    let sent = h.outbox.all_since(0);
    let text = serde_json::to_value(sent.last().and_then(|e| e.message.clone()))
        .expect("json")
        .to_string();
    // The harness's profile default is `es`; no memory yet.
    assert!(text.contains("demasiado grande"), "{text}");
    assert!(
        h.escalations.messages().is_empty(),
        "too large is not unsafe"
    );
}
