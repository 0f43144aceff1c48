//! AWS::SQS::Queue.

use std::collections::BTreeMap;

use serde_json::Value;

use super::names::{arn, generated};
use super::props::{only, s, text, truthy};
use crate::aws::{err_text, Aws};
use crate::error::{Context, Result};

pub(super) async fn create_queue(
    aws: &Aws,
    stack: &str,
    id: &str,
    p: &Value,
    attrs: &mut BTreeMap<String, String>,
) -> Result<String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    only(
        p,
        &[
            "QueueName",
            "FifoQueue",
            "ContentBasedDeduplication",
            "DeduplicationScope",
            "FifoThroughputLimit",
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds",
            "RedrivePolicy",
            "RedriveAllowPolicy",
            "SqsManagedSseEnabled",
            "KmsMasterKeyId",
        ],
        &["Tags", "KmsDataKeyReusePeriodSeconds"],
    )?;
    let fifo = truthy(p.get("FifoQueue"));
    let name = match s(p, "QueueName") {
        Some(n) => n.to_string(),
        None if fifo => generated(stack, id, 75) + ".fifo",
        None => generated(stack, id, 80),
    };
    let mut req = aws.sqs.create_queue().queue_name(&name);
    let simple = [
        ("FifoQueue", A::FifoQueue),
        ("ContentBasedDeduplication", A::ContentBasedDeduplication),
        ("DeduplicationScope", A::DeduplicationScope),
        ("FifoThroughputLimit", A::FifoThroughputLimit),
        ("VisibilityTimeout", A::VisibilityTimeout),
        ("MessageRetentionPeriod", A::MessageRetentionPeriod),
        ("DelaySeconds", A::DelaySeconds),
        ("MaximumMessageSize", A::MaximumMessageSize),
        (
            "ReceiveMessageWaitTimeSeconds",
            A::ReceiveMessageWaitTimeSeconds,
        ),
        ("SqsManagedSseEnabled", A::SqsManagedSseEnabled),
        ("KmsMasterKeyId", A::KmsMasterKeyId),
    ];
    for (key, attr) in simple {
        if let Some(v) = p.get(key).and_then(text) {
            // FifoQueue=false is not accepted by SQS on a standard queue.
            if key == "FifoQueue" && v != "true" {
                continue;
            }
            req = req.attributes(attr, v);
        }
    }
    for (key, attr) in [
        ("RedrivePolicy", A::RedrivePolicy),
        ("RedriveAllowPolicy", A::RedriveAllowPolicy),
    ] {
        if let Some(v) = p.get(key) {
            let json = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            req = req.attributes(attr, json);
        }
    }
    let out = req
        .send()
        .await
        .map_err(|e| crate::error::Error(format!("CreateQueue {name}: {}", err_text(&e))))?;
    let url = out
        .queue_url()
        .context(|| format!("CreateQueue {name}: no URL"))?
        .to_string();
    attrs.insert("Arn".into(), arn("sqs", &name));
    attrs.insert("QueueName".into(), name);
    attrs.insert("QueueUrl".into(), url.clone());
    Ok(url)
}
