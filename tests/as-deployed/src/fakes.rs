//! Outside services, faked on loopback and wired in through the template's
//! own parameters (`WhatsAppApiBase`, `VapiApiBase`) or the SDK's
//! per-service endpoint variables for AWS services moto lacks.

use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// `X-Hub-Signature-256` of `body` with the app secret.
pub fn meta_signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(bytes))
}

/// The Graph API's answer to a send, with a fresh message id each time.
struct Accepted(AtomicU64);

impl Respond for Accepted {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let body = serde_json::from_slice::<Value>(&req.body).unwrap_or_default();
        // A number in `to`, a BSUID in `recipient`; Meta answers with
        // `wa_id` for the one and `user_id` for the other.
        let contact = match (body["to"].as_str(), body["recipient"].as_str()) {
            (Some(to), _) => json!({"input": to, "wa_id": to}),
            (None, Some(bsuid)) => json!({"input": bsuid, "user_id": bsuid}),
            (None, None) => json!({}),
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [contact],
            "messages": [{"id": format!("wamid.ASDEPLOYED{n:08}")}],
        }))
    }
}

/// A Graph API that accepts every send and records it.
pub struct FakeGraph {
    pub server: MockServer,
}

impl FakeGraph {
    pub async fn start() -> FakeGraph {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/[0-9]+/messages$"))
            .respond_with(Accepted(AtomicU64::new(1)))
            .mount(&server)
            .await;
        FakeGraph { server }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Bodies of the sends to `wa_id` (messages, not read receipts), in order.
    pub async fn messages_to(&self, user_id: &str) -> Vec<Value> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/messages"))
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .filter(|b| {
                (b["to"] == user_id || b["recipient"] == user_id) && b.get("status").is_none()
            })
            .collect()
    }

    /// Every request, as `METHOD path`.
    pub async fn requests(&self) -> Vec<String> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| format!("{} {}", r.method, r.url.path()))
            .collect()
    }

    /// Serves `bytes` as media `id`: its metadata, then the file at its URL
    /// (the Graph API's two-step download).
    pub async fn serve_media(&self, id: &str, mime: &str, bytes: &[u8]) {
        Mock::given(method("GET"))
            .and(path(format!("/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "url": format!("{}/files/{id}", self.server.uri()),
                "mime_type": mime,
                "sha256": sha256_hex(bytes),
                "file_size": bytes.len(),
                "id": id,
                "messaging_product": "whatsapp",
            })))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/files/{id}")))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", mime)
                    .set_body_bytes(bytes.to_vec()),
            )
            .mount(&self.server)
            .await;
    }
}

/// The text a WhatsApp send shows the user (text or interactive body).
pub fn shown_text(body: &Value) -> String {
    body["text"]["body"]
        .as_str()
        .or_else(|| body["interactive"]["body"]["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Vapi's API: `POST /call` accepted.
pub async fn fake_vapi() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "vapi-call-as-deployed-1",
            "status": "queued",
            "type": "outboundPhoneCall",
        })))
        .mount(&server)
        .await;
    server
}

/// A stand-in for an AWS JSON-protocol service: one answer per
/// `X-Amz-Target` (e.g. `RekognitionService.DetectLabels`).
pub async fn fake_aws_json(answers: &[(&str, Value)]) -> MockServer {
    let server = MockServer::start().await;
    for (target, body) in answers {
        Mock::given(method("POST"))
            .and(header("x-amz-target", *target))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "application/x-amz-json-1.1")
                    .set_body_json(body.clone()),
            )
            .mount(&server)
            .await;
    }
    server
}

/// Rekognition as it answers a plain photo: labels, no moderation labels,
/// no text (moto has no DetectModerationLabels).
pub async fn fake_rekognition() -> MockServer {
    fake_aws_json(&[
        (
            "RekognitionService.DetectLabels",
            json!({"Labels": [{"Name": "Sneaker", "Confidence": 97.5}, {"Name": "Shoe", "Confidence": 95.0}]}),
        ),
        ("RekognitionService.DetectModerationLabels", json!({"ModerationLabels": []})),
        ("RekognitionService.DetectText", json!({"TextDetections": []})),
    ])
    .await
}

/// An OpenAI-compatible chat server (`POST /chat/completions`) that answers
/// every request with one short text, and reports usage as a provider
/// would, estimated at four characters a token: the prompt's size is what
/// the agent really sent (system prompt, knowledge, history, tools).
struct Chat;

impl Respond for Chat {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let answer = "Claro, te cuento: el plan Plus incluye soporte prioritario.";
        let prompt_tokens = req.body.len().div_ceil(4);
        let completion_tokens = answer.len().div_ceil(4);
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-as-deployed",
            "object": "chat.completion",
            "choices": [{
                "index": 0,
                "finish_reason": "stop",
                "message": { "role": "assistant", "content": answer },
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }))
    }
}

/// A model server for `AgentModel=openai:<model>` with `ModelUrl` at it.
pub async fn fake_chat_model() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .respond_with(Chat)
        .mount(&server)
        .await;
    server
}
