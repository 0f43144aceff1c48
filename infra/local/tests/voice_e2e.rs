//! End to end for voice: start the `local` binary with a fake Vapi and a
//! fake Graph API (wiremock), talk to it as Meta and Vapi would.

use std::path::Path;
use std::time::{Duration, Instant};

use local::meta;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

mod common;

use common::{Server, SECRET};

const VAPI_SECRET: &str = "e2e-vapi-secret";

fn always_open_profile(dir: &Path) -> std::path::PathBuf {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/demo");
    let text = std::fs::read_to_string(format!("{demo}/agent.toml")).expect("demo");
    let mut out = String::new();
    for line in text.lines() {
        let day = ["mon", "tue", "wed", "thu", "fri", "sat"]
            .iter()
            .find(|d| line.starts_with(&format!("{d} = ")));
        match day {
            Some(d) => out.push_str(&format!("{d} = \"00:00-23:59\"\n")),
            None if line.starts_with("dir = \"knowledge\"") => {
                out.push_str(&format!("dir = \"{demo}/knowledge\"\n"))
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
        if line.starts_with("sat = ") {
            out.push_str("sun = \"00:00-23:59\"\n");
        }
    }
    let p = dir.join("agent.toml");
    std::fs::write(&p, out).expect("write profile");
    p
}

async fn start(dir: &Path, graph: &str, vapi: &str) -> Server {
    let mut cmd = common::local(&dir.join("data"));
    cmd.env("CHARLA_DEBOUNCE_MS", "0")
        .env("CHARLA_AGENT", always_open_profile(dir))
        .env("CHARLA_VOICE_PROVIDER", "vapi")
        .env("CHARLA_CALLING_HOURS", "always")
        .env("CHARLA_TRANSFER_TO", "sip:ventas@pbx.example.com")
        .env("VAPI_API_BASE", vapi)
        .env("VAPI_API_KEY", "e2e-vapi-key")
        .env("VAPI_PHONE_NUMBER_ID", "pn-e2e")
        .env("VAPI_ASSISTANT_ID", "as-e2e")
        .env("VAPI_WEBHOOK_SECRET", VAPI_SECRET);
    common::launch_within(cmd, graph, Duration::from_secs(30)).await
}

async fn fakes() -> (MockServer, MockServer) {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/[0-9A-Za-z]+/messages$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "messages": [{"id": "wamid.FAKE"}],
        })))
        .mount(&graph)
        .await;
    let vapi = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(|req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let id = body["metadata"]["charla_request_id"]
                .as_str()
                .unwrap_or("x")
                .replace([':', '.'], "-");
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": format!("vapi-{id}"), "status": "queued"}))
        })
        .mount(&vapi)
        .await;
    (graph, vapi)
}

async fn say(server: &Server, user_id: &str, wamid: &str, text: &str) {
    let body = serde_json::to_vec(&meta::message_webhook(
        user_id,
        "Ana",
        meta::text_message(user_id, wamid, text),
    ))
    .expect("json");
    let status = meta::post_signed(&reqwest::Client::new(), &server.base, SECRET, &body)
        .await
        .expect("post");
    assert_eq!(status, 200);
}

async fn calls_for(vapi: &MockServer, user_id: &str) -> Vec<Value> {
    vapi.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/call")
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|b| b["metadata"]["charla_conversation_id"] == user_id)
        .collect()
}

async fn until<T, F, Fut>(within: Duration, f: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

async fn texts_to(graph: &MockServer, user_id: &str) -> Vec<String> {
    graph
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|b| b["to"] == user_id)
        .map(|b| b["text"]["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn vapi_post(server: &Server, message: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/webhooks/voice/vapi", server.base))
        .header("x-vapi-secret", VAPI_SECRET)
        .json(&json!({"message": message}))
        .send()
        .await
        .expect("post");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn call_me_on_whatsapp_becomes_one_vapi_call_and_the_call_comes_back_to_the_conversation() {
    let dir = tempfile::tempdir().expect("tmp");
    let (graph, vapi) = fakes().await;
    let server = start(dir.path(), &graph.uri(), &vapi.uri()).await;
    let user = "5491100000077";

    say(&server, user, "wamid.V1", "hola, me interesa el plan anual").await;
    say(&server, user, "wamid.V2", "llamame por favor").await;
    let call = until(Duration::from_secs(20), || async {
        calls_for(&vapi, user).await.pop()
    })
    .await
    .expect("a create-call request at the fake Vapi");
    // Redelivered by Meta: still one call.
    say(&server, user, "wamid.V2", "llamame por favor").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(calls_for(&vapi, user).await.len(), 1);
    assert_eq!(call["customer"]["number"], format!("+{user}"));
    assert_eq!(call["assistantId"], "as-e2e");
    let vars = &call["assistantOverrides"]["variableValues"];
    assert!(
        vars["conversation_summary"]
            .as_str()
            .unwrap_or_default()
            .contains("plan anual"),
        "{call}"
    );
    assert_eq!(vars["language"], "es");
    let metadata = call["metadata"].clone();
    let call_id = format!(
        "vapi-{}",
        metadata["charla_request_id"]
            .as_str()
            .expect("id")
            .replace([':', '.'], "-")
    );
    let call_obj = json!({"id": call_id, "metadata": metadata});

    // Unauthenticated: refused.
    let r = reqwest::Client::new()
        .post(format!("{}/webhooks/voice/vapi", server.base))
        .json(&json!({"message": {"type": "end-of-call-report", "call": call_obj}}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);

    let (status, body) = vapi_post(&server, json!({"type": "tool-calls", "call": call_obj,
        "toolCallList": [{"id": "tc1", "name": "kb_search", "parameters": {"query": "planes y precios"}}]})).await;
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["toolCallId"], "tc1");
    assert!(
        body["results"][0]["result"]
            .as_str()
            .unwrap_or_default()
            .contains("passages"),
        "{body}"
    );

    let (status, body) = vapi_post(
        &server,
        json!({"type": "transfer-destination-request", "call": call_obj}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["destination"]["type"], "sip");
    assert_eq!(body["destination"]["sipUri"], "sip:ventas@pbx.example.com");
    assert_eq!(
        body["destination"]["transferPlan"]["mode"],
        "blind-transfer-add-summary-to-sip-header"
    );

    let before = texts_to(&graph, user).await.len();
    let report = json!({"type": "end-of-call-report", "call": call_obj, "endedReason": "customer-ended-call",
        "artifact": {"transcript": "AI: Hola, soy Sofía.\nUser: Quiero el plan anual."},
        "analysis": {"summary": "Quiere el plan anual; le mandamos el link de pago."}});
    for _ in 0..2 {
        assert_eq!(vapi_post(&server, report.clone()).await.0, 200);
    }
    let texts = texts_to(&graph, user).await;
    assert_eq!(texts.len(), before + 1, "{texts:?}");
    assert!(texts[before].contains("link de pago"), "{texts:?}");
    let transcript: Value = reqwest::Client::new()
        .get(format!("{}/admin/conversations/{user}", server.base))
        .bearer_auth("e2e-admin-key")
        .send()
        .await
        .expect("get")
        .json()
        .await
        .unwrap_or(Value::Null);
    assert!(
        transcript.to_string().contains("Quiero el plan anual"),
        "{transcript}"
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Figures for the note (`cargo test -p local --test voice_e2e figures -- --ignored --nocapture`):
/// "call me" webhook to the provider's create-call request, and tool-call
/// answer time, over the local server (debug or release, as built).
#[tokio::test]
#[ignore]
async fn figures() {
    let dir = tempfile::tempdir().expect("tmp");
    let (graph, vapi) = fakes().await;
    let server = start(dir.path(), &graph.uri(), &vapi.uri()).await;
    let mut to_call = Vec::new();
    let mut call_obj = Value::Null;
    for i in 0..20 {
        let user = format!("54911000010{i:02}");
        let t0 = Instant::now();
        say(&server, &user, &format!("wamid.F{i}"), "llamame").await;
        let call = until(Duration::from_secs(20), || async {
            calls_for(&vapi, &user).await.pop()
        })
        .await
        .expect("call");
        to_call.push(t0.elapsed());
        call_obj = json!({"id": "vapi-x", "metadata": call["metadata"]});
    }
    to_call.sort();
    let mut tools = Vec::new();
    for i in 0..200 {
        let t0 = Instant::now();
        let (status, _) = vapi_post(&server, json!({"type": "tool-calls", "call": call_obj,
            "toolCallList": [{"id": format!("t{i}"), "name": "kb_search", "parameters": {"query": "horarios"}}]})).await;
        assert_eq!(status, 200);
        tools.push(t0.elapsed());
    }
    tools.sort();
    println!(
        "call me -> create-call: p50 {:?} p99 {:?} (n={}); tool call answer: p50 {:?} p99 {:?} (n={})",
        percentile(&to_call, 0.5), percentile(&to_call, 0.99), to_call.len(),
        percentile(&tools, 0.5), percentile(&tools, 0.99), tools.len()
    );
}
