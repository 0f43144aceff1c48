//! [`Notifier`] on an SNS topic: whoever subscribes (email, chat, a pager,
//! a queue) hears of every escalation.
//!
//! The message is the notice as JSON with a `text` rendering beside it, so
//! that both machines and people can read it. Its `wa_id` is the raw number:
//! the topic's subscribers are the business's own staff, who need it to call
//! back. The subject, which mail clients and chat apps show everywhere, has
//! it masked, and fits SNS's 100-character limit.

use async_trait::async_trait;
use aws_sdk_sns::Client;

use super::sdk_error;
use domain::error::{Error, Result};
use domain::escalation::EscalationNotice;
use domain::ports::Notifier;

/// SNS's limit on a message: 256 KiB of UTF-8.
const SNS_MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        SnsNotifier {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }
}

/// The message body: the notice's fields plus `text`, the plain rendering.
pub fn sns_message(notice: &EscalationNotice) -> Result<String> {
    let mut value = serde_json::to_value(notice)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("text".into(), notice.body_text().into());
        object.insert("subject".into(), notice.subject().into());
    }
    Ok(value.to_string())
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn notify(&self, notice: &EscalationNotice) -> Result<()> {
        let message = sns_message(notice)?;
        if message.len() > SNS_MAX_MESSAGE_BYTES {
            // The excerpt is bounded, so only absurd summaries get here.
            return Err(Error::Invalid(format!(
                "escalation notice is {} bytes, over SNS's {SNS_MAX_MESSAGE_BYTES}",
                message.len()
            )));
        }
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(notice.subject())
            .message(message)
            .send()
            .await
            .map_err(|e| sdk_error("sns", "publishing an escalation", e))?;
        tracing::info!(notice = %notice.id, user = %notice.masked_user_id(), "escalation published");
        Ok(())
    }
}
