//! The local runner's settings: the same variables as in Lambda, with
//! development values for unset secrets (printed at start).

use std::net::SocketAddr;
use std::path::PathBuf;

use shared::config::{env_optional, env_parse, WhatsAppSecrets};
use shared::Result;

pub const DEV_APP_SECRET: &str = "dev-app-secret";
pub const DEV_VERIFY_TOKEN: &str = "dev-verify-token";
pub const DEV_ADMIN_KEY: &str = "dev-admin-key";
/// The demo profile in this repository, wherever `local` is run from.
pub const DEMO_PROFILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../profiles/demo/agent.toml"
);

pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub aws: bool,
    pub create_resources: bool,
    pub secrets: WhatsAppSecrets,
    pub admin_keys: authorizer::AdminKeys,
    pub api_base: String,
    pub debounce_ms: u64,
    pub workers: usize,
    pub reengage_template: Option<(String, String)>,
    /// The agent: profile, model, knowledge, customers.
    pub agent: text_ai::setup::AgentEnv,
    /// Which variables fell back to development values.
    pub dev_defaults: Vec<&'static str>,
}

impl Settings {
    pub fn from_env(
        listen: SocketAddr,
        data_dir: PathBuf,
        aws: bool,
        create_resources: bool,
    ) -> Result<Self> {
        let mut dev_defaults = Vec::new();
        let mut or_dev = |name: &'static str, dev: &str| {
            env_optional(name).unwrap_or_else(|| {
                dev_defaults.push(name);
                dev.to_string()
            })
        };
        let app_secret = or_dev("WHATSAPP_APP_SECRET", DEV_APP_SECRET);
        let verify_token = or_dev("WHATSAPP_VERIFY_TOKEN", DEV_VERIFY_TOKEN);
        let admin_keys = match env_optional("CHARLA_ADMIN_KEY_HASHES") {
            Some(hashes) => authorizer::AdminKeys::parse(&hashes)?,
            None => {
                let key = or_dev("CHARLA_ADMIN_KEY", DEV_ADMIN_KEY);
                authorizer::AdminKeys::from_plain(&key, authorizer::Scopes::ADMIN)?
            }
        };
        let secrets = WhatsAppSecrets::new(
            app_secret,
            verify_token,
            env_optional("WHATSAPP_ACCESS_TOKEN"),
        )?
        .with_agent_keys(
            env_optional("CHARLA_CRM_API_KEY"),
            env_optional("CHARLA_MODEL_API_KEY"),
        );
        let reengage_template = env_optional("CHARLA_REENGAGE_TEMPLATE").map(|name| {
            let lang = env_optional("CHARLA_REENGAGE_TEMPLATE_LANGUAGE")
                .unwrap_or_else(|| "en_US".to_string());
            (name, lang)
        });
        Ok(Settings {
            listen,
            data_dir,
            aws,
            create_resources,
            secrets,
            admin_keys,
            api_base: env_optional("WHATSAPP_API_BASE")
                .unwrap_or_else(|| "https://graph.facebook.com/v23.0".to_string()),
            debounce_ms: env_parse("CHARLA_DEBOUNCE_MS", 1500u64)?,
            workers: env_parse("CHARLA_WORKERS", 8usize)?.max(1),
            reengage_template,
            agent: text_ai::setup::AgentEnv::from_env(DEMO_PROFILE)?,
            dev_defaults,
        })
    }
}
