//! The agent, built from its profile and its settings, the same way in
//! text-ai and voice (Lambda) and in infra/local:
//!
//! - `CHARLA_AGENT`: the profile (TOML); Lambda: `/opt/agent.toml` from the
//!   profile layer; locally `profiles/demo/agent.toml`.
//! - `CHARLA_MODEL`: `local` (default: playbook and knowledge base, no
//!   model), `bedrock:<model id>`, or `openai:<model>` with
//!   `CHARLA_MODEL_URL` (and the `model_api_key` secret /
//!   `CHARLA_MODEL_API_KEY`).
//! - `CHARLA_KNOWLEDGE_BASE_ID`: a Bedrock knowledge base for `kb_search`;
//!   otherwise the profile's Markdown folder, indexed at start.
//! - `CHARLA_CRM_URL` (else the profile's `customers.crm_url`): the CRM for
//!   `lookup_customer` and leads (key: the
//!   `crm_api_key` secret / `CHARLA_CRM_API_KEY`); otherwise
//!   `CHARLA_CUSTOMERS_FILE`, default the profile folder's `customers.csv`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent::{Agent, Profile, ToolDeps};
use domain::ports::{
    AgentRecords, ChatModel, Clock, CustomerDirectory, KnowledgeBase, LeadSink, Queue,
};
use domain::{Error, Result};
use runtime::config::{Vars, WhatsAppSecrets};
use tracing::info;

/// Which chat model answers what the playbook does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelChoice {
    /// No model: the playbook and the knowledge base.
    Local,
    Bedrock(String),
    OpenAi(String),
}

impl ModelChoice {
    pub fn parse(s: &str) -> Result<ModelChoice> {
        let s = s.trim();
        let bad = || {
            Error::Config(format!(
                "CHARLA_MODEL {s:?}: expected local, bedrock:<model id> or openai:<model>"
            ))
        };
        if s.is_empty() || s == "local" {
            return Ok(ModelChoice::Local);
        }
        let (kind, id) = s.split_once(':').ok_or_else(bad)?;
        if id.trim().is_empty() {
            return Err(bad());
        }
        match kind {
            "bedrock" => Ok(ModelChoice::Bedrock(id.trim().to_string())),
            "openai" => Ok(ModelChoice::OpenAi(id.trim().to_string())),
            _ => Err(bad()),
        }
    }
}

/// The agent's settings from the environment.
#[derive(Debug, Clone)]
pub struct AgentEnv {
    pub profile: PathBuf,
    pub model: ModelChoice,
    pub model_url: Option<String>,
    pub knowledge_base_id: Option<String>,
    pub crm_url: Option<String>,
    pub customers_file: Option<PathBuf>,
    /// `CHARLA_CALLING_HOURS`: overrides the profile's
    /// `voice.calling_hours`, as it does for call-trigger, so that what the
    /// agent tells the user is when the call goes out.
    pub calling_hours: Option<domain::voice::CallingHours>,
}

impl AgentEnv {
    /// `CHARLA_AGENT` (default [`agent::LAYER_PROFILE`]), `CHARLA_MODEL`,
    /// `CHARLA_MODEL_URL`, `CHARLA_KNOWLEDGE_BASE_ID`, `CHARLA_CRM_URL`,
    /// `CHARLA_CUSTOMERS_FILE`.
    pub fn from_vars(vars: &Vars) -> Result<AgentEnv> {
        let profile = PathBuf::from(
            vars.optional("CHARLA_AGENT")
                .unwrap_or_else(|| agent::LAYER_PROFILE.into()),
        );
        Ok(AgentEnv {
            // Absolute where it exists, so that logs say which file it was.
            profile: std::fs::canonicalize(&profile).unwrap_or(profile),
            model: ModelChoice::parse(&vars.optional("CHARLA_MODEL").unwrap_or_default())?,
            model_url: vars.optional("CHARLA_MODEL_URL"),
            knowledge_base_id: vars.optional("CHARLA_KNOWLEDGE_BASE_ID"),
            crm_url: vars.optional("CHARLA_CRM_URL"),
            customers_file: vars.optional("CHARLA_CUSTOMERS_FILE").map(PathBuf::from),
            calling_hours: vars
                .optional_parsed("CHARLA_CALLING_HOURS", domain::voice::CallingHours::parse)?,
        })
    }
}

/// Where customers are looked up, and where leads go beyond the store.
type Customers = (
    Option<Arc<dyn CustomerDirectory>>,
    Option<Arc<dyn LeadSink>>,
);

/// The stores and queues the agent's tools write to.
pub struct AgentPorts {
    pub records: Arc<dyn AgentRecords>,
    pub call_queue: Arc<dyn Queue>,
    pub escalation_queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
}

/// Builds the agent: a wrong profile, an unreadable customers file or a
/// knowledge folder that does not exist stop the start here.
pub async fn build_agent(
    env: &AgentEnv,
    secrets: &WhatsAppSecrets,
    ports: AgentPorts,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Agent> {
    let mut profile = Profile::load(&env.profile)?;
    if let Some(hours) = env.calling_hours {
        profile.voice.calling_hours = hours;
    }
    let profile = Arc::new(profile);

    let knowledge: Option<Arc<dyn KnowledgeBase>> =
        match (&env.knowledge_base_id, &profile.knowledge_dir) {
            (Some(id), _) => Some(bedrock::knowledge_base(id, aws).await?),
            (None, Some(dir)) => Some(Arc::new(knowledge::LocalKnowledgeBase::open(dir)?)),
            (None, None) => None,
        };

    let crm_url = env.crm_url.as_ref().or(profile.customers.crm_url.as_ref());
    let (customers, lead_sink): Customers = match crm_url {
        Some(url) => {
            let crm = Arc::new(crm::HttpCrm::new(
                url.clone(),
                secrets.crm_api_key.clone(),
                crm::HttpCrm::DEFAULT_POLICY,
            )?);
            (Some(crm.clone()), Some(crm))
        }
        None => {
            let file = env
                .customers_file
                .clone()
                .or_else(|| default_customers(&env.profile));
            let customers: Option<Arc<dyn CustomerDirectory>> = match file {
                Some(f) => Some(Arc::new(knowledge::CsvCustomers::open(&f)?)),
                None => None,
            };
            (customers, None)
        }
    };

    let model = build_model(env, secrets, aws).await?;
    info!(
        profile = %env.profile.display(),
        model = ?env.model,
        knowledge = knowledge.is_some(),
        customers = customers.is_some(),
        "agent ready"
    );
    Ok(Agent::new(
        profile,
        ToolDeps {
            knowledge,
            customers,
            lead_sink,
            records: ports.records,
            call_queue: ports.call_queue,
            escalation_queue: ports.escalation_queue,
            clock: ports.clock,
        },
        model,
    ))
}

/// The chat model `CHARLA_MODEL` names; `None` for `local`.
pub async fn build_model(
    env: &AgentEnv,
    secrets: &WhatsAppSecrets,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Option<Arc<dyn ChatModel>>> {
    Ok(match &env.model {
        ModelChoice::Local => None,
        ModelChoice::Bedrock(id) => Some(bedrock::model(id, aws).await?),
        ModelChoice::OpenAi(name) => {
            let url = env.model_url.clone().ok_or_else(|| {
                Error::Config("CHARLA_MODEL openai:... needs CHARLA_MODEL_URL".into())
            })?;
            Some(Arc::new(model_servers::OpenAiModel::new(
                &url,
                name.clone(),
                secrets.model_api_key.clone(),
                model_servers::OpenAiModel::DEFAULT_POLICY,
            )?))
        }
    })
}

/// `customers.csv` beside the profile, when there is one.
fn default_customers(profile: &Path) -> Option<PathBuf> {
    let f = profile.parent()?.join("customers.csv");
    f.is_file().then_some(f)
}

/// Amazon Bedrock's model and knowledge base; a build without the `bedrock`
/// feature (the one-process runner's default) refuses them with the way out.
#[cfg(feature = "bedrock")]
mod bedrock {
    use std::sync::Arc;

    use aws_config::SdkConfig;
    use domain::ports::{ChatModel, KnowledgeBase};
    use domain::Result;

    async fn sdk(aws: Option<&SdkConfig>) -> SdkConfig {
        match aws {
            Some(c) => c.clone(),
            None => aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
        }
    }

    pub async fn model(id: &str, aws: Option<&SdkConfig>) -> Result<Arc<dyn ChatModel>> {
        Ok(Arc::new(aws_adapters::BedrockModel::new(
            aws_sdk_bedrockruntime::Client::new(&sdk(aws).await),
            id.to_string(),
        )))
    }

    pub async fn knowledge_base(
        id: &str,
        aws: Option<&SdkConfig>,
    ) -> Result<Arc<dyn KnowledgeBase>> {
        Ok(Arc::new(aws_adapters::BedrockKnowledgeBase::new(
            aws_sdk_bedrockagentruntime::Client::new(&sdk(aws).await),
            id.to_string(),
        )))
    }
}

#[cfg(not(feature = "bedrock"))]
mod bedrock {
    use std::sync::Arc;

    use aws_config::SdkConfig;
    use domain::ports::{ChatModel, KnowledgeBase};
    use domain::{Error, Result};

    fn left_out(what: &str) -> Error {
        Error::Config(format!(
            "{what} on Amazon Bedrock needs a build with AWS: \
             cargo run --release -p local --features aws"
        ))
    }

    pub async fn model(_: &str, _: Option<&SdkConfig>) -> Result<Arc<dyn ChatModel>> {
        Err(left_out("CHARLA_MODEL"))
    }

    pub async fn knowledge_base(_: &str, _: Option<&SdkConfig>) -> Result<Arc<dyn KnowledgeBase>> {
        Err(left_out("CHARLA_KNOWLEDGE_BASE_ID"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent reads `CHARLA_CALLING_HOURS` as call-trigger does, so that
    /// what it tells the user is when the call goes out.
    #[test]
    fn calling_hours_from_the_environment_override_the_profiles() {
        let env = AgentEnv::from_vars(&Vars::from_pairs([("CHARLA_CALLING_HOURS", "always")]))
            .expect("env");
        assert_eq!(env.calling_hours, Some(domain::voice::CallingHours::Always));
        assert_eq!(
            AgentEnv::from_vars(&Vars::from_pairs([("CHARLA_CALLING_HOURS", "")]))
                .expect("env")
                .calling_hours,
            None
        );
        assert!(matches!(
            AgentEnv::from_vars(&Vars::from_pairs([("CHARLA_CALLING_HOURS", "all day")])),
            Err(Error::Config(m)) if m.contains("CHARLA_CALLING_HOURS")
        ));
    }

    #[test]
    fn model_choices_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!(ModelChoice::parse("").ok(), Some(ModelChoice::Local));
        assert_eq!(ModelChoice::parse("local").ok(), Some(ModelChoice::Local));
        assert_eq!(
            ModelChoice::parse("bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0").ok(),
            Some(ModelChoice::Bedrock(
                "us.anthropic.claude-3-5-haiku-20241022-v1:0".into()
            ))
        );
        assert_eq!(
            ModelChoice::parse("openai:llama3.1").ok(),
            Some(ModelChoice::OpenAi("llama3.1".into()))
        );
        for bad in ["gpt4", "bedrock:", "azure:x"] {
            match ModelChoice::parse(bad) {
                Err(Error::Config(m)) => assert!(m.contains("expected local"), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
