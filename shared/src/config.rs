//! Typed configuration read once at start. A missing variable stops the start
//! with a message that names it; secrets sit in types that do not print.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::{Error, Result};

/// A required variable: missing or empty is a start-up error.
pub fn env_required(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(Error::Config(format!(
            "environment variable {name} is required"
        ))),
    }
}

pub fn env_optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A variable with a default; a value that does not parse is an error, not
/// the default.
pub fn env_parse<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match env_optional(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            Error::Config(format!("environment variable {name} has a bad value {v:?}"))
        }),
    }
}

/// The WhatsApp app's secrets.
#[derive(Clone)]
pub struct WhatsAppSecrets {
    /// Signs webhooks (`X-Hub-Signature-256`).
    pub app_secret: SecretString,
    /// Answers Meta's GET check.
    pub verify_token: SecretString,
    /// Bearer token for the Graph API; `None` locally means "use the outbox".
    pub access_token: Option<SecretString>,
    /// The agent's outside services, kept in the same secret: the CRM
    /// endpoint's key and an OpenAI-compatible model server's key.
    pub crm_api_key: Option<SecretString>,
    pub model_api_key: Option<SecretString>,
}

impl std::fmt::Debug for WhatsAppSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsAppSecrets")
            .field("app_secret", &"[redacted]")
            .field("verify_token", &"[redacted]")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "crm_api_key",
                &self.crm_api_key.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "model_api_key",
                &self.model_api_key.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

#[derive(Deserialize)]
struct SecretsJson {
    app_secret: String,
    verify_token: String,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    crm_api_key: Option<String>,
    #[serde(default)]
    model_api_key: Option<String>,
}

impl WhatsAppSecrets {
    /// The JSON kept in Secrets Manager:
    /// `{"app_secret": "...", "verify_token": "...", "access_token": "..."}`.
    pub fn from_json(json: &str) -> Result<Self> {
        let s: SecretsJson = serde_json::from_str(json)
            .map_err(|e| Error::Config(format!("WhatsApp secret is not the expected JSON: {e}")))?;
        Ok(Self::new(s.app_secret, s.verify_token, s.access_token)?
            .with_agent_keys(s.crm_api_key, s.model_api_key))
    }

    /// `WHATSAPP_APP_SECRET`, `WHATSAPP_VERIFY_TOKEN`, `WHATSAPP_ACCESS_TOKEN`.
    pub fn from_env() -> Result<Self> {
        Ok(Self::new(
            env_required("WHATSAPP_APP_SECRET")?,
            env_required("WHATSAPP_VERIFY_TOKEN")?,
            env_optional("WHATSAPP_ACCESS_TOKEN"),
        )?
        .with_agent_keys(
            env_optional("CHARLA_CRM_API_KEY"),
            env_optional("CHARLA_MODEL_API_KEY"),
        ))
    }

    /// Adds the agent's keys; empty ones are none.
    pub fn with_agent_keys(mut self, crm: Option<String>, model: Option<String>) -> Self {
        let keep = |k: Option<String>| k.filter(|k| !k.is_empty()).map(SecretString::from);
        self.crm_api_key = keep(crm);
        self.model_api_key = keep(model);
        self
    }

    pub fn new(
        app_secret: String,
        verify_token: String,
        access_token: Option<String>,
    ) -> Result<Self> {
        if app_secret.is_empty() || verify_token.is_empty() {
            return Err(Error::Config(
                "WhatsApp app secret and verify token must not be empty".into(),
            ));
        }
        Ok(WhatsAppSecrets {
            app_secret: SecretString::from(app_secret),
            verify_token: SecretString::from(verify_token),
            access_token: access_token
                .filter(|t| !t.is_empty())
                .map(SecretString::from),
            crm_api_key: None,
            model_api_key: None,
        })
    }

    pub fn app_secret_bytes(&self) -> &[u8] {
        self.app_secret.expose_secret().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_from_json_and_do_not_print() {
        let s = WhatsAppSecrets::from_json(
            r#"{"app_secret":"a-very-secret","verify_token":"v","access_token":"t"}"#,
        )
        .expect("valid");
        let printed = format!("{s:?}");
        assert!(!printed.contains("a-very-secret"));
        assert!(s.access_token.is_some());
    }

    #[test]
    fn the_agent_keys_come_from_the_same_secret_and_empty_is_none() {
        let s = WhatsAppSecrets::from_json(
            r#"{"app_secret":"a","verify_token":"v","crm_api_key":"crm-key","model_api_key":""}"#,
        )
        .expect("valid");
        assert_eq!(
            s.crm_api_key
                .as_ref()
                .map(|k| k.expose_secret().to_string()),
            Some("crm-key".to_string())
        );
        assert!(s.model_api_key.is_none());
        assert!(!format!("{s:?}").contains("crm-key"));
    }

    #[test]
    fn secrets_refuse_empty_values() {
        assert!(WhatsAppSecrets::from_json(r#"{"app_secret":"","verify_token":"v"}"#).is_err());
        assert!(WhatsAppSecrets::from_json("not json").is_err());
    }
}
