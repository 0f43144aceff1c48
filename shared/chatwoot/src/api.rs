//! One call to Chatwoot's application API, under
//! `{base}/api/v1/accounts/{account}`: header `api_access_token` on every
//! call, and, like the other HTTP adapters, one client, timeouts, and
//! retries with backoff and jitter for 429, 5xx, connect errors and timeouts
//! only. Chatwoot has no idempotency keys, so a POST retried after a 5xx
//! that had in fact succeeded may post a message twice.

use std::time::Duration;

use backon::Retryable;
use http_client::{self as common, HttpPolicy};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use domain::error::{Error, Result};

pub(crate) const SERVICE: &str = "chatwoot";

/// An account's API, with its token and policy.
pub(crate) struct ChatwootApi {
    http: reqwest::Client,
    /// `{base}/api/v1/accounts/{account}/`.
    account_url: Url,
    api_token: SecretString,
    policy: HttpPolicy,
}

impl std::fmt::Debug for ChatwootApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatwootApi")
            .field("account_url", &self.account_url.as_str())
            .field("api_token", &"[redacted]")
            .field("policy", &self.policy)
            .finish()
    }
}

impl ChatwootApi {
    /// `base` is the installation, already checked.
    pub(crate) fn new(
        base: Url,
        account_id: u64,
        api_token: SecretString,
        policy: HttpPolicy,
    ) -> Result<Self> {
        let mut account_url = base;
        if let Ok(mut path) = account_url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "v1", "accounts", &account_id.to_string(), ""]);
        }
        Ok(ChatwootApi {
            http: policy.client(SERVICE)?,
            account_url,
            api_token,
            policy,
        })
    }

    /// `{account_url}{segments...}`, each segment percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.account_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// One API call, retried while it fails retryably. Returns the final
    /// status (any that is not 429 or 5xx) and the body as JSON (`Null` when
    /// empty or not JSON).
    pub(crate) async fn call(
        &self,
        op: &'static str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let attempt = || async {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header("api_access_token", self.api_token.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| common::transport_error(SERVICE, e))?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| common::transport_error(SERVICE, e))?;
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                return Err(status_error(op, status));
            }
            let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok((status, value))
        };
        let call = attempt
            .retry(self.policy.backoff())
            .sleep(tokio::time::sleep)
            .when(Error::is_retryable)
            .notify(|e: &Error, delay: Duration| {
                tracing::warn!(op, error = %e, delay_ms = delay.as_millis() as u64, "chatwoot call failed, retrying");
            });
        self.policy.within(SERVICE, op, call).await
    }

    /// A call that must answer 2xx.
    pub(crate) async fn call_ok(
        &self,
        op: &'static str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value> {
        let (status, value) = self.call(op, method, url, body).await?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(status_error(op, status))
        }
    }
}

/// Chatwoot ids are numbers (some payloads send them as strings).
pub(crate) fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub(crate) fn status_error(op: &'static str, status: StatusCode) -> Error {
    common::op_status_error(SERVICE, op, status)
}

pub(crate) fn unexpected(op: &'static str, what: &'static str) -> Error {
    Error::dependency(SERVICE, format!("{op}: unexpected answer"), false, what)
}

/// Through the desk's simplest calls: what is retried, and the token.
#[cfg(test)]
mod tests {
    use crate::testing::*;
    use domain::ports::{DeskRef, HumanDesk};
    use serde_json::json;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    #[tokio::test]
    async fn throttling_and_server_errors_are_retried() {
        for status in [429, 500, 503] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(status))
                .up_to_n_times(2)
                .expect(2)
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": 1 })))
                .expect(1)
                .mount(&server)
                .await;
            let r = DeskRef {
                conversation_id: 57,
                contact_id: 31,
            };
            desk(&server)
                .post_incoming(&r, "hola")
                .await
                .expect("posted after retries");
        }
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        for status in [400, 401, 403, 404, 422] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(status))
                .expect(1)
                .mount(&server)
                .await;
            let r = DeskRef {
                conversation_id: 57,
                contact_id: 31,
            };
            let err = desk(&server)
                .post_incoming(&r, "hola")
                .await
                .expect_err("refused");
            assert!(!err.is_retryable(), "{status}: {err:?}");
            assert!(err.to_string().contains(&status.to_string()), "{err}");
        }
    }

    #[tokio::test]
    async fn endless_throttling_is_a_retryable_error_after_max_attempts() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429))
            .expect(3)
            .mount(&server)
            .await;
        let err = desk(&server)
            .open_handoff(&conversation(), &transcript(), &reasons())
            .await
            .expect_err("throttled");
        assert!(err.is_retryable(), "{err:?}");
    }

    #[tokio::test]
    async fn the_token_is_sent_on_every_call_and_never_printed() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        let d = desk(&server);
        d.post_incoming(
            &DeskRef {
                conversation_id: 1,
                contact_id: 1,
            },
            "x",
        )
        .await
        .expect("posted");
        let requests: Vec<Request> = server.received_requests().await.expect("recorded");
        assert!(requests.iter().all(|r| r
            .headers
            .get("api_access_token")
            .and_then(|v| v.to_str().ok())
            == Some(TOKEN)));
        assert!(!format!("{d:?}").contains(TOKEN));
    }
}
