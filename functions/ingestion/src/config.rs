//! Every variable ingestion reads, read once at start.

use domain::Result;
use runtime::config::{FromVars, Vars};

/// ingestion as Lambda runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `CHARLA_TABLE`
    pub table: String,
    /// `CHARLA_TEXT_QUEUE_URL`: one job per message, FIFO group per user.
    pub text_queue_url: String,
    /// `CHARLA_QUARANTINE_BUCKET`: signed payloads that cannot be parsed.
    pub quarantine_bucket: String,
    /// `WHATSAPP_SECRET_ARN`: the app secret and the verify token.
    pub whatsapp_secret_arn: String,
    /// `CHARLA_MEDIA_STATE_MACHINE_ARN`: media messages start it; unset,
    /// they are answered from their caption alone.
    pub media_state_machine_arn: Option<String>,
    /// `CHARLA_LOG_CONTENT`
    pub log_content: bool,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Config> {
        Ok(Config {
            table: vars.required("CHARLA_TABLE")?,
            text_queue_url: vars.required("CHARLA_TEXT_QUEUE_URL")?,
            quarantine_bucket: vars.required("CHARLA_QUARANTINE_BUCKET")?,
            whatsapp_secret_arn: vars.required("WHATSAPP_SECRET_ARN")?,
            media_state_machine_arn: vars.optional("CHARLA_MEDIA_STATE_MACHINE_ARN"),
            log_content: vars.flag("CHARLA_LOG_CONTENT", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named_and_the_state_machine_is_optional() {
        let all = [
            ("CHARLA_TABLE", "t"),
            ("CHARLA_TEXT_QUEUE_URL", "http://q"),
            ("CHARLA_QUARANTINE_BUCKET", "b"),
            ("WHATSAPP_SECRET_ARN", "arn:s"),
        ];
        let config = Config::from_vars(&Vars::from_pairs(all)).expect("config");
        assert_eq!(config.media_state_machine_arn, None);
        for missing in all.map(|(k, _)| k) {
            let vars = Vars::from_pairs(all.into_iter().filter(|(k, _)| *k != missing));
            match Config::from_vars(&vars) {
                Err(domain::Error::Config(m)) => assert!(m.contains(missing), "{m}"),
                other => panic!("{missing}: {other:?}"),
            }
        }
    }
}
