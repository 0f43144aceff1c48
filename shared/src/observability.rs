//! Logs and metrics. Phone numbers and message bodies are masked unless
//! `CHARLA_LOG_CONTENT=true`; metrics are CloudWatch Embedded Metric Format
//! lines on stdout, which CloudWatch turns into metrics without an API call.

use std::sync::OnceLock;

static LOG_CONTENT: OnceLock<bool> = OnceLock::new();

/// Read once: whether message content may appear in logs.
pub fn log_content() -> bool {
    *LOG_CONTENT.get_or_init(|| {
        std::env::var("CHARLA_LOG_CONTENT")
            .map(|v| v.eq_ignore_ascii_case("true") || v == "1")
            .unwrap_or(false)
    })
}

/// A phone number or id, masked unless content logging is on.
pub fn phone(s: &str) -> String {
    if log_content() {
        s.to_string()
    } else {
        crate::domain::mask(s)
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
