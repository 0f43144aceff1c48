//! The media adapters on AWS against moto's server (S3, Rekognition,
//! Textract, Transcribe), and, where moto has no such API or gives fixed
//! answers that cannot show a behaviour, against a local fake speaking the
//! service's JSON protocol over the SDK's endpoint override.
//!
//! What moto does for these services (checked in its source):
//! - Rekognition: DetectLabels and DetectText with canned answers; no
//!   DetectModerationLabels (faked here instead);
//! - Textract: DetectDocumentText and Start/GetDocumentTextDetection, with no
//!   blocks, a random page count, jobs done at once, no pagination and no
//!   ClientRequestToken (pagination is faked here instead);
//! - Transcribe: jobs advance QUEUED -> IN_PROGRESS -> COMPLETED one step
//!   per GetTranscriptionJob, the first language option is "identified", and
//!   no transcript file is written (the test writes one where Transcribe
//!   would).
//!
//! `MOTO_ENDPOINT` must be set (bash scripts/moto.sh start); without it
//! these tests fail, they never pass silently.

use aws_adapters::{
    MediaEncryption, RekognitionImages, S3Archive, S3MediaStore, TextractDocuments,
    TranscribeSpeech,
};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::Credentials;
use domain::media::{FetchedMedia, JobState, Sha256Digest};
use domain::ports::{DocumentReader, ImageAnalyzer, MediaStore, Transcriber};
use domain::Error;
use serde_json::json;
use tokio::io::AsyncReadExt;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn moto_endpoint() -> String {
    match std::env::var("MOTO_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => panic!("MOTO_ENDPOINT not set: run bash scripts/moto.sh start"),
    }
}

async fn config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region("us-east-1")
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

async fn moto_config() -> SdkConfig {
    config_for(&moto_endpoint()).await
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A key of the shape the stores accept, unique per call.
fn media_key() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("media/2026/11/{id}/{id}")
}

async fn bucket_with(config: &SdkConfig, key: &str, body: &[u8]) -> String {
    let s3 = aws_sdk_s3::Client::new(config);
    let bucket = unique("charla-media");
    S3Archive::create_bucket(&s3, &bucket)
        .await
        .expect("bucket");
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .expect("put");
    bucket
}

// --------------------------------------------------------------- S3 store

#[tokio::test]
async fn s3_media_store_puts_a_file_encrypted_and_reads_it_back() {
    let config = moto_config().await;
    let s3 = aws_sdk_s3::Client::new(&config);
    let bucket = unique("charla-media");
    S3Archive::create_bucket(&s3, &bucket)
        .await
        .expect("bucket");
    let store = S3MediaStore::new(s3.clone(), &bucket, MediaEncryption::S3Managed);

    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("download");
    let body: Vec<u8> = b"%PDF-1.7\n"
        .iter()
        .copied()
        .cycle()
        .take(3 * 1024 * 1024)
        .collect();
    std::fs::write(&path, &body).expect("write");
    let fetched = FetchedMedia {
        path: path.clone(),
        bytes: body.len() as u64,
        sha256: Sha256Digest::of(&body),
        sniffed_mime: Some("application/pdf".into()),
        declared_mime: Some("application/pdf".into()),
    };
    let key = media_key();
    let stored = store.put_file(&key, &path, &fetched).await.expect("put");
    assert_eq!(stored.key, key);
    assert_eq!(stored.sha256_hex, Sha256Digest::of(&body).to_hex());

    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("application/pdf"));
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(
        head.server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::Aes256)
    );
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("sha256"))
            .map(String::as_str),
        Some(stored.sha256_hex.as_str())
    );

    let mut back = Vec::new();
    store
        .open(&key)
        .await
        .expect("open")
        .read_to_end(&mut back)
        .await
        .expect("read");
    assert_eq!(back, body);

    assert!(matches!(
        store.open(&media_key()).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.open("../secrets").await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn s3_media_store_asks_for_kms_when_configured() {
    let config = moto_config().await;
    let s3 = aws_sdk_s3::Client::new(&config);
    let bucket = unique("charla-media");
    S3Archive::create_bucket(&s3, &bucket)
        .await
        .expect("bucket");
    let store = S3MediaStore::new(s3.clone(), &bucket, MediaEncryption::Kms { key_id: None });
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("img");
    std::fs::write(&path, b"\x89PNG\r\n\x1a\n").expect("write");
    let fetched = FetchedMedia {
        path: path.clone(),
        bytes: 8,
        sha256: Sha256Digest::of(b"\x89PNG\r\n\x1a\n"),
        sniffed_mime: Some("image/png".into()),
        declared_mime: None,
    };
    let key = media_key();
    store.put_file(&key, &path, &fetched).await.expect("put");
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .expect("head");
    assert_eq!(
        head.server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms)
    );
}

// ------------------------------------------------------------ Rekognition

#[tokio::test]
async fn rekognition_labels_and_text_from_moto() {
    let config = moto_config().await;
    let key = media_key();
    let bucket = bucket_with(&config, &key, b"\xFF\xD8\xFF\xE0").await;
    let images = RekognitionImages::new(aws_sdk_rekognition::Client::new(&config), bucket);
    let labels = images.labels(&key).await.expect("labels");
    assert!(!labels.is_empty(), "moto's canned labels");
    assert!(
        labels
            .iter()
            .all(|l| !l.name.is_empty() && l.confidence > 0.0),
        "{labels:?}"
    );
    let lines = images.text_lines(&key).await.expect("text");
    assert!(!lines.is_empty(), "moto's canned lines");
}

/// Answers an AWS JSON-protocol call named by its `X-Amz-Target`.
async fn answer(server: &MockServer, target: &str, body: serde_json::Value) {
    Mock::given(method("POST"))
        .and(header("x-amz-target", target))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_json(body),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn rekognition_analysis_puts_labels_moderation_and_lines_together() {
    let fake = MockServer::start().await;
    answer(&fake, "RekognitionService.DetectLabels", json!({
        "Labels": [{ "Name": "Invoice", "Confidence": 97.5 }, { "Name": "", "Confidence": 80.0 }]
    }))
    .await;
    answer(
        &fake,
        "RekognitionService.DetectModerationLabels",
        json!({
            "ModerationLabels": [{ "Name": "Violence", "Confidence": 88.0, "ParentName": "" }]
        }),
    )
    .await;
    answer(
        &fake,
        "RekognitionService.DetectText",
        json!({
            "TextDetections": [
                { "DetectedText": "TOTAL 1.234", "Type": "LINE", "Confidence": 99.0 },
                { "DetectedText": "TOTAL", "Type": "WORD", "Confidence": 99.0 }
            ]
        }),
    )
    .await;
    let config = config_for(&fake.uri()).await;
    let images = RekognitionImages::new(aws_sdk_rekognition::Client::new(&config), "bucket");
    let got = images.analyze_image(&media_key()).await.expect("analysis");
    assert_eq!(got.labels.len(), 1, "unnamed labels are dropped");
    assert_eq!(got.labels[0].name, "Invoice");
    assert_eq!(got.moderation[0].name, "Violence");
    assert_eq!(got.text_lines, ["TOTAL 1.234"], "words are not lines");
    assert!(got.unavailable.is_empty());
}

// --------------------------------------------------------------- Textract

/// Moto answers DetectDocumentText and GetDocumentTextDetection with
/// `"DocumentMetadata": {"Pages": {"Pages": N}}`, which no SDK can read (a
/// moto bug): only the job start is checked against moto; the reads are
/// checked against the fake below.
#[tokio::test]
async fn textract_starts_a_job_on_moto() {
    let config = moto_config().await;
    let key = media_key();
    let bucket = bucket_with(&config, &key, b"%PDF-1.7\n").await;
    let docs = TextractDocuments::new(aws_sdk_textract::Client::new(&config), bucket);
    let job = docs
        .start_document_job(&key, "wamid-hash-1")
        .await
        .expect("start");
    assert!(!job.is_empty());
    assert!(matches!(
        docs.start_document_job(&key, "not a token!").await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        docs.start_document_job("../other", "t").await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn textract_reads_one_page_at_once() {
    let fake = MockServer::start().await;
    answer(
        &fake,
        "Textract.DetectDocumentText",
        json!({
            "DocumentMetadata": { "Pages": 1 },
            "Blocks": [
                { "BlockType": "PAGE", "Page": 1 },
                { "BlockType": "LINE", "Text": "Recibo Nº 42", "Page": 1 },
                { "BlockType": "WORD", "Text": "Recibo", "Page": 1 },
                { "BlockType": "LINE", "Text": "Total: $ 1.500", "Page": 1 }
            ]
        }),
    )
    .await;
    let config = config_for(&fake.uri()).await;
    let docs = TextractDocuments::new(aws_sdk_textract::Client::new(&config), "bucket");
    let got = docs.read_document(&media_key()).await.expect("read");
    assert_eq!(got.pages, 1);
    assert_eq!(got.text, "Recibo Nº 42\nTotal: $ 1.500\n");
    let sent = fake.received_requests().await.expect("recorded");
    let body: serde_json::Value = serde_json::from_slice(&sent[0].body).expect("json");
    assert_eq!(body["Document"]["S3Object"]["Bucket"], "bucket");
}

#[tokio::test]
async fn textract_job_results_are_followed_across_pages() {
    let fake = MockServer::start().await;
    let line = |text: &str, page: i32| json!({ "BlockType": "LINE", "Text": text, "Page": page });
    Mock::given(method("POST"))
        .and(header("x-amz-target", "Textract.GetDocumentTextDetection"))
        .and(wiremock::matchers::body_partial_json(json!({ "NextToken": "t2" })))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_json(json!({
                    "JobStatus": "SUCCEEDED",
                    "DocumentMetadata": { "Pages": 2 },
                    "Blocks": [line("segunda página", 2), { "BlockType": "WORD", "Text": "segunda" }]
                })),
        )
        .with_priority(1)
        .mount(&fake)
        .await;
    answer(&fake, "Textract.GetDocumentTextDetection", json!({
        "JobStatus": "SUCCEEDED",
        "DocumentMetadata": { "Pages": 2 },
        "NextToken": "t2",
        "Blocks": [{ "BlockType": "PAGE", "Page": 1 }, line("primera línea", 1), line("segunda línea", 1)]
    }))
    .await;
    let config = config_for(&fake.uri()).await;
    let docs = TextractDocuments::new(aws_sdk_textract::Client::new(&config), "bucket");
    match docs.document_job("job-1").await.expect("poll") {
        JobState::Done { result } => {
            assert_eq!(result.pages, 2);
            assert_eq!(
                result.text,
                "primera línea\nsegunda línea\nsegunda página\n"
            );
        }
        other => panic!("expected done, got {other:?}"),
    }
    let requests = fake.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 2);
}

#[tokio::test]
async fn textract_running_and_failed_jobs_are_reported() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_partial_json(
            json!({ "JobId": "running" }),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_json(json!({ "JobStatus": "IN_PROGRESS" })),
        )
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_partial_json(
            json!({ "JobId": "failed" }),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_json(
                    json!({ "JobStatus": "FAILED", "StatusMessage": "Unsupported document" }),
                ),
        )
        .mount(&fake)
        .await;
    let config = config_for(&fake.uri()).await;
    let docs = TextractDocuments::new(aws_sdk_textract::Client::new(&config), "bucket");
    assert_eq!(
        docs.document_job("running").await.expect("poll"),
        JobState::Running
    );
    assert_eq!(
        docs.document_job("failed").await.expect("poll"),
        JobState::Failed {
            reason: "Unsupported document".into()
        }
    );
}

// ------------------------------------------------------------- Transcribe

#[tokio::test]
async fn transcribe_identifies_among_the_profile_languages_and_reads_the_transcript() {
    let config = moto_config().await;
    let key = media_key();
    let media_bucket = bucket_with(&config, &key, b"OggS").await;
    let s3 = aws_sdk_s3::Client::new(&config);
    let output_bucket = unique("charla-transcripts");
    S3Archive::create_bucket(&s3, &output_bucket)
        .await
        .expect("bucket");
    let speech = TranscribeSpeech::new(
        aws_sdk_transcribe::Client::new(&config),
        s3.clone(),
        &media_bucket,
        &output_bucket,
    );
    let job = unique("voice");
    let languages = ["es".to_string(), "en".to_string()];
    speech
        .start_transcription(&job, &key, &languages)
        .await
        .expect("start");
    // A retried start of the same job is not an error.
    speech
        .start_transcription(&job, &key, &languages)
        .await
        .expect("start again");

    let started = aws_sdk_transcribe::Client::new(&config)
        .get_transcription_job()
        .transcription_job_name(&job)
        .send()
        .await
        .expect("job");
    let started = started.transcription_job().expect("job");
    assert_eq!(started.identify_language(), Some(true));
    let options: Vec<&str> = started
        .language_options()
        .iter()
        .map(|l| l.as_str())
        .collect();
    assert_eq!(options, ["es-ES", "es-US", "en-US"]);
    assert_eq!(
        started.media().and_then(|m| m.media_file_uri()),
        Some(format!("s3://{media_bucket}/{key}").as_str())
    );

    // Where Transcribe writes its output (moto does not write it).
    s3.put_object()
        .bucket(&output_bucket)
        .key(TranscribeSpeech::output_key(&job))
        .body(
            json!({
                "jobName": job,
                "status": "COMPLETED",
                "results": { "transcripts": [{ "transcript": "Hola, quiero saber el saldo de mi cuenta." }], "items": [] }
            })
            .to_string()
            .into_bytes()
            .into(),
        )
        .send()
        .await
        .expect("transcript");

    let mut polls = 0;
    let transcript = loop {
        polls += 1;
        assert!(polls < 10, "the job never finished");
        match speech.transcription(&job).await.expect("poll") {
            JobState::Running => continue,
            JobState::Done { result } => break result,
            JobState::Failed { reason } => panic!("failed: {reason}"),
        }
    };
    assert_eq!(transcript.text, "Hola, quiero saber el saldo de mi cuenta.");
    assert_eq!(transcript.language.as_deref(), Some("es-ES"));

    let unknown = speech.transcription(&unique("none")).await;
    assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");
}

#[tokio::test]
async fn transcribe_with_one_language_names_it_and_refuses_none() {
    let config = moto_config().await;
    let key = media_key();
    let bucket = bucket_with(&config, &key, b"OggS").await;
    let client = aws_sdk_transcribe::Client::new(&config);
    let speech = TranscribeSpeech::new(
        client.clone(),
        aws_sdk_s3::Client::new(&config),
        &bucket,
        &bucket,
    );
    let job = unique("voice");
    speech
        .start_transcription(&job, &key, &["pt".into()])
        .await
        .expect("start");
    let got = client
        .get_transcription_job()
        .transcription_job_name(&job)
        .send()
        .await
        .expect("job");
    let got = got.transcription_job().expect("job");
    assert_eq!(got.language_code().map(|l| l.as_str()), Some("pt-BR"));
    assert_ne!(got.identify_language(), Some(true));
    assert!(matches!(
        speech
            .start_transcription(&unique("voice"), &key, &["fr".into()])
            .await,
        Err(Error::Config(_))
    ));
    assert!(matches!(
        speech
            .start_transcription("bad name!", &key, &["es".into()])
            .await,
        Err(Error::Invalid(_))
    ));
}
