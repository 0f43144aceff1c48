//! The media analysers for one machine, on the files of a [`FileMediaStore`]:
//! image format and size from the header ([`LocalImages`]), text of PDFs
//! ([`LocalDocuments`]). Labels, unsafe-content checks, text in images and
//! speech need models that do not run here: they say so ([`NoSpeech`],
//! [`ImageAnalysis::unavailable`]) rather than pretend to find nothing.

use std::io::BufReader;
use std::path::Path;

use async_trait::async_trait;

use super::FileMediaStore;
use domain::error::{Error, Result};
use domain::media::{DocumentText, ImageAnalysis, JobState, Transcript};
use domain::ports::{DocumentReader, ImageAnalyzer, Transcriber};

const SERVICE: &str = "local-media";

/// Streams of a PDF are inflated at most to this, all together: a small
/// file can hold a compression bomb.
const MAX_INFLATED_BYTES: usize = 256 * 1024 * 1024;

fn unreadable(what: &str, e: impl Into<domain::error::BoxError>) -> Error {
    // The file will not change: retrying cannot help.
    Error::dependency(SERVICE, what.to_string(), false, e)
}

/// Runs parsing off the async threads. A panic in a parser (malformed input
/// hitting a bug) ends that task only and comes back as an error here:
/// `spawn_blocking` catches it, so no `catch_unwind` of our own is needed.
async fn parse<T, F>(what: &'static str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(unreadable(what, "the parser panicked on this file")),
        Err(e) => Err(Error::dependency(SERVICE, what.to_string(), true, e)),
    }
}

/// Image format and dimensions, read from the header only.
#[derive(Debug, Clone)]
pub struct LocalImages {
    store: FileMediaStore,
}

impl LocalImages {
    pub fn new(store: FileMediaStore) -> Self {
        LocalImages { store }
    }
}

/// What [`LocalImages`] cannot tell.
pub const NOT_AVAILABLE_LOCALLY: [&str; 3] = ["labels", "moderation", "text"];

fn open(path: &Path, key: &str) -> Result<BufReader<std::fs::File>> {
    std::fs::File::open(path).map(BufReader::new).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(format!("media {key}"))
        } else {
            Error::dependency(SERVICE, format!("opening {}", path.display()), true, e)
        }
    })
}

#[async_trait]
impl ImageAnalyzer for LocalImages {
    async fn analyze_image(&self, key: &str) -> Result<ImageAnalysis> {
        let path = self.store.path_of(key)?;
        let key = key.to_string();
        parse("reading an image header", move || {
            let kind = imagesize::reader_type(open(&path, &key)?)
                .map_err(|e| unreadable("not an image this build can read", e))?;
            let size = imagesize::reader_size(open(&path, &key)?)
                .map_err(|e| unreadable("image header unreadable", e))?;
            Ok(ImageAnalysis {
                format: Some(format!("{kind:?}").to_ascii_lowercase()),
                width: u64::try_from(size.width).ok(),
                height: u64::try_from(size.height).ok(),
                unavailable: NOT_AVAILABLE_LOCALLY.map(String::from).to_vec(),
                ..ImageAnalysis::default()
            })
        })
        .await
    }
}

/// Text of PDFs (lopdf: pure Rust, no system libraries). Text in images
/// needs OCR, which does not run here.
#[derive(Debug, Clone)]
pub struct LocalDocuments {
    store: FileMediaStore,
}

impl LocalDocuments {
    pub fn new(store: FileMediaStore) -> Self {
        LocalDocuments { store }
    }

    async fn pdf_text(&self, key: &str) -> Result<DocumentText> {
        let path = self.store.path_of(key)?;
        let key = key.to_string();
        parse("reading a PDF", move || {
            let doc = lopdf::Document::load_from(open(&path, &key)?)
                .map_err(|e| unreadable("not a PDF this build can read", e))?;
            let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
            let text = doc
                .extract_text_with_limit(&pages, MAX_INFLATED_BYTES)
                .map_err(|e| unreadable("no text could be read from the PDF", e))?;
            Ok(DocumentText {
                pages: u32::try_from(pages.len()).unwrap_or(u32::MAX),
                text,
            })
        })
        .await
    }
}

#[async_trait]
impl DocumentReader for LocalDocuments {
    async fn read_document(&self, key: &str) -> Result<DocumentText> {
        self.pdf_text(key).await
    }

    /// Nothing runs in the background here: the job id is the key, and the
    /// text is read when the job is polled.
    async fn start_document_job(&self, key: &str, _request_token: &str) -> Result<String> {
        self.store.path_of(key)?;
        Ok(key.to_string())
    }

    async fn document_job(&self, job_id: &str) -> Result<JobState<DocumentText>> {
        match self.pdf_text(job_id).await {
            Ok(result) => Ok(JobState::Done { result }),
            Err(
                e @ Error::Dependency {
                    retryable: false, ..
                },
            ) => Ok(JobState::Failed {
                reason: e.to_string(),
            }),
            Err(e) => Err(e),
        }
    }
}

/// Speech to text on one machine: not available, said plainly.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSpeech;

fn no_speech() -> Error {
    Error::dependency(
        SERVICE,
        "speech to text is not available locally (configure Amazon Transcribe)",
        false,
        "not available locally",
    )
}

#[async_trait]
impl Transcriber for NoSpeech {
    async fn start_transcription(
        &self,
        _job: &str,
        _key: &str,
        _languages: &[String],
    ) -> Result<()> {
        Err(no_speech())
    }

    async fn transcription(&self, _job: &str) -> Result<JobState<Transcript>> {
        Err(no_speech())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::media_samples;

    const KEY: &str =
        "media/2026/11/0123456789abcdef0123456789abcdef/fedcba9876543210fedcba9876543210";

    /// A JPEG with only SOI, a baseline SOF0 of 640x480, and EOI.
    fn tiny_jpeg() -> Vec<u8> {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08];
        jpeg.extend_from_slice(&480u16.to_be_bytes());
        jpeg.extend_from_slice(&640u16.to_be_bytes());
        jpeg.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9]);
        jpeg
    }

    fn store_with(bytes: &[u8]) -> (tempfile::TempDir, FileMediaStore) {
        let dir = tempfile::tempdir().expect("dir");
        let store = FileMediaStore::open(dir.path()).expect("store");
        let path = store.path_of(KEY).expect("path");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, bytes).expect("write");
        (dir, store)
    }

    #[tokio::test]
    async fn the_text_of_a_hand_written_pdf_is_read() {
        let (_dir, store) = store_with(&media_samples::pdf("Factura 123 de Charla"));
        let docs = LocalDocuments::new(store);
        let got = docs.read_document(KEY).await.expect("read");
        assert_eq!(got.pages, 1);
        assert!(got.text.contains("Factura 123 de Charla"), "{:?}", got.text);
        let job = docs.start_document_job(KEY, "token").await.expect("start");
        match docs.document_job(&job).await.expect("poll") {
            JobState::Done { result } => assert_eq!(result, got),
            other => panic!("expected done, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn malformed_pdfs_fail_cleanly() {
        let good = media_samples::pdf("hola");
        let inputs: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"%PDF-1.4\n".to_vec(),
            b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF".to_vec(),
            good[..good.len() / 2].to_vec(),
            good.iter().map(|b| if *b == b'R' { b'Q' } else { *b }).collect(),
            b"not a pdf at all".repeat(100),
        ];
        for (i, bytes) in inputs.iter().enumerate() {
            let (_dir, store) = store_with(bytes);
            let docs = LocalDocuments::new(store);
            // Lenient parsing may recover something (Ok); it must not panic.
            if let Err(e) = docs.read_document(KEY).await {
                assert!(!e.is_retryable(), "input {i}: {e:?}");
                assert!(!format!("{e:?}").contains("panicked"), "input {i}: {e:?}");
            }
            match docs.document_job(KEY).await {
                Ok(JobState::Failed { .. } | JobState::Done { .. }) => {}
                other => panic!("input {i}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn image_format_and_size_are_read_and_the_rest_is_said_unavailable() {
        for (bytes, format, w, h) in [
            (media_samples::png(3, 2), "png", 3, 2),
            (tiny_jpeg(), "jpeg", 640, 480),
        ] {
            let (_dir, store) = store_with(&bytes);
            let got = LocalImages::new(store)
                .analyze_image(KEY)
                .await
                .expect("analyse");
            assert_eq!(got.format.as_deref(), Some(format));
            assert_eq!((got.width, got.height), (Some(w), Some(h)));
            assert_eq!(got.unavailable, ["labels", "moderation", "text"]);
            assert!(got.labels.is_empty());
        }
    }

    #[tokio::test]
    async fn a_broken_image_fails_cleanly() {
        for bytes in [Vec::new(), b"\x89PNG\r\n".to_vec(), vec![0xFF, 0xD8, 0xFF]] {
            let (_dir, store) = store_with(&bytes);
            let err = LocalImages::new(store)
                .analyze_image(KEY)
                .await
                .expect_err("broken");
            assert!(!err.is_retryable(), "{err:?}");
        }
    }

    #[tokio::test]
    async fn speech_says_it_is_not_available() {
        let err = NoSpeech
            .start_transcription("job", KEY, &["es".into()])
            .await
            .expect_err("not here");
        assert!(err.to_string().contains("not available locally"), "{err}");
        assert!(!err.is_retryable());
    }
}
