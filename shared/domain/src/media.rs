//! Media that users send (images, voice notes, documents, ...): what a
//! webhook says about it, the limits WhatsApp documents, what can go wrong
//! with it, where it is stored, and what the analysers make of it.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::whatsapp::inbound::{InboundMessage, Media, MessageContent};
use super::UserId;
use crate::error::{Error, Result};

const MB: u64 = 1024 * 1024;
const KB: u64 = 1024;

/// Webhook media ids stop working after this long (PROTOCOLS.md, "Media").
pub const MEDIA_ID_TTL_SECS: i64 = 7 * 24 * 3600;

/// The kinds of media message WhatsApp delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }

    /// The largest file WhatsApp lets a user send of this kind: images 5 MB,
    /// audio and video 16 MB, documents 100 MB, stickers 100 KB (500 KB
    /// animated). Anything bigger is not from WhatsApp: refused unread.
    pub fn max_bytes(self, animated: bool) -> u64 {
        match self {
            MediaKind::Image => 5 * MB,
            MediaKind::Audio | MediaKind::Video => 16 * MB,
            MediaKind::Document => 100 * MB,
            MediaKind::Sticker if animated => 500 * KB,
            MediaKind::Sticker => 100 * KB,
        }
    }

    /// Whether bytes sniffed as `mime` can be this kind of media. Documents
    /// may be anything (text files have no magic bytes to sniff).
    fn admits(self, mime: &str) -> bool {
        let top = mime.split('/').next().unwrap_or_default();
        match self {
            MediaKind::Image | MediaKind::Sticker => top == "image",
            // Voice notes and audio files come in containers that sniff as
            // video (mp4/m4a, webm) as often as audio.
            MediaKind::Audio | MediaKind::Video => top == "audio" || top == "video",
            MediaKind::Document => true,
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SHA-256 digest. Meta's documentation shows the webhook's `sha256` only
/// as a placeholder and does not say how it is encoded, so both encodings of
/// 32 bytes are accepted: 64 hex digits or base64 (padded or not).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let bytes = if s.len() == 64 {
            hex::decode(s).ok()?
        } else {
            let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
            b64.decode(s.trim_end_matches('=')).ok()?
        };
        <[u8; 32]>::try_from(bytes.as_slice())
            .ok()
            .map(Sha256Digest)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Sha256Digest(bytes)
    }

    pub fn of(data: &[u8]) -> Self {
        Sha256Digest(Sha256::digest(data).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Sha256Digest::parse(&s).ok_or_else(|| serde::de::Error::custom("not a sha256 digest"))
    }
}

/// One media message, as the webhook described it: what the fetch step needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaRef {
    pub media_id: String,
    pub kind: MediaKind,
    /// What the webhook says the type is (`mime_type`); checked against the
    /// bytes after download.
    pub mime_type: Option<String>,
    /// What the webhook says the hash is; `None` when absent or unreadable.
    pub sha256: Option<Sha256Digest>,
    pub caption: Option<String>,
    pub filename: Option<String>,
    pub voice: bool,
    pub animated: bool,
    pub wamid: String,
    #[serde(alias = "wa_id")]
    pub user_id: UserId,
    /// The message's unix seconds: the storage key's month, and the media
    /// id's expiry.
    pub timestamp: i64,
}

impl MediaRef {
    /// The media of an inbound message from `user` (the user the sender's
    /// ids resolved to); `None` for messages without media.
    pub fn from_inbound(msg: &InboundMessage, user: &UserId) -> Option<Result<Self>> {
        let (kind, media) = match &msg.content {
            MessageContent::Image(m) => (MediaKind::Image, m),
            MessageContent::Audio(m) => (MediaKind::Audio, m),
            MessageContent::Video(m) => (MediaKind::Video, m),
            MessageContent::Document(m) => (MediaKind::Document, m),
            MessageContent::Sticker(m) => (MediaKind::Sticker, m),
            _ => return None,
        };
        Some(Self::new(
            kind,
            media,
            &msg.id,
            user.as_str(),
            msg.timestamp,
        ))
    }

    pub fn new(
        kind: MediaKind,
        m: &Media,
        wamid: &str,
        from: &str,
        timestamp: i64,
    ) -> Result<Self> {
        if m.id.trim().is_empty() {
            return Err(Error::Invalid("media message without a media id".into()));
        }
        if wamid.trim().is_empty() {
            return Err(Error::Invalid("media message without a wamid".into()));
        }
        Ok(MediaRef {
            media_id: m.id.clone(),
            kind,
            mime_type: m.mime_type.clone(),
            sha256: m.sha256.as_deref().and_then(Sha256Digest::parse),
            caption: m.caption.clone(),
            filename: m.filename.clone(),
            voice: m.voice,
            animated: m.animated,
            wamid: wamid.to_string(),
            user_id: UserId::parse(from).map_err(Error::Invalid)?,
            timestamp,
        })
    }

    pub fn max_bytes(&self) -> u64 {
        self.kind.max_bytes(self.animated)
    }

    /// Whether the media id is past its 7 days at `now` (unix seconds).
    pub fn is_expired(&self, now_secs: i64) -> bool {
        now_secs.saturating_sub(self.timestamp) > MEDIA_ID_TTL_SECS
    }
}

/// Why a media file is refused. Expected outcomes about what a user sent,
/// not faults: retrying will not change them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum MediaProblem {
    /// Bigger than WhatsApp allows for the kind (declared, or as counted).
    #[error("{kind} is larger than {limit} bytes")]
    TooLarge { kind: MediaKind, limit: u64 },
    /// The bytes are not the ones the webhook announced.
    #[error("sha256 mismatch: expected {expected}, got {actual}")]
    HashMismatch { expected: String, actual: String },
    /// The bytes are not of the type declared (e.g. a PDF sent as image/jpeg).
    #[error("declared {declared}, but the bytes are {sniffed}")]
    MimeMismatch { declared: String, sniffed: String },
    /// The media id is older than 7 days, or Meta no longer knows it.
    #[error("the media id has expired")]
    Expired,
    #[error("unsupported media: {reason}")]
    Unsupported { reason: String },
}

impl From<MediaProblem> for Error {
    fn from(p: MediaProblem) -> Self {
        match p {
            MediaProblem::TooLarge { limit, .. } => Error::TooLarge {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            MediaProblem::Expired => Error::NotFound(p.to_string()),
            other => Error::Invalid(other.to_string()),
        }
    }
}

/// A verdict on the media itself: `Err` is a refusal, not a fault.
pub type MediaVerdict<T> = std::result::Result<T, MediaProblem>;

/// The MIME type the first bytes of a file show, if they show one.
pub fn sniff_mime(head: &[u8]) -> Option<&'static str> {
    infer::get(head).map(|t| t.mime_type())
}

/// How many first bytes [`sniff_mime`] wants (zip-based office formats are
/// recognised from entries further in than the magic number).
pub const SNIFF_BYTES: usize = 8 * 1024;

/// `image/jpeg; charset=x` -> `image/jpeg`.
fn essence(mime: &str) -> String {
    mime.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Checks what the bytes look like against the kind and the declared type.
/// Unknown bytes (no signature: plain text, CSV) are not a mismatch.
pub fn check_mime(
    kind: MediaKind,
    declared: Option<&str>,
    sniffed: Option<&str>,
) -> MediaVerdict<()> {
    let Some(sniffed) = sniffed.map(essence) else {
        return Ok(());
    };
    let declared = declared.map(essence).unwrap_or_default();
    let mismatch = || MediaProblem::MimeMismatch {
        declared: if declared.is_empty() {
            kind.as_str().to_string()
        } else {
            declared.clone()
        },
        sniffed: sniffed.clone(),
    };
    if !kind.admits(&sniffed) {
        return Err(mismatch());
    }
    // `application/octet-stream` says "unknown": nothing to contradict.
    if declared.is_empty() || declared == sniffed || declared == "application/octet-stream" {
        return Ok(());
    }
    let top = |m: &str| m.split('/').next().unwrap_or_default().to_string();
    let compatible = match kind {
        // Within images, audio and video a wrong subtype is a labelling
        // slip, not a disguise; the analysers sniff again anyway.
        MediaKind::Image | MediaKind::Sticker | MediaKind::Audio | MediaKind::Video => true,
        // Office and OpenDocument files are zip archives; anything else
        // declared as one type and sniffed as another is a disguise.
        MediaKind::Document => {
            (sniffed == "application/zip"
                && (declared.contains("openxmlformats")
                    || declared.contains("opendocument")
                    || declared.ends_with("+zip")
                    || declared == "application/epub+zip"))
                || (top(&declared) == top(&sniffed) && top(&sniffed) != "application")
        }
    };
    if compatible {
        Ok(())
    } else {
        Err(mismatch())
    }
}

/// The secret that keys user folders in storage keys. Kept out of logs.
#[derive(Clone)]
pub struct MediaKeySalt(SecretString);

impl fmt::Debug for MediaKeySalt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MediaKeySalt([redacted])")
    }
}

impl MediaKeySalt {
    /// At least 16 bytes: a short salt can be guessed, and with it every
    /// phone number behind a folder name, since phone numbers are few.
    pub fn parse(salt: SecretString) -> Result<Self> {
        if salt.expose_secret().len() < 16 {
            return Err(Error::Config(
                "the media key salt needs at least 16 bytes".into(),
            ));
        }
        Ok(MediaKeySalt(salt))
    }

    fn tag(&self, data: &str) -> String {
        // HMAC rather than sha256(salt + data): a keyed hash by construction.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(data.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

/// The storage key of a media message:
/// `media/{yyyy}/{mm}/{user}/{message}`.
///
/// - No phone number in it, in any form: keys show up in S3 access logs,
///   CloudTrail, inventories and error messages, which are not guarded like
///   the data. `user` is an HMAC of the user id (number or BSUID) with a secret salt (128 bits
///   shown), so it cannot be reversed by hashing every phone number, yet one
///   user's media share a folder per month (erasure: compute the folder).
/// - `message` is a plain hash of the wamid, since a wamid embeds the
///   sender's number in base64.
/// - Made only from the message, never from the clock: a redelivered
///   message, or a retried step, writes the same key (idempotent).
/// - Year and month first: listings, inventories and retention by time.
pub fn media_key(salt: &MediaKeySalt, media: &MediaRef) -> Result<String> {
    let at = jiff::Timestamp::from_second(media.timestamp)
        .map_err(|e| Error::Invalid(format!("message timestamp: {e}")))?;
    let month = at.strftime("%Y/%m");
    let user = salt.tag(media.user_id.as_str());
    let message = hex::encode(&Sha256::digest(media.wamid.as_bytes())[..16]);
    Ok(format!("media/{month}/{user}/{message}"))
}

/// Whether `key` has the shape [`media_key`] makes (the only keys stores
/// accept: nothing can reach outside the media prefix).
pub fn is_media_key(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    let hex_of = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let digits_of = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    parts.len() == 5
        && parts[0] == "media"
        && digits_of(parts[1], 4)
        && digits_of(parts[2], 2)
        && hex_of(parts[3], 32)
        && hex_of(parts[4], 32)
}

/// A downloaded file, whole and checked, at the path the caller chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchedMedia {
    pub path: std::path::PathBuf,
    pub bytes: u64,
    pub sha256: Sha256Digest,
    /// From the bytes; `None` when they have no known signature.
    pub sniffed_mime: Option<String>,
    /// What Meta declared (metadata, else webhook).
    pub declared_mime: Option<String>,
}

impl FetchedMedia {
    /// The type to store the file as: the bytes' own, else the declared one.
    pub fn content_type(&self) -> &str {
        self.sniffed_mime
            .as_deref()
            .or(self.declared_mime.as_deref())
            .unwrap_or("application/octet-stream")
    }
}

/// A media file in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMedia {
    pub key: String,
    pub bytes: u64,
    pub sha256_hex: String,
    pub mime: String,
}

/// A label with the analyser's confidence, 0 to 100.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    pub confidence: f32,
}

/// What an image shows. Each part is empty where the analyser cannot tell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageAnalysis {
    /// `png`, `jpeg`, ... where known.
    pub format: Option<String>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub labels: Vec<Label>,
    /// Unsafe content found (nudity, violence, ...), with its category.
    pub moderation: Vec<Label>,
    /// Lines of text in the image.
    pub text_lines: Vec<String>,
    /// What this analyser cannot tell (`labels`, `moderation`, `text`):
    /// empty lists there mean "not looked", not "nothing found".
    pub unavailable: Vec<String>,
}

/// Text read from a document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocumentText {
    pub pages: u32,
    /// Lines in reading order, pages one after another.
    pub text: String,
}

/// A transcribed voice note or audio file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub text: String,
    /// The language found, as the service names it (`es-US`).
    pub language: Option<String>,
}

/// A long job (multi-page text detection, transcription), polled by the
/// caller between waits (a Step Functions Wait state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState<T> {
    Running,
    Done { result: T },
    Failed { reason: String },
}

/// The speech locales the transcriber may choose among for a profile's
/// languages (`es`, `en`, `pt`); others are skipped.
pub fn speech_locales(languages: &[String]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for lang in languages {
        let locales: &[&'static str] = match lang.trim().to_ascii_lowercase().as_str() {
            "es" => &["es-ES", "es-US"],
            "en" => &["en-US"],
            "pt" => &["pt-BR"],
            _ => &[],
        };
        for l in locales {
            if !out.contains(l) {
                out.push(*l);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn media_ref(user_id: &str, wamid: &str, ts: i64) -> MediaRef {
        let m = Media {
            id: "1234567890".into(),
            mime_type: Some("image/jpeg".into()),
            ..Media::default()
        };
        MediaRef::new(MediaKind::Image, &m, wamid, user_id, ts).expect("valid")
    }

    fn salt(s: &str) -> MediaKeySalt {
        MediaKeySalt::parse(SecretString::from(s)).expect("salt")
    }

    #[test]
    fn limits_are_the_documented_ones() {
        assert_eq!(MediaKind::Image.max_bytes(false), 5 * 1024 * 1024);
        assert_eq!(MediaKind::Audio.max_bytes(false), 16 * 1024 * 1024);
        assert_eq!(MediaKind::Video.max_bytes(false), 16 * 1024 * 1024);
        assert_eq!(MediaKind::Document.max_bytes(false), 100 * 1024 * 1024);
        assert_eq!(MediaKind::Sticker.max_bytes(false), 100 * 1024);
        assert_eq!(MediaKind::Sticker.max_bytes(true), 500 * 1024);
    }

    #[test]
    fn sha256_is_read_as_hex_or_base64() {
        let d = Sha256Digest::of(b"hola");
        let b64 = base64::engine::general_purpose::STANDARD.encode(d.0);
        assert_eq!(Sha256Digest::parse(&d.to_hex()), Some(d));
        assert_eq!(Sha256Digest::parse(&d.to_hex().to_uppercase()), Some(d));
        assert_eq!(Sha256Digest::parse(&b64), Some(d));
        assert_eq!(Sha256Digest::parse(b64.trim_end_matches('=')), Some(d));
        assert_eq!(Sha256Digest::parse("abc"), None);
        assert_eq!(Sha256Digest::parse(&"g".repeat(64)), None);
    }

    #[test]
    fn the_key_hides_the_number_and_is_stable() {
        let wa = "5491155551234";
        let r = media_ref(
            wa,
            "wamid.HBgNNTQ5MTE1NTU1MTIzNBUCABIYFjNFQjA=",
            1_763_900_000,
        );
        let key = media_key(&salt("0123456789abcdef"), &r).expect("key");
        assert!(key.starts_with("media/2025/11/"), "{key}");
        assert!(is_media_key(&key), "{key}");
        assert!(!key.contains(wa) && !key.contains("NTQ5MTE1"), "{key}");
        assert_eq!(key, media_key(&salt("0123456789abcdef"), &r).expect("key"));
        let other_salt = media_key(&salt("fedcba9876543210"), &r).expect("key");
        assert_ne!(key, other_salt, "the folder depends on the secret");
        let user = |k: &str| k.split('/').nth(3).map(str::to_string);
        let same_user = media_key(
            &salt("0123456789abcdef"),
            &media_ref(wa, "wamid.2", 1_763_900_000),
        );
        assert_eq!(user(&key), user(&same_user.expect("key")));
    }

    #[test]
    fn the_key_of_a_user_known_by_bsuid_hides_the_bsuid() {
        let bsuid = "AR.1502576394655843";
        let r = media_ref(bsuid, "wamid.BSUID", 1_763_900_000);
        let key = media_key(&salt("0123456789abcdef"), &r).expect("key");
        assert!(is_media_key(&key), "{key}");
        assert!(
            !key.contains("1502576394655843") && !key.contains("AR."),
            "{key}"
        );
    }

    #[test]
    fn a_short_salt_is_refused() {
        assert!(MediaKeySalt::parse(SecretString::from("short")).is_err());
        assert!(!format!("{:?}", salt("0123456789abcdef")).contains("0123"));
    }

    #[test]
    fn a_pdf_declared_as_jpeg_is_a_mismatch() {
        let r = check_mime(
            MediaKind::Image,
            Some("image/jpeg"),
            Some("application/pdf"),
        );
        assert!(matches!(r, Err(MediaProblem::MimeMismatch { .. })), "{r:?}");
        let r = check_mime(
            MediaKind::Document,
            Some("application/pdf"),
            Some("application/x-executable"),
        );
        assert!(r.is_err());
    }

    #[test]
    fn harmless_differences_are_not_mismatches() {
        assert!(check_mime(MediaKind::Image, Some("image/jpeg"), Some("image/jpeg")).is_ok());
        assert!(check_mime(MediaKind::Image, Some("image/jpeg"), Some("image/png")).is_ok());
        assert!(check_mime(
            MediaKind::Audio,
            Some("audio/ogg; codecs=opus"),
            Some("audio/ogg")
        )
        .is_ok());
        assert!(check_mime(MediaKind::Audio, Some("audio/mp4"), Some("video/mp4")).is_ok());
        assert!(check_mime(MediaKind::Document, Some("text/csv"), None).is_ok());
        assert!(check_mime(
            MediaKind::Document,
            Some("application/octet-stream"),
            Some("application/pdf")
        )
        .is_ok());
        assert!(check_mime(
            MediaKind::Document,
            Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            Some("application/zip")
        )
        .is_ok());
    }

    #[test]
    fn languages_map_to_speech_locales() {
        let langs = ["es", "en", "pt", "fr", "es"].map(String::from);
        assert_eq!(speech_locales(&langs), ["es-ES", "es-US", "en-US", "pt-BR"]);
    }

    #[test]
    fn problems_become_the_shared_error() {
        let e: Error = MediaProblem::TooLarge {
            kind: MediaKind::Image,
            limit: 5,
        }
        .into();
        assert!(matches!(e, Error::TooLarge { limit: 5 }));
        assert!(!e.is_retryable());
    }

    proptest! {
        #[test]
        fn digest_parsing_never_panics(s in ".{0,100}") {
            let _ = Sha256Digest::parse(&s);
        }

        #[test]
        fn keys_are_well_formed_for_any_user(n in 1_000_000u64..999_999_999_999_999, wamid in "[A-Za-z0-9.=_-]{1,80}", ts in 0i64..4_000_000_000) {
            let r = media_ref(&n.to_string(), &wamid, ts);
            let key = media_key(&salt("0123456789abcdef"), &r).expect("key");
            prop_assert!(is_media_key(&key));
            prop_assert!(!key.contains(&n.to_string()));
        }
    }
}
