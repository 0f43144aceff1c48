//! The one error type of Charla. Causes are kept (`#[source]`) and the mapping
//! to HTTP status codes lives here, in one place.

use std::error::Error as StdError;

pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something we cannot accept (bad JSON, bad field, ...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Missing or wrong credentials or signature.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// Authenticated, but not allowed.
    #[error("forbidden")]
    Forbidden,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("payload too large: limit is {limit} bytes")]
    TooLarge { limit: usize },
    /// A conditional write lost, or a state change was refused.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Start-up configuration is missing or wrong; stops a cold start.
    #[error("configuration: {0}")]
    Config(String),
    /// A dependency (store, queue, bucket, secrets, HTTP service) failed.
    #[error("{service}: {context}")]
    Dependency {
        service: &'static str,
        context: String,
        retryable: bool,
        #[source]
        source: BoxError,
    },
    /// The WhatsApp Graph API refused a request.
    #[error("whatsapp api error {code}: {message}")]
    Graph {
        code: i64,
        message: String,
        class: crate::whatsapp::errors::GraphErrorClass,
    },
}

impl Error {
    pub fn dependency(
        service: &'static str,
        context: impl Into<String>,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Dependency {
            service,
            context: context.into(),
            retryable,
            source: source.into(),
        }
    }

    /// HTTP status for this error. The only place errors become status codes.
    pub fn status_code(&self) -> u16 {
        match self {
            Error::Invalid(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden => 403,
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::TooLarge { .. } => 413,
            Error::Config(_) | Error::Graph { .. } => 500,
            Error::Dependency { retryable, .. } => {
                if *retryable {
                    503
                } else {
                    500
                }
            }
        }
    }

    /// The body a caller sees: client errors say what was wrong, server
    /// errors reveal nothing.
    pub fn public_message(&self) -> String {
        match self.status_code() {
            400..=499 => self.to_string(),
            _ => "internal error".to_string(),
        }
    }

    /// Whether trying the same work again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Dependency { retryable, .. } => *retryable,
            Error::Graph { class, .. } => class.is_retryable(),
            _ => false,
        }
    }

    /// Client errors are expected outcomes, not faults to log as errors.
    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status_code())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Invalid(e.to_string())
    }
}
