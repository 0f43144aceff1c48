//! [`MediaSource`] on the Graph API: `GET {base}/{media-id}` gives a URL
//! that lasts about 5 minutes; the file is then downloaded from it with the
//! same bearer token (PROTOCOLS.md, "Media").
//!
//! The download is streamed chunk by chunk into a temp file beside the
//! destination, hashed and counted on the way, so that a 100 MB document
//! never sits in memory; it stops the moment the kind's limit is passed,
//! and is refused unread when `file_size` or `Content-Length` already says
//! so. Timeouts, retries and backoff follow [`GraphSettings`] like the
//! sender's; a download may take longer than a message send, so it has its
//! own bound, and a stalled one is cut by the read timeout.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use backon::Retryable;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::errors::error_from_answer;
use crate::GraphSettings;
use domain::error::{Error, Result};
use domain::media::{
    check_mime, sniff_mime, FetchedMedia, MediaProblem, MediaRef, MediaVerdict, Sha256Digest,
    SNIFF_BYTES,
};
use domain::ports::MediaSource;

const SERVICE: &str = "whatsapp-media";
/// Meta's "object does not exist" answer to a GET: `code` 100, subcode 33.
const NO_SUCH_OBJECT: (i64, i64) = (100, 33);

/// Downloads users' media through the Graph API.
pub struct GraphMedia {
    http: reqwest::Client,
    base_url: String,
    access_token: SecretString,
    settings: GraphSettings,
    download_timeout: Duration,
}

impl std::fmt::Debug for GraphMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphMedia")
            .field("base_url", &self.base_url)
            .field("access_token", &"[redacted]")
            .field("settings", &self.settings)
            .field("download_timeout", &self.download_timeout)
            .finish()
    }
}

/// `{url, mime_type, sha256, file_size, id, messaging_product}`
#[derive(Debug, Deserialize)]
struct Metadata {
    url: String,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    file_size: Option<u64>,
}

/// How one download attempt ended, besides a fault.
enum Attempt {
    Done(Downloaded),
    TooLarge,
    /// The URL is no longer good (it lasts ~5 minutes): ask for a new one.
    UrlGone(StatusCode),
}

struct Downloaded {
    file: tempfile::NamedTempFile,
    bytes: u64,
    sha256: Sha256Digest,
    head: Vec<u8>,
}

impl GraphMedia {
    /// `base_url` includes the API version, like [`crate::GraphClient`]'s.
    /// `download_timeout` bounds one download attempt, body included;
    /// `settings.http.request_timeout` bounds the metadata call and each wait
    /// for the next chunk.
    pub fn new(
        base_url: String,
        access_token: SecretString,
        settings: GraphSettings,
        download_timeout: Duration,
    ) -> Result<Self> {
        let base_url = base_url.trim().trim_end_matches('/').to_string();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(Error::Config(format!(
                "Graph API base URL must start with https:// or http://, got {base_url:?}"
            )));
        }
        if access_token.expose_secret().trim().is_empty() {
            return Err(Error::Config("Graph API access token is empty".into()));
        }
        // A read timeout, not a total one: a 100 MB document may take long
        // to arrive, but a stalled one should not.
        let http = reqwest::Client::builder()
            .connect_timeout(settings.http.connect_timeout)
            .read_timeout(settings.http.request_timeout)
            .user_agent(concat!("charla/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::dependency(SERVICE, "building the HTTP client", false, e))?;
        Ok(GraphMedia {
            http,
            base_url,
            access_token,
            settings,
            download_timeout,
        })
    }

    /// Runs `attempt` again on retryable errors, with backoff.
    async fn retrying<T, F, Fut>(&self, op: &'static str, attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        attempt
            .retry(self.settings.http.backoff())
            .sleep(tokio::time::sleep)
            .when(Error::is_retryable)
            .notify(|e: &Error, delay: Duration| {
                tracing::warn!(op, error = %e, delay_ms = delay.as_millis() as u64, "media call failed, retrying");
            })
            .await
    }

    /// The metadata, or `None` when Meta no longer knows the media id.
    async fn metadata(&self, media_id: &str) -> Result<Option<Metadata>> {
        let url = format!("{}/{media_id}", self.base_url);
        let response = self
            .http
            .get(&url)
            .bearer_auth(self.access_token.expose_secret())
            .timeout(self.settings.http.request_timeout)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        if status.is_success() {
            return serde_json::from_slice(&body).map(Some).map_err(|e| {
                Error::dependency(SERVICE, "media metadata is not the expected JSON", false, e)
            });
        }
        if status == StatusCode::NOT_FOUND || is_no_such_object(&body) {
            return Ok(None);
        }
        Err(error_from_answer(status, &body))
    }

    /// One download of `url` into a temp file in `dir`.
    async fn download(&self, url: &str, limit: u64, dir: &Path) -> Result<Attempt> {
        let mut response = self
            .http
            .get(url)
            .bearer_auth(self.access_token.expose_secret())
            .timeout(self.download_timeout)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if matches!(
            status,
            StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::NOT_FOUND
                | StatusCode::GONE
        ) {
            return Ok(Attempt::UrlGone(status));
        }
        if !status.is_success() {
            let retryable = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
            return Err(Error::dependency(
                SERVICE,
                format!("download: HTTP {}", status.as_u16()),
                retryable,
                UnexpectedStatus(status.as_u16()),
            ));
        }
        if response.content_length().is_some_and(|n| n > limit) {
            return Ok(Attempt::TooLarge);
        }
        let file = tempfile::Builder::new()
            .prefix(".media-")
            .tempfile_in(dir)
            .map_err(|e| io_error("creating a temp file", e))?;
        let std_file = file
            .as_file()
            .try_clone()
            .map_err(|e| io_error("opening the temp file", e))?;
        let mut out = tokio::fs::File::from_std(std_file);
        let mut hasher = Sha256::new();
        let mut bytes: u64 = 0;
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            bytes = bytes.saturating_add(chunk.len() as u64);
            if bytes > limit {
                // Dropping the response closes the connection: nothing more
                // is read; dropping `file` removes what was written.
                return Ok(Attempt::TooLarge);
            }
            hasher.update(&chunk);
            if head.len() < SNIFF_BYTES {
                let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            out.write_all(&chunk)
                .await
                .map_err(|e| io_error("writing the temp file", e))?;
        }
        out.flush()
            .await
            .map_err(|e| io_error("writing the temp file", e))?;
        Ok(Attempt::Done(Downloaded {
            file,
            bytes,
            sha256: Sha256Digest::from_bytes(hasher.finalize().into()),
            head,
        }))
    }
}

#[async_trait]
impl MediaSource for GraphMedia {
    #[tracing::instrument(skip(self, media, dest), fields(kind = %media.kind, wamid = %media.wamid))]
    async fn fetch(&self, media: &MediaRef, dest: &Path) -> Result<MediaVerdict<FetchedMedia>> {
        // Goes into the path: digits only, so nothing can change the route.
        let id = media.media_id.trim();
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Invalid("media id must be digits".into()));
        }
        if media.is_expired(jiff::Timestamp::now().as_second()) {
            return Ok(Err(MediaProblem::Expired));
        }
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let limit = media.max_bytes();
        let too_large = || {
            Ok(Err(MediaProblem::TooLarge {
                kind: media.kind,
                limit,
            }))
        };

        // A URL that went stale between the two calls (or during backoff)
        // is asked for again once, with a fresh metadata call.
        let mut fresh_url_asked = false;
        let (meta, got) = loop {
            let Some(meta) = self
                .retrying("media metadata", || self.metadata(id))
                .await?
            else {
                return Ok(Err(MediaProblem::Expired));
            };
            if meta.file_size.is_some_and(|n| n > limit) {
                return too_large();
            }
            match self
                .retrying("media download", || self.download(&meta.url, limit, dir))
                .await?
            {
                Attempt::Done(got) => break (meta, got),
                Attempt::TooLarge => return too_large(),
                Attempt::UrlGone(status) if !fresh_url_asked => {
                    tracing::info!(
                        status = status.as_u16(),
                        "media URL no longer valid; asking for a new one"
                    );
                    fresh_url_asked = true;
                }
                Attempt::UrlGone(status) => {
                    return Err(Error::dependency(
                        SERVICE,
                        format!("download refused twice (HTTP {})", status.as_u16()),
                        false,
                        UnexpectedStatus(status.as_u16()),
                    ))
                }
            }
        };

        // The webhook's hash first; the metadata's when the webhook had none.
        let expected = media
            .sha256
            .or_else(|| meta.sha256.as_deref().and_then(Sha256Digest::parse));
        if let Some(expected) = expected.filter(|e| *e != got.sha256) {
            return Ok(Err(MediaProblem::HashMismatch {
                expected: expected.to_hex(),
                actual: got.sha256.to_hex(),
            }));
        }
        let declared = meta.mime_type.clone().or_else(|| media.mime_type.clone());
        let sniffed = sniff_mime(&got.head);
        if let Err(problem) = check_mime(media.kind, declared.as_deref(), sniffed) {
            return Ok(Err(problem));
        }
        got.file
            .persist(dest)
            .map_err(|e| io_error("moving the download in place", e.error))?;
        Ok(Ok(FetchedMedia {
            path: dest.to_path_buf(),
            bytes: got.bytes,
            sha256: got.sha256,
            sniffed_mime: sniffed.map(str::to_string),
            declared_mime: declared,
        }))
    }
}

fn is_no_such_object(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        code: Option<i64>,
        error_subcode: Option<i64>,
    }
    serde_json::from_slice::<Body>(body).is_ok_and(|b| {
        (b.error.code, b.error.error_subcode) == (Some(NO_SUCH_OBJECT.0), Some(NO_SUCH_OBJECT.1))
    })
}

/// GETs are safe to repeat: any transport failure (connect, timeout, a
/// connection cut mid-body) is retryable; a request that could not be built
/// is not.
fn transport_error(e: reqwest::Error) -> Error {
    let e = e.without_url();
    let (context, retryable) = if e.is_timeout() {
        ("request timed out", true)
    } else if e.is_connect() {
        ("could not connect", true)
    } else if e.is_builder() {
        ("bad request", false)
    } else {
        ("request failed", true)
    };
    Error::dependency(SERVICE, context, retryable, e)
}

fn io_error(context: &'static str, e: std::io::Error) -> Error {
    // A full /tmp may clear when another download finishes.
    Error::dependency(SERVICE, context, true, e)
}

#[derive(Debug, thiserror::Error)]
#[error("unexpected HTTP status {0}")]
struct UnexpectedStatus(u16);

#[cfg(test)]
mod tests {
    use super::*;
    use domain::media::{MediaKind, MediaRef};
    use domain::whatsapp::inbound::Media;
    use http_client::HttpPolicy;
    use serde_json::json;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "EAAG-test-token";
    const MEDIA_ID: &str = "1037543291543636";
    const PDF: &[u8] =
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    const JPEG: &[u8] = &[
        0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1,
    ];

    fn fast() -> GraphSettings {
        GraphSettings {
            http: HttpPolicy {
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(5),
                max_attempts: 3,
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
                max_elapsed: Duration::from_secs(20),
            },
            messages_per_second: 0,
        }
    }

    fn source(server: &MockServer) -> GraphMedia {
        GraphMedia::new(
            format!("{}/v23.0", server.uri()),
            SecretString::from(TOKEN),
            fast(),
            Duration::from_secs(30),
        )
        .expect("client")
    }

    fn media(kind: MediaKind, mime: &str, body: &[u8]) -> MediaRef {
        let m = Media {
            id: MEDIA_ID.into(),
            mime_type: Some(mime.into()),
            sha256: Some(Sha256Digest::of(body).to_hex()),
            ..Media::default()
        };
        let now = jiff::Timestamp::now().as_second();
        MediaRef::new(kind, &m, "wamid.IN1", "5491155551234", now).expect("ref")
    }

    async fn metadata_answers(server: &MockServer, file: &str, mime: &str, size: Option<usize>) {
        Mock::given(method("GET"))
            .and(path(format!("/v23.0/{MEDIA_ID}")))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "messaging_product": "whatsapp",
                "url": format!("{}/files/{file}", server.uri()),
                "mime_type": mime,
                "file_size": size,
                "id": MEDIA_ID,
            })))
            .mount(server)
            .await;
    }

    async fn file_answers(server: &MockServer, file: &str, body: &[u8]) {
        Mock::given(method("GET"))
            .and(path(format!("/files/{file}")))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(body.to_vec()))
            .mount(server)
            .await;
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[tokio::test]
    async fn downloads_checks_and_places_the_file() {
        let server = MockServer::start().await;
        metadata_answers(&server, "a", "application/pdf", Some(PDF.len())).await;
        file_answers(&server, "a", PDF).await;
        let dir = tempfile::tempdir().expect("dir");
        let dest = dir.path().join("doc");
        let got = source(&server)
            .fetch(&media(MediaKind::Document, "application/pdf", PDF), &dest)
            .await
            .expect("no fault")
            .expect("accepted");
        assert_eq!(std::fs::read(&dest).expect("file"), PDF);
        assert_eq!(got.bytes, PDF.len() as u64);
        assert_eq!(got.sha256, Sha256Digest::of(PDF));
        assert_eq!(got.sniffed_mime.as_deref(), Some("application/pdf"));
        assert_eq!(leftovers(dir.path()), ["doc"]);
    }

    #[tokio::test]
    async fn a_body_past_the_limit_without_a_length_stops_and_leaves_nothing() {
        let server = MockServer::start().await;
        metadata_answers(&server, "big", "image/jpeg", None).await;
        // 6 MB for a 5 MB image, sent chunked (no Content-Length).
        let mut big = JPEG.to_vec();
        big.resize(6 * 1024 * 1024, 7);
        Mock::given(method("GET"))
            .and(path("/files/big"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_bytes(big.clone())
                    .insert_header("transfer-encoding", "chunked"),
            )
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().expect("dir");
        let verdict = source(&server)
            .fetch(
                &media(MediaKind::Image, "image/jpeg", &big),
                &dir.path().join("img"),
            )
            .await
            .expect("no fault");
        assert!(
            matches!(verdict, Err(MediaProblem::TooLarge { kind: MediaKind::Image, limit }) if limit == 5 * 1024 * 1024),
            "{verdict:?}"
        );
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
        let as_error: Error = verdict.expect_err("refused").into();
        assert!(matches!(as_error, Error::TooLarge { .. }));
    }

    #[tokio::test]
    async fn a_declared_size_past_the_limit_is_refused_before_downloading() {
        let server = MockServer::start().await;
        metadata_answers(&server, "huge", "audio/ogg", Some(17 * 1024 * 1024)).await;
        Mock::given(method("GET"))
            .and(path("/files/huge"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().expect("dir");
        let verdict = source(&server)
            .fetch(
                &media(MediaKind::Audio, "audio/ogg", b""),
                &dir.path().join("a"),
            )
            .await
            .expect("no fault");
        assert!(
            matches!(verdict, Err(MediaProblem::TooLarge { .. })),
            "{verdict:?}"
        );
    }

    #[tokio::test]
    async fn a_content_length_past_the_limit_is_refused_unread() {
        let server = MockServer::start().await;
        metadata_answers(&server, "sticker", "image/webp", None).await;
        file_answers(&server, "sticker", &vec![0u8; 101 * 1024]).await;
        let dir = tempfile::tempdir().expect("dir");
        let verdict = source(&server)
            .fetch(
                &media(MediaKind::Sticker, "image/webp", b""),
                &dir.path().join("s"),
            )
            .await
            .expect("no fault");
        assert!(
            matches!(verdict, Err(MediaProblem::TooLarge { limit: 102_400, .. })),
            "{verdict:?}"
        );
        assert!(leftovers(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn a_wrong_hash_is_refused_and_nothing_is_kept() {
        let server = MockServer::start().await;
        metadata_answers(&server, "a", "application/pdf", None).await;
        file_answers(&server, "a", PDF).await;
        let dir = tempfile::tempdir().expect("dir");
        let verdict = source(&server)
            .fetch(
                &media(MediaKind::Document, "application/pdf", b"other bytes"),
                &dir.path().join("d"),
            )
            .await
            .expect("no fault");
        match verdict {
            Err(MediaProblem::HashMismatch { expected, actual }) => {
                assert_eq!(expected, Sha256Digest::of(b"other bytes").to_hex());
                assert_eq!(actual, Sha256Digest::of(PDF).to_hex());
            }
            other => panic!("expected a hash mismatch, got {other:?}"),
        }
        assert!(leftovers(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn a_pdf_sent_as_a_jpeg_is_a_mime_mismatch() {
        let server = MockServer::start().await;
        metadata_answers(&server, "fake", "image/jpeg", None).await;
        file_answers(&server, "fake", PDF).await;
        let dir = tempfile::tempdir().expect("dir");
        let verdict = source(&server)
            .fetch(
                &media(MediaKind::Image, "image/jpeg", PDF),
                &dir.path().join("i"),
            )
            .await
            .expect("no fault");
        assert_eq!(
            verdict,
            Err(MediaProblem::MimeMismatch {
                declared: "image/jpeg".into(),
                sniffed: "application/pdf".into()
            })
        );
        assert!(leftovers(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn an_expired_url_is_asked_for_again_once() {
        let server = MockServer::start().await;
        // First metadata call: a stale URL; second: a fresh one.
        Mock::given(method("GET"))
            .and(path(format!("/v23.0/{MEDIA_ID}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "url": format!("{}/files/stale", server.uri()), "mime_type": "image/jpeg", "id": MEDIA_ID,
            })))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        metadata_answers(&server, "fresh", "image/jpeg", None).await;
        Mock::given(method("GET"))
            .and(path("/files/stale"))
            .respond_with(ResponseTemplate::new(403))
            .expect(1)
            .mount(&server)
            .await;
        file_answers(&server, "fresh", JPEG).await;
        let dir = tempfile::tempdir().expect("dir");
        let got = source(&server)
            .fetch(
                &media(MediaKind::Image, "image/jpeg", JPEG),
                &dir.path().join("i"),
            )
            .await
            .expect("no fault")
            .expect("accepted");
        assert_eq!(got.sniffed_mime.as_deref(), Some("image/jpeg"));
        let metadata_calls = server
            .received_requests()
            .await
            .expect("recorded")
            .iter()
            .filter(|r| r.url.path().starts_with("/v23.0/"))
            .count();
        assert_eq!(metadata_calls, 2);
    }

    #[tokio::test]
    async fn an_unknown_media_id_is_expired_after_one_request() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404))
            .expect(1)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().expect("dir");
        let verdict = source(&server)
            .fetch(
                &media(MediaKind::Image, "image/jpeg", JPEG),
                &dir.path().join("i"),
            )
            .await
            .expect("no fault");
        assert_eq!(verdict, Err(MediaProblem::Expired));
    }

    #[tokio::test]
    async fn metas_no_such_object_answer_is_expired_too() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "error": { "message": "Unsupported get request.", "type": "GraphMethodException", "code": 100, "error_subcode": 33 }
            })))
            .expect(1)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().expect("dir");
        let verdict = source(&server)
            .fetch(
                &media(MediaKind::Image, "image/jpeg", JPEG),
                &dir.path().join("i"),
            )
            .await
            .expect("no fault");
        assert_eq!(verdict, Err(MediaProblem::Expired));
    }

    #[tokio::test]
    async fn a_media_id_older_than_seven_days_is_not_requested() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
        let mut old = media(MediaKind::Image, "image/jpeg", JPEG);
        old.timestamp -= 8 * 24 * 3600;
        let dir = tempfile::tempdir().expect("dir");
        let verdict = source(&server)
            .fetch(&old, &dir.path().join("i"))
            .await
            .expect("no fault");
        assert_eq!(verdict, Err(MediaProblem::Expired));
    }

    #[tokio::test]
    async fn a_server_error_is_retried_then_succeeds() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/v23.0/{MEDIA_ID}")))
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        metadata_answers(&server, "a", "image/jpeg", None).await;
        Mock::given(method("GET"))
            .and(path("/files/a"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        file_answers(&server, "a", JPEG).await;
        let dir = tempfile::tempdir().expect("dir");
        let got = source(&server)
            .fetch(
                &media(MediaKind::Image, "image/jpeg", JPEG),
                &dir.path().join("i"),
            )
            .await
            .expect("no fault")
            .expect("accepted");
        assert_eq!(got.bytes, JPEG.len() as u64);
    }

    #[tokio::test]
    async fn a_slow_answer_times_out_and_is_retried() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/v23.0/{MEDIA_ID}")))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        metadata_answers(&server, "a", "image/jpeg", None).await;
        file_answers(&server, "a", JPEG).await;
        let mut settings = fast();
        settings.http.request_timeout = Duration::from_millis(200);
        let source = GraphMedia::new(
            format!("{}/v23.0", server.uri()),
            SecretString::from(TOKEN),
            settings,
            Duration::from_secs(5),
        )
        .expect("client");
        let dir = tempfile::tempdir().expect("dir");
        let got = source
            .fetch(
                &media(MediaKind::Image, "image/jpeg", JPEG),
                &dir.path().join("i"),
            )
            .await
            .expect("no fault")
            .expect("accepted");
        assert_eq!(got.bytes, JPEG.len() as u64);
    }

    #[tokio::test]
    async fn a_client_error_is_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                "error": { "message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190 }
            })))
            .expect(1)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().expect("dir");
        let err = source(&server)
            .fetch(
                &media(MediaKind::Image, "image/jpeg", JPEG),
                &dir.path().join("i"),
            )
            .await
            .expect_err("fault");
        assert!(!err.is_retryable(), "{err:?}");
    }

    #[tokio::test]
    async fn a_media_id_that_is_not_digits_never_reaches_the_server() {
        let server = MockServer::start().await;
        let mut bad = media(MediaKind::Image, "image/jpeg", JPEG);
        bad.media_id = "../me".into();
        let dir = tempfile::tempdir().expect("dir");
        let err = source(&server)
            .fetch(&bad, &dir.path().join("i"))
            .await
            .expect_err("invalid");
        assert!(matches!(err, Error::Invalid(_)));
        assert!(server
            .received_requests()
            .await
            .expect("recorded")
            .is_empty());
    }
}
