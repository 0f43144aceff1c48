//! A CRM over HTTP: customers by id, and leads sent to it.
//!
//! - `GET {base}/customers/{id}`: 200 with a JSON object is the customer (its
//!   values as text), 404 is no customer;
//! - `POST {base}/leads` with the lead as JSON and `Idempotency-Key: {lead.id}`:
//!   any 2xx is done, and 409 too (the CRM has that lead already).
//!
//! `Authorization: Bearer {key}` when a key is configured. Like the Graph
//! client: one `reqwest` client, connect and request timeouts, a bound on the
//! whole call, and retries with exponential backoff and jitter only for what
//! can succeed on a second try (429, 5xx, connect errors, timeouts). The
//! idempotency key makes a retried POST safe.

use http_client::{self as common, HttpPolicy};
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use backon::Retryable;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use domain::error::{Error, Result};
use domain::ports::{CustomerDirectory, LeadSink};
use domain::{Customer, Lead};

const SERVICE: &str = "crm";

/// Longest id sent to the CRM; longer input is not an id.
const MAX_ID_CHARS: usize = 128;

/// A CRM reached over HTTP: a [`CustomerDirectory`] and a [`LeadSink`].
pub struct HttpCrm {
    http: reqwest::Client,
    base_url: Url,
    api_key: Option<SecretString>,
    policy: HttpPolicy,
}

impl std::fmt::Debug for HttpCrm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCrm")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("policy", &self.policy)
            .finish()
    }
}

impl HttpCrm {
    /// A customer lookup happens while the user waits for an answer: the
    /// whole call is kept short.
    pub const DEFAULT_POLICY: HttpPolicy = HttpPolicy {
        connect_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(5),
        max_attempts: 3,
        min_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(2),
        max_elapsed: Duration::from_secs(12),
    };

    /// `base_url` is where `customers/` and `leads` live, e.g.
    /// `https://crm.example.com/api/v1`.
    pub fn new(
        base_url: String,
        api_key: Option<SecretString>,
        policy: HttpPolicy,
    ) -> Result<Self> {
        let trimmed = base_url.trim();
        let base_url = Url::parse(trimmed)
            .map_err(|e| Error::Config(format!("CRM base URL {trimmed:?}: {e}")))?;
        if !matches!(base_url.scheme(), "https" | "http")
            || base_url.cannot_be_a_base()
            || base_url.query().is_some()
        {
            return Err(Error::Config(format!(
                "CRM base URL must be an http(s) URL without a query, got {trimmed:?}"
            )));
        }
        if api_key
            .as_ref()
            .is_some_and(|k| k.expose_secret().trim().is_empty())
        {
            return Err(Error::Config("CRM API key is empty".into()));
        }
        Ok(HttpCrm {
            http: policy.client(SERVICE)?,
            base_url,
            api_key,
            policy,
        })
    }

    /// `{base}/{segments...}`, each segment percent-encoded (a `/` in an id
    /// stays in its segment).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends the request `build` makes, again while it fails retryably,
    /// within `max_elapsed`; returns the final status and body.
    async fn call<F>(&self, op: &'static str, build: F) -> Result<(StatusCode, bytes::Bytes)>
    where
        F: Fn() -> reqwest::RequestBuilder,
    {
        let attempt = || async {
            let mut request = build();
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key.expose_secret());
            }
            let response = request
                .send()
                .await
                .map_err(|e| common::transport_error(SERVICE, e))?;
            let status = response.status();
            let body = response
                .bytes()
                .await
                .map_err(|e| common::transport_error(SERVICE, e))?;
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                return Err(status_error(status));
            }
            Ok((status, body))
        };
        let call = attempt
            .retry(self.policy.backoff())
            .sleep(tokio::time::sleep)
            .when(Error::is_retryable)
            .notify(|e: &Error, delay: Duration| {
                tracing::warn!(op, error = %e, delay_ms = delay.as_millis() as u64, "crm call failed, retrying");
            });
        let result = self.policy.within(SERVICE, op, call).await;
        if let Err(e) = &result {
            tracing::warn!(op, error = %e, retryable = e.is_retryable(), "crm call failed");
        }
        result
    }
}

#[async_trait]
impl CustomerDirectory for HttpCrm {
    async fn lookup(&self, id: &str) -> Result<Option<Customer>> {
        let id = id.trim();
        // `.` and `..` would be dropped from the path by URL rules and change
        // the route; an empty id has no route at all.
        if id.is_empty() || id == "." || id == ".." || id.chars().count() > MAX_ID_CHARS {
            return Err(Error::Invalid(format!(
                "a customer id is 1 to {MAX_ID_CHARS} characters"
            )));
        }
        let url = self.url(&["customers", id]);
        let (status, body) = self
            .call("lookup", || {
                self.http
                    .get(url.clone())
                    .header(reqwest::header::ACCEPT, "application/json")
            })
            .await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => customer_from(id, &body).map(Some),
            s => Err(status_error(s)),
        }
    }
}

#[async_trait]
impl LeadSink for HttpCrm {
    async fn export(&self, lead: &Lead) -> Result<()> {
        let key = reqwest::header::HeaderValue::from_str(&lead.id)
            .map_err(|_| Error::Invalid("a lead id must be visible ASCII".into()))?;
        let url = self.url(&["leads"]);
        let (status, _) = self
            .call("export lead", || {
                self.http
                    .post(url.clone())
                    .header("Idempotency-Key", key.clone())
                    .json(lead)
            })
            .await?;
        if status.is_success() || status == StatusCode::CONFLICT {
            tracing::debug!(lead = %lead.id, status = status.as_u16(), "lead exported");
            Ok(())
        } else {
            Err(status_error(status))
        }
    }
}

/// The customer in a 200 answer: a JSON object whose values become text.
/// Its `id`, if any, is the customer's id; else the one looked up.
fn customer_from(looked_up: &str, body: &[u8]) -> Result<Customer> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::dependency(SERVICE, "lookup: answer is not JSON", false, e))?;
    let Value::Object(object) = value else {
        return Err(Error::dependency(
            SERVICE,
            "lookup: answer is not a JSON object",
            false,
            common::UnexpectedAnswer,
        ));
    };
    let mut id = looked_up.to_string();
    let mut fields = BTreeMap::new();
    for (name, value) in object {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            // Nested data is kept, as compact JSON, rather than dropped.
            nested => nested.to_string(),
        };
        if name == "id" {
            id = text;
        } else {
            fields.insert(name, text);
        }
    }
    Ok(Customer { id, fields })
}

fn status_error(status: StatusCode) -> Error {
    common::status_error(SERVICE, status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::UserId;
    use serde_json::json;
    use wiremock::matchers::{body_json, header, header_exists, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const KEY: &str = "crm-test-key";

    fn fast() -> HttpPolicy {
        HttpPolicy {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_attempts: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(20),
        }
    }

    fn crm(server: &MockServer) -> HttpCrm {
        HttpCrm::new(
            format!("{}/api/v1/", server.uri()),
            Some(SecretString::from(KEY)),
            fast(),
        )
        .expect("crm")
    }

    fn lead() -> Lead {
        Lead {
            id: "turn-42:lead".into(),
            user_id: UserId::parse("5491155551234").expect("wa id"),
            name: "Ana".into(),
            interest: "plan Empresa".into(),
            notes: None,
            created_at_ms: 1_700_000_000_000,
        }
    }

    fn assert_dependency(err: &Error, retryable: bool) {
        assert!(
            matches!(err, Error::Dependency { retryable: r, .. } if *r == retryable),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_found_customer_has_its_fields_as_text() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/customers/30123456"))
            .and(header("authorization", format!("Bearer {KEY}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": 30123456,
                "name": "Lucía Fernández",
                "balance": 12.5,
                "active": true,
                "notes": null,
                "tags": ["vip"],
            })))
            .expect(1)
            .mount(&server)
            .await;

        let customer = crm(&server)
            .lookup(" 30123456 ")
            .await
            .expect("lookup")
            .expect("found");
        assert_eq!(customer.id, "30123456");
        let fields: Vec<(&str, &str)> = customer
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("active", "true"),
                ("balance", "12.5"),
                ("name", "Lucía Fernández"),
                ("tags", "[\"vip\"]"),
            ]
        );
    }

    #[tokio::test]
    async fn an_unknown_customer_is_none() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404).set_body_string("not found"))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(crm(&server).lookup("1").await.expect("lookup"), None);
    }

    #[tokio::test]
    async fn a_server_error_is_retried_and_then_succeeds() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "name": "Ana" })))
            .expect(1)
            .mount(&server)
            .await;
        let customer = crm(&server)
            .lookup("1")
            .await
            .expect("lookup")
            .expect("found");
        assert_eq!(customer.id, "1");
        assert_eq!(customer.fields.get("name").map(String::as_str), Some("Ana"));
    }

    #[tokio::test]
    async fn throttling_that_never_ends_is_a_retryable_error_after_max_attempts() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429))
            .expect(3)
            .mount(&server)
            .await;
        let err = crm(&server).lookup("1").await.expect_err("throttled");
        assert_dependency(&err, true);
    }

    #[tokio::test]
    async fn unauthorized_is_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401))
            .expect(1)
            .mount(&server)
            .await;
        let err = crm(&server).lookup("1").await.expect_err("refused");
        assert_dependency(&err, false);
        assert!(err.to_string().contains("401"), "{err}");
    }

    #[tokio::test]
    async fn an_answer_that_is_not_an_object_is_a_final_error() {
        for body in [json!(["Ana"]), json!("Ana"), json!(null)] {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .expect(1)
                .mount(&server)
                .await;
            let err = crm(&server).lookup("1").await.expect_err("not an object");
            assert_dependency(&err, false);
        }
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>"))
            .expect(1)
            .mount(&server)
            .await;
        let err = crm(&server).lookup("1").await.expect_err("not JSON");
        assert_dependency(&err, false);
    }

    #[tokio::test]
    async fn the_id_stays_one_path_segment() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        let crm = crm(&server);
        crm.lookup("a/b c?d#e%f").await.expect("lookup");
        let requests = server.received_requests().await.expect("recorded");
        assert_eq!(requests.len(), 1);
        assert_eq!(
            requests[0].url.path(),
            "/api/v1/customers/a%2Fb%20c%3Fd%23e%25f"
        );
        assert_eq!(requests[0].url.query(), None);

        for bad in ["", "  ", ".", "..", &"9".repeat(MAX_ID_CHARS + 1)] {
            let err = crm.lookup(bad).await.expect_err("invalid");
            assert!(matches!(err, Error::Invalid(_)), "{bad:?}: {err:?}");
        }
        assert_eq!(server.received_requests().await.map(|r| r.len()), Some(1));
    }

    #[tokio::test]
    async fn without_a_key_no_authorization_is_sent() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        let crm = HttpCrm::new(server.uri(), None, fast()).expect("crm");
        crm.lookup("1").await.expect("lookup");
        let requests = server.received_requests().await.expect("recorded");
        assert_eq!(requests[0].url.path(), "/customers/1");
        assert!(!requests[0].headers.contains_key("authorization"));
    }

    #[tokio::test]
    async fn a_lead_is_posted_with_its_idempotency_key() {
        let server = MockServer::start().await;
        let lead = lead();
        Mock::given(method("POST"))
            .and(path("/api/v1/leads"))
            .and(header("idempotency-key", "turn-42:lead"))
            .and(header("authorization", format!("Bearer {KEY}").as_str()))
            .and(header("content-type", "application/json"))
            .and(body_json(serde_json::to_value(&lead).expect("json")))
            .respond_with(ResponseTemplate::new(201))
            .expect(1)
            .mount(&server)
            .await;
        crm(&server).export(&lead).await.expect("exported");
    }

    #[tokio::test]
    async fn a_lead_the_crm_has_already_is_fine() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(409))
            .expect(1)
            .mount(&server)
            .await;
        crm(&server).export(&lead()).await.expect("already there");
    }

    #[tokio::test]
    async fn a_lead_post_retried_after_a_503_keeps_its_key() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(header_exists("idempotency-key"))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        crm(&server).export(&lead()).await.expect("exported");
        let requests = server.received_requests().await.expect("recorded");
        assert!(requests.iter().all(|r| r
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            == Some("turn-42:lead")));
    }

    #[tokio::test]
    async fn a_refused_lead_is_a_final_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(422))
            .expect(1)
            .mount(&server)
            .await;
        let err = crm(&server).export(&lead()).await.expect_err("refused");
        assert_dependency(&err, false);
    }

    #[tokio::test]
    async fn a_slow_crm_times_out_with_a_retryable_error() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404).set_delay(Duration::from_secs(2)))
            .expect(2)
            .mount(&server)
            .await;
        let policy = HttpPolicy {
            request_timeout: Duration::from_millis(100),
            max_attempts: 2,
            ..fast()
        };
        let crm = HttpCrm::new(server.uri(), None, policy).expect("crm");
        let err = crm.lookup("1").await.expect_err("timed out");
        assert_dependency(&err, true);
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
        let crm = HttpCrm::new(format!("http://127.0.0.1:{port}"), None, policy).expect("crm");
        let err = crm.export(&lead()).await.expect_err("no server");
        assert_dependency(&err, true);
    }

    #[test]
    fn bad_configuration_is_refused_and_the_key_never_prints() {
        for url in [
            "crm.example.com",
            "ftp://crm.example.com",
            "https://crm/x?a=1",
            "mailto:a@b",
        ] {
            let err = HttpCrm::new(url.into(), None, HttpCrm::DEFAULT_POLICY).expect_err(url);
            assert!(matches!(err, Error::Config(_)), "{url}: {err:?}");
        }
        let err = HttpCrm::new(
            "https://crm.example.com".into(),
            Some(SecretString::from(" ")),
            HttpCrm::DEFAULT_POLICY,
        )
        .expect_err("empty key");
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        let crm = HttpCrm::new(
            "https://crm.example.com".into(),
            Some(SecretString::from(KEY)),
            HttpCrm::DEFAULT_POLICY,
        )
        .expect("crm");
        assert!(!format!("{crm:?}").contains(KEY));
    }
}
