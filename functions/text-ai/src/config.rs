//! Every variable text-ai reads, read once at start.

use domain::Result;
use runtime::config::{FromVars, Vars};
use whatsapp_graph::GraphConfig;

use agent_setup::AgentEnv;

/// What text-ai needs wherever it runs (Lambda and the one-process runner).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The agent: profile, model, knowledge base, CRM or customers file.
    pub agent: AgentEnv,
    pub graph: GraphConfig,
    /// `CHARLA_DEBOUNCE_MS`: quiet time before a turn is answered.
    pub debounce_ms: u64,
    /// `CHARLA_REENGAGE_TEMPLATE` (and `..._LANGUAGE`, default `en_US`):
    /// overrides the profile's template for outside the 24-hour window.
    pub reengage_template: Option<(String, String)>,
    /// `CHARLA_MEDIA_PIPELINE`: media messages hold their turn until the
    /// media pipeline noted them (template.yaml sets it beside the state
    /// machine).
    pub media_pipeline: bool,
    /// `CHARLA_LOG_CONTENT`: message content in logs.
    pub log_content: bool,
    /// `CHARLA_OPT_OUT_WORDS`: a business's own ways of saying "stop"
    /// (comma-separated), beside STOP, BAJA, PARAR and the like.
    pub opt_out_words: Vec<String>,
}

impl Settings {
    pub fn from_vars(vars: &Vars) -> Result<Settings> {
        Ok(Settings {
            agent: AgentEnv::from_vars(vars)?,
            graph: GraphConfig::from_vars(vars)?,
            debounce_ms: vars.parse("CHARLA_DEBOUNCE_MS", 1500u64)?,
            reengage_template: vars.optional("CHARLA_REENGAGE_TEMPLATE").map(|name| {
                let language = vars
                    .optional("CHARLA_REENGAGE_TEMPLATE_LANGUAGE")
                    .unwrap_or_else(|| "en_US".to_string());
                (name, language)
            }),
            media_pipeline: vars.flag("CHARLA_MEDIA_PIPELINE", false)?,
            log_content: vars.flag("CHARLA_LOG_CONTENT", false)?,
            opt_out_words: vars
                .optional("CHARLA_OPT_OUT_WORDS")
                .map(|w| {
                    w.split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// Where text-ai's AWS resources are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// `CHARLA_TABLE`
    pub table: String,
    /// `WHATSAPP_SECRET_ARN`
    pub whatsapp_secret_arn: String,
    /// `CHARLA_CALL_QUEUE_URL`: the agent's call requests.
    pub call_queue_url: String,
    /// `CHARLA_ESCALATION_QUEUE_URL`: answered turns for the escalation
    /// policy, hand-offs, and user messages while people have the
    /// conversation.
    pub escalation_queue_url: String,
}

impl Resources {
    pub fn from_vars(vars: &Vars) -> Result<Resources> {
        Ok(Resources {
            table: vars.required("CHARLA_TABLE")?,
            whatsapp_secret_arn: vars.required("WHATSAPP_SECRET_ARN")?,
            call_queue_url: vars.required("CHARLA_CALL_QUEUE_URL")?,
            escalation_queue_url: vars.required("CHARLA_ESCALATION_QUEUE_URL")?,
        })
    }
}

/// text-ai as Lambda runs it.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub resources: Resources,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Config> {
        Ok(Config {
            settings: Settings::from_vars(vars)?,
            resources: Resources::from_vars(vars)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lambda_vars() -> Vec<(&'static str, &'static str)> {
        vec![
            ("CHARLA_TABLE", "t"),
            ("WHATSAPP_SECRET_ARN", "arn:secret"),
            ("CHARLA_CALL_QUEUE_URL", "http://q/calls"),
            ("CHARLA_ESCALATION_QUEUE_URL", "http://q/escalations"),
        ]
    }

    #[test]
    fn each_missing_resource_is_named() {
        for missing in [
            "CHARLA_TABLE",
            "WHATSAPP_SECRET_ARN",
            "CHARLA_CALL_QUEUE_URL",
            "CHARLA_ESCALATION_QUEUE_URL",
        ] {
            let vars = Vars::from_pairs(lambda_vars().into_iter().filter(|(k, _)| *k != missing));
            match Config::from_vars(&vars) {
                Err(domain::Error::Config(m)) => assert!(m.contains(missing), "{m}"),
                other => panic!("{missing}: {other:?}"),
            }
        }
    }

    #[test]
    fn defaults_and_bad_values() {
        let config = Config::from_vars(&Vars::from_pairs(lambda_vars())).expect("config");
        assert_eq!(config.settings.debounce_ms, 1500);
        assert!(!config.settings.media_pipeline);
        assert_eq!(config.settings.reengage_template, None);
        let mut vars = lambda_vars();
        vars.push(("CHARLA_DEBOUNCE_MS", "soon"));
        assert!(
            matches!(Config::from_vars(&Vars::from_pairs(vars)), Err(domain::Error::Config(m)) if m.contains("CHARLA_DEBOUNCE_MS"))
        );
        let mut vars = lambda_vars();
        vars.push(("CHARLA_MEDIA_PIPELINE", "yes please"));
        assert!(Config::from_vars(&Vars::from_pairs(vars)).is_err());
    }
}
