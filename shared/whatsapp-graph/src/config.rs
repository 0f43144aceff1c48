//! Where and how a function talks to the Graph API: the base URL, the
//! timeouts and retries, and the send rate.

use std::time::Duration;

use http_client::HttpPolicy;

use crate::GraphClient;

/// The Graph API version Charla is written against.
pub const DEFAULT_GRAPH_BASE_URL: &str = "https://graph.facebook.com/v23.0";

/// Timeouts, retries and throughput of a [`GraphClient`]; a
/// [`crate::GraphMedia`] uses the timeouts and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSettings {
    /// For a send, `max_elapsed` covers the waits for the rate limiter too.
    pub http: HttpPolicy,
    /// Messages per second per business number; 0 turns the limiter off.
    pub messages_per_second: u32,
}

impl GraphSettings {
    /// Defaults, with `WHATSAPP_MESSAGES_PER_SECOND` for a number Meta has
    /// moved to a higher throughput tier (80 by default, up to 1,000).
    pub fn from_vars(vars: &runtime::config::Vars) -> domain::Result<Self> {
        Ok(GraphSettings {
            messages_per_second: vars.parse("WHATSAPP_MESSAGES_PER_SECOND", 80u32)?,
            ..GraphSettings::default()
        })
    }
}

impl Default for GraphSettings {
    fn default() -> Self {
        GraphSettings {
            http: HttpPolicy {
                connect_timeout: Duration::from_secs(3),
                request_timeout: Duration::from_secs(10),
                max_attempts: 4,
                min_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(5),
                max_elapsed: Duration::from_secs(30),
            },
            messages_per_second: 80,
        }
    }
}

/// Where and how a function talks to the Graph API: `WHATSAPP_API_BASE`
/// (with the version, no trailing slash) and [`GraphSettings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphConfig {
    pub api_base: String,
    pub settings: GraphSettings,
}

impl GraphConfig {
    pub fn from_vars(vars: &runtime::config::Vars) -> domain::Result<Self> {
        Ok(GraphConfig {
            api_base: vars.url("WHATSAPP_API_BASE", DEFAULT_GRAPH_BASE_URL)?,
            settings: GraphSettings::from_vars(vars)?,
        })
    }

    /// The client that sends with `token`; none is an error that says who
    /// needed it.
    pub fn client(
        &self,
        token: Option<&secrecy::SecretString>,
        who: &str,
    ) -> domain::Result<GraphClient> {
        let token = token.cloned().ok_or_else(|| {
            domain::Error::Config(format!(
                "the WhatsApp secret has no access_token: {who} cannot send"
            ))
        })?;
        GraphClient::new(self.api_base.clone(), token, self.settings.clone())
    }

    /// The client when the secret has an access token; `None` (nothing is
    /// sent: the function's routes that send are off) when it has none.
    pub fn client_if_token(
        &self,
        token: Option<&secrecy::SecretString>,
        who: &str,
    ) -> domain::Result<Option<GraphClient>> {
        token.map(|t| self.client(Some(t), who)).transpose()
    }
}
