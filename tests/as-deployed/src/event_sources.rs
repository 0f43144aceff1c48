//! Lambda's event source mappings for SQS, and the schedules fired on
//! demand.
//!
//! SQS: a poller per `Type: SQS` event receives up to `BatchSize`
//! messages (all attributes), builds the event exactly as Lambda does, and
//! invokes the function. With `FunctionResponseTypes:
//! [ReportBatchItemFailures]` it deletes the records not listed in
//! `batchItemFailures`; without it, only a batch that succeeded entirely is
//! deleted. What is not deleted comes back after the queue's
//! VisibilityTimeout, as the template says (nothing is shortened here).
//! Lambda's batching window is kept short (a 1 s long poll).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::{json, Map, Value};

use crate::aws::{err_text, REGION};
use crate::bail;
use crate::error::{Context, Result};
use crate::runtime::Function;
use crate::template::{Resolver, Template};

#[derive(Debug, Clone)]
pub struct SqsSource {
    /// `TextAi.TextTurns`.
    pub name: String,
    pub function: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub report_failures: bool,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub function: String,
    pub expression: String,
    /// The target's `Input`, if the template sets one.
    pub input: Option<Value>,
    /// `Schedule` (EventBridge rule) or `ScheduleV2` (EventBridge Scheduler).
    pub kind: String,
}

/// The SQS and schedule events of every function.
pub fn sources(
    t: &Template,
    r: &Resolver,
    props: &BTreeMap<String, Value>,
) -> Result<(Vec<SqsSource>, Vec<Schedule>)> {
    let arn_to_queue: BTreeMap<String, String> = t
        .resources
        .values()
        .filter(|x| x.kind == "AWS::SQS::Queue")
        .filter_map(|x| {
            let p = r.physical.get(&x.id)?;
            Some((p.attrs.get("Arn")?.clone(), p.id.clone()))
        })
        .collect();
    let mut sqs = Vec::new();
    let mut schedules = Vec::new();
    for f in t
        .resources
        .values()
        .filter(|x| x.kind == "AWS::Serverless::Function")
    {
        let Some(events) = props
            .get(&f.id)
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        for (ename, e) in events {
            let at = format!("{}.Events.{ename}", f.id);
            let p = e.get("Properties").cloned().unwrap_or(json!({}));
            match e.get("Type").and_then(Value::as_str).unwrap_or_default() {
                "HttpApi" => {}
                "SQS" => {
                    let arn = p
                        .get("Queue")
                        .and_then(Value::as_str)
                        .context(|| format!("{at}: no Queue"))?
                        .to_string();
                    let url = arn_to_queue
                        .get(&arn)
                        .cloned()
                        .context(|| format!("{at}: {arn} is no queue of the template"))?;
                    let batch_size = p
                        .get("BatchSize")
                        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
                        .unwrap_or(10);
                    if batch_size > 10 {
                        bail!("{at}: BatchSize {batch_size} > 10 needs a batching window the harness does not emulate");
                    }
                    if p.get("Enabled").is_some_and(|v| v == false || v == "false") {
                        continue;
                    }
                    for k in p
                        .as_object()
                        .map(|m| m.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default()
                    {
                        if ![
                            "Queue",
                            "BatchSize",
                            "FunctionResponseTypes",
                            "Enabled",
                            "MaximumBatchingWindowInSeconds",
                            "ScalingConfig",
                        ]
                        .contains(&k.as_str())
                        {
                            bail!("{at}: property {k} is not supported by the harness");
                        }
                    }
                    let report_failures = p
                        .get("FunctionResponseTypes")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|v| v == "ReportBatchItemFailures"));
                    sqs.push(SqsSource {
                        name: format!("{}.{ename}", f.id),
                        function: f.id.clone(),
                        queue_url: url,
                        queue_arn: arn,
                        batch_size: batch_size as i32,
                        report_failures,
                    });
                }
                kind @ ("Schedule" | "ScheduleV2") => {
                    let input = match p.get("Input") {
                        Some(Value::String(s)) => Some(
                            serde_json::from_str(s)
                                .context(|| format!("{at}: Input is not JSON"))?,
                        ),
                        Some(other) => Some(other.clone()),
                        None => None,
                    };
                    schedules.push(Schedule {
                        name: format!("{}.{ename}", f.id),
                        function: f.id.clone(),
                        expression: p
                            .get("Schedule")
                            .or(p.get("ScheduleExpression"))
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        input,
                        kind: kind.to_string(),
                    });
                }
                other => bail!("{at}: event type {other} is not supported by the harness"),
            }
        }
    }
    Ok((sqs, schedules))
}

/// An SQS record as Lambda gives it to the function.
fn record(m: &aws_sdk_sqs::types::Message, source: &SqsSource) -> Value {
    let mut attributes = Map::new();
    if let Some(a) = m.attributes() {
        for (k, v) in a {
            attributes.insert(k.as_str().to_string(), json!(v));
        }
    }
    let mut message_attributes = Map::new();
    if let Some(a) = m.message_attributes() {
        use base64::Engine;
        for (k, v) in a {
            let mut x = Map::new();
            if let Some(s) = v.string_value() {
                x.insert("stringValue".into(), json!(s));
            }
            if let Some(b) = v.binary_value() {
                x.insert(
                    "binaryValue".into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(b.as_ref())),
                );
            }
            x.insert("stringListValues".into(), json!([]));
            x.insert("binaryListValues".into(), json!([]));
            x.insert("dataType".into(), json!(v.data_type()));
            message_attributes.insert(k.clone(), Value::Object(x));
        }
    }
    let mut r = json!({
        "messageId": m.message_id(),
        "receiptHandle": m.receipt_handle(),
        "body": m.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": m.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": source.queue_arn,
        "awsRegion": REGION,
    });
    if let Some(md5) = m.md5_of_message_attributes() {
        r["md5OfMessageAttributes"] = json!(md5);
    }
    r
}

/// What one poll did, for diagnostics.
pub type Journal = Arc<Mutex<Vec<String>>>;

fn note(journal: &Journal, line: String) {
    eprintln!("as-deployed: {line}");
    if let Ok(mut j) = journal.lock() {
        j.push(line);
    }
}

/// Polls `source` until the task is aborted.
pub async fn poll(
    source: SqsSource,
    sqs: aws_sdk_sqs::Client,
    function: Arc<Function>,
    journal: Journal,
) {
    loop {
        #[allow(deprecated)]
        let received = sqs
            .receive_message()
            .queue_url(&source.queue_url)
            .max_number_of_messages(source.batch_size)
            .wait_time_seconds(1)
            .attribute_names(QueueAttributeName::All)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                note(
                    &journal,
                    format!("{}: ReceiveMessage: {}", source.name, err_text(&e)),
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let event =
            json!({ "Records": messages.iter().map(|m| record(m, &source)).collect::<Vec<_>>() });
        let ids: Vec<String> = messages
            .iter()
            .filter_map(|m| m.message_id().map(str::to_string))
            .collect();
        let keep: Vec<String> = match function.invoke(&event).await {
            Err(e) => {
                note(
                    &journal,
                    format!(
                        "{}: the batch failed, left for redelivery: {e}",
                        source.name
                    ),
                );
                ids.clone()
            }
            Ok(answer) if source.report_failures => match batch_failures(&answer, &ids) {
                Ok(failed) => {
                    if !failed.is_empty() {
                        note(
                            &journal,
                            format!("{}: batch item failures {failed:?}", source.name),
                        );
                    }
                    failed
                }
                Err(why) => {
                    note(
                        &journal,
                        format!(
                            "{}: {why}: the whole batch is left for redelivery",
                            source.name
                        ),
                    );
                    ids.clone()
                }
            },
            Ok(_) => Vec::new(),
        };
        for m in &messages {
            let id = m.message_id().unwrap_or_default();
            if keep.iter().any(|k| k == id) {
                continue;
            }
            if let Some(handle) = m.receipt_handle() {
                if let Err(e) = sqs
                    .delete_message()
                    .queue_url(&source.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                {
                    note(
                        &journal,
                        format!("{}: DeleteMessage: {}", source.name, err_text(&e)),
                    );
                }
            }
        }
    }
}

/// The ids listed in `batchItemFailures`; an answer Lambda cannot read
/// (an unknown or empty id) fails the whole batch, as in Lambda.
pub fn batch_failures(answer: &Value, ids: &[String]) -> std::result::Result<Vec<String>, String> {
    let list = match answer {
        Value::Null => return Ok(Vec::new()),
        Value::Object(m) => match m.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(a)) => a.clone(),
            Some(other) => return Err(format!("batchItemFailures is not a list: {other}")),
        },
        other => return Err(format!("the answer is not a batch response: {other}")),
    };
    let mut out = Vec::new();
    for f in list {
        match f.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if ids.iter().any(|x| x == id) => out.push(id.to_string()),
            other => {
                return Err(format!(
                    "batch item failure with an unknown itemIdentifier {other:?}"
                ))
            }
        }
    }
    Ok(out)
}

/// The event a schedule delivers: the target's Input if set, otherwise the
/// EventBridge scheduled event.
pub fn scheduled_event(s: &Schedule, stack: &str) -> Value {
    if let Some(input) = &s.input {
        return input.clone();
    }
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": if s.kind == "ScheduleV2" { "aws.scheduler" } else { "aws.events" },
        "account": crate::aws::ACCOUNT_ID,
        "time": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": REGION,
        "resources": [format!(
            "arn:aws:{}:{REGION}:{}:{}/{stack}-{}",
            if s.kind == "ScheduleV2" { "scheduler" } else { "events" },
            crate::aws::ACCOUNT_ID,
            if s.kind == "ScheduleV2" { "schedule/default" } else { "rule" },
            s.name.replace('.', "-")
        )],
        "detail": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_failures_are_read_as_lambda_reads_them() {
        let ids = vec!["a".to_string(), "b".to_string()];
        assert_eq!(batch_failures(&Value::Null, &ids), Ok(vec![]));
        assert_eq!(
            batch_failures(&json!({"batchItemFailures": []}), &ids),
            Ok(vec![])
        );
        assert_eq!(
            batch_failures(
                &json!({"batchItemFailures": [{"itemIdentifier": "b"}]}),
                &ids
            ),
            Ok(vec!["b".to_string()])
        );
        assert!(batch_failures(
            &json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            &ids
        )
        .is_err());
    }
}
