//! What placing and following calls reads from the variables: call-trigger
//! and the voice function read these [`Settings`] alike.

use std::path::PathBuf;

use voice_providers::VoiceConfig;

use domain::voice::CallingHours;
use domain::Result;
use runtime::config::Vars;
use whatsapp_graph::GraphConfig;

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
            calling_hours: vars.optional_parsed("CHARLA_CALLING_HOURS", CallingHours::parse)?,
            log_content: vars.flag("CHARLA_LOG_CONTENT", false)?,
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
            matches!(Settings::from_vars(&vars), Err(domain::Error::Config(m)) if m.contains("CHARLA_CALLING_HOURS"))
        );
    }
}
