//! The WhatsApp Cloud API (Graph API) message sender.
//!
//! One `reqwest` client per process, built once. Every call has a connect
//! timeout, a request timeout, and a bound on the whole call including
//! retries. Only what can succeed on a second try is retried (PROTOCOLS.md,
//! "Error codes"): the Graph API's retry codes, HTTP 5xx/429 without an error
//! code, connect errors and timeouts, with exponential backoff and jitter.
//! Sends are spaced per business number by the rate limiter, and a 130429
//! pauses that number for the backoff delay.

use http_client as common;
use std::time::Duration;

use async_trait::async_trait;
use backon::Retryable;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::body::{mark_read_body, message_body};
use crate::errors::error_from_answer;
use crate::limiter::RateLimiter;
use crate::GraphSettings;
use domain::error::{Error, Result};
use domain::ports::MessageSender;
use domain::whatsapp::outbound::OutboundMessage;
use domain::UserId;
use runtime::observability::phone;

pub(crate) const SERVICE: &str = "whatsapp";
/// The throttling code: too many messages for this business number.
const THROTTLED: i64 = 130429;

/// Sends WhatsApp messages through the Graph API.
pub struct GraphClient {
    http: reqwest::Client,
    base_url: String,
    access_token: SecretString,
    settings: GraphSettings,
    limiter: RateLimiter,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base_url", &self.base_url)
            .field("access_token", &"[redacted]")
            .field("settings", &self.settings)
            .finish()
    }
}

impl GraphClient {
    /// `base_url` includes the API version, e.g. [`crate::DEFAULT_GRAPH_BASE_URL`].
    pub fn new(
        base_url: String,
        access_token: SecretString,
        settings: GraphSettings,
    ) -> Result<Self> {
        let base_url = base_url.trim().trim_end_matches('/').to_string();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(Error::Config(format!(
                "Graph API base URL must start with https:// or http://, got {base_url:?}"
            )));
        }
        if access_token.expose_secret().trim().is_empty() {
            return Err(Error::Config("Graph API access token is empty".into()));
        }
        Ok(GraphClient {
            http: settings.http.client(SERVICE)?,
            base_url,
            limiter: RateLimiter::new(settings.messages_per_second),
            access_token,
            settings,
        })
    }

    fn messages_url(&self, phone_number_id: &str) -> Result<String> {
        // Goes into the path: digits only, so nothing can change the route.
        let ok = !phone_number_id.is_empty()
            && phone_number_id.len() <= 32
            && phone_number_id.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(Error::Invalid("phone_number_id must be digits".into()));
        }
        Ok(format!("{}/{}/messages", self.base_url, phone_number_id))
    }

    /// POSTs `body`, retrying what is retryable, within `max_elapsed`.
    async fn post<T: DeserializeOwned>(
        &self,
        op: &'static str,
        phone_number_id: &str,
        body: &Value,
        rate_limited: bool,
    ) -> Result<T> {
        let url = self.messages_url(phone_number_id)?;
        let attempt = || async {
            if rate_limited {
                self.limiter.acquire(phone_number_id).await;
            }
            self.post_once(&url, body).await
        };
        let call = attempt
            .retry(self.settings.http.backoff())
            .sleep(tokio::time::sleep)
            .when(Error::is_retryable)
            .notify(|e: &Error, delay: Duration| {
                if matches!(e, Error::Graph { code: THROTTLED, .. }) {
                    self.limiter.pause(phone_number_id, delay);
                }
                tracing::warn!(op, phone_number_id, error = %e, delay_ms = delay.as_millis() as u64, "graph api call failed, retrying");
            });
        let result = self.settings.http.within(SERVICE, op, call).await;
        if let Err(e) = &result {
            tracing::warn!(op, phone_number_id, error = %e, retryable = e.is_retryable(), "graph api call failed");
            let code = match e {
                Error::Graph { code, .. } => code.to_string(),
                _ => "transport".to_string(),
            };
            runtime::observability::count_by(
                runtime::observability::Metric::GraphErrors,
                "Code",
                &code,
                1,
            );
        }
        result
    }

    async fn post_once<T: DeserializeOwned>(&self, url: &str, body: &Value) -> Result<T> {
        let response = self
            .http
            .post(url)
            .bearer_auth(self.access_token.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(|e| common::transport_error(SERVICE, e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| common::transport_error(SERVICE, e))?;
        if !status.is_success() {
            return Err(error_from_answer(status, &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::dependency(SERVICE, "answer is not the expected JSON", false, e))
    }
}

#[async_trait]
impl MessageSender for GraphClient {
    async fn send(
        &self,
        phone_number_id: &str,
        to: &UserId,
        msg: &OutboundMessage,
        reply_to: Option<&str>,
    ) -> Result<String> {
        msg.validate().map_err(|e| Error::Invalid(e.to_string()))?;
        let body = message_body(msg, to, reply_to);
        let answer: SendAnswer = self.post("send", phone_number_id, &body, true).await?;
        let wamid = answer
            .messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Error::dependency(
                    SERVICE,
                    "send: answer has no message id",
                    false,
                    common::UnexpectedAnswer,
                )
            })?;
        tracing::debug!(phone_number_id, to = %phone(to.as_str()), wamid = %wamid, "message accepted");
        Ok(wamid)
    }

    async fn mark_read(&self, phone_number_id: &str, wamid: &str, typing: bool) -> Result<()> {
        if wamid.trim().is_empty() {
            return Err(Error::Invalid("wamid is empty".into()));
        }
        let body = mark_read_body(wamid, typing);
        let _: Value = self
            .post("mark_read", phone_number_id, &body, false)
            .await?;
        Ok(())
    }
}

/// `{"messaging_product":"whatsapp","contacts":[...],"messages":[{"id":"wamid..."}]}`
#[derive(Deserialize)]
struct SendAnswer {
    #[serde(default)]
    messages: Vec<SentId>,
}

#[derive(Deserialize)]
struct SentId {
    id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::DEFAULT_GRAPH_BASE_URL;
    use domain::whatsapp::outbound::ReplyButton;
    use http_client::HttpPolicy;
    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn text_send_posts_what_meta_expects_and_returns_the_wamid() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(messages_path()))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "5491155551234",
                "type": "text",
                "text": { "body": "¡Hola! ¿En qué te ayudo?", "preview_url": false },
                "context": { "message_id": "wamid.IN1" },
            })))
            .respond_with(accepted("wamid.OUT1"))
            .expect(1)
            .mount(&server)
            .await;

        let wamid = client(&server, fast())
            .send(
                PHONE_ID,
                &to(),
                &text("¡Hola! ¿En qué te ayudo?"),
                Some("wamid.IN1"),
            )
            .await
            .expect("sent");
        assert_eq!(wamid, "wamid.OUT1");
    }

    #[tokio::test]
    async fn when_throttled_twice_it_retries_and_succeeds_on_the_third_request() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(messages_path()))
            .respond_with(meta_error(400, 130429, "Rate limit hit"))
            .up_to_n_times(2)
            .expect(2)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(messages_path()))
            .respond_with(accepted("wamid.OUT2"))
            .expect(1)
            .mount(&server)
            .await;

        let wamid = client(&server, fast())
            .send(PHONE_ID, &to(), &text("hola"), None)
            .await
            .expect("sent after retries");
        assert_eq!(wamid, "wamid.OUT2");
        assert_eq!(server.received_requests().await.map(|r| r.len()), Some(3));
    }

    #[tokio::test]
    async fn server_errors_are_retried_up_to_max_attempts_then_fail_retryable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
            .expect(3)
            .mount(&server)
            .await;

        let policy = HttpPolicy {
            max_attempts: 3,
            ..fast()
        };
        let err = client(&server, policy)
            .send(PHONE_ID, &to(), &text("hola"), None)
            .await
            .expect_err("gave up");
        assert!(
            matches!(
                err,
                Error::Dependency {
                    retryable: true,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.is_retryable());
        assert_eq!(err.status_code(), 503);
    }

    #[tokio::test]
    async fn a_slow_server_times_out_with_a_retryable_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(accepted("wamid.LATE").set_delay(Duration::from_secs(2)))
            .expect(2)
            .mount(&server)
            .await;

        let policy = HttpPolicy {
            request_timeout: Duration::from_millis(100),
            max_attempts: 2,
            ..fast()
        };
        let err = client(&server, policy)
            .send(PHONE_ID, &to(), &text("hola"), None)
            .await
            .expect_err("timed out");
        match &err {
            Error::Dependency {
                context, retryable, ..
            } => {
                assert!(context.contains("timed out"), "{context}");
                assert!(*retryable);
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_whole_call_is_bounded_by_max_elapsed() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(accepted("wamid.LATE").set_delay(Duration::from_secs(2)))
            .mount(&server)
            .await;

        let policy = HttpPolicy {
            request_timeout: Duration::from_secs(5),
            max_elapsed: Duration::from_millis(150),
            ..fast()
        };
        let started = std::time::Instant::now();
        let err = client(&server, policy)
            .send(PHONE_ID, &to(), &text("hola"), None)
            .await
            .expect_err("gave up");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(err.is_retryable(), "{err:?}");
    }

    #[tokio::test]
    async fn mark_read_sends_the_typing_indicator() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(messages_path()))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_json(json!({
                "messaging_product": "whatsapp",
                "status": "read",
                "message_id": "wamid.IN1",
                "typing_indicator": { "type": "text" },
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "success": true })))
            .expect(1)
            .mount(&server)
            .await;

        client(&server, fast())
            .mark_read(PHONE_ID, "wamid.IN1", true)
            .await
            .expect("marked");
    }

    #[tokio::test]
    async fn an_invalid_message_never_reaches_the_server() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(accepted("wamid.NO"))
            .expect(0)
            .mount(&server)
            .await;

        let four = OutboundMessage::Buttons {
            body: "Elige".into(),
            buttons: (0..4)
                .map(|i| ReplyButton {
                    id: format!("b{i}"),
                    title: format!("Opción {i}"),
                })
                .collect(),
            footer: None,
        };
        let err = client(&server, fast())
            .send(PHONE_ID, &to(), &four, None)
            .await
            .expect_err("invalid");
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        assert_eq!(err.status_code(), 400);
    }

    #[tokio::test]
    async fn a_phone_number_id_that_is_not_digits_never_reaches_the_server() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(accepted("wamid.NO"))
            .expect(0)
            .mount(&server)
            .await;

        let err = client(&server, fast())
            .send("../me", &to(), &text("hola"), None)
            .await
            .expect_err("invalid");
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    }

    #[tokio::test]
    async fn an_answer_without_a_message_id_is_an_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "messages": [] })))
            .expect(1)
            .mount(&server)
            .await;

        let err = client(&server, fast())
            .send(PHONE_ID, &to(), &text("hola"), None)
            .await
            .expect_err("no id");
        assert!(
            matches!(
                err,
                Error::Dependency {
                    retryable: false,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_retryable() {
        // Bind a port, then free it: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let policy = HttpPolicy {
            max_attempts: 2,
            ..fast()
        };
        let client = GraphClient::new(
            format!("http://127.0.0.1:{port}/v23.0"),
            SecretString::from(TOKEN),
            settings(policy),
        )
        .expect("client");
        let err = client
            .send(PHONE_ID, &to(), &text("hola"), None)
            .await
            .expect_err("no server");
        assert!(
            matches!(
                err,
                Error::Dependency {
                    retryable: true,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn the_token_never_prints() {
        let client = GraphClient::new(
            DEFAULT_GRAPH_BASE_URL.into(),
            SecretString::from(TOKEN),
            GraphSettings::default(),
        )
        .expect("client");
        assert!(!format!("{client:?}").contains(TOKEN));
    }

    #[test]
    fn bad_configuration_is_refused() {
        let token = || SecretString::from(TOKEN);
        assert!(GraphClient::new(
            "graph.facebook.com".into(),
            token(),
            GraphSettings::default()
        )
        .is_err());
        assert!(GraphClient::new(
            DEFAULT_GRAPH_BASE_URL.into(),
            SecretString::from(" "),
            GraphSettings::default()
        )
        .is_err());
    }
}
