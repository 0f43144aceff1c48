//! The local runner's settings: the same variables as in Lambda, read into
//! each function's own settings (one place per setting), with development
//! values for unset secrets (printed at start).

use std::net::SocketAddr;
use std::path::PathBuf;

use domain::Result;
use runtime::config::{Vars, WhatsAppSecrets};

pub const DEV_APP_SECRET: &str = "dev-app-secret";
pub const DEV_VERIFY_TOKEN: &str = "dev-verify-token";
pub const DEV_ADMIN_KEY: &str = "dev-admin-key";
/// Used when `CHARLA_MEDIA_KEY_SALT` is unset.
pub const DEV_MEDIA_KEY_SALT: &str = "dev-media-key-salt-not-secret";
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
    /// The variables every function's settings are read from: the
    /// environment, with the runner's defaults (and, with `--aws
    /// --create-resources`, the resources it created).
    pub vars: Vars,
    pub secrets: WhatsAppSecrets,
    pub admin_keys: authorizer::AdminKeys,
    /// Consumers of the text queue.
    pub workers: usize,
    /// How often the scheduled calls are swept (EventBridge's minute in AWS).
    pub call_sweep_ms: u64,
    /// Webhooks accepted but not yet processed, in bytes of the journal,
    /// past which new ones are answered 503 (Meta delivers them again).
    pub journal_max_bytes: u64,
    /// Free disk under the data dir below which webhooks are answered 503:
    /// the room is left for the store's writes behind the 200s.
    pub disk_min_free_bytes: u64,
    /// Turns waiting to be answered past which the journal's applier holds
    /// back (a flood then waits in the journal, not in the turn queue).
    pub turns_waiting_at_most: u64,
    pub text_ai: text_ai::config::Settings,
    pub admin: admin::config::Settings,
    pub campaigns: campaigns::config::Settings,
    pub dispatch: campaigns::dispatch::DispatchSettings,
    /// How often the campaigns' dispatcher runs (EventBridge's minute on AWS).
    pub campaign_tick_ms: u64,
    pub escalation: escalation::config::Settings,
    pub voice: voice::config::Settings,
    pub media: media::config::Settings,
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
        Self::from_vars(
            Vars::from_process(),
            listen,
            data_dir,
            aws,
            create_resources,
        )
    }

    pub fn from_vars(
        mut vars: Vars,
        listen: SocketAddr,
        data_dir: PathBuf,
        aws: bool,
        create_resources: bool,
    ) -> Result<Self> {
        let mut dev_defaults = Vec::new();
        for (name, dev) in [
            ("WHATSAPP_APP_SECRET", DEV_APP_SECRET),
            ("WHATSAPP_VERIFY_TOKEN", DEV_VERIFY_TOKEN),
        ] {
            if vars.default_to(name, dev) {
                dev_defaults.push(name);
            }
        }
        let admin_keys = match vars.optional("CHARLA_ADMIN_KEY_HASHES") {
            Some(_) => authorizer::AdminKeys::from_vars(&vars)?,
            None => {
                if vars.default_to("CHARLA_ADMIN_KEY", DEV_ADMIN_KEY) {
                    dev_defaults.push("CHARLA_ADMIN_KEY");
                }
                authorizer::AdminKeys::from_plain(
                    &vars.required("CHARLA_ADMIN_KEY")?,
                    authorizer::Scopes::ADMIN,
                )?
            }
        };
        // What Lambda gets from its layer and its template, the runner from
        // this repository and its own address.
        vars.default_to("CHARLA_AGENT", DEMO_PROFILE);
        vars.default_to(
            "CHARLA_ADMIN_CONVERSATION_URL",
            format!("http://{listen}/admin/conversations/"),
        );
        vars.default_to(
            "CHARLA_MEDIA_WORK_DIR",
            data_dir.join("media-tmp").display().to_string(),
        );
        vars.default_to("CHARLA_MEDIA_KEY_SALT", DEV_MEDIA_KEY_SALT);
        let secrets = WhatsAppSecrets::from_vars(&vars)?;
        Ok(Settings {
            listen,
            aws,
            create_resources,
            secrets,
            admin_keys,
            workers: vars.parse("CHARLA_WORKERS", 8usize)?.max(1),
            call_sweep_ms: vars.parse("CHARLA_CALL_SWEEP_MS", 5_000u64)?.max(100),
            journal_max_bytes: vars
                .parse("CHARLA_JOURNAL_MAX_MB", 1024u64)?
                .max(1)
                .saturating_mul(1 << 20),
            turns_waiting_at_most: vars.parse("CHARLA_TURNS_WAITING_AT_MOST", 10_000u64)?,
            disk_min_free_bytes: vars
                .parse("CHARLA_DISK_MIN_FREE_MB", 256u64)?
                .saturating_mul(1 << 20),
            text_ai: text_ai::config::Settings::from_vars(&vars)?,
            admin: admin::config::Settings::from_vars(&vars)?,
            campaigns: campaigns::config::Settings::from_vars(&vars)?,
            dispatch: {
                let mut d = campaigns::dispatch::DispatchSettings::from_vars(&vars)?;
                // Locally the demo's business number labels the templates.
                d.phone_number_id = d
                    .phone_number_id
                    .or_else(|| Some(crate::meta::DEMO_PHONE_NUMBER_ID.to_string()));
                d
            },
            campaign_tick_ms: vars.parse("CHARLA_CAMPAIGN_TICK_MS", 60_000u64)?.max(100),
            escalation: escalation::config::Settings::from_vars(&vars)?,
            voice: voice::config::Settings::from_vars(&vars)?,
            media: media::config::Settings::from_vars(&vars)?,
            dev_defaults,
            data_dir,
            vars,
        })
    }

    /// Content in logs, as the functions read it.
    pub fn log_content(&self) -> bool {
        self.text_ai.log_content
    }
}
