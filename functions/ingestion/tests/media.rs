//! ingestion with a media pipeline (issue 4): every media message starts
//! the pipeline (its turn waits for it), once per recorded message; text
//! still goes to the queue; a failing start fails the webhook so Meta
//! delivers it again, and the redelivery starts it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use domain::media::MediaKind;
use domain::media_pipeline::MediaJob;
use domain::ports::{MediaPipeline, PipelineStart};
use domain::signature::meta_signature_header;
use domain::{Error, Result};
use embedded::SqliteStore;
use ingestion::{receive, Deps};
use runtime::config::WhatsAppSecrets;
use test_support::memory::{FixedClock, MemoryArchive, MemoryQueue};

const SECRET: &str = "dev-app-secret";

#[derive(Default)]
struct Recording {
    started: Mutex<Vec<MediaJob>>,
    fail_next: Mutex<bool>,
}

#[async_trait]
impl MediaPipeline for Recording {
    async fn start(&self, job: &MediaJob) -> Result<PipelineStart> {
        if std::mem::take(&mut *self.fail_next.lock().expect("lock")) {
            return Err(Error::dependency(
                "stepfunctions",
                "start",
                true,
                "throttled",
            ));
        }
        let mut started = self.started.lock().expect("lock");
        let seen = started.iter().any(|j| j.media.wamid == job.media.wamid);
        started.push(job.clone());
        Ok(if seen {
            PipelineStart::Duplicate
        } else {
            PipelineStart::Started
        })
    }
}

fn deps(pipeline: Arc<Recording>, queue: Arc<MemoryQueue>) -> Deps {
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    Deps {
        secrets: WhatsAppSecrets::new(SECRET.into(), "dev-verify-token".into(), None)
            .expect("secrets"),
        store: store.clone(),
        identities: store,
        campaigns: None,
        queue,
        archive: Arc::new(MemoryArchive::default()),
        clock: Arc::new(FixedClock::at(1_732_147_201_000)),
        media: Some(pipeline),
        intake: None,
    }
}

async fn post(deps: &Deps, body: &[u8]) -> Result<ingestion::Summary> {
    let sig = meta_signature_header(SECRET.as_bytes(), body);
    receive(deps, Some(&sig), body).await
}

#[tokio::test]
async fn each_media_kind_starts_the_pipeline_and_enqueues_no_turn() {
    let pipeline = Arc::new(Recording::default());
    let queue = Arc::new(MemoryQueue::default());
    let d = deps(pipeline.clone(), queue.clone());
    for (file, kind) in [
        (
            include_str!("../../../events/whatsapp/image.json"),
            MediaKind::Image,
        ),
        (
            include_str!("../../../events/whatsapp/document.json"),
            MediaKind::Document,
        ),
        (
            include_str!("../../../events/whatsapp/audio_voice.json"),
            MediaKind::Audio,
        ),
        (
            include_str!("../../../events/whatsapp/video.json"),
            MediaKind::Video,
        ),
        (
            include_str!("../../../events/whatsapp/sticker.json"),
            MediaKind::Sticker,
        ),
    ] {
        let summary = post(&d, file.as_bytes()).await.expect("accepted");
        assert_eq!((summary.media_started, summary.enqueued), (1, 0), "{kind}");
        let started = pipeline.started.lock().expect("lock").clone();
        let last = started.last().expect("started");
        assert_eq!(last.media.kind, kind);
        assert_eq!(last.phone_number_id, "106540352242922");
    }
    assert!(queue.messages().is_empty());
    let image = pipeline.started.lock().expect("lock")[0].clone();
    assert_eq!(
        image.media.caption.as_deref(),
        Some("Así quedó la pared después de la lluvia")
    );
    assert!(image.media.sha256.is_some());

    // Redelivered: recorded once, not started again.
    let again = post(
        &d,
        include_str!("../../../events/whatsapp/image.json").as_bytes(),
    )
    .await
    .expect("accepted");
    assert_eq!((again.duplicates, again.media_started), (1, 0));
    assert_eq!(pipeline.started.lock().expect("lock").len(), 5);

    // Text still goes to text-ai's queue.
    let text = post(
        &d,
        include_str!("../../../events/whatsapp/text.json").as_bytes(),
    )
    .await
    .expect("accepted");
    assert_eq!((text.enqueued, text.media_started), (1, 0));
}

#[tokio::test]
async fn a_failed_start_fails_the_webhook_and_the_redelivery_starts_it() {
    let pipeline = Arc::new(Recording::default());
    *pipeline.fail_next.lock().expect("lock") = true;
    let d = deps(pipeline.clone(), Arc::new(MemoryQueue::default()));
    let body = include_str!("../../../events/whatsapp/image.json").as_bytes();
    let err = post(&d, body).await.expect_err("Meta must retry");
    assert!(err.is_retryable());
    let retried = post(&d, body).await.expect("accepted");
    assert_eq!((retried.duplicates, retried.media_started), (1, 1));
    // A third delivery finds it handed over.
    let third = post(&d, body).await.expect("accepted");
    assert_eq!(third.media_started, 0);
    assert_eq!(pipeline.started.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn unsigned_and_malformed_media_webhooks_start_nothing() {
    let pipeline = Arc::new(Recording::default());
    let d = deps(pipeline.clone(), Arc::new(MemoryQueue::default()));
    let body = include_str!("../../../events/whatsapp/image.json").as_bytes();
    assert!(receive(&d, None, body).await.is_err());
    // A media message without a media id: not a pipeline job.
    let broken =
        String::from_utf8_lossy(body).replace("\"id\": \"1106677706454703\"", "\"id\": \"\"");
    assert_ne!(broken.as_bytes(), body, "the sample changed shape");
    let summary = post(&d, broken.as_bytes()).await.expect("accepted");
    assert_eq!(summary.media_started, 0);
    assert!(pipeline.started.lock().expect("lock").is_empty());
}
