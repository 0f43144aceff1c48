//! What the HTTP adapters (Graph API, chat models, CRM) share: the client
//! with its timeouts, the backoff, and how transport failures and refused
//! statuses become errors. Each adapter keeps its own settings and defaults.

use std::time::Duration;

use backon::ExponentialBuilder;
use reqwest::StatusCode;

use domain::error::{Error, Result};

/// One client per adapter, built once: connection pool, timeouts, our name.
pub fn client(
    service: &'static str,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .user_agent(concat!("charla/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::dependency(service, "building the HTTP client", false, e))
}

/// Exponential backoff with jitter: `attempts` tries in all (the first
/// included), within `max_elapsed`.
pub fn backoff(
    min_delay: Duration,
    max_delay: Duration,
    attempts: usize,
    max_elapsed: Duration,
) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(min_delay)
        .with_max_delay(max_delay)
        .with_max_times(attempts.saturating_sub(1))
        .with_total_delay(Some(max_elapsed))
        .with_jitter()
}

#[derive(Debug, thiserror::Error)]
#[error("unexpected HTTP status {0}")]
pub struct UnexpectedStatus(pub u16);

#[derive(Debug, thiserror::Error)]
#[error("unexpected answer")]
pub struct UnexpectedAnswer;

/// 5xx and 429 may pass; any other refusal (401, 403, 400, ...) will not.
pub fn status_error(service: &'static str, status: StatusCode) -> Error {
    let retryable = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    Error::dependency(
        service,
        format!("HTTP {}", status.as_u16()),
        retryable,
        UnexpectedStatus(status.as_u16()),
    )
}

/// Connect errors and timeouts are retried; anything else from the transport
/// is not (the request may have been sent, and a retry could send it twice).
/// The URL is dropped: it can hold a customer's id or a phone number.
pub fn transport_error(service: &'static str, e: reqwest::Error) -> Error {
    let e = e.without_url();
    let (context, retryable) = if e.is_timeout() {
        ("request timed out", true)
    } else if e.is_connect() {
        ("could not connect", true)
    } else {
        ("request failed", false)
    };
    Error::dependency(service, context, retryable, e)
}
