//! The calls on AWS: the providers' keys from the voice secret.

use aws_adapters::secret_string;
use domain::Result;
use secrecy::ExposeSecret;
use voice_providers::VoiceConfig;

/// The voice settings with the keys from the voice secret (the
/// environment's win where both are set).
pub async fn voice_with_keys(
    voice: &VoiceConfig,
    voice_secret_arn: &str,
    secrets: &aws_sdk_secretsmanager::Client,
) -> Result<VoiceConfig> {
    let json = secret_string(secrets, voice_secret_arn).await?;
    voice.clone().with_secret_json(json.expose_secret())
}
