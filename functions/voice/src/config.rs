//! Every variable the voice function reads, read once at start.

use agent_setup::AgentEnv;
use domain::voice::TransferTarget;
use domain::{Error, Result};
use runtime::config::{FromVars, Vars};

/// What the voice webhooks need wherever they run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The calls, as call-trigger places them (profile, Graph API, the
    /// providers, calling hours).
    pub calls: call_lifecycle::config::Settings,
    /// The agent whose tools serve the providers' tool calls.
    pub agent: AgentEnv,
    /// `CHARLA_TRANSFER_TO` (E.164 or a SIP URI): overrides the profile's
    /// `voice.transfer_to`.
    pub transfer_to: Option<TransferTarget>,
}

impl Settings {
    pub fn from_vars(vars: &Vars) -> Result<Settings> {
        Ok(Settings {
            calls: call_lifecycle::config::Settings::from_vars(vars)?,
            agent: AgentEnv::from_vars(vars)?,
            transfer_to: vars
                .optional("CHARLA_TRANSFER_TO")
                .map(|t| {
                    TransferTarget::parse(&t)
                        .map_err(|e| Error::Config(format!("CHARLA_TRANSFER_TO: {e}")))
                })
                .transpose()?,
        })
    }
}

/// The voice function as Lambda runs it.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// `CHARLA_TABLE`
    pub table: String,
    /// `CHARLA_QUARANTINE_BUCKET`: authenticated bodies that cannot be read.
    pub quarantine_bucket: String,
    /// `WHATSAPP_SECRET_ARN`: the Graph API token (follow-ups), the agent's keys.
    pub whatsapp_secret_arn: String,
    /// `CHARLA_VOICE_SECRET_ARN`: the providers' keys (and what signs
    /// their webhooks).
    pub voice_secret_arn: String,
    /// `CHARLA_CALL_QUEUE_URL`: the agent's tools may ask for a call.
    pub call_queue_url: String,
    /// `CHARLA_ESCALATION_QUEUE_URL`: and for a person.
    pub escalation_queue_url: String,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Config> {
        Ok(Config {
            settings: Settings::from_vars(vars)?,
            table: vars.required("CHARLA_TABLE")?,
            quarantine_bucket: vars.required("CHARLA_QUARANTINE_BUCKET")?,
            whatsapp_secret_arn: vars.required("WHATSAPP_SECRET_ARN")?,
            voice_secret_arn: vars.required("CHARLA_VOICE_SECRET_ARN")?,
            call_queue_url: vars.required("CHARLA_CALL_QUEUE_URL")?,
            escalation_queue_url: vars.required("CHARLA_ESCALATION_QUEUE_URL")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_transfer_target_names_the_variable() {
        let vars = Vars::from_pairs([("CHARLA_TRANSFER_TO", "call Bob")]);
        assert!(
            matches!(Settings::from_vars(&vars), Err(Error::Config(m)) if m.contains("CHARLA_TRANSFER_TO"))
        );
    }
}
