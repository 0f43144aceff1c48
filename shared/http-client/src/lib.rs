//! What the HTTP adapters (Graph API, Chatwoot, chat models, CRM, voice
//! providers) share: one [`HttpPolicy`] (the client with its timeouts, the
//! backoff, the bound on a whole call), and how transport failures and
//! refused statuses become errors. Each adapter keeps its own defaults.

use std::future::Future;
use std::time::Duration;

use backon::ExponentialBuilder;
use reqwest::StatusCode;

use domain::error::{Error, Result};

/// Timeouts and retries of one outside service. Every adapter uses this one
/// type, each with its own defaults (there is no `Default`: no value fits
/// both a CRM lookup the user waits on and a slow model on a CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpPolicy {
    /// To open a connection.
    pub connect_timeout: Duration,
    /// For one request, from sending to the whole answer read.
    pub request_timeout: Duration,
    /// Tries per call, the first included (at least 1).
    pub max_attempts: usize,
    /// First backoff delay; doubles on each retry, plus jitter.
    pub min_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// The whole call, retries included.
    pub max_elapsed: Duration,
}

impl HttpPolicy {
    /// One client per adapter, built once: connection pool, timeouts, our
    /// name.
    pub fn client(&self, service: &'static str) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .user_agent(concat!("charla/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::dependency(service, "building the HTTP client", false, e))
    }

    /// Exponential backoff with jitter: `max_attempts` tries in all (the
    /// first included), within `max_elapsed`.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1))
            .with_total_delay(Some(self.max_elapsed))
            .with_jitter()
    }

    /// Runs `call` (usually the retried attempts) within `max_elapsed`. Past
    /// it, a retryable error of `service`: `"{what}: gave up after ..."`.
    pub async fn within<T>(
        &self,
        service: &'static str,
        what: &str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.max_elapsed, call).await {
            Ok(result) => result,
            Err(elapsed) => Err(Error::dependency(
                service,
                format!("{what}: gave up after {:?}", self.max_elapsed),
                true,
                elapsed,
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unexpected HTTP status {0}")]
pub struct UnexpectedStatus(pub u16);

#[derive(Debug, thiserror::Error)]
#[error("unexpected answer")]
pub struct UnexpectedAnswer;

/// 5xx and 429 may pass; any other refusal (401, 403, 400, ...) will not.
pub fn status_error(service: &'static str, status: StatusCode) -> Error {
    status_error_context(service, format!("HTTP {}", status.as_u16()), status)
}

/// [`status_error`], naming the operation: `"{op}: HTTP {status}"`.
pub fn op_status_error(service: &'static str, op: &str, status: StatusCode) -> Error {
    status_error_context(service, format!("{op}: HTTP {}", status.as_u16()), status)
}

fn status_error_context(service: &'static str, context: String, status: StatusCode) -> Error {
    let retryable = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    Error::dependency(
        service,
        context,
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

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    fn policy(max_attempts: usize) -> HttpPolicy {
        HttpPolicy {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            max_attempts,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(60),
        }
    }

    #[test]
    fn max_attempts_counts_the_first_try() {
        assert_eq!(policy(3).backoff().build().count(), 2);
        assert_eq!(policy(1).backoff().build().count(), 0);
        assert_eq!(policy(0).backoff().build().count(), 0);
    }

    #[tokio::test]
    async fn within_passes_the_result_through() {
        let ok = policy(1).within("svc", "op", async { Ok(7) }).await;
        assert_eq!(ok.ok(), Some(7));
        let refused = policy(1)
            .within::<()>("svc", "op", async {
                Err(status_error("svc", StatusCode::BAD_REQUEST))
            })
            .await
            .expect_err("refused");
        assert!(!refused.is_retryable(), "{refused:?}");
    }

    #[tokio::test]
    async fn within_gives_up_after_max_elapsed_with_a_retryable_error() {
        let policy = HttpPolicy {
            max_elapsed: Duration::from_millis(10),
            ..policy(1)
        };
        let err = policy
            .within::<()>("svc", "lookup", std::future::pending())
            .await
            .expect_err("gave up");
        assert!(err.is_retryable(), "{err:?}");
        assert_eq!(err.to_string(), "svc: lookup: gave up after 10ms");
    }

    #[test]
    fn status_errors_name_the_status_and_the_operation() {
        let plain = status_error("svc", StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(plain.to_string(), "svc: HTTP 503");
        assert!(plain.is_retryable());
        let named = op_status_error("svc", "create contact", StatusCode::FORBIDDEN);
        assert_eq!(named.to_string(), "svc: create contact: HTTP 403");
        assert!(!named.is_retryable());
    }
}
