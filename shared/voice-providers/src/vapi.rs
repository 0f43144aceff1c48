//! Vapi outbound calls: `POST {base}/call` with the bearer key, the
//! assistant and phone number from the settings, the customer's number,
//! the conversation's context as `assistantOverrides.variableValues`, and
//! our ids as `metadata` (every server message carries it back).

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::json;

use crate::config::{post_json, required, started_call, VapiConfig};
use domain::error::Result;
use domain::ports::VoiceProvider;
use domain::voice::{CallOrder, ProviderKind, StartedCall};
use http_client::HttpPolicy;

const SERVICE: &str = "vapi";

pub struct VapiClient {
    http: reqwest::Client,
    url: String,
    api_key: SecretString,
    assistant_id: String,
    phone_number_id: String,
    policy: HttpPolicy,
}

impl std::fmt::Debug for VapiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapiClient")
            .field("url", &self.url)
            .field("api_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl VapiClient {
    /// The same for both voice providers: one create-call POST each.
    pub const DEFAULT_POLICY: HttpPolicy = crate::config::DEFAULT_POLICY;

    /// Needs the key, the assistant and the phone number: a missing one
    /// stops the start and names the variable.
    pub fn new(config: &VapiConfig, policy: HttpPolicy) -> Result<VapiClient> {
        Ok(VapiClient {
            http: policy.client(SERVICE)?,
            url: format!("{}/call", config.api_base),
            api_key: required(&config.api_key, "Vapi", "VAPI_API_KEY")?,
            assistant_id: required(&config.assistant_id, "Vapi", "VAPI_ASSISTANT_ID")?,
            phone_number_id: required(&config.phone_number_id, "Vapi", "VAPI_PHONE_NUMBER_ID")?,
            policy,
        })
    }
}

#[async_trait]
impl VoiceProvider for VapiClient {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Vapi
    }

    async fn start_call(&self, order: &CallOrder) -> Result<StartedCall> {
        let c = &order.context;
        let mut customer = json!({"number": c.to_e164()?});
        if let Some(name) = &c.customer_name {
            customer["name"] = json!(name.chars().take(40).collect::<String>());
        }
        let body = json!({
            // A campaign may choose its own assistant.
            "assistantId": c.assistant().unwrap_or(&self.assistant_id),
            "phoneNumberId": self.phone_number_id,
            "customer": customer,
            "assistantOverrides": {
                "variableValues": c.variables(),
                "metadata": c.metadata(),
            },
            "metadata": c.metadata(),
        });
        let answer = post_json(
            SERVICE,
            &self.http,
            &self.url,
            &self.api_key,
            &body,
            &self.policy,
        )
        .await?;
        started_call(SERVICE, &answer, "id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::voice::CallContext;
    use domain::UserId;
    use std::time::Duration;
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    pub(crate) fn order() -> CallOrder {
        CallOrder {
            context: CallContext {
                request_id: "wamid.X:call".into(),
                user_id: UserId::parse("5491155550123").expect("wa"),
                phone_number_id: "PN1".into(),
                customer_name: Some("Ana Núñez".into()),
                language: "es".into(),
                summary: "Quiere el plan anual".into(),
                interest: Some("plan anual".into()),
                phone: None,
                campaign: None,
                reason: "the user asked to be called".into(),
            },
            attempt: 1,
        }
    }

    fn client(base: &str) -> VapiClient {
        VapiClient::new(
            &VapiConfig {
                api_base: base.into(),
                api_key: Some("vk".to_string().into()),
                phone_number_id: Some("pn-1".into()),
                assistant_id: Some("as-1".into()),
                webhook_secret: None,
            },
            HttpPolicy {
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
                ..VapiClient::DEFAULT_POLICY
            },
        )
        .expect("client")
    }

    #[tokio::test]
    async fn starts_a_call_with_the_context_and_our_ids() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/call"))
            .and(header("authorization", "Bearer vk"))
            .and(body_partial_json(json!({
                "assistantId": "as-1",
                "phoneNumberId": "pn-1",
                "customer": {"number": "+5491155550123", "name": "Ana Núñez"},
                "assistantOverrides": {"variableValues": {"conversation_summary": "Quiere el plan anual", "interest": "plan anual", "language": "es"}},
                "metadata": {"charla_request_id": "wamid.X:call", "charla_conversation_id": "5491155550123"},
            })))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "call-123", "status": "queued"})))
            .expect(1)
            .mount(&server)
            .await;
        let started = client(&server.uri())
            .start_call(&order())
            .await
            .expect("start");
        assert_eq!(started.call_id, "call-123");
    }

    #[tokio::test]
    async fn a_refusal_is_final_and_a_5xx_is_not_repeated_at_once() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_string("bad number"))
            .expect(1)
            .mount(&server)
            .await;
        let e = client(&server.uri())
            .start_call(&order())
            .await
            .expect_err("refused");
        assert!(!e.is_retryable());
        server.reset().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(502))
            .expect(1)
            .mount(&server)
            .await;
        let e = client(&server.uri())
            .start_call(&order())
            .await
            .expect_err("502");
        assert!(e.is_retryable());
        assert!(crate::config::maybe_processed(&e));
    }

    #[tokio::test]
    async fn throttling_is_retried_and_an_answer_without_id_is_an_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"status": "queued"})))
            .mount(&server)
            .await;
        let e = client(&server.uri())
            .start_call(&order())
            .await
            .expect_err("no id");
        assert!(!e.is_retryable());
        assert_eq!(server.received_requests().await.map(|r| r.len()), Some(2));
    }

    #[test]
    fn missing_settings_are_named() {
        let cfg = VapiConfig {
            api_base: "http://x".into(),
            api_key: Some("k".to_string().into()),
            phone_number_id: None,
            assistant_id: Some("a".into()),
            webhook_secret: None,
        };
        match VapiClient::new(&cfg, VapiClient::DEFAULT_POLICY) {
            Err(domain::Error::Config(m)) => assert!(m.contains("VAPI_PHONE_NUMBER_ID"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
