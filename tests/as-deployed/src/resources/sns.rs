//! AWS::SNS::Topic.

use std::collections::BTreeMap;

use serde_json::Value;

use super::names::generated;
use super::props::{only, s, text, truthy};
use crate::aws::{err_text, Aws};
use crate::error::{Context, Result};

pub(super) async fn create_topic(
    aws: &Aws,
    stack: &str,
    id: &str,
    p: &Value,
    attrs: &mut BTreeMap<String, String>,
) -> Result<String> {
    only(
        p,
        &[
            "TopicName",
            "DisplayName",
            "KmsMasterKeyId",
            "FifoTopic",
            "ContentBasedDeduplication",
        ],
        &["Tags"],
    )?;
    let fifo = truthy(p.get("FifoTopic"));
    let name = match s(p, "TopicName") {
        Some(n) => n.to_string(),
        None if fifo => generated(stack, id, 251) + ".fifo",
        None => generated(stack, id, 256),
    };
    let mut req = aws.sns.create_topic().name(&name);
    for key in [
        "DisplayName",
        "KmsMasterKeyId",
        "FifoTopic",
        "ContentBasedDeduplication",
    ] {
        if let Some(v) = p.get(key).and_then(text) {
            req = req.attributes(key, v);
        }
    }
    let out = req
        .send()
        .await
        .map_err(|e| crate::error::Error(format!("CreateTopic {name}: {}", err_text(&e))))?;
    let topic_arn = out
        .topic_arn()
        .context(|| "CreateTopic: no ARN".to_string())?
        .to_string();
    attrs.insert("TopicArn".into(), topic_arn.clone());
    attrs.insert("TopicName".into(), name);
    Ok(topic_arn)
}
