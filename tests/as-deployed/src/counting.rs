//! A counting proxy in front of moto: every request the functions make to a
//! service they are pointed at (`AWS_ENDPOINT_URL_DYNAMODB` and
//! `AWS_ENDPOINT_URL_SQS`), by action, with its bytes. It is what the bill
//! of materials counts as requests and capacity units per conversation.
//!
//! Capacity units are estimated from the JSON each way: a write takes one
//! unit per KB of its request, two for a transaction; a read one unit per
//! 4 KB of its answer. The requests carry names and types besides the item,
//! so these are upper bounds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::StatusCode;

/// One action's requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counted {
    pub requests: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// DynamoDB: estimated write or read capacity units.
    pub units: f64,
}

type Counts = Arc<Mutex<BTreeMap<String, Counted>>>;

#[derive(Clone)]
struct Upstream {
    url: String,
    client: reqwest::Client,
    counts: Counts,
}

pub struct CountingProxy {
    /// Where to point the functions (`http://127.0.0.1:PORT`).
    pub url: String,
    counts: Counts,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `dynamodb:PutItem`, `sqs:SendMessage`: from the JSON protocols' target.
fn action(target: Option<&str>) -> String {
    match target.and_then(|t| t.split_once('.')) {
        Some((service, op)) if service.starts_with("DynamoDB") => format!("dynamodb:{op}"),
        Some((service, op)) if service.starts_with("AmazonSQS") => format!("sqs:{op}"),
        Some((service, op)) => format!("{service}:{op}"),
        None => "other".into(),
    }
}

fn units(action: &str, request: usize, response: usize) -> f64 {
    let kb = |bytes: usize, per: usize| bytes.div_ceil(per).max(1) as f64;
    match action {
        "dynamodb:PutItem"
        | "dynamodb:UpdateItem"
        | "dynamodb:DeleteItem"
        | "dynamodb:BatchWriteItem" => kb(request, 1024),
        "dynamodb:TransactWriteItems" => 2.0 * kb(request, 1024),
        "dynamodb:GetItem" | "dynamodb:Query" | "dynamodb:BatchGetItem" | "dynamodb:Scan" => {
            kb(response, 4096)
        }
        _ => 0.0,
    }
}

async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body").into_response();
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let name = action(target);
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = up
        .client
        .request(parts.method.clone(), format!("{}{path}", up.url))
        .body(body.clone());
    for (k, v) in &parts.headers {
        if k != http::header::HOST && k != http::header::CONTENT_LENGTH {
            out = out.header(k, v);
        }
    }
    let answer = match out.send().await {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    if let Ok(mut counts) = up.counts.lock() {
        let c = counts.entry(name.clone()).or_default();
        c.requests += 1;
        c.request_bytes += body.len() as u64;
        c.response_bytes += bytes.len() as u64;
        c.units += units(&name, body.len(), bytes.len());
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (k, v) in &headers {
        if k != http::header::TRANSFER_ENCODING && k != http::header::CONTENT_LENGTH {
            response.headers_mut().insert(k, v.clone());
        }
    }
    response
}

impl CountingProxy {
    /// Listens on a free loopback port and forwards everything to `upstream`.
    pub async fn start(upstream: &str) -> std::io::Result<CountingProxy> {
        let counts: Counts = Arc::default();
        let state = Upstream {
            url: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            counts: counts.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = Router::new().fallback(forward).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(CountingProxy { url, counts, task })
    }

    /// Every action seen so far.
    pub fn counts(&self) -> BTreeMap<String, Counted> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_named_by_service_and_operation() {
        assert_eq!(
            action(Some("DynamoDB_20120810.PutItem")),
            "dynamodb:PutItem"
        );
        assert_eq!(action(Some("AmazonSQS.SendMessage")), "sqs:SendMessage");
        assert_eq!(action(None), "other");
    }

    #[test]
    fn units_round_up_per_kilobyte_written_and_four_read() {
        assert_eq!(units("dynamodb:PutItem", 1500, 10), 2.0);
        assert_eq!(units("dynamodb:TransactWriteItems", 900, 10), 2.0);
        assert_eq!(units("dynamodb:Query", 100, 9000), 3.0);
        assert_eq!(units("sqs:SendMessage", 100, 100), 0.0);
    }
}
