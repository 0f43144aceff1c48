//! ingestion's handler with the local store and in-memory queue and
//! archive, fed the sample events in `events/`.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use domain::ports::{ArchiveKind, ConversationStore, Queue, QueueMessage};
use domain::signature::meta_signature_header;
use domain::{Delivery, TurnJob, UserId};
use domain::{Error, Result};
use embedded::SqliteStore;
use ingestion::{handle, receive, Deps};
use runtime::config::WhatsAppSecrets;
use test_support::memory::{FixedClock, MemoryArchive, MemoryQueue};

const SECRET: &str = "dev-app-secret";
const USER: &str = "5491155551234";

struct Harness {
    deps: Deps,
    store: Arc<SqliteStore>,
    queue: Arc<MemoryQueue>,
    archive: Arc<MemoryArchive>,
}

fn harness_with_queue(queue: Arc<dyn Queue>) -> (Deps, Arc<SqliteStore>, Arc<MemoryArchive>) {
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let archive = Arc::new(MemoryArchive::default());
    let deps = Deps {
        secrets: WhatsAppSecrets::new(SECRET.into(), "dev-verify-token".into(), None)
            .expect("secrets"),
        store: store.clone(),
        identities: store.clone(),
        campaigns: None,
        queue,
        archive: archive.clone(),
        clock: Arc::new(FixedClock::at(1_732_147_201_000)),
        media: None,
        intake: None,
    };
    (deps, store, archive)
}

fn harness() -> Harness {
    let queue = Arc::new(MemoryQueue::default());
    let (deps, store, archive) = harness_with_queue(queue.clone());
    Harness {
        deps,
        store,
        queue,
        archive,
    }
}

/// An API Gateway v2 event, through lambda_http's own parsing (base64
/// bodies included), as the framework-neutral request the handler takes.
fn apigw(event: &str) -> http::Request<Bytes> {
    let req = lambda_http::request::from_str(event).expect("a valid API Gateway event");
    let (parts, body) = req.into_parts();
    http::Request::from_parts(parts, Bytes::copy_from_slice(&body))
}

fn post(body: &[u8], signature: Option<String>) -> http::Request<Bytes> {
    let mut b = http::Request::builder()
        .method("POST")
        .uri("/webhooks/whatsapp");
    if let Some(s) = signature {
        b = b.header("x-hub-signature-256", s);
    }
    b.body(Bytes::copy_from_slice(body)).expect("request")
}

fn signed(body: &[u8]) -> http::Request<Bytes> {
    post(body, Some(meta_signature_header(SECRET.as_bytes(), body)))
}

fn get(query: &str) -> http::Request<Bytes> {
    http::Request::builder()
        .method("GET")
        .uri(format!("/webhooks/whatsapp?{query}"))
        .body(Bytes::new())
        .expect("request")
}

fn wa(id: &str) -> UserId {
    UserId::parse(id).expect("wa id")
}

#[tokio::test]
async fn meta_check_with_the_right_token_returns_the_challenge() {
    let h = harness();
    let resp = handle(
        &h.deps,
        apigw(include_str!(
            "../../../events/apigw/webhook_verify_get.json"
        )),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.body().as_ref(), b"1158201444");
}

#[tokio::test]
async fn meta_check_with_a_wrong_or_missing_token_is_403() {
    let h = harness();
    for q in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=subscribe&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=dev-verify-token&hub.challenge=1",
        "",
    ] {
        assert_eq!(handle(&h.deps, get(q)).await.status(), 403, "{q}");
    }
}

#[tokio::test]
async fn a_signed_text_message_is_recorded_and_enqueued_once() {
    let h = harness();
    let resp = handle(
        &h.deps,
        apigw(include_str!("../../../events/apigw/webhook_post_text.json")),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let sent = h.queue.messages();
    assert_eq!(sent.len(), 1);
    let job: TurnJob = serde_json::from_str(&sent[0].body).expect("a turn job");
    assert_eq!(job.user_id.as_str(), USER);
    assert_eq!(sent[0].group_id, format!("106540352242922:{USER}"));
    assert_eq!(sent[0].dedup_id, job.wamid);
    let conv = h
        .store
        .conversation(&wa(USER))
        .await
        .expect("store")
        .expect("conversation");
    assert_eq!(conv.contact_name.as_deref(), Some("Lucía Fernández"));
    assert_eq!(
        h.store
            .pending_inbound(&wa(USER))
            .await
            .expect("pending")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_base64_body_from_api_gateway_is_handled() {
    let h = harness();
    let resp = handle(
        &h.deps,
        apigw(include_str!(
            "../../../events/apigw/webhook_post_text_base64.json"
        )),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(h.queue.messages().len(), 1);
}

#[tokio::test]
async fn a_repeated_webhook_is_recorded_and_enqueued_once() {
    let h = harness();
    let body = include_bytes!("../../../events/whatsapp/text.json");
    for _ in 0..3 {
        assert_eq!(handle(&h.deps, signed(body)).await.status(), 200);
    }
    assert_eq!(h.queue.messages().len(), 1);
    let transcript = h
        .store
        .transcript(&wa(USER), 100, None)
        .await
        .expect("transcript");
    assert_eq!(transcript.items.len(), 1);
}

#[tokio::test]
async fn when_signature_is_missing_or_wrong_returns_401_and_stores_nothing() {
    let h = harness();
    let body = include_bytes!("../../../events/whatsapp/text.json");
    let wrong = meta_signature_header(b"another-secret", body);
    for sig in [
        None,
        Some(wrong),
        Some("sha256=00".into()),
        Some("garbage".into()),
    ] {
        let resp = handle(&h.deps, post(body, sig.clone())).await;
        assert_eq!(resp.status(), 401, "{sig:?}");
    }
    assert!(h.archive.kinds().is_empty());
    assert_nothing_recorded(&h).await;
}

/// Nothing enqueued, no conversation for [`USER`].
async fn assert_nothing_recorded(h: &Harness) {
    assert!(h.queue.messages().is_empty());
    assert!(h
        .store
        .conversation(&wa(USER))
        .await
        .expect("store")
        .is_none());
}

#[tokio::test]
async fn when_body_is_over_10_mb_returns_413() {
    let h = harness();
    let body = vec![b' '; ingestion::MAX_BODY_BYTES + 1];
    let resp = handle(&h.deps, signed(&body)).await;
    assert_eq!(resp.status(), 413);
    assert!(h.archive.kinds().is_empty());
}

#[tokio::test]
async fn a_signed_body_that_cannot_be_understood_is_quarantined_and_answered_200() {
    let h = harness();
    for body in [
        &b"{not json"[..],
        br#"{"object":"instagram","entry":[]}"#,
        br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"1"},"messages":[{"id":"wamid.x","type":"text"}]}}]}]}"#,
    ] {
        let resp = handle(&h.deps, signed(body)).await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(h.archive.kinds(), vec![ArchiveKind::Quarantine; 3]);
    assert!(h.queue.messages().is_empty());
}

#[tokio::test]
async fn every_sample_payload_is_understood() {
    let samples: &[(&str, &[u8])] = &[
        ("text", include_bytes!("../../../events/whatsapp/text.json")),
        (
            "image",
            include_bytes!("../../../events/whatsapp/image.json"),
        ),
        (
            "audio_voice",
            include_bytes!("../../../events/whatsapp/audio_voice.json"),
        ),
        (
            "video",
            include_bytes!("../../../events/whatsapp/video.json"),
        ),
        (
            "document",
            include_bytes!("../../../events/whatsapp/document.json"),
        ),
        (
            "sticker",
            include_bytes!("../../../events/whatsapp/sticker.json"),
        ),
        (
            "location",
            include_bytes!("../../../events/whatsapp/location.json"),
        ),
        (
            "contacts",
            include_bytes!("../../../events/whatsapp/contacts.json"),
        ),
        (
            "button_reply",
            include_bytes!("../../../events/whatsapp/interactive_button_reply.json"),
        ),
        (
            "list_reply",
            include_bytes!("../../../events/whatsapp/interactive_list_reply.json"),
        ),
        (
            "nfm_reply",
            include_bytes!("../../../events/whatsapp/interactive_nfm_reply.json"),
        ),
        (
            "button",
            include_bytes!("../../../events/whatsapp/button.json"),
        ),
        (
            "reaction",
            include_bytes!("../../../events/whatsapp/reaction.json"),
        ),
        (
            "reaction_removed",
            include_bytes!("../../../events/whatsapp/reaction_removed.json"),
        ),
        (
            "order",
            include_bytes!("../../../events/whatsapp/order.json"),
        ),
        (
            "system",
            include_bytes!("../../../events/whatsapp/system_user_changed_number.json"),
        ),
        (
            "unsupported",
            include_bytes!("../../../events/whatsapp/unsupported.json"),
        ),
        (
            "unknown_type",
            include_bytes!("../../../events/whatsapp/unknown_type.json"),
        ),
        (
            "reply",
            include_bytes!("../../../events/whatsapp/reply_with_context.json"),
        ),
        (
            "forwarded",
            include_bytes!("../../../events/whatsapp/forwarded.json"),
        ),
        (
            "referral",
            include_bytes!("../../../events/whatsapp/referral.json"),
        ),
        (
            "batch",
            include_bytes!("../../../events/whatsapp/batch_multi.json"),
        ),
        (
            "value_errors",
            include_bytes!("../../../events/whatsapp/value_errors.json"),
        ),
        (
            "statuses_sent",
            include_bytes!("../../../events/whatsapp/statuses_sent.json"),
        ),
        (
            "template_status",
            include_bytes!("../../../events/whatsapp/template_status_update.json"),
        ),
        (
            "account_update",
            include_bytes!("../../../events/whatsapp/account_update.json"),
        ),
    ];
    for (name, body) in samples {
        let h = harness();
        let summary = receive(
            &h.deps,
            Some(&meta_signature_header(SECRET.as_bytes(), body)),
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(summary.quarantined, 0, "{name} was quarantined");
        assert!(
            !h.archive.kinds().contains(&ArchiveKind::Quarantine),
            "{name} was quarantined"
        );
    }
}

#[tokio::test]
async fn reactions_and_system_notices_are_recorded_but_do_not_wake_the_agent() {
    for body in [
        &include_bytes!("../../../events/whatsapp/reaction.json")[..],
        include_bytes!("../../../events/whatsapp/system_user_changed_number.json"),
    ] {
        let h = harness();
        let summary = receive(
            &h.deps,
            Some(&meta_signature_header(SECRET.as_bytes(), body)),
            body,
        )
        .await
        .expect("accepted");
        assert_eq!(summary.recorded, 1);
        assert_eq!(summary.enqueued, 0);
        assert!(h.queue.messages().is_empty());
    }
}

#[tokio::test]
async fn statuses_never_wake_the_agent() {
    let h = harness();
    for body in [
        &include_bytes!("../../../events/whatsapp/statuses_sent.json")[..],
        include_bytes!("../../../events/whatsapp/statuses_delivered.json"),
        include_bytes!("../../../events/whatsapp/statuses_read.json"),
        include_bytes!("../../../events/whatsapp/statuses_failed_131047.json"),
    ] {
        assert_eq!(handle(&h.deps, signed(body)).await.status(), 200);
    }
    assert!(h.queue.messages().is_empty());
}

#[tokio::test]
async fn other_fields_are_recorded_and_ignored() {
    let h = harness();
    let body = include_bytes!("../../../events/whatsapp/template_status_update.json");
    assert_eq!(handle(&h.deps, signed(body)).await.status(), 200);
    assert_eq!(h.archive.kinds(), vec![ArchiveKind::Event]);
    assert!(h.queue.messages().is_empty());
}

#[tokio::test]
async fn a_batch_for_several_users_enqueues_each_in_its_own_group() {
    let h = harness();
    let body = include_bytes!("../../../events/whatsapp/batch_multi.json");
    let summary = receive(
        &h.deps,
        Some(&meta_signature_header(SECRET.as_bytes(), body)),
        body,
    )
    .await
    .expect("accepted");
    assert!(summary.statuses >= 1);
    let groups: std::collections::HashSet<String> =
        h.queue.messages().into_iter().map(|m| m.group_id).collect();
    assert_eq!(groups.len(), 3, "{groups:?}");
}

#[tokio::test]
async fn a_failed_status_with_131047_closes_the_window() {
    let h = harness();
    let text = include_bytes!("../../../events/whatsapp/text.json");
    assert_eq!(handle(&h.deps, signed(text)).await.status(), 200);
    let failed = include_str!("../../../events/whatsapp/statuses_failed_131047.json");
    assert!(
        failed.contains(USER),
        "the sample status is for the sample user"
    );
    assert_eq!(
        handle(&h.deps, signed(failed.as_bytes())).await.status(),
        200
    );
    let conv = h
        .store
        .conversation(&wa(USER))
        .await
        .expect("store")
        .expect("conv");
    assert!(conv.window_closed);
    // A user message opens the window again.
    let again = String::from_utf8_lossy(text).replace("wamid.HBgL", "wamid.AGAIN");
    assert_eq!(
        handle(&h.deps, signed(again.as_bytes())).await.status(),
        200
    );
    let conv = h
        .store
        .conversation(&wa(USER))
        .await
        .expect("store")
        .expect("conv");
    assert!(!conv.window_closed);
}

#[tokio::test]
async fn a_status_updates_the_delivery_of_the_message_it_names() {
    let h = harness();
    // An outbound message text-ai would have sent and recorded.
    let text = include_bytes!("../../../events/whatsapp/text.json");
    assert_eq!(handle(&h.deps, signed(text)).await.status(), 200);
    let sent = domain::SentRecord {
        wamid: "wamid.OUT1".into(),
        kind: "text".into(),
        text: "hola".into(),
        at_ms: 1,
    };
    h.store
        .record_outbound(&wa(USER), &sent)
        .await
        .expect("record");
    let read = local_status("wamid.OUT1", "read");
    assert_eq!(handle(&h.deps, signed(read.as_bytes())).await.status(), 200);
    let delivered = local_status("wamid.OUT1", "delivered");
    assert_eq!(
        handle(&h.deps, signed(delivered.as_bytes())).await.status(),
        200
    );
    let transcript = h
        .store
        .transcript(&wa(USER), 10, None)
        .await
        .expect("transcript");
    let out = transcript
        .items
        .iter()
        .find(|m| m.wamid == "wamid.OUT1")
        .expect("outbound");
    // `read` came first; the late `delivered` does not move it back.
    assert_eq!(out.delivery, Some(Delivery::Read));
}

fn local_status(wamid: &str, status: &str) -> String {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "statuses": [{"id": wamid, "status": status, "timestamp": "1732147300", "recipient_id": USER}]
        }}]}]
    })
    .to_string()
}

/// A queue that fails the first send, as SQS might.
struct FlakyQueue {
    inner: MemoryQueue,
    failures_left: std::sync::Mutex<u32>,
}

#[async_trait]
impl Queue for FlakyQueue {
    async fn send(&self, msg: &QueueMessage) -> Result<()> {
        let fail = {
            let mut left = self.failures_left.lock().expect("lock");
            let fail = *left > 0;
            *left = left.saturating_sub(1);
            fail
        };
        if fail {
            return Err(Error::dependency("sqs", "send", true, "unavailable"));
        }
        self.inner.send(msg).await
    }
}

#[tokio::test]
async fn when_the_queue_fails_meta_is_told_to_retry_and_the_retry_enqueues() {
    let queue = Arc::new(FlakyQueue {
        inner: MemoryQueue::default(),
        failures_left: std::sync::Mutex::new(1),
    });
    let (deps, _store, _archive) = harness_with_queue(queue.clone());
    let body = include_bytes!("../../../events/whatsapp/text.json");
    let first = handle(&deps, signed(body)).await;
    assert_eq!(first.status(), 503);
    // Nothing of the cause reaches the caller.
    assert_eq!(first.body().as_ref(), br#"{"error":"internal error"}"#);
    // Meta delivers again: the message is a duplicate, but never enqueued,
    // so now it is.
    assert_eq!(handle(&deps, signed(body)).await.status(), 200);
    assert_eq!(queue.inner.messages().len(), 1);
    assert_eq!(handle(&deps, signed(body)).await.status(), 200);
    assert_eq!(queue.inner.messages().len(), 1);
}

/// A queue that notes how many sends overlap, each send taking a moment as
/// a real queue's round trip does.
#[derive(Default)]
struct OverlapQueue {
    inner: MemoryQueue,
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Queue for OverlapQueue {
    async fn send(&self, msg: &QueueMessage) -> Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let sent = self.inner.send(msg).await;
        self.in_flight.fetch_sub(1, SeqCst);
        sent
    }
}

#[tokio::test]
async fn a_batch_handles_users_side_by_side_and_each_users_messages_in_order() {
    let queue = Arc::new(OverlapQueue::default());
    let (deps, _store, _archive) = harness_with_queue(queue.clone());
    let sent = [
        ("5491100000001", "wamid.A1"),
        ("5491100000002", "wamid.B1"),
        ("5491100000001", "wamid.A2"),
        ("5491100000003", "wamid.C1"),
        ("5491100000002", "wamid.B2"),
        ("5491100000001", "wamid.A3"),
    ];
    let messages: Vec<serde_json::Value> = sent
        .iter()
        .map(|(from, id)| {
            serde_json::json!({"from": from, "id": id, "timestamp": "1732147200",
                "type": "text", "text": {"body": "hola"}})
        })
        .collect();
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{
        "id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "messages": messages}}]}]})
    .to_string();
    let summary = receive(
        &deps,
        Some(&meta_signature_header(SECRET.as_bytes(), body.as_bytes())),
        body.as_bytes(),
    )
    .await
    .expect("accepted");
    assert_eq!((summary.recorded, summary.enqueued), (6, 6));
    assert!(
        queue.most.load(std::sync::atomic::Ordering::SeqCst) > 1,
        "users were handled one after another"
    );
    let enqueued = queue.inner.messages();
    for user in ["5491100000001", "5491100000002", "5491100000003"] {
        let theirs: Vec<&str> = enqueued
            .iter()
            .filter(|m| m.group_id.ends_with(user))
            .map(|m| m.dedup_id.as_str())
            .collect();
        let expected: Vec<&str> = sent
            .iter()
            .filter(|(from, _)| *from == user)
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(theirs, expected);
    }
}

/// A webhook with one text message from `from`.
fn text_from(from: &str, wamid: &str) -> String {
    serde_json::json!({"object": "whatsapp_business_account", "entry": [{
        "id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "messages": [{"from": from, "id": wamid, "timestamp": "1732147200",
                "type": "text", "text": {"body": "hola"}}]}}]}]})
    .to_string()
}

#[tokio::test]
async fn webhooks_processed_together_keep_each_users_order_and_quarantine_only_the_bad_ones() {
    let queue = Arc::new(OverlapQueue::default());
    let (deps, store, archive) = harness_with_queue(queue.clone());
    let bodies = [
        text_from("5491100000001", "wamid.A1"),
        text_from("5491100000002", "wamid.B1"),
        "{not json".to_string(),
        text_from("5491100000001", "wamid.A2"),
        text_from("not-a-number", "wamid.X1"),
        text_from("5491100000002", "wamid.B2"),
        text_from("5491100000001", "wamid.A3"),
        // Meta delivering one again, in the same batch.
        text_from("5491100000001", "wamid.A2"),
    ];
    let webhooks: Vec<ingestion::Webhook<'_>> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| ingestion::Webhook {
            body: b.as_bytes(),
            received_at_ms: 1_732_147_201_000 + i as i64,
        })
        .collect();
    let summary = ingestion::process(&deps, &webhooks)
        .await
        .expect("processed");
    assert_eq!(
        (summary.recorded, summary.duplicates, summary.enqueued),
        (5, 1, 5)
    );
    assert_eq!(summary.quarantined, 2);
    let kept: Vec<Vec<u8>> = archive
        .items
        .lock()
        .expect("archive")
        .iter()
        .map(|(_, body, _)| body.clone())
        .collect();
    assert_eq!(kept, vec![bodies[2].as_bytes(), bodies[4].as_bytes()]);
    assert!(
        queue.most.load(std::sync::atomic::Ordering::SeqCst) > 1,
        "users were handled one after another"
    );
    let enqueued = queue.inner.messages();
    let of = |user: &str| -> Vec<String> {
        enqueued
            .iter()
            .filter(|m| m.group_id.ends_with(user))
            .map(|m| m.dedup_id.clone())
            .collect()
    };
    assert_eq!(of("5491100000001"), ["wamid.A1", "wamid.A2", "wamid.A3"]);
    assert_eq!(of("5491100000002"), ["wamid.B1", "wamid.B2"]);
    // Each message keeps the time its own webhook was received.
    let received: Vec<i64> = enqueued
        .iter()
        .filter(|m| m.group_id.ends_with("5491100000001"))
        .map(|m| {
            serde_json::from_str::<TurnJob>(&m.body)
                .expect("job")
                .received_at_ms
        })
        .collect();
    assert_eq!(
        received,
        [1_732_147_201_000, 1_732_147_201_003, 1_732_147_201_006]
    );
    let pending = store
        .pending_inbound(&wa("5491100000001"))
        .await
        .expect("pending");
    assert_eq!(pending.len(), 3);
}

/// Keeps what it is given, or fails as a full disk would.
#[derive(Default)]
struct KeptIntake {
    kept: std::sync::Mutex<Vec<(i64, Bytes)>>,
    full: bool,
}

#[async_trait]
impl domain::ports::WebhookIntake for KeptIntake {
    async fn keep(&self, received_at_ms: i64, body: Bytes) -> Result<()> {
        if self.full {
            return Err(Error::dependency("journal", "append", true, "full"));
        }
        self.kept
            .lock()
            .expect("intake")
            .push((received_at_ms, body));
        Ok(())
    }
}

#[tokio::test]
async fn with_an_intake_a_signed_post_is_kept_for_later_and_bad_ones_are_not() {
    let mut h = harness();
    let intake = Arc::new(KeptIntake::default());
    h.deps.intake = Some(intake.clone());
    let body = include_bytes!("../../../events/whatsapp/text.json");
    assert_eq!(handle(&h.deps, signed(body)).await.status(), 200);
    // Kept, not processed yet.
    assert_nothing_recorded(&h).await;
    // Unsigned, wrongly signed, oversized: refused before the intake.
    let wrong = meta_signature_header(b"another-secret", body);
    assert_eq!(handle(&h.deps, post(body, None)).await.status(), 401);
    assert_eq!(handle(&h.deps, post(body, Some(wrong))).await.status(), 401);
    let big = vec![b' '; ingestion::MAX_BODY_BYTES + 1];
    assert_eq!(handle(&h.deps, signed(&big)).await.status(), 413);
    let kept = intake.kept.lock().expect("intake").clone();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0], (1_732_147_201_000, Bytes::from_static(body)));
    // The applier's part: processed later, at the time it was received.
    let webhook = ingestion::Webhook {
        body: &kept[0].1,
        received_at_ms: kept[0].0,
    };
    let summary = ingestion::process(&h.deps, &[webhook])
        .await
        .expect("processed");
    assert_eq!((summary.recorded, summary.enqueued), (1, 1));
    let job: TurnJob = serde_json::from_str(&h.queue.messages()[0].body).expect("job");
    assert_eq!(job.received_at_ms, 1_732_147_201_000);

    // A full intake: Meta is told to come back later (503), nothing is lost.
    h.deps.intake = Some(Arc::new(KeptIntake {
        full: true,
        ..KeptIntake::default()
    }));
    assert_eq!(handle(&h.deps, signed(body)).await.status(), 503);
}

// ------------------------------------------------ business-scoped user ids

const BSUID: &str = "AR.1502576394655843";
const NEW_BSUID: &str = "AR.2609930124488107";

/// The status Meta gets for `body`, signed.
async fn status_of(deps: &Deps, body: &str) -> u16 {
    handle(deps, signed(body.as_bytes()))
        .await
        .status()
        .as_u16()
}

fn sample(name: &str) -> String {
    let path = format!(
        "{}/../../events/whatsapp/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn jobs(h: &Harness) -> Vec<(String, TurnJob)> {
    h.queue
        .messages()
        .into_iter()
        .map(|m| (m.group_id, serde_json::from_str(&m.body).expect("job")))
        .collect()
}

#[tokio::test]
async fn a_username_only_user_is_answered_under_their_bsuid() {
    let h = harness();
    let body = sample("text_username_only");
    assert_eq!(status_of(&h.deps, &body).await, 200);
    assert!(h.archive.kinds().is_empty(), "not quarantined");
    let jobs = jobs(&h).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].1.user_id.as_str(), BSUID);
    assert_eq!(jobs[0].0, format!("106540352242922:{BSUID}"));
    let conv = h
        .store
        .conversation(&wa(BSUID))
        .await
        .expect("store")
        .expect("conversation");
    assert_eq!(conv.contact_name.as_deref(), Some("Lucía"));
}

#[tokio::test]
async fn the_same_user_sharing_a_number_later_keeps_one_conversation() {
    let h = harness();
    let first = sample("text_username_only");
    assert_eq!(status_of(&h.deps, &first).await, 200);
    let later = sample("text_with_bsuid");
    assert_eq!(status_of(&h.deps, &later).await, 200);
    // The number alone again, in a third message.
    let number_only = sample("text").replace("wamid.HBgL", "wamid.NUMBERONLY");
    assert_eq!(status_of(&h.deps, &number_only).await, 200);
    let jobs = jobs(&h).await;
    assert_eq!(jobs.len(), 3);
    assert!(
        jobs.iter().all(|(group, job)| job.user_id.as_str() == BSUID
            && group == &format!("106540352242922:{BSUID}")),
        "{jobs:?}"
    );
    assert_eq!(
        h.store
            .pending_inbound(&wa(BSUID))
            .await
            .expect("pending")
            .len(),
        3
    );
    assert!(h
        .store
        .conversation(&wa(USER))
        .await
        .expect("store")
        .is_none());
}

#[tokio::test]
async fn a_known_number_keeps_its_history_when_its_bsuid_appears() {
    let h = harness();
    let before = sample("text");
    assert_eq!(status_of(&h.deps, &before).await, 200);
    let with_bsuid = sample("text_with_bsuid");
    assert_eq!(status_of(&h.deps, &with_bsuid).await, 200);
    let username_only = sample("text_username_only");
    assert_eq!(status_of(&h.deps, &username_only).await, 200);
    let jobs = jobs(&h).await;
    assert_eq!(jobs.len(), 3);
    assert!(
        jobs.iter().all(|(_, j)| j.user_id.as_str() == USER),
        "{jobs:?}"
    );
    assert!(h
        .store
        .conversation(&wa(BSUID))
        .await
        .expect("store")
        .is_none());
}

#[tokio::test]
async fn a_changed_bsuid_moves_the_identity_not_the_history() {
    for change in ["user_id_update", "system_user_changed_user_id"] {
        let h = harness();
        let first = sample("text_username_only");
        assert_eq!(status_of(&h.deps, &first).await, 200);
        assert_eq!(status_of(&h.deps, &sample(change)).await, 200, "{change}");
        assert!(h.archive.kinds().is_empty(), "{change}: not quarantined");
        let next = sample("text_username_only")
            .replace(BSUID, NEW_BSUID)
            .replace("wamid.HBgLQlNVSURPTkxZMDE", "wamid.HBgLQlNVSURORVcwMQ");
        assert_eq!(status_of(&h.deps, &next).await, 200);
        let jobs = jobs(&h).await;
        assert!(
            jobs.iter().all(|(_, j)| j.user_id.as_str() == BSUID),
            "{change}: {jobs:?}"
        );
        assert_eq!(jobs.len(), 2, "{change}");
    }
}

#[tokio::test]
async fn a_changed_number_keeps_the_conversation() {
    let h = harness();
    assert_eq!(status_of(&h.deps, &sample("text")).await, 200);
    let changed = sample("system_user_changed_number");
    assert_eq!(status_of(&h.deps, &changed).await, 200);
    let from_new = sample("text")
        .replace(USER, "5491166667777")
        .replace("wamid.HBgL", "wamid.NEWNUMBER");
    assert_eq!(status_of(&h.deps, &from_new).await, 200);
    let jobs = jobs(&h).await;
    assert_eq!(jobs.last().map(|(_, j)| j.user_id.as_str()), Some(USER));
}

#[tokio::test]
async fn a_131047_sent_to_a_bsuid_closes_the_window_of_its_user() {
    let h = harness();
    // Known by number first, so the status's BSUID must be resolved.
    for s in ["text", "text_with_bsuid"] {
        assert_eq!(status_of(&h.deps, &sample(s)).await, 200);
    }
    let failed = sample("statuses_failed_131047_bsuid").replace("5491155551234", BSUID);
    assert_eq!(status_of(&h.deps, &failed).await, 200);
    let conv = h
        .store
        .conversation(&wa(USER))
        .await
        .expect("store")
        .expect("conv");
    assert!(conv.window_closed);
}

#[tokio::test]
async fn a_status_read_by_a_bsuid_user_is_applied() {
    let h = harness();
    let body = sample("statuses_read_bsuid");
    let summary = receive(
        &h.deps,
        Some(&meta_signature_header(SECRET.as_bytes(), body.as_bytes())),
        body.as_bytes(),
    )
    .await
    .expect("accepted");
    assert_eq!(summary.statuses, 1);
    assert_eq!(summary.quarantined, 0);
}

#[tokio::test]
async fn a_marketing_preference_is_understood_and_kept() {
    let h = harness();
    let body = sample("user_preferences");
    assert_eq!(status_of(&h.deps, &body).await, 200);
    assert_eq!(h.archive.kinds(), vec![ArchiveKind::Event]);
    assert!(h.queue.messages().is_empty());
}

#[tokio::test]
async fn a_message_from_nobody_or_a_malformed_id_is_quarantined() {
    let h = harness();
    let nobody = sample("text_without_sender");
    assert_eq!(status_of(&h.deps, &nobody).await, 200);
    let bad = sample("text_username_only").replace(BSUID, "ar.not-a-bsuid");
    assert_eq!(status_of(&h.deps, &bad).await, 200);
    assert_eq!(
        h.archive.kinds(),
        vec![ArchiveKind::Quarantine, ArchiveKind::Quarantine]
    );
    assert!(h.queue.messages().is_empty());
}

#[tokio::test]
async fn a_number_shared_on_request_joins_the_username_user() {
    let h = harness();
    let first = sample("text_username_only");
    assert_eq!(status_of(&h.deps, &first).await, 200);
    let shared = sample("contacts_shared_on_request");
    assert_eq!(status_of(&h.deps, &shared).await, 200);
    // Their number alone now reaches the same conversation.
    let number_only = sample("text").replace("wamid.HBgL", "wamid.AFTERSHARE");
    assert_eq!(status_of(&h.deps, &number_only).await, 200);
    let jobs = jobs(&h).await;
    assert_eq!(jobs.len(), 3);
    assert!(
        jobs.iter().all(|(_, j)| j.user_id.as_str() == BSUID),
        "{jobs:?}"
    );
    let phone = domain::identity::phone_of(h.store.as_ref(), &wa(BSUID))
        .await
        .expect("phone_of");
    assert_eq!(phone, Some(wa(USER)));
}

#[tokio::test]
async fn a_number_typed_in_a_contact_card_is_not_linked() {
    let h = harness();
    let first = sample("text_username_only");
    assert_eq!(status_of(&h.deps, &first).await, 200);
    // The same card, sent by the user on their own (no origin).
    let card = sample("contacts_shared_on_request").replace("\"origin\": \"contact_request\",", "");
    assert_eq!(status_of(&h.deps, &card).await, 200);
    let phone = domain::identity::phone_of(h.store.as_ref(), &wa(BSUID))
        .await
        .expect("phone_of");
    assert_eq!(phone, None);
}

#[tokio::test]
async fn a_marketing_stop_puts_the_number_on_the_do_not_contact_list_and_a_resume_takes_it_off() {
    use domain::campaign::OptOut;
    use domain::ports::CampaignStore;
    let queue = Arc::new(MemoryQueue::default());
    let (mut deps, _store, _archive) = harness_with_queue(queue);
    let campaigns = Arc::new(embedded::SqliteCampaigns::open_in_memory().expect("campaigns"));
    deps.campaigns = Some(campaigns.clone());
    // The preference names the number too (a user whose number is shared).
    let mut body: serde_json::Value =
        serde_json::from_str(&sample("user_preferences")).expect("json");
    body["entry"][0]["changes"][0]["value"]["user_preferences"][0]["wa_id"] =
        serde_json::json!(USER);
    let stop = body.to_string();
    assert_eq!(status_of(&deps, &stop).await, 200);
    let listed = campaigns
        .opted_out(&wa(USER))
        .await
        .expect("read")
        .expect("listed");
    assert_eq!(listed.source, "meta");
    let resume = stop.replace("\"stop\"", "\"resume\"");
    assert_eq!(status_of(&deps, &resume).await, 200);
    assert_eq!(campaigns.opted_out(&wa(USER)).await.expect("read"), None);
    // An operator's entry is not Meta's to take off.
    campaigns
        .opt_out(&OptOut {
            phone: wa(USER),
            reason: "pidió en la llamada".into(),
            source: "call".into(),
            at_ms: 1,
        })
        .await
        .expect("opt out");
    assert_eq!(status_of(&deps, &resume).await, 200);
    assert!(campaigns
        .opted_out(&wa(USER))
        .await
        .expect("read")
        .is_some());
}
