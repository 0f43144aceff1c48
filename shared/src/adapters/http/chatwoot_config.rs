//! Where the humans are, from the environment (and the secret on AWS):
//! `CHATWOOT_URL`, `CHATWOOT_ACCOUNT_ID`, `CHATWOOT_INBOX_ID`,
//! `CHATWOOT_API_TOKEN`, `CHATWOOT_WEBHOOK_TOKEN`. The tokens live in the
//! WhatsApp secret on AWS (`chatwoot_api_token`, `chatwoot_webhook_token`).
//! Read by escalation (hand-offs, the webhook) and admin (a release
//! resolves the desk conversation).

use crate::config::{env_optional, env_parse};
use crate::error::{Error, Result};
use secrecy::SecretString;
use serde::Deserialize;

/// The Chatwoot tokens as kept in the secret's JSON (other keys ignored).
#[derive(Default, Deserialize)]
pub struct ChatwootTokens {
    #[serde(default)]
    pub chatwoot_api_token: Option<String>,
    #[serde(default)]
    pub chatwoot_webhook_token: Option<String>,
}

impl ChatwootTokens {
    pub fn from_secret_json(json: &str) -> Result<Self> {
        serde_json::from_str(json)
            .map_err(|_| Error::Config("the secret is not a JSON object".into()))
    }

    /// `CHATWOOT_API_TOKEN`, `CHATWOOT_WEBHOOK_TOKEN`.
    pub fn from_env() -> Self {
        ChatwootTokens {
            chatwoot_api_token: env_optional("CHATWOOT_API_TOKEN"),
            chatwoot_webhook_token: env_optional("CHATWOOT_WEBHOOK_TOKEN"),
        }
    }

    pub fn webhook_token(&self) -> Option<SecretString> {
        self.chatwoot_webhook_token
            .clone()
            .filter(|t| !t.is_empty())
            .map(SecretString::from)
    }
}

/// A configured Chatwoot inbox.
pub struct ChatwootConfig {
    pub url: String,
    pub account_id: u64,
    pub inbox_id: u64,
    pub api_token: SecretString,
}

impl ChatwootConfig {
    /// `None` when `CHATWOOT_URL` is unset; an error when it is set and the
    /// rest is missing (a half-configured desk would drop hand-offs).
    pub fn from_env(tokens: &ChatwootTokens) -> Result<Option<Self>> {
        let Some(url) = env_optional("CHATWOOT_URL").filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let account_id: u64 = env_parse("CHATWOOT_ACCOUNT_ID", 0)?;
        let inbox_id: u64 = env_parse("CHATWOOT_INBOX_ID", 0)?;
        let api_token = tokens
            .chatwoot_api_token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Config("CHATWOOT_URL is set but no Chatwoot API token".into()))?;
        if account_id == 0 || inbox_id == 0 {
            return Err(Error::Config(
                "CHATWOOT_URL is set: CHATWOOT_ACCOUNT_ID and CHATWOOT_INBOX_ID are needed".into(),
            ));
        }
        Ok(Some(ChatwootConfig {
            url,
            account_id,
            inbox_id,
            api_token: SecretString::from(api_token),
        }))
    }

    /// Where agents open a conversation; its id is appended.
    pub fn conversation_url(&self) -> String {
        format!(
            "{}/app/accounts/{}/conversations/",
            self.url.trim_end_matches('/'),
            self.account_id
        )
    }

    pub fn desk(&self) -> Result<super::ChatwootDesk> {
        super::ChatwootDesk::new(
            &self.url,
            self.account_id,
            self.inbox_id,
            self.api_token.clone(),
            super::ChatwootSettings::default(),
        )
    }
}
