//! Every variable call-trigger reads, read once at start. The voice
//! function places and follows the same calls, so it reads [`Settings`] too.

use std::path::PathBuf;

use shared::adapters::http::{GraphConfig, VoiceConfig};
use shared::config::Vars;
use shared::domain::voice::CallingHours;
use shared::{Error, Result};

/// What placing calls needs wherever it runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `CHARLA_AGENT`: the profile (its `[voice]`, hours, templates).
    pub profile: PathBuf,
    pub graph: GraphConfig,
    /// `CHARLA_VOICE_PROVIDER`, `VAPI_*`, `RETELL_*` (the keys from the
    /// voice secret on AWS).
    pub voice: VoiceConfig,
    /// `CHARLA_CALLING_HOURS`: overrides the profile's.
    pub calling_hours: Option<CallingHours>,
    /// `CHARLA_LOG_CONTENT`
    pub log_content: bool,
}

impl Settings {
    pub fn from_vars(vars: &Vars) -> Result<Settings> {
        Ok(Settings {
            profile: PathBuf::from(
                vars.optional("CHARLA_AGENT")
                    .unwrap_or_else(|| agent::LAYER_PROFILE.into()),
            ),
            graph: GraphConfig::from_vars(vars)?,
            voice: VoiceConfig::from_vars(vars)?,
            calling_hours: vars
                .optional("CHARLA_CALLING_HOURS")
                .map(|h| {
                    CallingHours::parse(&h)
                        .map_err(|e| Error::Config(format!("CHARLA_CALLING_HOURS: {e}")))
                })
                .transpose()?,
            log_content: vars.flag("CHARLA_LOG_CONTENT", false)?,
        })
    }
}

/// call-trigger as Lambda runs it.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// `CHARLA_TABLE`
    pub table: String,
    /// `WHATSAPP_SECRET_ARN`: the Graph API token (the user is told).
    pub whatsapp_secret_arn: String,
    /// `CHARLA_VOICE_SECRET_ARN`: the voice providers' keys.
    pub voice_secret_arn: String,
}

impl Config {
    pub fn from_env() -> Result<Config> {
        Self::from_vars(&Vars::from_process())
    }

    pub fn from_vars(vars: &Vars) -> Result<Config> {
        Ok(Config {
            settings: Settings::from_vars(vars)?,
            table: vars.required("CHARLA_TABLE")?,
            whatsapp_secret_arn: vars.required("WHATSAPP_SECRET_ARN")?,
            voice_secret_arn: vars.required("CHARLA_VOICE_SECRET_ARN")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_calling_hours_name_the_variable() {
        let vars = Vars::from_pairs([("CHARLA_CALLING_HOURS", "all day")]);
        assert!(
            matches!(Settings::from_vars(&vars), Err(Error::Config(m)) if m.contains("CHARLA_CALLING_HOURS"))
        );
    }

    #[test]
    fn the_voice_secret_is_required_in_lambda() {
        let vars = Vars::from_pairs([("CHARLA_TABLE", "t"), ("WHATSAPP_SECRET_ARN", "arn:s")]);
        assert!(
            matches!(Config::from_vars(&vars), Err(Error::Config(m)) if m.contains("CHARLA_VOICE_SECRET_ARN"))
        );
    }
}
