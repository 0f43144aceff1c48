//! [`Notifier`] by email through Amazon SES (the v2 API): a plain-text mail
//! per escalation, to a fixed list of people.
//!
//! Email leaves the business's systems and sits in mailboxes for years, so
//! the body is [`EscalationNotice::body_text`], which shows the user's number
//! masked; people open the conversation from the desk or admin link.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;

use super::sdk_error;
use domain::error::{Error, Result};
use domain::escalation::EscalationNotice;
use domain::ports::Notifier;

/// SES's limit on recipients of one message.
const SES_MAX_RECIPIENTS: usize = 50;

#[derive(Debug, Clone)]
pub struct SesNotifier {
    client: Client,
    from: String,
    to: Vec<String>,
}

impl SesNotifier {
    /// `from` must be an identity verified in SES; `to` 1 to 50 addresses.
    pub fn new(client: Client, from: impl Into<String>, to: Vec<String>) -> Result<Self> {
        let from = from.into().trim().to_string();
        let to: Vec<String> = to
            .into_iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        if !from.contains('@') {
            return Err(Error::Config(
                "escalation email: the sender is not an address".into(),
            ));
        }
        if to.is_empty() || to.len() > SES_MAX_RECIPIENTS || to.iter().any(|a| !a.contains('@')) {
            return Err(Error::Config(format!(
                "escalation email: 1 to {SES_MAX_RECIPIENTS} recipient addresses needed"
            )));
        }
        Ok(SesNotifier { client, from, to })
    }
}

fn content(data: String) -> Result<Content> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| Error::dependency("ses", "building the email", false, e))
}

#[async_trait]
impl Notifier for SesNotifier {
    async fn notify(&self, notice: &EscalationNotice) -> Result<()> {
        let message = Message::builder()
            .subject(content(notice.subject())?)
            .body(Body::builder().text(content(notice.body_text())?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(self.to.clone()))
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| sdk_error("ses", "sending an escalation email", e))?;
        tracing::info!(notice = %notice.id, user = %notice.masked_user_id(), "escalation emailed");
        Ok(())
    }
}
