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
            .finish()
    }
}

#[derive(Deserialize)]
struct SecretsJson {
    app_secret: String,
    verify_token: String,
    #[serde(default)]
    access_token: Option<String>,
}

impl WhatsAppSecrets {
    /// The JSON kept in Secrets Manager:
    /// `{"app_secret": "...", "verify_token": "...", "access_token": "..."}`.
    pub fn from_json(json: &str) -> Result<Self> {
        let s: SecretsJson = serde_json::from_str(json)
            .map_err(|e| Error::Config(format!("WhatsApp secret is not the expected JSON: {e}")))?;
        Self::new(s.app_secret, s.verify_token, s.access_token)
    }

    /// `WHATSAPP_APP_SECRET`, `WHATSAPP_VERIFY_TOKEN`, `WHATSAPP_ACCESS_TOKEN`.
    pub fn from_env() -> Result<Self> {
        Self::new(
            env_required("WHATSAPP_APP_SECRET")?,
            env_required("WHATSAPP_VERIFY_TOKEN")?,
            env_optional("WHATSAPP_ACCESS_TOKEN"),
        )
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
    fn secrets_refuse_empty_values() {
        assert!(WhatsAppSecrets::from_json(r#"{"app_secret":"","verify_token":"v"}"#).is_err());
        assert!(WhatsAppSecrets::from_json("not json").is_err());
    }
}
