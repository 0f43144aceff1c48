//! How the Graph API's refusals become errors: Meta's error code decides
//! (through [`GraphErrorClass`]); without one, the HTTP status does.

use reqwest::StatusCode;
use serde::Deserialize;

use crate::graph::SERVICE;
use domain::error::Error;
use domain::whatsapp::errors::GraphErrorClass;

/// `{"error":{"message","type","code","error_subcode","error_data":{"details"},"fbtrace_id"}}`
#[derive(Deserialize)]
struct MetaErrorBody {
    error: MetaError,
}

#[derive(Deserialize)]
struct MetaError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    error_data: Option<MetaErrorData>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct MetaErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// A refused request: Meta's error code decides; without one, 5xx and 429
/// are worth retrying and other statuses are not.
pub(crate) fn error_from_answer(status: StatusCode, bytes: &[u8]) -> Error {
    if let Ok(MetaErrorBody { error }) = serde_json::from_slice::<MetaErrorBody>(bytes) {
        if let Some(code) = error.code {
            let class = GraphErrorClass::from_code(code);
            tracing::debug!(
                http_status = status.as_u16(),
                code,
                subcode = error.error_subcode,
                kind = error.kind.as_deref(),
                fbtrace_id = error.fbtrace_id.as_deref(),
                ?class,
                "graph api error"
            );
            let details = error
                .error_data
                .and_then(|d| d.details)
                .filter(|d| !d.is_empty());
            let message = match details {
                Some(d) if d != error.message => format!("{} ({d})", error.message),
                _ => error.message,
            };
            return Error::Graph {
                code,
                message,
                class,
            };
        }
    }
    http_client::status_error(SERVICE, status)
}

/// Through a send: the class decides whether the sender tries again.
#[cfg(test)]
mod tests {
    use crate::testing::*;
    use domain::error::Error;
    use domain::ports::MessageSender;
    use domain::whatsapp::errors::GraphErrorClass;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn an_undeliverable_message_is_final_after_one_request() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(meta_error(400, 131026, "Message undeliverable"))
            .expect(1)
            .mount(&server)
            .await;

        let err = client(&server, fast())
            .send(PHONE_ID, &to(), &text("hola"), None)
            .await
            .expect_err("refused");
        match &err {
            Error::Graph {
                code,
                class,
                message,
            } => {
                assert_eq!(*code, 131026);
                assert_eq!(*class, GraphErrorClass::Final);
                assert!(message.contains("Message undeliverable"), "{message}");
            }
            other => panic!("expected a Graph error, got {other:?}"),
        }
        assert!(!err.is_retryable());
    }

    #[tokio::test]
    async fn outside_the_window_is_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(meta_error(400, 131047, "Re-engagement message"))
            .expect(1)
            .mount(&server)
            .await;

        let err = client(&server, fast())
            .send(PHONE_ID, &to(), &text("hola"), None)
            .await
            .expect_err("refused");
        assert!(
            matches!(
                err,
                Error::Graph {
                    code: 131047,
                    class: GraphErrorClass::OutsideWindow,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn wait_a_day_is_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(meta_error(400, 131049, "Healthy ecosystem"))
            .expect(1)
            .mount(&server)
            .await;

        let err = client(&server, fast())
            .send(PHONE_ID, &to(), &text("hola"), None)
            .await
            .expect_err("refused");
        assert!(
            matches!(
                err,
                Error::Graph {
                    class: GraphErrorClass::WaitDay,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_client_error_without_a_code_is_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(404).set_body_string("<html>"))
            .expect(1)
            .mount(&server)
            .await;

        let err = client(&server, fast())
            .send(PHONE_ID, &to(), &text("hola"), None)
            .await
            .expect_err("refused");
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
}
