//! Queue consumers as tasks: receive a batch, hand it to a function's Lambda
//! batch handler (text-ai, call-trigger, escalation) as an SQS event, delete what succeeded, and release what failed
//! for a retry (after `max_receives` the queue moves it to dead letters).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use domain::Result;
use embedded::SqliteQueue;
use tokio::sync::watch;
use tracing::warn;

/// Where turn jobs come from.
#[derive(Clone)]
pub enum Source {
    Local(Arc<SqliteQueue>),
    #[cfg(feature = "aws")]
    Sqs {
        client: aws_sdk_sqs::Client,
        url: String,
    },
}

pub(crate) struct Job {
    pub(crate) receipt: String,
    pub(crate) body: String,
    pub(crate) group: String,
    pub(crate) receive_count: u32,
}

impl Source {
    pub(crate) async fn receive(&self, max: usize) -> Result<Vec<Job>> {
        match self {
            Source::Local(q) => Ok(q
                .receive(max)
                .await?
                .into_iter()
                .map(|r| Job {
                    receipt: r.receipt,
                    body: r.body,
                    group: r.group_id,
                    receive_count: r.receive_count,
                })
                .collect()),
            #[cfg(feature = "aws")]
            Source::Sqs { client, url } => {
                let out = client
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(max.min(10) as i32)
                    .wait_time_seconds(1)
                    .message_system_attribute_names(
                        aws_sdk_sqs::types::MessageSystemAttributeName::All,
                    )
                    .send()
                    .await
                    .map_err(|e| domain::Error::dependency("sqs", "receive", true, e))?;
                Ok(out
                    .messages
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| {
                        let attrs = m.attributes.unwrap_or_default();
                        let attr = |name: aws_sdk_sqs::types::MessageSystemAttributeName| {
                            attrs.get(&name).cloned().unwrap_or_default()
                        };
                        Some(Job {
                            group: attr(aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId),
                            receive_count: attr(
                                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
                            )
                            .parse()
                            .unwrap_or(1),
                            receipt: m.receipt_handle?,
                            body: m.body.unwrap_or_default(),
                        })
                    })
                    .collect())
            }
        }
    }

    pub(crate) async fn delete(&self, receipt: &str) -> Result<()> {
        match self {
            Source::Local(q) => q.delete(receipt).await.map(|_| ()),
            #[cfg(feature = "aws")]
            Source::Sqs { client, url } => client
                .delete_message()
                .queue_url(url)
                .receipt_handle(receipt)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| domain::Error::dependency("sqs", "delete", true, e)),
        }
    }

    /// A failed job comes back after a backoff that grows with its tries.
    pub(crate) async fn release(&self, receipt: &str, receive_count: u32) -> Result<()> {
        let delay_ms = 250u64.saturating_mul(1 << receive_count.min(6));
        match self {
            Source::Local(q) => q.release(receipt, delay_ms).await.map(|_| ()),
            #[cfg(feature = "aws")]
            Source::Sqs { client, url } => client
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(receipt)
                .visibility_timeout((delay_ms / 1000).max(1) as i32)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| domain::Error::dependency("sqs", "release", true, e)),
        }
    }

    pub(crate) async fn idle(&self) {
        match self {
            Source::Local(q) => {
                if q.wait(Duration::from_millis(500)).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            // SQS long-polls in `receive` already.
            #[cfg(feature = "aws")]
            Source::Sqs { .. } => {}
        }
    }
}

/// Runs `workers` consumers of `source` until `shutdown` turns true: each
/// receives a batch, hands it to `handler` (a Lambda batch handler) as an
/// SQS event, deletes what succeeded and releases what failed with a
/// backoff. `name` says which queue in the logs.
pub fn spawn<F, Fut>(
    name: &'static str,
    workers: usize,
    source: Source,
    handler: F,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>>
where
    F: Fn(SqsEvent) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = SqsBatchResponse> + Send,
{
    (0..workers)
        .map(|_| {
            let (source, handler, mut shutdown) =
                (source.clone(), handler.clone(), shutdown.clone());
            tokio::spawn(async move {
                while !*shutdown.borrow() {
                    let jobs = match source.receive(10).await {
                        Ok(jobs) => jobs,
                        Err(e) => {
                            warn!(error = %e, queue = name, "receive failed");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    };
                    if jobs.is_empty() {
                        tokio::select! {
                            _ = source.idle() => {}
                            _ = shutdown.changed() => {}
                        }
                        continue;
                    }
                    run_batch(name, &source, &handler, jobs).await;
                }
            })
        })
        .collect()
}

async fn run_batch<F, Fut>(name: &str, source: &Source, handler: &F, jobs: Vec<Job>)
where
    F: Fn(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    let mut event = SqsEvent::default();
    for job in &jobs {
        let mut m = SqsMessage::default();
        m.message_id = Some(job.receipt.clone());
        m.receipt_handle = Some(job.receipt.clone());
        m.body = Some(job.body.clone());
        m.attributes
            .insert("MessageGroupId".to_string(), job.group.clone());
        m.attributes.insert(
            "ApproximateReceiveCount".to_string(),
            job.receive_count.to_string(),
        );
        event.records.push(m);
    }
    let failed: HashSet<String> = handler(event)
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    // Settled at once, not one after another: the local queue commits them
    // together, in one group.
    let settled = jobs.iter().map(|job| async {
        let result = if failed.contains(&job.receipt) {
            source.release(&job.receipt, job.receive_count).await
        } else {
            source.delete(&job.receipt).await
        };
        if let Err(e) = result {
            // Not lost: the visibility timeout brings the job back.
            warn!(error = %e, queue = name, "could not settle a queue message");
        }
    });
    futures::future::join_all(settled).await;
}
