//! How the HTTP functions answer (ingestion, admin, voice, the Chatwoot
//! webhook): JSON bodies, and an error mapped to its status in one place.
//! Client errors say what was wrong and are logged at info, not as errors;
//! server errors are logged with their cause and answered generically
//! ([`Error::public_message`]).

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
    } else {
        tracing::error!(status = status.as_u16(), error = %e, source = ?std::error::Error::source(e), "{what} failed");
    }
    json(status, &serde_json::json!({ "error": e.public_message() }))
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
}
