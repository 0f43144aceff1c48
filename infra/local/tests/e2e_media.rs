//! End to end, media (issue 4): the `local` binary with a fake Graph API
//! (wiremock) that serves media files and receives replies, and a fake
//! OpenAI-compatible model that shows what the responder was given.

use std::process::Command;
use std::time::{Duration, Instant};

use local::meta;
use serde_json::{json, Value};
use test_support::media_samples as samples;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;

use common::{Server, SECRET};

const MODEL_ANSWER: &str = "Entendido, ya lo revisé.";

async fn start(data_dir: &std::path::Path, graph: &str, model: &str, debounce_ms: u64) -> Server {
    start_with(data_dir, graph, model, debounce_ms, |_| {}).await
}

async fn start_with(
    data_dir: &std::path::Path,
    graph: &str,
    model: &str,
    debounce_ms: u64,
    more: impl FnOnce(&mut Command),
) -> Server {
    let mut cmd = common::local(data_dir);
    more(&mut cmd);
    cmd.env("CHARLA_DEBOUNCE_MS", debounce_ms.to_string())
        .env("CHARLA_WORKERS", "2")
        .env("CHARLA_MODEL", "openai:fake-model")
        .env("CHARLA_MODEL_URL", format!("{model}/v1"))
        .env("CHARLA_MEDIA_KEY_SALT", "e2e-media-salt-0123456789");
    common::launch(cmd, graph).await
}

async fn fake_graph() -> MockServer {
    common::fake_graph(Duration::ZERO).await
}

async fn fake_model() -> MockServer {
    let model = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": MODEL_ANSWER}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 9}
        })))
        .mount(&model)
        .await;
    model
}

/// Serves `bytes` as media `id`: metadata, then the file at its URL.
async fn serve_media(graph: &MockServer, id: &str, mime: &str, bytes: &[u8]) {
    Mock::given(method("GET"))
        .and(path(format!("/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "url": format!("{}/files/{id}", graph.uri()),
            "mime_type": mime,
            "sha256": samples::sha256_hex(bytes),
            "file_size": bytes.len(),
            "id": id,
            "messaging_product": "whatsapp",
        })))
        .mount(graph)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/files/{id}")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", mime)
                .set_body_bytes(bytes.to_vec()),
        )
        .mount(graph)
        .await;
}

fn media_message(
    user_id: &str,
    wamid: &str,
    kind: &str,
    media_id: &str,
    mime: &str,
    sha256: &str,
    extra: Value,
) -> Value {
    let mut media = json!({ "id": media_id, "mime_type": mime, "sha256": sha256 });
    if let (Some(m), Some(e)) = (media.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    json!({
        "from": user_id,
        "id": wamid,
        "timestamp": meta::now_secs().to_string(),
        "type": kind,
        kind: media,
    })
}

async fn post(server: &Server, message: Value) -> u16 {
    let from = message["from"].as_str().unwrap_or_default().to_string();
    let body = serde_json::to_vec(&meta::message_webhook(&from, "E2E", message)).expect("json");
    meta::post_signed(&reqwest::Client::new(), &server.base, SECRET, &body)
        .await
        .expect("post")
}

/// Text bodies the fake Graph API was asked to send to `to`.
async fn texts_to(graph: &MockServer, to: &str) -> Vec<String> {
    graph
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|b| b["to"] == to)
        .map(|b| {
            b["text"]["body"]
                .as_str()
                .or(b["interactive"]["body"]["text"].as_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

async fn wait_texts(graph: &MockServer, to: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = texts_to(graph, to).await;
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The model requests whose body mentions `needle`.
async fn model_asked_with(model: &MockServer, needle: &str) -> Vec<String> {
    model
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .filter(|b| b.contains(needle))
        .collect()
}

#[tokio::test]
async fn each_kind_of_media_gets_the_right_answer_and_nothing_crashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let graph = fake_graph().await;
    let model = fake_model().await;
    let server = start(dir.path(), &graph.uri(), &model.uri(), 0).await;

    // Image: format and size from the local analyser.
    let png = samples::png(640, 480);
    serve_media(&graph, "1001", "image/png", &png).await;
    let u_image = "5491100000101";
    let hash = samples::sha256_hex(&png);
    assert_eq!(
        post(
            &server,
            media_message(
                u_image,
                "wamid.M1",
                "image",
                "1001",
                "image/png",
                &hash,
                json!({})
            )
        )
        .await,
        200
    );

    // PDF: its text, read locally.
    let pdf = samples::pdf("Factura de luz Total 52300");
    serve_media(&graph, "1002", "application/pdf", &pdf).await;
    let u_pdf = "5491100000102";
    let hash = samples::sha256_hex(&pdf);
    post(
        &server,
        media_message(
            u_pdf,
            "wamid.M2",
            "document",
            "1002",
            "application/pdf",
            &hash,
            json!({"filename": "factura.pdf"}),
        ),
    )
    .await;

    // Voice note: no speech service locally, said plainly.
    let ogg = samples::ogg();
    serve_media(&graph, "1003", "audio/ogg; codecs=opus", &ogg).await;
    let u_voice = "5491100000103";
    let hash = samples::sha256_hex(&ogg);
    post(
        &server,
        media_message(
            u_voice,
            "wamid.M3",
            "audio",
            "1003",
            "audio/ogg; codecs=opus",
            &hash,
            json!({"voice": true}),
        ),
    )
    .await;

    // Oversized: the metadata says 6 MB for an image (limit 5 MB).
    let u_big = "5491100000104";
    Mock::given(method("GET"))
        .and(path("/1004"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "url": format!("{}/files/1004", graph.uri()), "mime_type": "image/jpeg",
            "file_size": 6 * 1024 * 1024, "id": "1004",
        })))
        .mount(&graph)
        .await;
    post(
        &server,
        media_message(
            u_big,
            "wamid.M4",
            "image",
            "1004",
            "image/jpeg",
            &samples::sha256_hex(b"x"),
            json!({}),
        ),
    )
    .await;

    // Wrong sha256: the webhook announces other bytes.
    let png2 = samples::png(10, 10);
    serve_media(&graph, "1005", "image/png", &png2).await;
    let u_hash = "5491100000105";
    post(
        &server,
        media_message(
            u_hash,
            "wamid.M5",
            "image",
            "1005",
            "image/png",
            &samples::sha256_hex(b"other bytes"),
            json!({}),
        ),
    )
    .await;

    // Expired URL: the first URL answers 403, a fresh one is asked for.
    let png3 = samples::png(30, 20);
    let u_expired = "5491100000106";
    Mock::given(method("GET"))
        .and(path("/1006"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "url": format!("{}/files/stale-1006", graph.uri()), "mime_type": "image/png", "id": "1006",
        })))
        .up_to_n_times(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/stale-1006"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&graph)
        .await;
    serve_media(&graph, "1006", "image/png", &png3).await;
    post(
        &server,
        media_message(
            u_expired,
            "wamid.M6",
            "image",
            "1006",
            "image/png",
            &samples::sha256_hex(&png3),
            json!({}),
        ),
    )
    .await;

    // Unsupported type: a zip sent as a document, recorded and told honestly.
    let zip = samples::zip();
    serve_media(&graph, "1007", "application/zip", &zip).await;
    let u_zip = "5491100000107";
    post(
        &server,
        media_message(
            u_zip,
            "wamid.M7",
            "document",
            "1007",
            "application/zip",
            &samples::sha256_hex(&zip),
            json!({"filename": "fotos.zip"}),
        ),
    )
    .await;

    // A media id past its 7 days: refused without a download.
    let u_old = "5491100000108";
    let mut old = media_message(
        u_old,
        "wamid.M8",
        "image",
        "1008",
        "image/png",
        &samples::sha256_hex(&png),
        json!({}),
    );
    old["timestamp"] = json!((meta::now_secs() - 8 * 24 * 3600).to_string());
    post(&server, old).await;

    // Understood media: the model was given the description, the user its answer.
    for (user, needle) in [
        (u_image, "The user sent a photo (png, 640x480)"),
        (u_pdf, "Text in it: Factura de luz Total 52300"),
        (u_voice, "not available locally"),
        (u_expired, "The user sent a photo (png, 30x20)"),
        (u_zip, "a file of type application/zip"),
    ] {
        let sent = wait_texts(&graph, user, 1).await;
        assert_eq!(sent, vec![MODEL_ANSWER.to_string()], "{user}");
        assert_eq!(model_asked_with(&model, needle).await.len(), 1, "{needle}");
    }
    // Refused media: one notice each, saying what, and no model call.
    for (user, says) in [
        (u_big, "la imagen que enviaste es demasiado grande"),
        (u_hash, "la imagen que enviaste no se pudo leer"),
        (u_old, "la imagen que enviaste ya no está disponible"),
    ] {
        let sent = wait_texts(&graph, user, 1).await;
        assert_eq!(sent.len(), 1, "{user}: {sent:?}");
        assert!(sent[0].contains(says), "{user}: {sent:?}");
        assert!(model_asked_with(&model, user).await.is_empty(), "{user}");
    }
    let media_downloads = graph
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/1008" || r.url.path() == "/files/1004")
        .count();
    assert_eq!(
        media_downloads, 0,
        "expired ids and oversized files are not fetched"
    );

    // A redelivered webhook starts nothing twice and is answered once.
    post(
        &server,
        media_message(
            u_image,
            "wamid.M1",
            "image",
            "1001",
            "image/png",
            &samples::sha256_hex(&png),
            json!({}),
        ),
    )
    .await;
    post(
        &server,
        media_message(
            u_big,
            "wamid.M4",
            "image",
            "1004",
            "image/jpeg",
            &samples::sha256_hex(b"x"),
            json!({}),
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(texts_to(&graph, u_image).await.len(), 1);
    assert_eq!(texts_to(&graph, u_big).await.len(), 1);
    let health: Value = reqwest::get(format!("{}/healthz", server.base))
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok", "{health}");
}

#[tokio::test]
async fn a_photo_then_a_question_are_answered_together_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let graph = fake_graph().await;
    let model = fake_model().await;
    // A slow file: the question arrives while the photo is still downloading.
    let png = samples::png(800, 600);
    Mock::given(method("GET"))
        .and(path("/2001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "url": format!("{}/files/2001", graph.uri()), "mime_type": "image/png", "id": "2001",
        })))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/2001"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(1500))
                .set_body_bytes(png.clone()),
        )
        .mount(&graph)
        .await;
    let server = start(dir.path(), &graph.uri(), &model.uri(), 0).await;
    let user = "5491100000201";
    post(
        &server,
        media_message(
            user,
            "wamid.P1",
            "image",
            "2001",
            "image/png",
            &samples::sha256_hex(&png),
            json!({}),
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    post(
        &server,
        meta::text_message(user, "wamid.P2", "¿Qué dice esto?"),
    )
    .await;

    let sent = wait_texts(&graph, user, 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        texts_to(&graph, user).await.len(),
        1,
        "one answer for both: {sent:?}"
    );
    // The one model call had the photo's description before the question.
    let asked = model_asked_with(&model, "Qué dice esto").await;
    assert_eq!(asked.len(), 1);
    let body = &asked[0];
    let photo = body
        .find("The user sent a photo (png, 800x600)")
        .expect("the description");
    let question = body.find("Qué dice esto").expect("the question");
    assert!(photo < question, "{body}");
}

/// A Textract stand-in over HTTP (AWS's JSON protocol, one route per
/// `X-Amz-Target`): moto's Textract answers `DocumentMetadata.Pages` as an
/// object, which the SDK rightly refuses.
#[cfg(feature = "aws")]
async fn fake_textract(line: &str) -> MockServer {
    let textract = MockServer::start().await;
    for (target, body) in [
        (
            "Textract.StartDocumentTextDetection",
            json!({"JobId": "job-e2e-1"}),
        ),
        (
            "Textract.GetDocumentTextDetection",
            json!({"JobStatus": "SUCCEEDED", "DocumentMetadata": {"Pages": 1},
                "Blocks": [{"BlockType": "PAGE", "Page": 1},
                    {"BlockType": "LINE", "Text": line, "Page": 1}]}),
        ),
    ] {
        Mock::given(method("POST"))
            .and(wiremock::matchers::header("x-amz-target", target))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "application/x-amz-json-1.1")
                    .set_body_json(body),
            )
            .mount(&textract)
            .await;
    }
    textract
}

/// `--aws` against moto: the same pipeline, with the media on S3, Textract
/// reading it (a stand-in, through `AWS_ENDPOINT_URL_TEXTRACT`) and the note
/// in DynamoDB, as the media function does.
#[cfg(feature = "aws")]
#[tokio::test]
async fn with_aws_the_media_goes_to_s3_and_the_aws_analysers() {
    let moto = std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT not set: run scripts/test, which starts moto");
    let textract = fake_textract("TOTAL A PAGAR $ 12.340").await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (table, bucket) = (format!("charla-e2e-{id}"), format!("charla-e2e-{id}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let graph = fake_graph().await;
    let model = fake_model().await;
    let server = start_with(dir.path(), &graph.uri(), &model.uri(), 0, |cmd| {
        cmd.args(["--aws", "--create-resources"])
            .env("AWS_ENDPOINT_URL", &moto)
            .env("AWS_ENDPOINT_URL_TEXTRACT", textract.uri())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("CHARLA_TABLE", &table)
            .env("CHARLA_TEXT_QUEUE_NAME", format!("charla-e2e-{id}"))
            .env("CHARLA_QUARANTINE_BUCKET", &bucket);
    })
    .await;
    let pdf = samples::pdf("Factura de luz");
    serve_media(&graph, "5001", "application/pdf", &pdf).await;
    let user = "5491100000601";
    let wamid = "wamid.AWSDOC1";
    assert_eq!(
        post(
            &server,
            media_message(
                user,
                wamid,
                "document",
                "5001",
                "application/pdf",
                &samples::sha256_hex(&pdf),
                json!({"filename": "factura.pdf"}),
            ),
        )
        .await,
        200
    );
    let sent = wait_texts(&graph, user, 1).await;
    assert_eq!(sent, vec![MODEL_ANSWER.to_string()]);
    assert_eq!(
        model_asked_with(&model, "TOTAL A PAGAR $ 12.340")
            .await
            .len(),
        1
    );

    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto)
        .region("us-east-1")
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "e2e",
        ))
        .load()
        .await;
    // The file is in the media bucket, under a key without the number.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let listed = s3
        .list_objects_v2()
        .bucket(format!("{bucket}-media"))
        .send()
        .await
        .expect("list");
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("media/") && !keys[0].contains(user),
        "{keys:?}"
    );
    // The pipeline's note is in the DynamoDB table, not in SQLite.
    let item = aws_sdk_dynamodb::Client::new(&config)
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("MEDIA#{wamid}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("NOTE".into()),
        )
        .send()
        .await
        .expect("get")
        .item
        .expect("the note");
    let note = item["note"].as_s().expect("json");
    assert!(
        note.contains("understood") && note.contains("TOTAL A PAGAR"),
        "{note}"
    );
    // Textract was asked for the stored object in the media bucket.
    let asked = textract.received_requests().await.expect("recorded");
    let start: Value = serde_json::from_slice(&asked[0].body).expect("json");
    assert_eq!(
        start["DocumentLocation"]["S3Object"]["Bucket"],
        format!("{bucket}-media")
    );
    assert_eq!(start["DocumentLocation"]["S3Object"]["Name"], keys[0]);
}
