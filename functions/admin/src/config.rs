//! Every variable admin reads, read once at start.

use chatwoot::ChatwootPlace;

use domain::usage::Prices;
use domain::Result;
use runtime::config::{FromVars, Vars};
use whatsapp_graph::GraphConfig;

/// What admin needs wherever it runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Messages sent as a person go through the Graph API.
    pub graph: GraphConfig,
    /// `CHATWOOT_*`: a release resolves the desk's conversation too.
    pub chatwoot: Option<ChatwootPlace>,
    /// `CHARLA_LOG_CONTENT`
    pub log_content: bool,
    /// `CHARLA_PRICES`: JSON over the default price table
    /// ([`Prices`]); unset, the defaults.
    pub prices: Prices,
    /// `CHARLA_REENGAGE_TEMPLATE` and `CHARLA_REENGAGE_TEMPLATE_LANGUAGE`
    /// (default `en_US`), as text-ai reads them: what `reengage` sends.
    pub reengage_template: Option<(String, String)>,
}

impl Settings {
    pub fn from_vars(vars: &Vars) -> Result<Settings> {
        Ok(Settings {
            graph: GraphConfig::from_vars(vars)?,
            chatwoot: ChatwootPlace::from_vars(vars)?,
            log_content: vars.flag("CHARLA_LOG_CONTENT", false)?,
            prices: vars
                .optional_parsed("CHARLA_PRICES", Prices::from_json)?
                .unwrap_or_default(),
            reengage_template: vars.optional("CHARLA_REENGAGE_TEMPLATE").map(|name| {
                let language = vars
                    .optional("CHARLA_REENGAGE_TEMPLATE_LANGUAGE")
                    .unwrap_or_else(|| "en_US".to_string());
                (name, language)
            }),
        })
    }
}

/// admin as Lambda runs it.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// `CHARLA_TABLE`
    pub table: String,
    /// `WHATSAPP_SECRET_ARN`: the Graph API token (messages as a person)
    /// and the Chatwoot API token.
    pub whatsapp_secret_arn: String,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Config> {
        Ok(Config {
            settings: Settings::from_vars(vars)?,
            table: vars.required("CHARLA_TABLE")?,
            whatsapp_secret_arn: vars.required("WHATSAPP_SECRET_ARN")?,
        })
    }
}
