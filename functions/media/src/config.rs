//! Every variable the media function reads, read once at start.

use std::path::PathBuf;

use domain::Result;
use runtime::config::{FromVars, Vars};
use whatsapp_graph::GraphConfig;

/// What the media steps need wherever they run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Media is downloaded from the Graph API.
    pub graph: GraphConfig,
    /// `CHARLA_AGENT`: the profile, for its languages.
    pub profile: PathBuf,
    /// `CHARLA_LANGUAGES` ("es,en"): overrides the profile's languages.
    pub languages: Option<Vec<String>>,
    /// `CHARLA_MEDIA_WORK_DIR`: where downloads land before they are
    /// stored (default: the system's temp dir, `/tmp` in Lambda).
    pub work_dir: PathBuf,
    /// `CHARLA_LOG_CONTENT`
    pub log_content: bool,
}

impl Settings {
    pub fn from_vars(vars: &Vars) -> Result<Settings> {
        Ok(Settings {
            graph: GraphConfig::from_vars(vars)?,
            profile: PathBuf::from(
                vars.optional("CHARLA_AGENT")
                    .unwrap_or_else(|| "/opt/agent.toml".into()),
            ),
            languages: vars.optional("CHARLA_LANGUAGES").map(|list| {
                list.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
            work_dir: vars
                .optional("CHARLA_MEDIA_WORK_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| std::env::temp_dir().join("charla-media")),
            log_content: vars.flag("CHARLA_LOG_CONTENT", false)?,
        })
    }
}

/// The media function as Lambda runs it.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// `CHARLA_TABLE`: the media notes, the conversations.
    pub table: String,
    /// `CHARLA_TEXT_QUEUE_URL`: the held turn goes back on it.
    pub text_queue_url: String,
    /// `CHARLA_ESCALATION_QUEUE_URL`: unsafe content goes to people.
    pub escalation_queue_url: String,
    /// `CHARLA_MEDIA_BUCKET`
    pub media_bucket: String,
    /// `CHARLA_MEDIA_KMS_KEY_ARN`: SSE-KMS with this key; unset, SSE-S3.
    pub kms_key_arn: Option<String>,
    /// `WHATSAPP_SECRET_ARN`: the Graph API token.
    pub whatsapp_secret_arn: String,
    /// `CHARLA_MEDIA_SALT_SECRET_ARN`: the salt of the media keys.
    pub salt_secret_arn: String,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Config> {
        Ok(Config {
            settings: Settings::from_vars(vars)?,
            table: vars.required("CHARLA_TABLE")?,
            text_queue_url: vars.required("CHARLA_TEXT_QUEUE_URL")?,
            escalation_queue_url: vars.required("CHARLA_ESCALATION_QUEUE_URL")?,
            media_bucket: vars.required("CHARLA_MEDIA_BUCKET")?,
            kms_key_arn: vars.optional("CHARLA_MEDIA_KMS_KEY_ARN"),
            whatsapp_secret_arn: vars.required("WHATSAPP_SECRET_ARN")?,
            salt_secret_arn: vars.required("CHARLA_MEDIA_SALT_SECRET_ARN")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_override_is_a_clean_list() {
        let vars = Vars::from_pairs([("CHARLA_LANGUAGES", " ES, en ,,")]);
        assert_eq!(
            Settings::from_vars(&vars).ok().and_then(|s| s.languages),
            Some(vec!["es".to_string(), "en".to_string()])
        );
    }
}
