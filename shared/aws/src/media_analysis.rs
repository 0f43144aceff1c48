//! The media analysers on AWS, each reading the stored object straight from
//! the media bucket (nothing is downloaded into the function):
//!
//! - [`RekognitionImages`]: DetectLabels, DetectModerationLabels, DetectText;
//! - [`TextractDocuments`]: DetectDocumentText for images and one-page
//!   documents, StartDocumentTextDetection / GetDocumentTextDetection for
//!   multi-page PDFs (paged results followed to the end);
//! - [`TranscribeSpeech`]: StartTranscriptionJob with the language
//!   identified among the profile's, GetTranscriptionJob, and the transcript
//!   JSON read from the output bucket once the job is done.
//!
//! Limits that bite: Rekognition reads S3 images up to 15 MB (WhatsApp's
//! are 5 MB); Textract's sync call takes one page up to 10 MB, the async
//! one PDFs up to 500 MB / 3,000 pages; Transcribe keeps finished jobs for
//! 90 days, and job names are unique per account and region.

use async_trait::async_trait;
use aws_sdk_rekognition::types::{Image, S3Object as RekognitionObject, TextTypes};
use aws_sdk_textract::types::{
    Block, BlockType, Document, DocumentLocation, JobStatus, S3Object as TextractObject,
};
use aws_sdk_transcribe::error::ProvideErrorMetadata;
use aws_sdk_transcribe::types::{LanguageCode, Media, TranscriptionJobStatus};
use serde::Deserialize;

use super::sdk_error;
use domain::error::{Error, Result};
use domain::media::{
    is_media_key, speech_locales, DocumentText, ImageAnalysis, JobState, Label, Transcript,
};
use domain::ports::{DocumentReader, ImageAnalyzer, Transcriber};

fn checked(key: &str) -> Result<()> {
    if is_media_key(key) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("not a media key: {key:?}")))
    }
}

/// Below this confidence (percent) labels are noise for the agent.
const MIN_CONFIDENCE: f32 = 70.0;
/// Labels kept per image: the agent needs the gist, not an inventory.
const MAX_LABELS: i32 = 15;
/// Moderation needs a lower bar than labels: a missed unsafe image is worse.
const MIN_MODERATION_CONFIDENCE: f32 = 50.0;

/// Images on Amazon Rekognition.
#[derive(Debug, Clone)]
pub struct RekognitionImages {
    client: aws_sdk_rekognition::Client,
    bucket: String,
}

impl RekognitionImages {
    pub fn new(client: aws_sdk_rekognition::Client, bucket: impl Into<String>) -> Self {
        RekognitionImages {
            client,
            bucket: bucket.into(),
        }
    }

    fn image(&self, key: &str) -> Image {
        Image::builder()
            .s3_object(
                RekognitionObject::builder()
                    .bucket(&self.bucket)
                    .name(key)
                    .build(),
            )
            .build()
    }
}

impl RekognitionImages {
    /// What the image shows (DetectLabels).
    pub async fn labels(&self, key: &str) -> Result<Vec<Label>> {
        checked(key)?;
        let out = self
            .client
            .detect_labels()
            .image(self.image(key))
            .max_labels(MAX_LABELS)
            .min_confidence(MIN_CONFIDENCE)
            .send()
            .await
            .map_err(|e| sdk_error("rekognition", "detecting labels", e))?;
        Ok(out
            .labels()
            .iter()
            .filter_map(|l| label(l.name(), l.confidence()))
            .collect())
    }

    /// Unsafe content (DetectModerationLabels).
    pub async fn moderation(&self, key: &str) -> Result<Vec<Label>> {
        checked(key)?;
        let out = self
            .client
            .detect_moderation_labels()
            .image(self.image(key))
            .min_confidence(MIN_MODERATION_CONFIDENCE)
            .send()
            .await
            .map_err(|e| sdk_error("rekognition", "detecting unsafe content", e))?;
        Ok(out
            .moderation_labels()
            .iter()
            .filter_map(|l| label(l.name(), l.confidence()))
            .collect())
    }

    /// Lines of text (DetectText). Lines only: each line's words come again
    /// as WORD detections.
    pub async fn text_lines(&self, key: &str) -> Result<Vec<String>> {
        checked(key)?;
        let out = self
            .client
            .detect_text()
            .image(self.image(key))
            .send()
            .await
            .map_err(|e| sdk_error("rekognition", "detecting text", e))?;
        Ok(out
            .text_detections()
            .iter()
            .filter(|t| t.r#type() == Some(&TextTypes::Line))
            .filter_map(|t| t.detected_text().map(str::to_string))
            .collect())
    }
}

#[async_trait]
impl ImageAnalyzer for RekognitionImages {
    async fn analyze_image(&self, key: &str) -> Result<ImageAnalysis> {
        // Three independent calls on the same object: run them together.
        let (labels, moderation, text_lines) =
            tokio::try_join!(self.labels(key), self.moderation(key), self.text_lines(key))?;
        Ok(ImageAnalysis {
            labels,
            moderation,
            text_lines,
            ..ImageAnalysis::default()
        })
    }
}

fn label(name: Option<&str>, confidence: Option<f32>) -> Option<Label> {
    Some(Label {
        name: name.filter(|n| !n.is_empty())?.to_string(),
        confidence: confidence.unwrap_or_default(),
    })
}

/// Documents on Amazon Textract.
#[derive(Debug, Clone)]
pub struct TextractDocuments {
    client: aws_sdk_textract::Client,
    bucket: String,
}

impl TextractDocuments {
    pub fn new(client: aws_sdk_textract::Client, bucket: impl Into<String>) -> Self {
        TextractDocuments {
            client,
            bucket: bucket.into(),
        }
    }

    fn object(&self, key: &str) -> TextractObject {
        TextractObject::builder()
            .bucket(&self.bucket)
            .name(key)
            .build()
    }
}

/// LINE blocks in order, one per line; pages one after another.
fn lines_of(blocks: &[Block], text: &mut String) {
    for line in blocks
        .iter()
        .filter(|b| b.block_type() == Some(&BlockType::Line))
        .filter_map(Block::text)
    {
        text.push_str(line);
        text.push('\n');
    }
}

fn page_count(pages: Option<i32>) -> u32 {
    pages
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or_default()
}

#[async_trait]
impl DocumentReader for TextractDocuments {
    async fn read_document(&self, key: &str) -> Result<DocumentText> {
        checked(key)?;
        let out = self
            .client
            .detect_document_text()
            .document(Document::builder().s3_object(self.object(key)).build())
            .send()
            .await
            .map_err(|e| sdk_error("textract", "reading a document", e))?;
        let mut text = String::new();
        lines_of(out.blocks(), &mut text);
        Ok(DocumentText {
            pages: page_count(out.document_metadata().and_then(|m| m.pages())),
            text,
        })
    }

    async fn start_document_job(&self, key: &str, request_token: &str) -> Result<String> {
        checked(key)?;
        // Textract's token: 1 to 64 of [a-zA-Z0-9-_]; the same token within
        // 7 days returns the same job instead of starting another.
        let ok = (1..=64).contains(&request_token.len())
            && request_token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(Error::Invalid(
                "request token: 1-64 of [A-Za-z0-9_-]".into(),
            ));
        }
        let out = self
            .client
            .start_document_text_detection()
            .document_location(
                DocumentLocation::builder()
                    .s3_object(self.object(key))
                    .build(),
            )
            .client_request_token(request_token)
            .send()
            .await
            .map_err(|e| sdk_error("textract", "starting a document job", e))?;
        out.job_id()
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                Error::dependency("textract", "no job id in the answer", false, "empty JobId")
            })
    }

    async fn document_job(&self, job_id: &str) -> Result<JobState<DocumentText>> {
        let mut text = String::new();
        let mut pages = 0;
        let mut next: Option<String> = None;
        // Results come in pages of up to 1,000 blocks: follow NextToken.
        loop {
            let out = self
                .client
                .get_document_text_detection()
                .job_id(job_id)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| sdk_error("textract", "reading a document job", e))?;
            match out.job_status() {
                Some(JobStatus::InProgress) | None => return Ok(JobState::Running),
                Some(JobStatus::Failed) => {
                    return Ok(JobState::Failed {
                        reason: out.status_message().unwrap_or("failed").to_string(),
                    })
                }
                // PARTIAL_SUCCESS: some pages could not be read; the rest is
                // worth having.
                Some(_) => {}
            }
            if let Some(p) = out.document_metadata().and_then(|m| m.pages()) {
                pages = page_count(Some(p));
            }
            lines_of(out.blocks(), &mut text);
            match out.next_token().filter(|t| !t.is_empty()) {
                Some(t) => next = Some(t.to_string()),
                None => break,
            }
        }
        Ok(JobState::Done {
            result: DocumentText { pages, text },
        })
    }
}

/// Speech on Amazon Transcribe. Transcripts are written to
/// `{output_bucket}/transcripts/{job name}.json` and read from there.
#[derive(Debug, Clone)]
pub struct TranscribeSpeech {
    client: aws_sdk_transcribe::Client,
    s3: aws_sdk_s3::Client,
    media_bucket: String,
    output_bucket: String,
}

/// A transcript JSON beyond this is not from a 16 MB voice note.
const MAX_TRANSCRIPT_BYTES: i64 = 20 * 1024 * 1024;

/// `{"results":{"transcripts":[{"transcript":"..."}], ...}, ...}`
#[derive(Deserialize)]
struct TranscriptFile {
    results: TranscriptResults,
}

#[derive(Deserialize)]
struct TranscriptResults {
    #[serde(default)]
    transcripts: Vec<TranscriptText>,
}

#[derive(Deserialize)]
struct TranscriptText {
    transcript: String,
}

impl TranscribeSpeech {
    pub fn new(
        client: aws_sdk_transcribe::Client,
        s3: aws_sdk_s3::Client,
        media_bucket: impl Into<String>,
        output_bucket: impl Into<String>,
    ) -> Self {
        TranscribeSpeech {
            client,
            s3,
            media_bucket: media_bucket.into(),
            output_bucket: output_bucket.into(),
        }
    }

    /// Where the transcript of `job_name` lands.
    pub fn output_key(job_name: &str) -> String {
        format!("transcripts/{job_name}.json")
    }

    async fn read_transcript(&self, job_name: &str) -> Result<String> {
        let key = Self::output_key(job_name);
        let object = self
            .s3
            .get_object()
            .bucket(&self.output_bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| sdk_error("s3", "reading a transcript", e))?;
        if object
            .content_length()
            .is_some_and(|n| n > MAX_TRANSCRIPT_BYTES)
        {
            return Err(Error::dependency(
                "transcribe",
                "transcript too large",
                false,
                "oversized transcript",
            ));
        }
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| Error::dependency("s3", "reading a transcript", true, e))?
            .into_bytes();
        let file: TranscriptFile = serde_json::from_slice(&bytes).map_err(|e| {
            Error::dependency(
                "transcribe",
                "transcript is not the expected JSON",
                false,
                e,
            )
        })?;
        Ok(file
            .results
            .transcripts
            .into_iter()
            .map(|t| t.transcript)
            .collect::<Vec<_>>()
            .join(" "))
    }
}

fn valid_job_name(name: &str) -> Result<()> {
    // Transcribe's rule: 1 to 200 of [0-9a-zA-Z._-].
    let ok = (1..=200).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid("job name: 1-200 of [0-9a-zA-Z._-]".into()))
    }
}

#[async_trait]
impl Transcriber for TranscribeSpeech {
    async fn start_transcription(
        &self,
        job_name: &str,
        key: &str,
        languages: &[String],
    ) -> Result<()> {
        checked(key)?;
        valid_job_name(job_name)?;
        let locales: Vec<LanguageCode> = speech_locales(languages)
            .into_iter()
            .map(LanguageCode::from)
            .collect();
        let request = self
            .client
            .start_transcription_job()
            .transcription_job_name(job_name)
            .media(
                Media::builder()
                    .media_file_uri(format!("s3://{}/{key}", self.media_bucket))
                    .build(),
            )
            .output_bucket_name(&self.output_bucket)
            .output_key(Self::output_key(job_name));
        // Identification needs at least two options; with one, it is known.
        let request = match locales.as_slice() {
            [] => {
                return Err(Error::Config(format!(
                    "none of the languages {languages:?} can be transcribed (es, en, pt)"
                )))
            }
            [one] => request.language_code(one.clone()),
            many => request
                .identify_language(true)
                .set_language_options(Some(many.to_vec())),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            // The job exists: a retried start, nothing more to do.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conflict_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error("transcribe", "starting a transcription", e)),
        }
    }

    async fn transcription(&self, job_name: &str) -> Result<JobState<Transcript>> {
        valid_job_name(job_name)?;
        let out = self
            .client
            .get_transcription_job()
            .transcription_job_name(job_name)
            .send()
            .await
            .map_err(|e| {
                // Transcribe answers an unknown job name with a
                // BadRequestException ("The requested job couldn't be
                // found"), not the NotFoundException its model lists.
                let unknown = e.as_service_error().is_some_and(|e| {
                    e.is_not_found_exception()
                        || (e.is_bad_request_exception()
                            && e.message().is_some_and(|m| m.contains("couldn't be found")))
                });
                if unknown {
                    Error::NotFound(format!("transcription job {job_name}"))
                } else {
                    sdk_error("transcribe", "reading a transcription", e)
                }
            })?;
        let Some(job) = out.transcription_job() else {
            return Ok(JobState::Running);
        };
        match job.transcription_job_status() {
            Some(TranscriptionJobStatus::Completed) => {
                let text = self.read_transcript(job_name).await?;
                Ok(JobState::Done {
                    result: Transcript {
                        text,
                        language: job.language_code().map(|l| l.as_str().to_string()),
                    },
                })
            }
            Some(TranscriptionJobStatus::Failed) => Ok(JobState::Failed {
                reason: job.failure_reason().unwrap_or("failed").to_string(),
            }),
            _ => Ok(JobState::Running),
        }
    }
}
