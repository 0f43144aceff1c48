//! Logs and metrics. Phone numbers and message bodies are masked unless
//! `CHARLA_LOG_CONTENT=true`; metrics are CloudWatch Embedded Metric Format
//! lines on stdout, which CloudWatch turns into metrics without an API call.

use std::sync::OnceLock;

static LOG_CONTENT: OnceLock<bool> = OnceLock::new();

/// Set once at start from the function's config (`CHARLA_LOG_CONTENT`);
/// later calls change nothing.
pub fn set_log_content(on: bool) {
    let _ = LOG_CONTENT.set(on);
}

/// Whether message content may appear in logs: off unless set at start.
pub fn log_content() -> bool {
    LOG_CONTENT.get().copied().unwrap_or(false)
}

/// A phone number or id, masked unless content logging is on.
pub fn phone(s: &str) -> String {
    if log_content() {
        s.to_string()
    } else {
        domain::mask(s)
    }
}

/// A message body: its length only, unless content logging is on.
pub fn content(s: &str) -> String {
    if log_content() {
        s.to_string()
    } else {
        format!("[{} chars]", s.chars().count())
    }
}

/// Emits one count metric in Embedded Metric Format.
pub fn count(metric: &str, value: u64) {
    let ts = jiff::Timestamp::now().as_millisecond();
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": ts,
            "CloudWatchMetrics": [{
                "Namespace": "Charla",
                "Dimensions": [[]],
                "Metrics": [{ "Name": metric, "Unit": "Count" }],
            }],
        },
        metric: value,
    });
    println!("{line}");
}
