//! Typed configuration read once at start. A missing variable stops the start
//! with a message that names it; secrets sit in types that do not print.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use domain::error::{Error, Result};

/// The configuration variables a function was started with: a snapshot of
/// the process environment, taken once by the function's `Config::from_env`
/// (the only place that reads the environment), or a map in tests and in the
/// one-process runner. Every reader names the variable in its error.
#[derive(Clone, Default)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for Vars {
    // Names only: values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

/// A function's configuration, read from its variables: `from_vars` for the
/// tests and the one-process runner, `from_env` for Lambda (the environment
/// is read once, at start).
pub trait FromVars: Sized {
    fn from_vars(vars: &Vars) -> Result<Self>;

    fn from_env() -> Result<Self> {
        Self::from_vars(&Vars::from_process())
    }
}

impl Vars {
    /// The process environment, now.
    pub fn from_process() -> Vars {
        Vars {
            values: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Vars {
        Vars {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Sets `name` (the runner's own values: resources it created).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.values.insert(name.to_string(), value.into());
    }

    /// Sets `name` only where it is unset or empty; returns whether it did.
    pub fn default_to(&mut self, name: &str, value: impl Into<String>) -> bool {
        if self.optional(name).is_some() {
            return false;
        }
        self.set(name, value);
        true
    }

    /// A variable that may be unset; empty or blank is unset.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.values
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }

    /// A required variable: missing or empty is a start-up error.
    pub fn required(&self, name: &str) -> Result<String> {
        self.optional(name)
            .ok_or_else(|| Error::Config(format!("environment variable {name} is required")))
    }

    /// A variable with a default; a value that does not parse is an error,
    /// not the default.
    pub fn parse<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                Error::Config(format!("environment variable {name} has a bad value {v:?}"))
            }),
        }
    }

    /// A variable read by its own parser, `None` when unset; a value the
    /// parser refuses is an error that names the variable and says why.
    pub fn optional_parsed<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> std::result::Result<T, E>,
    ) -> Result<Option<T>> {
        self.optional(name)
            .map(|v| parse(&v).map_err(|e| Error::Config(format!("{name}: {e}"))))
            .transpose()
    }

    /// `true`/`1` or `false`/`0` (any case); unset is `default`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool> {
        match self.optional(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" || v == "1" => Ok(true),
            Some(v) if v == "false" || v == "0" => Ok(false),
            Some(v) => Err(Error::Config(format!(
                "environment variable {name} has a bad value {v:?}: expected true or false"
            ))),
        }
    }

    /// An http(s) URL, without its trailing slash.
    pub fn url(&self, name: &str, default: &str) -> Result<String> {
        let url = self.optional(name).unwrap_or_else(|| default.to_string());
        let url = url.trim().trim_end_matches('/').to_string();
        if url.starts_with("https://") || url.starts_with("http://") {
            Ok(url)
        } else {
            Err(Error::Config(format!(
                "{name} {url:?} is not an http(s) URL"
            )))
        }
    }

    /// A secret value; it never appears in an error or a log.
    pub fn secret(&self, name: &str) -> Option<SecretString> {
        self.optional(name).map(SecretString::from)
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
    /// Chatwoot, when people answer there: the API token, and the token its
    /// webhook calls Charla with.
    pub chatwoot_api_token: Option<SecretString>,
    pub chatwoot_webhook_token: Option<SecretString>,
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
            .field(
                "chatwoot_api_token",
                &self.chatwoot_api_token.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "chatwoot_webhook_token",
                &self.chatwoot_webhook_token.as_ref().map(|_| "[redacted]"),
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
    #[serde(default)]
    chatwoot_api_token: Option<String>,
    #[serde(default)]
    chatwoot_webhook_token: Option<String>,
}

impl WhatsAppSecrets {
    /// The JSON kept in Secrets Manager:
    /// `{"app_secret": "...", "verify_token": "...", "access_token": "..."}`.
    pub fn from_json(json: &str) -> Result<Self> {
        let s: SecretsJson = serde_json::from_str(json)
            .map_err(|e| Error::Config(format!("WhatsApp secret is not the expected JSON: {e}")))?;
        Ok(Self::new(s.app_secret, s.verify_token, s.access_token)?
            .with_agent_keys(s.crm_api_key, s.model_api_key)
            .with_chatwoot_tokens(s.chatwoot_api_token, s.chatwoot_webhook_token))
    }

    /// The same values from variables (the one-process runner):
    /// `WHATSAPP_APP_SECRET`, `WHATSAPP_VERIFY_TOKEN`, `WHATSAPP_ACCESS_TOKEN`,
    /// `CHARLA_CRM_API_KEY`, `CHARLA_MODEL_API_KEY`, `CHATWOOT_API_TOKEN`,
    /// `CHATWOOT_WEBHOOK_TOKEN`.
    pub fn from_vars(vars: &Vars) -> Result<Self> {
        Ok(Self::new(
            vars.required("WHATSAPP_APP_SECRET")?,
            vars.required("WHATSAPP_VERIFY_TOKEN")?,
            vars.optional("WHATSAPP_ACCESS_TOKEN"),
        )?
        .with_agent_keys(
            vars.optional("CHARLA_CRM_API_KEY"),
            vars.optional("CHARLA_MODEL_API_KEY"),
        )
        .with_chatwoot_tokens(
            vars.optional("CHATWOOT_API_TOKEN"),
            vars.optional("CHATWOOT_WEBHOOK_TOKEN"),
        ))
    }

    /// Adds the Chatwoot tokens; empty ones are none.
    pub fn with_chatwoot_tokens(mut self, api: Option<String>, webhook: Option<String>) -> Self {
        let keep = |k: Option<String>| k.filter(|k| !k.is_empty()).map(SecretString::from);
        self.chatwoot_api_token = keep(api);
        self.chatwoot_webhook_token = keep(webhook);
        self
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
            chatwoot_api_token: None,
            chatwoot_webhook_token: None,
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
    fn an_optional_variable_is_read_by_its_parser_and_a_refusal_names_it() {
        let vars = Vars::from_pairs([("N", "7"), ("BAD", "x"), ("BLANK", " ")]);
        let parse = |v: &str| v.parse::<u8>().map_err(|e| e.to_string());
        assert_eq!(vars.optional_parsed("N", parse).expect("ok"), Some(7));
        assert_eq!(vars.optional_parsed("UNSET", parse).expect("ok"), None);
        assert_eq!(vars.optional_parsed("BLANK", parse).expect("ok"), None);
        let err = vars.optional_parsed("BAD", parse).expect_err("refused");
        assert!(
            matches!(&err, Error::Config(m) if m.starts_with("BAD: ")),
            "{err:?}"
        );
    }

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
