//! What the tests of the sender and of the error mapping share: a
//! [`GraphClient`] on a local fake of the Graph API, and its answers.

use std::time::Duration;

use domain::whatsapp::outbound::OutboundMessage;
use domain::UserId;
use http_client::HttpPolicy;
use secrecy::SecretString;
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

use crate::{GraphClient, GraphSettings};

pub(crate) const PHONE_ID: &str = "106540352242922";
pub(crate) const TOKEN: &str = "EAAG-test-token";

pub(crate) fn fast() -> HttpPolicy {
    HttpPolicy {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        max_attempts: 4,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_elapsed: Duration::from_secs(20),
    }
}

pub(crate) fn settings(http: HttpPolicy) -> GraphSettings {
    GraphSettings {
        http,
        messages_per_second: 80,
    }
}

pub(crate) fn client(server: &MockServer, http: HttpPolicy) -> GraphClient {
    GraphClient::new(
        format!("{}/v23.0", server.uri()),
        SecretString::from(TOKEN),
        settings(http),
    )
    .expect("client")
}

pub(crate) fn to() -> UserId {
    UserId::parse("5491155551234").expect("valid")
}

pub(crate) fn messages_path() -> String {
    format!("/v23.0/{PHONE_ID}/messages")
}

pub(crate) fn accepted(wamid: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": "5491155551234", "wa_id": "5491155551234" }],
        "messages": [{ "id": wamid }],
    }))
}

pub(crate) fn meta_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_subcode": 2494010,
            "error_data": { "messaging_product": "whatsapp", "details": format!("details of {code}") },
            "fbtrace_id": "AbCdEf123",
        }
    }))
}

pub(crate) fn text(body: &str) -> OutboundMessage {
    OutboundMessage::Text { body: body.into() }
}
