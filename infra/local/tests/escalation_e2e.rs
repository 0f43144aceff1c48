//! End to end, the hand-off: start the `local` binary with a fake Graph API
//! and a fake Chatwoot (wiremock), talk to it as Meta and Chatwoot do.

use std::path::Path;
use std::time::{Duration, Instant};

use local::meta;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;

use common::{Server, ADMIN_KEY, SECRET};

const HOOK_TOKEN: &str = "e2e-chatwoot-hook";
/// The user of the Chatwoot samples in events/chatwoot (conversation 57).
const USER: &str = "5491155551234";
const ANGRY: &str = "Esto es una vergüenza, pésimo servicio, estoy furioso, horrible";

async fn start(data_dir: &Path, graph: &str, chatwoot: &str) -> Server {
    let mut cmd = common::local(data_dir);
    cmd.env("CHARLA_DEBOUNCE_MS", "0")
        .env("CHARLA_WORKERS", "4")
        .env("CHATWOOT_URL", chatwoot)
        .env("CHATWOOT_ACCOUNT_ID", "3")
        .env("CHATWOOT_INBOX_ID", "2")
        .env("CHATWOOT_API_TOKEN", "e2e-chatwoot-api")
        .env("CHATWOOT_WEBHOOK_TOKEN", HOOK_TOKEN)
        .env_remove("CHARLA_ESCALATION_TOPIC_ARN")
        .env_remove("CHARLA_SES_FROM");
    common::launch(cmd, graph).await
}

async fn fake_graph() -> MockServer {
    common::fake_graph(Duration::ZERO).await
}

async fn fake_chatwoot() -> MockServer {
    let cw = MockServer::start().await;
    let p = |s: &str| format!("/api/v1/accounts/3{s}");
    Mock::given(method("GET"))
        .and(path(p("/contacts/search")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"meta": {"count": 0}, "payload": []})),
        )
        .mount(&cw)
        .await;
    Mock::given(method("POST"))
        .and(path(p("/contacts")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "payload": {
                "contact": {"id": 31, "identifier": USER, "contact_inboxes": []},
                "contact_inbox": {"source_id": "src-31", "inbox": {"id": 2}}
            }
        })))
        .mount(&cw)
        .await;
    Mock::given(method("GET"))
        .and(path(p("/contacts/31/conversations")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"payload": []})))
        .mount(&cw)
        .await;
    Mock::given(method("POST"))
        .and(path(p("/conversations")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": 57, "inbox_id": 2, "status": "open"})),
        )
        .mount(&cw)
        .await;
    Mock::given(method("POST"))
        .and(path(p("/conversations/57/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 900})))
        .mount(&cw)
        .await;
    Mock::given(method("POST"))
        .and(path(p("/conversations/57/toggle_status")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"payload": {"success": true, "current_status": "open", "conversation_id": 57}}),
        ))
        .mount(&cw)
        .await;
    cw
}

/// The texts the fake Graph API was asked to send to `to`, in order.
async fn sent_to(graph: &MockServer, to: &str) -> Vec<String> {
    graph
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|b| b["to"] == to)
        .map(|b| {
            b["text"]["body"]
                .as_str()
                .or(b["interactive"]["body"]["text"].as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// The bodies Chatwoot got on the conversation's messages endpoint.
async fn desk_messages(cw: &MockServer) -> Vec<Value> {
    cw.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().ends_with("/conversations/57/messages"))
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .collect()
}

async fn until<F, Fut>(within: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if done().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn say(server: &Server, user_id: &str, wamid: &str, text: &str) -> u16 {
    let body = serde_json::to_vec(&meta::message_webhook(
        user_id,
        "E2E",
        meta::text_message(user_id, wamid, text),
    ))
    .expect("json");
    meta::post_signed(&reqwest::Client::new(), &server.base, SECRET, &body)
        .await
        .expect("post")
}

async fn chatwoot(server: &Server, token: &str, sample: &str) -> u16 {
    let body = std::fs::read_to_string(format!(
        "{}/../../events/chatwoot/{sample}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("sample");
    reqwest::Client::new()
        .post(format!("{}/webhooks/chatwoot?token={token}", server.base))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

async fn state(server: &Server, user_id: &str) -> String {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/admin/conversations/{user_id}", server.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    v["state"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn an_angry_customer_goes_to_people_and_comes_back_to_the_bot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (graph, cw) = (fake_graph().await, fake_chatwoot().await);
    let server = start(dir.path(), &graph.uri(), &cw.uri()).await;

    // Angry: the bot answers the turn, the policy escalates.
    assert_eq!(say(&server, USER, "wamid.ANGRY", ANGRY).await, 200);
    let noted = until(Duration::from_secs(15), || async {
        desk_messages(&cw)
            .await
            .iter()
            .any(|m| m["private"] == true)
    })
    .await;
    assert!(noted, "the transcript reached Chatwoot as a private note");
    let note = desk_messages(&cw).await;
    assert!(note[0]["content"]
        .as_str()
        .unwrap_or("")
        .contains("vergüenza"));
    assert_eq!(state(&server, USER).await, "pending_human");
    let told = until(Duration::from_secs(5), || async {
        sent_to(&graph, USER)
            .await
            .iter()
            .any(|t| t.contains("persona del equipo"))
    })
    .await;
    assert!(told, "the user was told a person is coming");
    let before = sent_to(&graph, USER).await.len();

    // The bot goes quiet: the next message goes to Chatwoot, not answered.
    assert_eq!(
        say(&server, USER, "wamid.WAIT", "¿hola? ¿hay alguien?").await,
        200
    );
    let passed = until(Duration::from_secs(10), || async {
        desk_messages(&cw)
            .await
            .iter()
            .any(|m| m["content"].as_str().unwrap_or("").contains("hay alguien"))
    })
    .await;
    assert!(passed, "the user's message reached the desk");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sent_to(&graph, USER).await.len(),
        before,
        "the bot stayed quiet"
    );

    // A forged webhook changes nothing.
    assert_eq!(
        chatwoot(&server, "forged", "message_created_outgoing.json").await,
        401
    );
    assert_eq!(
        chatwoot(
            &server,
            "forged",
            "conversation_status_changed_resolved.json"
        )
        .await,
        401
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sent_to(&graph, USER).await.len(), before);
    assert_eq!(state(&server, USER).await, "pending_human");

    // The agent's reply reaches the user, once; the private note does not.
    for _ in 0..2 {
        assert_eq!(
            chatwoot(&server, HOOK_TOKEN, "message_created_outgoing.json").await,
            200
        );
    }
    assert_eq!(
        chatwoot(
            &server,
            HOOK_TOKEN,
            "message_created_outgoing_duplicate.json"
        )
        .await,
        200
    );
    assert_eq!(
        chatwoot(&server, HOOK_TOKEN, "message_created_private_note.json").await,
        200
    );
    let sent = sent_to(&graph, USER).await;
    let agent: Vec<&String> = sent.iter().filter(|t| t.contains("doble cobro")).collect();
    assert_eq!(agent.len(), 1, "{sent:?}");
    assert_eq!(
        sent.len(),
        before + 1,
        "the private note stayed private: {sent:?}"
    );
    assert_eq!(state(&server, USER).await, "human");

    // Resolved: the bot answers again.
    assert_eq!(
        chatwoot(
            &server,
            HOOK_TOKEN,
            "conversation_status_changed_resolved.json"
        )
        .await,
        200
    );
    assert_eq!(state(&server, USER).await, "bot");
    assert_eq!(say(&server, USER, "wamid.BACK", "hola").await, 200);
    let answered = until(Duration::from_secs(10), || async {
        sent_to(&graph, USER).await.len() > before + 1
    })
    .await;
    assert!(answered, "the bot answers again after the hand-back");
}

/// The figure for the note: from the escalating message's webhook POST to
/// Chatwoot receiving the private note, locally, debug build, debounce 0.
/// `cargo test -p local --test escalation_e2e -- --ignored --nocapture`
#[tokio::test]
#[ignore]
async fn time_from_the_escalating_message_to_the_humans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (graph, cw) = (fake_graph().await, fake_chatwoot().await);
    let server = start(dir.path(), &graph.uri(), &cw.uri()).await;
    let mut times = Vec::new();
    for i in 0..20u64 {
        let user = format!("54911{:08}", 20_000_000 + i);
        let notes_before = desk_messages(&cw)
            .await
            .iter()
            .filter(|m| m["private"] == true)
            .count();
        let t0 = Instant::now();
        assert_eq!(
            say(&server, &user, &format!("wamid.LAT{i}"), ANGRY).await,
            200
        );
        let ok = until(Duration::from_secs(20), || async {
            desk_messages(&cw)
                .await
                .iter()
                .filter(|m| m["private"] == true)
                .count()
                > notes_before
        })
        .await;
        assert!(ok, "run {i}: no note");
        times.push(t0.elapsed());
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    println!(
        "escalating message -> Chatwoot note, {} runs (debug build, local, debounce 0, 20 ms poll): p50 {:?}, p99 {:?}, min {:?}, max {:?}",
        times.len(),
        pct(0.5),
        pct(0.99),
        times[0],
        times[times.len() - 1]
    );
}
