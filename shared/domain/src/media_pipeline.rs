//! The media pipeline's document: what the state machine carries from task
//! to task, how each media message ends up (understood, or failed), and the
//! words the user and the responder see about it.

use crate::UserId;
use serde::{Deserialize, Serialize};

use super::media::{
    DocumentText, ImageAnalysis, MediaKind, MediaProblem, MediaRef, StoredMedia, Transcript,
};
use super::whatsapp::inbound::InboundMessage;
use crate::error::{Error, Result};

/// The longest description handed to the responder (a 100-page PDF would
/// otherwise fill the model's context).
pub const MAX_DESCRIPTION_CHARS: usize = 4_000;

/// How many polls of a long job before giving up (with the state machine's
/// waits, about 15 minutes; Transcribe takes a fraction of real time).
pub const MAX_POLLS: u32 = 60;

/// What the state machine does after the download: its Choice reads this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Labels, unsafe content and text of a photo.
    Image,
    /// An image sent as a document (a photo of a bill): text at once.
    DocumentSync,
    /// A PDF or TIFF: the asynchronous text job, polled.
    DocumentJob,
    /// Voice notes and audio: the transcription job, polled.
    Speech,
    /// Video, stickers and document types nothing reads: recorded, and the
    /// user is told honestly.
    RecordOnly,
}

/// Which route a stored file takes.
pub fn route_for(kind: MediaKind, mime: &str) -> Route {
    let top = mime.split('/').next().unwrap_or_default();
    match kind {
        MediaKind::Image => Route::Image,
        MediaKind::Audio => Route::Speech,
        MediaKind::Video | MediaKind::Sticker => Route::RecordOnly,
        MediaKind::Document if top == "image" && mime != "image/tiff" => Route::DocumentSync,
        MediaKind::Document if mime == "application/pdf" || mime == "image/tiff" => {
            Route::DocumentJob
        }
        MediaKind::Document => Route::RecordOnly,
    }
}

/// The error a task reports to the state machine (`$.error` after a Catch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    #[serde(rename = "Error", default)]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

/// The one document every task reads and returns (`ResultPath: "$"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaJob {
    pub media: MediaRef,
    /// The business number the message came to: notices go out from it.
    pub phone_number_id: String,
    /// Where the download put the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<StoredMedia>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    /// The Textract job id, or the Transcribe job name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default)]
    pub polls: u32,
    /// Set by a poll: the Choice after it loops while this is false.
    #[serde(default)]
    pub done: bool,
    /// What the user sent, in words, once understood.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A refusal decided by a step (too large, wrong hash, unsafe, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<MediaFailure>,
    /// Put here by the state machine's Catch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
}

impl MediaJob {
    /// The job for an inbound media message; `None` for other messages.
    pub fn from_inbound(
        msg: &InboundMessage,
        user: &UserId,
        phone_number_id: &str,
    ) -> Option<Result<Self>> {
        let media = MediaRef::from_inbound(msg, user)?;
        Some(media.map(|media| MediaJob::new(media, phone_number_id)))
    }

    pub fn new(media: MediaRef, phone_number_id: &str) -> Self {
        MediaJob {
            media,
            phone_number_id: phone_number_id.to_string(),
            stored: None,
            route: None,
            job_id: None,
            polls: 0,
            done: false,
            description: None,
            problem: None,
            error: None,
        }
    }

    /// The execution name: from the wamid, at most 80 characters of
    /// `[0-9A-Za-z_-]` (what Step Functions allows). A wamid is base64 and
    /// longer than 80, so it is hashed: the same message, the same name,
    /// and a second start is refused.
    pub fn execution_name(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.media.wamid.as_bytes());
        format!("media-{}", hex::encode(&digest[..24]))
    }
}

/// Why a media message could not be understood: what the user is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum MediaFailure {
    /// Refused by the download's checks.
    Refused { problem: MediaProblem },
    /// Unsafe content: the pipeline stops and the conversation is flagged.
    Unsafe { categories: Vec<String> },
    /// A job failed, or took too long.
    Unreadable { detail: String },
    /// A fault that outlasted the retries.
    Failed { detail: String },
}

impl MediaFailure {
    /// From the state machine's `$.error`, when no step decided a problem.
    pub fn from_step_error(e: &StepError) -> Self {
        MediaFailure::Failed {
            detail: format!("{}: {}", e.error, truncate(&e.cause, 300)),
        }
    }

    /// The short reason kept with the message (no user content in it).
    pub fn summary(&self) -> String {
        match self {
            MediaFailure::Refused { problem } => match problem {
                MediaProblem::TooLarge { .. } => "too large".into(),
                MediaProblem::HashMismatch { .. } => "damaged in transfer (sha256 mismatch)".into(),
                MediaProblem::MimeMismatch { .. } => "not the type it claims to be".into(),
                MediaProblem::Expired => "expired".into(),
                MediaProblem::Unsupported { reason } => format!("unsupported: {reason}"),
            },
            MediaFailure::Unsafe { .. } => "unsafe content".into(),
            MediaFailure::Unreadable { .. } => "could not be read".into(),
            MediaFailure::Failed { .. } => "could not be processed".into(),
        }
    }

    /// What the user is told, once, in `language` (`es`, `pt`, else English).
    pub fn notice(&self, kind: MediaKind, language: &str) -> String {
        let lang = language.get(..2).unwrap_or("en").to_ascii_lowercase();
        let what = kind_words(kind, &lang);
        let why = match (self, lang.as_str()) {
            (
                MediaFailure::Refused {
                    problem: MediaProblem::TooLarge { .. },
                },
                "es",
            ) => "es demasiado grande",
            (
                MediaFailure::Refused {
                    problem: MediaProblem::TooLarge { .. },
                },
                "pt",
            ) => "é grande demais",
            (
                MediaFailure::Refused {
                    problem: MediaProblem::TooLarge { .. },
                },
                _,
            ) => "is too large",
            (
                MediaFailure::Refused {
                    problem: MediaProblem::Expired,
                },
                "es",
            ) => "ya no está disponible",
            (
                MediaFailure::Refused {
                    problem: MediaProblem::Expired,
                },
                "pt",
            ) => "não está mais disponível",
            (
                MediaFailure::Refused {
                    problem: MediaProblem::Expired,
                },
                _,
            ) => "is no longer available",
            (MediaFailure::Unsafe { .. }, "es") => "no se puede procesar; una persona lo revisará",
            (MediaFailure::Unsafe { .. }, "pt") => {
                "não pode ser processado; uma pessoa vai revisá-lo"
            }
            (MediaFailure::Unsafe { .. }, _) => "cannot be processed; a person will review it",
            (_, "es") => "no se pudo leer",
            (_, "pt") => "não pôde ser lido",
            (_, _) => "could not be read",
        };
        if matches!(self, MediaFailure::Unsafe { .. }) {
            // Not an invitation to send it again: people have it now.
            return match lang.as_str() {
                "es" => format!("Lo siento, {what} que enviaste {why}."),
                "pt" => format!("Desculpe, {what} que você enviou {why}."),
                _ => format!("Sorry, the {what} you sent {why}."),
            };
        }
        match lang.as_str() {
            "es" => format!("Lo siento, {what} que enviaste {why}. ¿Puedes enviarlo de nuevo o escribirme lo que necesitas?"),
            "pt" => format!("Desculpe, {what} que você enviou {why}. Pode enviar de novo ou me escrever o que precisa?"),
            _ => format!("Sorry, the {what} you sent {why}. Could you send it again, or write what you need?"),
        }
    }
}

fn kind_words(kind: MediaKind, lang: &str) -> &'static str {
    match (kind, lang) {
        (MediaKind::Image, "es") => "la imagen",
        (MediaKind::Audio, "es") => "el audio",
        (MediaKind::Video, "es") => "el video",
        (MediaKind::Document, "es") => "el documento",
        (MediaKind::Sticker, "es") => "el sticker",
        (MediaKind::Image, "pt") => "a imagem",
        (MediaKind::Audio, "pt") => "o áudio",
        (MediaKind::Video, "pt") => "o vídeo",
        (MediaKind::Document, "pt") => "o documento",
        (MediaKind::Sticker, "pt") => "a figurinha",
        (MediaKind::Image, _) => "image",
        (MediaKind::Audio, _) => "audio",
        (MediaKind::Video, _) => "video",
        (MediaKind::Document, _) => "document",
        (MediaKind::Sticker, _) => "sticker",
    }
}

/// How a media message ended, kept beside the conversation by wamid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MediaNote {
    /// The responder sees `description` in place of the message's text.
    Understood { description: String },
    /// The user was told `summary`; the message is answered by that notice.
    Failed { summary: String },
}

impl MediaNote {
    /// The text the responder sees for the media message.
    pub fn text_for_responder(&self, kind: &str) -> String {
        match self {
            MediaNote::Understood { description } => description.clone(),
            MediaNote::Failed { summary } => format!("[{kind}: {summary}; the user was told]"),
        }
    }
}

/// Whether a stored message's kind is media (the pipeline's business).
pub fn is_media_kind(kind: &str) -> bool {
    matches!(kind, "image" | "audio" | "video" | "document" | "sticker")
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn caption_part(media: &MediaRef) -> String {
    let mut out = String::new();
    if let Some(f) = media.filename.as_deref().filter(|f| !f.trim().is_empty()) {
        out.push_str(&format!(" File name: {}.", truncate(f, 200)));
    }
    if let Some(c) = media.caption.as_deref().filter(|c| !c.trim().is_empty()) {
        out.push_str(&format!(" Caption: {}", truncate(c, 1000)));
    }
    out
}

/// "The user sent a photo ...": what the responder reads for an image.
pub fn describe_image(media: &MediaRef, a: &ImageAnalysis) -> String {
    let mut s = String::from("[The user sent a photo");
    if let (Some(w), Some(h)) = (a.width, a.height) {
        s.push_str(&format!(
            " ({}, {w}x{h})",
            a.format.as_deref().unwrap_or("image")
        ));
    }
    s.push('.');
    if !a.labels.is_empty() {
        let names: Vec<&str> = a.labels.iter().take(10).map(|l| l.name.as_str()).collect();
        s.push_str(&format!(" It shows: {}.", names.join(", ")));
    }
    if !a.text_lines.is_empty() {
        s.push_str(&format!(" Text in it: {}", a.text_lines.join(" / ")));
        s.push('.');
    }
    if !a.unavailable.is_empty() {
        s.push_str(&format!(
            " (Not available here: {}.)",
            a.unavailable.join(", ")
        ));
    }
    s.push_str(&caption_part(media));
    s.push(']');
    truncate(&s, MAX_DESCRIPTION_CHARS)
}

pub fn describe_document(media: &MediaRef, d: &DocumentText) -> String {
    let noun = if media.kind == MediaKind::Image {
        "a photo of a document".to_string()
    } else {
        format!(
            "a document ({} page{})",
            d.pages,
            if d.pages == 1 { "" } else { "s" }
        )
    };
    let text = d.text.trim();
    let body = if text.is_empty() {
        " No text could be read in it.".to_string()
    } else {
        format!(" Text in it: {}", text.replace('\n', " / "))
    };
    truncate(
        &format!("[The user sent {noun}.{body}{}]", caption_part(media)),
        MAX_DESCRIPTION_CHARS,
    )
}

pub fn describe_transcript(media: &MediaRef, t: &Transcript) -> String {
    let noun = if media.voice {
        "a voice note"
    } else {
        "an audio file"
    };
    let lang = t
        .language
        .as_deref()
        .map(|l| format!(" (in {l})"))
        .unwrap_or_default();
    let text = t.text.trim();
    let body = if text.is_empty() {
        " Nothing could be understood in it.".to_string()
    } else {
        format!(" It says{lang}: \"{text}\"")
    };
    truncate(
        &format!("[The user sent {noun}.{body}{}]", caption_part(media)),
        MAX_DESCRIPTION_CHARS,
    )
}

/// Video, stickers and unreadable document types: recorded, described
/// honestly, so the responder can say it cannot see them.
pub fn describe_unread(media: &MediaRef, mime: &str) -> String {
    let what = match media.kind {
        MediaKind::Video => "a video".to_string(),
        MediaKind::Sticker => "a sticker".to_string(),
        _ => format!("a file of type {mime}"),
    };
    truncate(
        &format!(
            "[The user sent {what}; its content cannot be read here, so tell the user honestly and ask what they need.{}]",
            caption_part(media)
        ),
        MAX_DESCRIPTION_CHARS,
    )
}

/// A step's input or output that does not parse is a bug or a hand-made
/// event: final, never retried.
pub fn parse_job(value: serde_json::Value) -> Result<MediaJob> {
    serde_json::from_value(value).map_err(|e| Error::Invalid(format!("not a media job: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserId;

    fn media(kind: MediaKind) -> MediaRef {
        MediaRef {
            media_id: "123".into(),
            kind,
            mime_type: None,
            sha256: None,
            caption: Some("¿cuánto debo?".into()),
            filename: None,
            voice: true,
            animated: false,
            wamid: "wamid.HBgLNTczMDAwMDAwMDAVAgASGBQzQUFBQUFBQUFBQUFBQUFBQUFBQQA=".into(),
            user_id: UserId::parse("573000000000").expect("valid"),
            timestamp: 1_700_000_000,
        }
    }

    #[test]
    fn execution_names_are_short_stable_and_allowed() {
        let a = MediaJob::new(media(MediaKind::Image), "1");
        let name = a.execution_name();
        assert!(name.len() <= 80);
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            name,
            MediaJob::new(media(MediaKind::Audio), "2").execution_name()
        );
        let mut other = media(MediaKind::Image);
        other.wamid.push('x');
        assert_ne!(name, MediaJob::new(other, "1").execution_name());
    }

    #[test]
    fn routes_by_kind_and_type() {
        assert_eq!(route_for(MediaKind::Image, "image/jpeg"), Route::Image);
        assert_eq!(
            route_for(MediaKind::Document, "image/png"),
            Route::DocumentSync
        );
        assert_eq!(
            route_for(MediaKind::Document, "application/pdf"),
            Route::DocumentJob
        );
        assert_eq!(
            route_for(MediaKind::Document, "image/tiff"),
            Route::DocumentJob
        );
        assert_eq!(
            route_for(MediaKind::Document, "application/zip"),
            Route::RecordOnly
        );
        assert_eq!(route_for(MediaKind::Audio, "audio/ogg"), Route::Speech);
        assert_eq!(route_for(MediaKind::Video, "video/mp4"), Route::RecordOnly);
        assert_eq!(
            route_for(MediaKind::Sticker, "image/webp"),
            Route::RecordOnly
        );
    }

    #[test]
    fn descriptions_carry_text_and_caption_and_are_bounded() {
        let m = media(MediaKind::Document);
        let d = DocumentText {
            pages: 2,
            text: "Factura\nTotal: 52.300".repeat(1000),
        };
        let s = describe_document(&m, &d);
        assert!(s.starts_with("[The user sent a document (2 pages). Text in it: Factura / Total"));
        assert!(s.chars().count() <= MAX_DESCRIPTION_CHARS + 1);
        let t = describe_transcript(
            &m,
            &Transcript {
                text: "hola".into(),
                language: Some("es-US".into()),
            },
        );
        assert_eq!(
            t,
            "[The user sent a voice note. It says (in es-US): \"hola\" Caption: ¿cuánto debo?]"
        );
    }

    #[test]
    fn an_unsafe_notice_says_a_person_will_look_and_asks_for_nothing() {
        let f = MediaFailure::Unsafe {
            categories: vec!["Violence".into()],
        };
        let es = f.notice(MediaKind::Image, "es");
        assert!(es.contains("una persona lo revisará"), "{es}");
        assert!(!es.contains("enviarlo de nuevo"), "{es}");
        assert!(!f.notice(MediaKind::Image, "en").contains("send it again"));
    }

    #[test]
    fn notices_name_the_kind_and_reason_in_the_language() {
        let f = MediaFailure::Refused {
            problem: MediaProblem::TooLarge {
                kind: MediaKind::Image,
                limit: 5,
            },
        };
        assert!(f
            .notice(MediaKind::Image, "es")
            .contains("la imagen que enviaste es demasiado grande"));
        assert!(f
            .notice(MediaKind::Image, "en")
            .contains("image you sent is too large"));
        assert!(f.notice(MediaKind::Image, "").contains("too large"));
    }

    #[test]
    fn jobs_round_trip_with_the_catch_error() {
        let mut job = MediaJob::new(media(MediaKind::Image), "1");
        job.error = Some(StepError {
            error: "Charla.Retryable".into(),
            cause: "x".into(),
        });
        let v = serde_json::to_value(&job).expect("serialize");
        assert_eq!(v["error"]["Error"], "Charla.Retryable");
        assert_eq!(parse_job(v).expect("parse"), job);
        assert!(parse_job(serde_json::json!({"media": 1})).is_err());
    }
}
