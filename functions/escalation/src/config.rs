//! Every variable the escalation function and its Chatwoot webhook read,
//! read once at start.

use std::path::PathBuf;

use chatwoot::ChatwootPlace;

use domain::{Error, Result};
use runtime::config::{FromVars, Vars};
use whatsapp_graph::GraphConfig;

/// Where people are told of an escalation, besides the desk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    /// `CHARLA_ESCALATION_TOPIC_ARN`: an SNS topic.
    pub topic_arn: Option<String>,
    /// `CHARLA_SES_FROM` and `CHARLA_SES_TO` (comma-separated): email
    /// through SES; both or neither.
    pub email: Option<(String, Vec<String>)>,
}

impl Notify {
    pub fn from_vars(vars: &Vars) -> Result<Notify> {
        let email = match (
            vars.optional("CHARLA_SES_FROM"),
            vars.optional("CHARLA_SES_TO"),
        ) {
            (Some(from), Some(to)) => Some((
                from,
                to.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            )),
            (None, None) => None,
            _ => {
                return Err(Error::Config(
                    "CHARLA_SES_FROM and CHARLA_SES_TO go together: set both or neither".into(),
                ))
            }
        };
        Ok(Notify {
            topic_arn: vars.optional("CHARLA_ESCALATION_TOPIC_ARN"),
            email,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.topic_arn.is_none() && self.email.is_none()
    }
}

/// What escalation needs wherever it runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `CHARLA_AGENT`: the profile (its `[escalation]`, hours, languages).
    pub profile: PathBuf,
    pub graph: GraphConfig,
    /// `CHATWOOT_*`: the desk, when people answer in Chatwoot.
    pub chatwoot: Option<ChatwootPlace>,
    pub notify: Notify,
    /// `CHARLA_ADMIN_CONVERSATION_URL`: where the admin API shows a
    /// conversation (the wa_id is appended), for the notices.
    pub admin_conversation_url: Option<String>,
    /// `CHARLA_LOG_CONTENT`
    pub log_content: bool,
    /// `CHARLA_CALLING_HOURS`: overrides the profile's `voice.calling_hours`
    /// for the call-backs offered, as it does for call-trigger.
    pub calling_hours: Option<domain::voice::CallingHours>,
}

impl Settings {
    pub fn from_vars(vars: &Vars) -> Result<Settings> {
        Ok(Settings {
            profile: PathBuf::from(
                vars.optional("CHARLA_AGENT")
                    .unwrap_or_else(|| agent::LAYER_PROFILE.into()),
            ),
            graph: GraphConfig::from_vars(vars)?,
            chatwoot: ChatwootPlace::from_vars(vars)?,
            notify: Notify::from_vars(vars)?,
            admin_conversation_url: vars.optional("CHARLA_ADMIN_CONVERSATION_URL"),
            log_content: vars.flag("CHARLA_LOG_CONTENT", false)?,
            calling_hours: vars
                .optional_parsed("CHARLA_CALLING_HOURS", domain::voice::CallingHours::parse)?,
        })
    }
}

/// The escalation function as Lambda runs it.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// `CHARLA_TABLE`
    pub table: String,
    /// `WHATSAPP_SECRET_ARN`: the Graph API token, the Chatwoot API token.
    pub whatsapp_secret_arn: String,
    /// `CHARLA_TIMER_QUEUE_URL`: the no-human checks, delayed.
    pub timer_queue_url: String,
    /// `CHARLA_CALL_QUEUE_URL`: call-backs offered when nobody answered.
    pub call_queue_url: String,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Config> {
        Ok(Config {
            settings: Settings::from_vars(vars)?,
            table: vars.required("CHARLA_TABLE")?,
            whatsapp_secret_arn: vars.required("WHATSAPP_SECRET_ARN")?,
            timer_queue_url: vars.required("CHARLA_TIMER_QUEUE_URL")?,
            call_queue_url: vars.required("CHARLA_CALL_QUEUE_URL")?,
        })
    }
}

/// Chatwoot's webhook (`POST /webhooks/chatwoot`) as Lambda runs it.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub graph: GraphConfig,
    /// `CHARLA_TABLE`
    pub table: String,
    /// `WHATSAPP_SECRET_ARN`: the Graph API token and the webhook's token.
    pub whatsapp_secret_arn: String,
    /// `CHARLA_LOG_CONTENT`
    pub log_content: bool,
}

impl FromVars for WebhookConfig {
    fn from_vars(vars: &Vars) -> Result<WebhookConfig> {
        Ok(WebhookConfig {
            graph: GraphConfig::from_vars(vars)?,
            table: vars.required("CHARLA_TABLE")?,
            whatsapp_secret_arn: vars.required("WHATSAPP_SECRET_ARN")?,
            log_content: vars.flag("CHARLA_LOG_CONTENT", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_needs_both_ends_and_splits_the_list() {
        let half = Vars::from_pairs([("CHARLA_SES_FROM", "bot@example.com")]);
        assert!(
            matches!(Notify::from_vars(&half), Err(Error::Config(m)) if m.contains("CHARLA_SES_TO"))
        );
        let both = Vars::from_pairs([
            ("CHARLA_SES_FROM", "bot@example.com"),
            ("CHARLA_SES_TO", "a@example.com, b@example.com"),
        ]);
        assert_eq!(
            Notify::from_vars(&both).ok().and_then(|n| n.email),
            Some((
                "bot@example.com".to_string(),
                vec!["a@example.com".to_string(), "b@example.com".to_string()]
            ))
        );
        assert!(Notify::from_vars(&Vars::default()).is_ok_and(|n| n.is_empty()));
    }

    #[test]
    fn the_queues_are_required() {
        let vars = Vars::from_pairs([
            ("CHARLA_TABLE", "t"),
            ("WHATSAPP_SECRET_ARN", "arn:s"),
            ("CHARLA_CALL_QUEUE_URL", "http://q/calls"),
        ]);
        assert!(
            matches!(Config::from_vars(&vars), Err(Error::Config(m)) if m.contains("CHARLA_TIMER_QUEUE_URL"))
        );
    }
}
