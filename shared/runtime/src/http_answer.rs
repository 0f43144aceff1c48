//! How the HTTP functions answer (ingestion, admin, voice, the Chatwoot
//! webhook): JSON bodies, and an error mapped to its status in one place.
//! Client errors say what was wrong and are logged at info, not as errors;
//! server errors are logged with their cause and answered generically
//! ([`Error::public_message`]). Retryable ones (503: a passing failure, or
//! the one-process runner refusing a flood past its journal's cap) are
//! logged at most once a second, with how many were not: a flood answered
//! 503 tens of thousands of times a second would otherwise be as many log
//! lines.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use domain::error::Error;

/// `body` as JSON with `status`.
pub fn json(status: StatusCode, body: &serde_json::Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `response`, marked not to be cached (an operator's data, behind a key).
pub fn no_store(mut response: Response<Bytes>) -> Response<Bytes> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `{"error": "..."}` with the error's status; `what` names the request in
/// the log ("webhook", "admin request").
pub fn error(e: &Error, what: &'static str) -> Response<Bytes> {
    let status = StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if e.is_client_error() {
        tracing::info!(status = status.as_u16(), error = %e, "{what} refused");
    } else if !e.is_retryable() {
        tracing::error!(status = status.as_u16(), error = %e, source = ?std::error::Error::source(e), "{what} failed");
    } else if let Some(not_logged) = RETRYABLE.pass(jiff::Timestamp::now().as_second()) {
        tracing::error!(status = status.as_u16(), error = %e, source = ?std::error::Error::source(e), not_logged, "{what} failed (retryable; those since the last line like it were not logged)");
    }
    json(status, &serde_json::json!({ "error": e.public_message() }))
}

static RETRYABLE: Throttle = Throttle::new();

/// Lets one event a second through, counting the others.
struct Throttle {
    second: AtomicI64,
    skipped: AtomicU64,
}

impl Throttle {
    const fn new() -> Self {
        Throttle {
            second: AtomicI64::new(i64::MIN),
            skipped: AtomicU64::new(0),
        }
    }

    /// `Some(events not let through since the last one)` for the first
    /// event of second `now_s`, `None` for the others.
    fn pass(&self, now_s: i64) -> Option<u64> {
        if self.second.swap(now_s, Ordering::Relaxed) == now_s {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            None
        } else {
            Some(self.skipped.swap(0, Ordering::Relaxed))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_say_why_and_server_errors_say_nothing_more() {
        let refused = error(&Error::Invalid("no such field".into()), "test");
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let failed = error(
            &Error::dependency("dynamodb", "put", true, "secret detail"),
            "test",
        );
        assert!(failed.status().is_server_error());
        assert!(!String::from_utf8_lossy(failed.body()).contains("secret detail"));
        assert_eq!(
            failed.headers().get(header::CONTENT_TYPE),
            Some(&HeaderValue::from_static("application/json"))
        );
    }

    #[test]
    fn the_throttle_lets_one_a_second_through_and_counts_the_rest() {
        let throttle = Throttle::new();
        assert_eq!(throttle.pass(100), Some(0));
        for _ in 0..999 {
            assert_eq!(throttle.pass(100), None);
        }
        assert_eq!(throttle.pass(101), Some(999));
        assert_eq!(throttle.pass(101), None);
        assert_eq!(throttle.pass(105), Some(1));
    }
}
