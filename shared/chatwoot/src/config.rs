//! Where the humans are: `CHATWOOT_URL`, `CHATWOOT_ACCOUNT_ID`,
//! `CHATWOOT_INBOX_ID`; the API token comes with the WhatsApp secrets
//! (`chatwoot_api_token` in the secret on AWS, `CHATWOOT_API_TOKEN` locally).
//! Read by escalation (hand-offs, the webhook) and admin (a release
//! resolves the desk conversation).

use domain::error::{Error, Result};
use runtime::config::{Vars, WhatsAppSecrets};
use secrecy::SecretString;

/// Chatwoot's place, from the variables; the token joins it in [`desk`].
///
/// [`desk`]: ChatwootPlace::config
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatwootPlace {
    pub url: String,
    pub account_id: u64,
    pub inbox_id: u64,
}

impl ChatwootPlace {
    /// `None` when `CHATWOOT_URL` is unset; an error when it is set and the
    /// ids are missing (a half-configured desk would drop hand-offs).
    pub fn from_vars(vars: &Vars) -> Result<Option<Self>> {
        if vars.optional("CHATWOOT_URL").is_none() {
            return Ok(None);
        }
        let url = vars.url("CHATWOOT_URL", "")?;
        let account_id: u64 = vars.parse("CHATWOOT_ACCOUNT_ID", 0)?;
        let inbox_id: u64 = vars.parse("CHATWOOT_INBOX_ID", 0)?;
        if account_id == 0 || inbox_id == 0 {
            return Err(Error::Config(
                "CHATWOOT_URL is set: CHATWOOT_ACCOUNT_ID and CHATWOOT_INBOX_ID are needed".into(),
            ));
        }
        Ok(Some(ChatwootPlace {
            url,
            account_id,
            inbox_id,
        }))
    }

    /// With the API token from the secrets; none is an error.
    pub fn config(&self, secrets: &WhatsAppSecrets) -> Result<ChatwootConfig> {
        let api_token = secrets
            .chatwoot_api_token
            .clone()
            .ok_or_else(|| Error::Config("CHATWOOT_URL is set but no Chatwoot API token".into()))?;
        Ok(ChatwootConfig {
            url: self.url.clone(),
            account_id: self.account_id,
            inbox_id: self.inbox_id,
            api_token,
        })
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
    /// Where agents open a conversation; its id is appended.
    pub fn conversation_url(&self) -> String {
        format!(
            "{}/app/accounts/{}/conversations/",
            self.url.trim_end_matches('/'),
            self.account_id
        )
    }

    pub fn desk(&self) -> Result<crate::ChatwootDesk> {
        crate::ChatwootDesk::new(
            &self.url,
            self.account_id,
            self.inbox_id,
            self.api_token.clone(),
            crate::ChatwootDesk::DEFAULT_POLICY,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_url_is_no_desk_and_a_half_set_one_is_an_error() {
        assert_eq!(ChatwootPlace::from_vars(&Vars::default()).ok(), Some(None));
        let half = Vars::from_pairs([("CHATWOOT_URL", "https://desk.example")]);
        assert!(matches!(
            ChatwootPlace::from_vars(&half),
            Err(Error::Config(m)) if m.contains("CHATWOOT_ACCOUNT_ID")
        ));
        let full = Vars::from_pairs([
            ("CHATWOOT_URL", "https://desk.example/"),
            ("CHATWOOT_ACCOUNT_ID", "3"),
            ("CHATWOOT_INBOX_ID", "7"),
        ]);
        let place = ChatwootPlace::from_vars(&full).ok().flatten();
        assert_eq!(
            place.as_ref().map(|p| p.url.as_str()),
            Some("https://desk.example")
        );
        let no_token = WhatsAppSecrets::new("a".into(), "v".into(), None).expect("secrets");
        assert!(place.is_some_and(|p| p.config(&no_token).is_err()));
    }
}
