//! The WhatsApp app's secrets from Secrets Manager, read once at start.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::Client;

use crate::config::WhatsAppSecrets;
use crate::error::{Error, Result};

/// Reads secret `secret_id` (a name or ARN), a JSON object
/// `{"app_secret": "...", "verify_token": "...", "access_token": "..."}`.
/// Every failure is a `Config` error that names the secret but never shows
/// its value (not even the part a JSON parser would quote).
pub async fn load_whatsapp_secrets(client: &Client, secret_id: &str) -> Result<WhatsAppSecrets> {
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
    let Some(json) = out.secret_string() else {
        return Err(Error::Config(format!(
            "secret {secret_id} has no string value (a binary secret?)"
        )));
    };
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
