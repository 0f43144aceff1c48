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

static FUNCTION: OnceLock<&'static str> = OnceLock::new();

/// Set once at start by each Lambda's `main` (`ingestion`, `text-ai`...):
/// the `Function` dimension of every metric. Metrics are emitted only
/// then: the one-process runner keeps its output for people.
pub fn set_function(name: &'static str) {
    let _ = FUNCTION.set(name);
}

/// Declares the metrics: the enum, every name (the dashboard test checks
/// the template against [`Metric::ALL`]) and each one's unit.
macro_rules! metrics {
    ($($(#[doc = $doc:literal])* $name:ident: $unit:literal,)*) => {
        /// Every metric Charla emits, namespace `Charla`, each with the
        /// `Function` dimension.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Metric {
            $($(#[doc = $doc])* $name,)*
        }

        impl Metric {
            pub const ALL: &'static [Metric] = &[$(Metric::$name,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(Metric::$name => stringify!($name),)*
                }
            }

            pub fn unit(self) -> &'static str {
                match self {
                    $(Metric::$name => $unit,)*
                }
            }
        }
    };
}

metrics! {
    /// Messages recorded from Meta's webhooks (ingestion).
    WebhookAccepted: "Count",
    /// Messages Meta sent again, dropped.
    WebhookDuplicate: "Count",
    WebhookQuarantined: "Count",
    WebhookSignatureRejected: "Count",
    WebhookErrors: "Count",
    WindowClosedByStatus: "Count",
    UserIdChanged: "Count",
    MarketingPreference: "Count",
    IdentityConflict: "Count",
    /// Turns answered, by `Via`: playbook, model, or without a model.
    TurnAnswered: "Count",
    /// From the user's first message of the turn to the answer accepted by
    /// the Graph API.
    TurnLatency: "Milliseconds",
    /// The answer's time by `Stage`: `waited` (from the user's first
    /// message to the handler deciding: the queue and the debounce),
    /// `decided` (the playbook or the model), `sent` (the Graph API).
    TurnStageLatency: "Milliseconds",
    ModelCalls: "Count",
    TokensIn: "Count",
    TokensOut: "Count",
    /// The model answered "too many requests" (Bedrock's throttling, an
    /// OpenAI-compatible server's 429).
    ModelThrottled: "Count",
    /// Tool calls, by `Tool`.
    ToolCalls: "Count",
    TurnFailed: "Count",
    TurnEventLost: "Count",
    /// Usage that could not be counted (the numbers and costs miss it).
    UsageLost: "Count",
    ReplyRefused: "Count",
    /// Graph API errors, by `Code`.
    GraphErrors: "Count",
    OptOutByMessage: "Count",
    OptOutByCall: "Count",
    CampaignReply: "Count",
    CampaignCalls: "Count",
    CampaignTemplates: "Count",
    CampaignStuck: "Count",
    CampaignCallRequeued: "Count",
    CallRequestFailed: "Count",
    /// Calls that ended, by `Outcome`.
    CallEnded: "Count",
    MediaUnderstood: "Count",
    MediaRefused: "Count",
    MediaFailed: "Count",
    MediaUnsafe: "Count",
    Escalated: "Count",
    EscalationFailed: "Count",
    NoHumanInTime: "Count",
    HandedBack: "Count",
    AgentReplySent: "Count",
    ChatwootWebhookRefused: "Count",
    ChatwootWebhookDuplicate: "Count",
}

/// One Embedded Metric Format line: `values` under the `Function`
/// dimension, and under `Function` plus `by` when given (tool calls by
/// tool...). Nothing outside Lambda (see [`set_function`]).
fn emit(values: &[(Metric, f64)], by: Option<(&'static str, &str)>) {
    if let Some(function) = FUNCTION.get().copied() {
        let now = jiff::Timestamp::now().as_millisecond();
        println!("{}", emf_line(function, values, by, now));
    }
}

fn emf_line(
    function: &str,
    values: &[(Metric, f64)],
    by: Option<(&'static str, &str)>,
    at_ms: i64,
) -> serde_json::Value {
    let mut dimensions = vec![serde_json::json!(["Function"])];
    let mut line = serde_json::Map::new();
    line.insert("Function".into(), function.into());
    if let Some((name, value)) = by {
        dimensions.push(serde_json::json!(["Function", name]));
        line.insert(name.into(), value.into());
    }
    let metrics: Vec<serde_json::Value> = values
        .iter()
        .map(|(m, _)| serde_json::json!({"Name": m.name(), "Unit": m.unit()}))
        .collect();
    for (m, v) in values {
        line.insert(m.name().into(), (*v).into());
    }
    line.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": metrics,
            }],
        }),
    );
    serde_json::Value::Object(line)
}

/// The metrics' CloudWatch namespace.
pub const NAMESPACE: &str = "Charla";

/// Counts `value` of `metric`.
pub fn count(metric: Metric, value: u64) {
    emit(&[(metric, value as f64)], None);
}

/// Counts `value` of `metric` for one value of a dimension (a tool, an
/// error code, an outcome).
pub fn count_by(metric: Metric, dimension: &'static str, of: &str, value: u64) {
    emit(&[(metric, value as f64)], Some((dimension, of)));
}

/// One value of `metric` (a duration, a size) for one value of a dimension.
pub fn record_by(metric: Metric, dimension: &'static str, of: &str, value: f64) {
    emit(&[(metric, value)], Some((dimension, of)));
}

/// Several metrics of one event in one line.
pub fn record(values: &[(Metric, f64)]) {
    if !values.is_empty() {
        emit(values, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_carries_its_function_and_its_breakdown() {
        let line = emf_line(
            "text-ai",
            &[(Metric::ToolCalls, 2.0)],
            Some(("Tool", "kb_search")),
            7,
        );
        assert_eq!(
            line,
            serde_json::json!({
                "Function": "text-ai",
                "Tool": "kb_search",
                "ToolCalls": 2.0,
                "_aws": {
                    "Timestamp": 7,
                    "CloudWatchMetrics": [{
                        "Namespace": "Charla",
                        "Dimensions": [["Function"], ["Function", "Tool"]],
                        "Metrics": [{"Name": "ToolCalls", "Unit": "Count"}],
                    }],
                },
            })
        );
        let turn = emf_line(
            "text-ai",
            &[(Metric::TurnLatency, 120.0), (Metric::TokensIn, 900.0)],
            None,
            7,
        );
        assert_eq!(
            turn["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Function"]])
        );
        assert_eq!(
            turn["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Milliseconds"
        );
        assert_eq!(turn["TokensIn"], 900.0);
    }

    #[test]
    fn every_metric_has_a_distinct_name_and_a_unit_cloudwatch_knows() {
        let names: std::collections::HashSet<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len());
        for m in Metric::ALL {
            assert!(["Count", "Milliseconds"].contains(&m.unit()), "{m:?}");
        }
    }
}
