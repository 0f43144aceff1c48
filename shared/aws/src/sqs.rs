//! [`Queue`] on an SQS FIFO queue.

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    MessageSystemAttributeNameForSends, MessageSystemAttributeValue, QueueAttributeName,
};
use aws_sdk_sqs::Client;
use sha2::{Digest, Sha256};

use super::sdk_error;
use domain::error::{Error, Result};
use domain::ports::{Queue, QueueMessage};

/// SQS's limit on `MessageGroupId` and `MessageDeduplicationId`: 1 to 128
/// characters, each an ASCII letter, digit or punctuation mark.
const SQS_ID_MAX: usize = 128;

/// Sends to one FIFO queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

/// `id` as SQS accepts it: itself when it fits the limit, otherwise the hex
/// SHA-256 of it (64 characters). Wamids are base64 and may grow past 128;
/// hashing keeps the id stable, so deduplication and grouping still work.
pub fn sqs_id(id: &str) -> String {
    let fits = (1..=SQS_ID_MAX).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic());
    if fits {
        id.to_string()
    } else {
        hex::encode(Sha256::digest(id.as_bytes()))
    }
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Creates (or finds) the FIFO queue `{name}.fifo` with explicit
    /// deduplication ids and its dead-letter queue `{name}-dlq.fifo`, where a
    /// message goes after `max_receives` receives without a delete. For
    /// emulators and tests. Returns `(queue_url, dlq_url)`.
    pub async fn create_fifo_with_dlq(
        client: &Client,
        name: &str,
        max_receives: u32,
        visibility_secs: u32,
    ) -> Result<(String, String)> {
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        let dlq_url =
            create_fifo(client, &format!("{base}-dlq.fifo"), None, visibility_secs).await?;
        let attrs = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| sdk_error("sqs", "reading the dead-letter queue's ARN", e))?;
        let dlq_arn = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .ok_or_else(|| {
                Error::dependency(
                    "sqs",
                    "reading the dead-letter queue's ARN",
                    false,
                    "no QueueArn",
                )
            })?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receives,
        })
        .to_string();
        let url = create_fifo(
            client,
            &format!("{base}.fifo"),
            Some(redrive),
            visibility_secs,
        )
        .await?;
        Ok((url, dlq_url))
    }
}

async fn create_fifo(
    client: &Client,
    name: &str,
    redrive_policy: Option<String>,
    visibility_secs: u32,
) -> Result<String> {
    let mut req = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "false")
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_secs.to_string(),
        );
    if let Some(policy) = redrive_policy {
        req = req.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    let out = req
        .send()
        .await
        .map_err(|e| sdk_error("sqs", format!("creating queue {name}"), e))?;
    out.queue_url.ok_or_else(|| {
        Error::dependency(
            "sqs",
            format!("creating queue {name}"),
            false,
            "no QueueUrl",
        )
    })
}

/// The X-Ray trace of the invocation sending (Lambda's runtime sets
/// `_X_AMZN_TRACE_ID` for each event), so that the function the message
/// reaches continues the same trace across the queue.
fn trace_header() -> Option<MessageSystemAttributeValue> {
    let trace = std::env::var("_X_AMZN_TRACE_ID").ok()?;
    if trace.trim().is_empty() {
        return None;
    }
    MessageSystemAttributeValue::builder()
        .data_type("String")
        .string_value(trace)
        .build()
        .ok()
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, msg: &QueueMessage) -> Result<()> {
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_group_id(sqs_id(&msg.group_id))
            .message_deduplication_id(sqs_id(&msg.dedup_id))
            .message_body(&msg.body);
        if let Some(trace) = trace_header() {
            send = send.message_system_attributes(
                MessageSystemAttributeNameForSends::AwsTraceHeader,
                trace,
            );
        }
        send.send()
            .await
            .map_err(|e| sdk_error("sqs", "sending a message", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_fit_are_kept_and_others_hashed() {
        let wamid = "wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQTdGRjM5RjM2RkQ5QkE0RjY3NQA=";
        assert_eq!(sqs_id(wamid), wamid);
        let long = "x".repeat(129);
        assert_eq!(sqs_id(&long).len(), 64);
        assert_eq!(sqs_id(&long), sqs_id(&long));
        assert_ne!(sqs_id("a b"), "a b");
        assert_ne!(sqs_id("ñ"), "ñ");
        assert_eq!(sqs_id("").len(), 64);
    }
}
