//! The SQS consumers' batch loop, shared by text-ai and escalation: partial
//! batch failures, and the order of each FIFO group kept on redelivery.

use std::collections::HashMap;
use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::{error, warn};

use crate::observability;
use domain::Result;

/// Runs `handle` on every record of `event`. Records of one FIFO group run
/// in order, the groups side by side; a group stops at its first failure and
/// the rest of it is reported failed too, so that SQS hands them back in
/// order. A record without a group (a standard queue) is a group of its own.
/// Failures are logged as `what` and counted under `metric`.
pub async fn run<F, Fut, T>(
    event: SqsEvent,
    what: &'static str,
    metric: observability::Metric,
    handle: F,
) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut groups: Vec<Vec<SqsMessage>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for record in event.records {
        let group = record
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_else(|| record.message_id.clone().unwrap_or_default());
        match index.get(&group) {
            Some(&i) => groups[i].push(record),
            None => {
                index.insert(group, groups.len());
                groups.push(vec![record]);
            }
        }
    }
    let handle = &handle;
    let runs = groups.into_iter().map(|records| async move {
        let mut failed = Vec::new();
        let mut stop = false;
        for record in records {
            let id = record.message_id.clone().unwrap_or_default();
            if stop {
                failed.push(id);
                continue;
            }
            if let Err(e) = handle(record).await {
                if e.is_retryable() {
                    warn!(error = %e, "{what} failed, will be retried");
                } else {
                    error!(error = %e, source = ?std::error::Error::source(&e), "{what} failed");
                }
                observability::count(metric, 1);
                failed.push(id);
                stop = true;
            }
        }
        failed
    });
    let mut response = SqsBatchResponse::default();
    for id in futures::future::join_all(runs).await.into_iter().flatten() {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use domain::Error;

    fn record(id: &str, group: Option<&str>) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(id.into());
        if let Some(g) = group {
            m.attributes.insert("MessageGroupId".into(), g.into());
        }
        m
    }

    fn failed(r: &SqsBatchResponse) -> Vec<String> {
        let mut ids: Vec<String> = r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn a_group_stops_at_its_first_failure_and_other_groups_go_on() {
        let mut event = SqsEvent::default();
        event.records = vec![
            record("a1", Some("a")),
            record("b1", Some("b")),
            record("a2", Some("a")),
            record("b2", Some("b")),
            record("a3", Some("a")),
        ];
        let seen = Mutex::new(Vec::new());
        let response = run(
            event,
            "test message",
            observability::Metric::TurnFailed,
            |m| {
                let id = m.body.unwrap_or_default();
                seen.lock().expect("lock").push(id.clone());
                async move {
                    if id == "a2" {
                        Err(Error::Invalid("bad".into()))
                    } else {
                        Ok(())
                    }
                }
            },
        )
        .await;
        assert_eq!(failed(&response), ["a2", "a3"]);
        let seen = seen.into_inner().expect("lock");
        assert!(!seen.contains(&"a3".to_string()), "a3 ran after a2 failed");
        assert!(seen.contains(&"b2".to_string()));
    }

    #[tokio::test]
    async fn records_without_a_group_fail_alone() {
        let mut event = SqsEvent::default();
        event.records = vec![record("t1", None), record("t2", None)];
        let response = run(
            event,
            "timer",
            observability::Metric::TurnFailed,
            |m| async move {
                match m.body.as_deref() {
                    Some("t1") => Err(Error::Invalid("bad".into())),
                    _ => Ok(()),
                }
            },
        )
        .await;
        assert_eq!(failed(&response), ["t1"]);
    }
}
