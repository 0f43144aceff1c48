//! Retell outbound calls: `POST {base}/v2/create-phone-call` with the
//! bearer key, `from_number`, `to_number`, `override_agent_id`, the
//! conversation's context as `retell_llm_dynamic_variables` and our ids as
//! `metadata` (webhooks carry it back).

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::json;

use crate::config::{post_json, required, started_call, RetellConfig};
use domain::error::Result;
use domain::ports::VoiceProvider;
use domain::voice::{CallOrder, ProviderKind, StartedCall};
use http_client::HttpPolicy;

const SERVICE: &str = "retell";

pub struct RetellClient {
    http: reqwest::Client,
    url: String,
    api_key: SecretString,
    from_number: String,
    agent_id: Option<String>,
    policy: HttpPolicy,
}

impl std::fmt::Debug for RetellClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetellClient")
            .field("url", &self.url)
            .field("api_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl RetellClient {
    /// The same for both voice providers: one create-call POST each.
    pub const DEFAULT_POLICY: HttpPolicy = crate::config::DEFAULT_POLICY;

    /// Needs the key and the number to call from; the agent is optional
    /// (the number's own agent answers otherwise).
    pub fn new(config: &RetellConfig, policy: HttpPolicy) -> Result<RetellClient> {
        Ok(RetellClient {
            http: policy.client(SERVICE)?,
            url: format!("{}/v2/create-phone-call", config.api_base),
            api_key: required(&config.api_key, "Retell", "RETELL_API_KEY")?,
            from_number: required(&config.from_number, "Retell", "RETELL_FROM_NUMBER")?,
            agent_id: config.agent_id.clone(),
            policy,
        })
    }
}

#[async_trait]
impl VoiceProvider for RetellClient {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Retell
    }

    async fn start_call(&self, order: &CallOrder) -> Result<StartedCall> {
        let c = &order.context;
        let mut body = json!({
            "from_number": self.from_number,
            "to_number": c.to_e164()?,
            "metadata": c.metadata(),
            "retell_llm_dynamic_variables": c.variables(),
        });
        // A campaign may choose its own agent.
        if let Some(agent) = c.assistant().or(self.agent_id.as_deref()) {
            body["override_agent_id"] = json!(agent);
        }
        let answer = post_json(
            SERVICE,
            &self.http,
            &self.url,
            &self.api_key,
            &body,
            &self.policy,
        )
        .await?;
        started_call(SERVICE, &answer, "call_id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::voice::CallContext;
    use domain::UserId;
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn order() -> CallOrder {
        CallOrder {
            context: CallContext {
                request_id: "wamid.Y:call".into(),
                user_id: UserId::parse("5215512345678").expect("wa"),
                phone_number_id: "PN1".into(),
                customer_name: None,
                language: "es".into(),
                summary: "Pidió una llamada".into(),
                interest: None,
                phone: None,
                campaign: None,
                reason: "the user asked to be called".into(),
            },
            attempt: 1,
        }
    }

    fn config(base: &str) -> RetellConfig {
        RetellConfig {
            api_base: base.into(),
            api_key: Some("rk".to_string().into()),
            from_number: Some("+14155550100".into()),
            agent_id: Some("agent-9".into()),
        }
    }

    #[tokio::test]
    async fn creates_a_phone_call_with_the_context_and_our_ids() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/create-phone-call"))
            .and(header("authorization", "Bearer rk"))
            .and(body_partial_json(json!({
                "from_number": "+14155550100",
                "to_number": "+5215512345678",
                "override_agent_id": "agent-9",
                "metadata": {"charla_request_id": "wamid.Y:call"},
                "retell_llm_dynamic_variables": {"conversation_summary": "Pidió una llamada", "customer_name": ""},
            })))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"call_id": "rc-1"})))
            .expect(1)
            .mount(&server)
            .await;
        let c = RetellClient::new(&config(&server.uri()), RetellClient::DEFAULT_POLICY)
            .expect("client");
        assert_eq!(c.start_call(&order()).await.expect("start").call_id, "rc-1");
    }

    #[tokio::test]
    async fn a_bad_key_is_a_final_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(401))
            .expect(1)
            .mount(&server)
            .await;
        let c = RetellClient::new(&config(&server.uri()), RetellClient::DEFAULT_POLICY)
            .expect("client");
        assert!(!c
            .start_call(&order())
            .await
            .expect_err("401")
            .is_retryable());
    }

    #[tokio::test]
    async fn a_closed_port_is_retryable() {
        let c = RetellClient::new(
            &config("http://127.0.0.1:9"),
            HttpPolicy {
                max_attempts: 2,
                min_delay: std::time::Duration::from_millis(1),
                ..RetellClient::DEFAULT_POLICY
            },
        )
        .expect("client");
        let e = c.start_call(&order()).await.expect_err("closed");
        assert!(e.is_retryable());
        assert!(!crate::config::maybe_processed(&e));
    }
}
