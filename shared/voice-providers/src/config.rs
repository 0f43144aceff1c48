//! What the Vapi and Retell adapters share: their settings from the
//! environment (the same variables in Lambda and locally; keys from the
//! voice secret in Lambda) and one careful POST.
//!
//! A create-call POST is retried only when the provider cannot have acted on
//! it (could not connect, 429): after a timeout or a 5xx the call may be
//! ringing already, and a second POST would ring the customer twice.
//! Those come back as retryable errors for the caller to reschedule.

use std::time::Duration;

use backon::Retryable;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use domain::error::{Error, Result};
use domain::voice::{ProviderKind, StartedCall};
use http_client::{self as common, HttpPolicy};
use runtime::config::Vars;

pub const DEFAULT_VAPI_API_BASE: &str = "https://api.vapi.ai";
pub const DEFAULT_RETELL_API_BASE: &str = "https://api.retellai.com";

/// Timeouts and retries of both voice clients. Only what was certainly not
/// processed is tried again (see [`post_json`]), and `max_elapsed` bounds
/// the backoff's waits, not the whole call.
pub(crate) const DEFAULT_POLICY: HttpPolicy = HttpPolicy {
    connect_timeout: Duration::from_secs(3),
    request_timeout: Duration::from_secs(10),
    max_attempts: 3,
    min_delay: Duration::from_millis(200),
    max_delay: Duration::from_secs(2),
    max_elapsed: Duration::from_secs(20),
};

/// Vapi: `VAPI_API_BASE`, `VAPI_API_KEY`, `VAPI_PHONE_NUMBER_ID`,
/// `VAPI_ASSISTANT_ID`, `VAPI_WEBHOOK_SECRET`.
#[derive(Clone)]
pub struct VapiConfig {
    pub api_base: String,
    pub api_key: Option<SecretString>,
    pub phone_number_id: Option<String>,
    pub assistant_id: Option<String>,
    pub webhook_secret: Option<SecretString>,
}

/// Retell: `RETELL_API_BASE`, `RETELL_API_KEY` (also what signs its
/// webhooks), `RETELL_FROM_NUMBER`, `RETELL_AGENT_ID`.
#[derive(Clone)]
pub struct RetellConfig {
    pub api_base: String,
    pub api_key: Option<SecretString>,
    pub from_number: Option<String>,
    pub agent_id: Option<String>,
}

/// Both providers' settings, and the choice (`CHARLA_VOICE_PROVIDER`).
#[derive(Clone)]
pub struct VoiceConfig {
    pub provider: Option<ProviderKind>,
    pub vapi: VapiConfig,
    pub retell: RetellConfig,
}

impl std::fmt::Debug for VoiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = |s: &Option<SecretString>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("VoiceConfig")
            .field("provider", &self.provider)
            .field("vapi_api_base", &self.vapi.api_base)
            .field("vapi_api_key", &k(&self.vapi.api_key))
            .field("vapi_webhook_secret", &k(&self.vapi.webhook_secret))
            .field("retell_api_base", &self.retell.api_base)
            .field("retell_api_key", &k(&self.retell.api_key))
            .finish_non_exhaustive()
    }
}

/// The voice keys as kept in Secrets Manager (Lambda).
#[derive(Deserialize)]
struct VoiceSecretJson {
    #[serde(default)]
    vapi_api_key: Option<String>,
    #[serde(default)]
    vapi_webhook_secret: Option<String>,
    #[serde(default)]
    retell_api_key: Option<String>,
}

fn secret(v: Option<String>) -> Option<SecretString> {
    v.filter(|v| !v.trim().is_empty()).map(SecretString::from)
}

impl VoiceConfig {
    /// `CHARLA_VOICE_PROVIDER`, `VAPI_*` and `RETELL_*` (keys too, locally;
    /// on AWS they come from the voice secret: [`Self::with_secret_json`]).
    pub fn from_vars(vars: &Vars) -> Result<VoiceConfig> {
        let provider = vars
            .optional("CHARLA_VOICE_PROVIDER")
            .map(|p| {
                ProviderKind::parse(&p)
                    .map_err(|e| Error::Config(format!("CHARLA_VOICE_PROVIDER: {e}")))
            })
            .transpose()?;
        Ok(VoiceConfig {
            provider,
            vapi: VapiConfig {
                api_base: vars.url("VAPI_API_BASE", DEFAULT_VAPI_API_BASE)?,
                api_key: vars.secret("VAPI_API_KEY"),
                phone_number_id: vars.optional("VAPI_PHONE_NUMBER_ID"),
                assistant_id: vars.optional("VAPI_ASSISTANT_ID"),
                webhook_secret: vars.secret("VAPI_WEBHOOK_SECRET"),
            },
            retell: RetellConfig {
                api_base: vars.url("RETELL_API_BASE", DEFAULT_RETELL_API_BASE)?,
                api_key: vars.secret("RETELL_API_KEY"),
                from_number: vars.optional("RETELL_FROM_NUMBER"),
                agent_id: vars.optional("RETELL_AGENT_ID"),
            },
        })
    }

    /// Fills the keys from the voice secret's JSON
    /// (`{"vapi_api_key", "vapi_webhook_secret", "retell_api_key"}`, each
    /// optional); the environment wins where both are set. The error never
    /// quotes the value.
    pub fn with_secret_json(mut self, json: &str) -> Result<VoiceConfig> {
        let s: VoiceSecretJson = serde_json::from_str(json).map_err(|_| {
            Error::Config("the voice secret is not a JSON object of string keys".into())
        })?;
        self.vapi.api_key = self.vapi.api_key.or(secret(s.vapi_api_key));
        self.vapi.webhook_secret = self.vapi.webhook_secret.or(secret(s.vapi_webhook_secret));
        self.retell.api_key = self.retell.api_key.or(secret(s.retell_api_key));
        Ok(self)
    }
}

/// POSTs `body` as JSON with the bearer key; returns the 2xx answer's JSON.
pub(super) async fn post_json(
    service: &'static str,
    http: &reqwest::Client,
    url: &str,
    key: &SecretString,
    body: &Value,
    policy: &HttpPolicy,
) -> Result<Value> {
    let attempt = || async {
        let response = http
            .post(url)
            .bearer_auth(key.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(|e| {
                let connect = e.is_connect();
                let err = common::transport_error(service, e);
                // Only a refused connection is certainly not a call.
                if connect {
                    err
                } else {
                    not_retried_here(err)
                }
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| not_retried_here(common::transport_error(service, e)))?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(common::status_error(service, status));
        }
        if !status.is_success() {
            return Err(not_retried_here(common::status_error(service, status)));
        }
        serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| Error::dependency(service, "answer is not JSON", false, e))
    };
    attempt
        .retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .when(|e: &Error| matches!(e, Error::Dependency { retryable: true, context, .. } if !context.ends_with(AFTER_SEND)))
        .await
}

/// Marks an error the caller may retry later, but that this POST must not
/// repeat at once (the provider may have acted on it).
const AFTER_SEND: &str = "(may have been processed)";

fn not_retried_here(e: Error) -> Error {
    match e {
        Error::Dependency {
            service,
            context,
            retryable,
            source,
        } => Error::Dependency {
            service,
            context: format!("{context} {AFTER_SEND}"),
            retryable,
            source,
        },
        other => other,
    }
}

/// Whether a start-call error may have placed the call anyway.
pub fn maybe_processed(e: &Error) -> bool {
    matches!(e, Error::Dependency { context, .. } if context.ends_with(AFTER_SEND))
}

/// A setting the provider cannot call without: a missing one stops the
/// start and names its variable (`"Vapi calls need VAPI_API_KEY"`).
pub(crate) fn required<T: Clone>(value: &Option<T>, provider: &str, name: &str) -> Result<T> {
    value
        .clone()
        .ok_or_else(|| Error::Config(format!("{provider} calls need {name}")))
}

/// The call the provider created, from the id under `field` of its answer;
/// an answer without one is an error that is not retried (the call may exist).
pub(crate) fn started_call(
    service: &'static str,
    answer: &Value,
    field: &str,
) -> Result<StartedCall> {
    let id = answer
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::dependency(
                service,
                format!("create call: no {field} in the answer"),
                false,
                common::UnexpectedAnswer,
            )
        })?;
    Ok(StartedCall {
        call_id: id.to_string(),
    })
}
