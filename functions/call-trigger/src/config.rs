//! Every variable call-trigger reads, read once at start: the calls'
//! settings (shared with the voice function) and its AWS resources.

use call_lifecycle::config::Settings;
use domain::Result;
use runtime::config::{FromVars, Vars};

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

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Config> {
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
    fn the_voice_secret_is_required_in_lambda() {
        let vars = Vars::from_pairs([("CHARLA_TABLE", "t"), ("WHATSAPP_SECRET_ARN", "arn:s")]);
        assert!(
            matches!(Config::from_vars(&vars), Err(domain::Error::Config(m)) if m.contains("CHARLA_VOICE_SECRET_ARN"))
        );
    }
}
