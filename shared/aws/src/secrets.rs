//! Secrets from Secrets Manager, read once at start.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};

use domain::error::{Error, Result};
use runtime::config::WhatsAppSecrets;

/// The string value of secret `secret_id` (a name or ARN). Every failure is
/// a `Config` error that names the secret but never shows its value.
pub async fn secret_string(client: &Client, secret_id: &str) -> Result<SecretString> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            Error::Config(format!(
                "secret {secret_id} cannot be read: {}",
                DisplayErrorContext(&e)
            ))
        })?;
    match out.secret_string() {
        Some(s) if !s.trim().is_empty() => Ok(SecretString::from(s.to_string())),
        Some(_) => Err(Error::Config(format!("secret {secret_id} is empty"))),
        None => Err(Error::Config(format!(
            "secret {secret_id} has no string value (a binary secret?)"
        ))),
    }
}

/// Reads the WhatsApp secret `secret_id`, a JSON object
/// `{"app_secret": "...", "verify_token": "...", "access_token": "...", ...}`
/// (see [`WhatsAppSecrets::from_json`]).
pub async fn load_whatsapp_secrets(client: &Client, secret_id: &str) -> Result<WhatsAppSecrets> {
    let json = secret_string(client, secret_id).await?;
    let json = json.expose_secret();
    WhatsAppSecrets::from_json(json).map_err(|_| {
        // Only the position of a syntax error: parser messages can quote
        // the value ("invalid type: string \"...\"").
        let detail = match serde_json::from_str::<serde_json::Value>(json) {
            Err(e) => format!("not JSON (line {}, column {})", e.line(), e.column()),
            Ok(_) => "JSON, but not an object with non-empty string fields app_secret and \
                      verify_token (and optionally access_token)"
                .to_string(),
        };
        Error::Config(format!("secret {secret_id} is {detail}"))
    })
}
