//! The operator's console as the runner serves it, and the console's chat
//! simulator route, over HTTP. (console/test/e2e.mjs drives the page itself
//! in headless Chromium.)

mod common;

use std::time::{Duration, Instant};

use common::{fake_graph, launch, local, ADMIN_KEY};
use serde_json::{json, Value};

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_console_is_served_without_auth_and_the_api_stays_behind_the_authorizer() {
    let graph = fake_graph(Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = launch(local(dir.path()), &graph.uri()).await;
    let client = reqwest::Client::new();

    let index = client
        .get(format!("{}/", server.base))
        .send()
        .await
        .expect("GET /");
    assert_eq!(index.status(), 200);
    assert_eq!(header(&index, "cache-control"), "no-cache");
    assert!(header(&index, "content-type").starts_with("text/html"));
    assert!(header(&index, "content-security-policy").contains("default-src 'none'"));
    let html = index.text().await.expect("the page");
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("index.html loads a script")
        .to_string();
    assert!(script.starts_with("assets/app-"), "{script}");

    let js = client
        .get(format!("{}/{script}", server.base))
        .send()
        .await
        .expect("the script");
    assert_eq!(js.status(), 200);
    assert!(header(&js, "content-type").starts_with("text/javascript"));
    assert!(header(&js, "cache-control").contains("immutable"));

    for path in [
        "/assets/app-NOPE.js",
        "/assets/..%2F..%2FCargo.toml",
        "/console/dist/index.html",
    ] {
        let r = client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 404, "{path}");
    }
    let api = client
        .get(format!("{}/admin/conversations", server.base))
        .send()
        .await
        .expect("the API");
    assert_eq!(api.status(), 401);
}

#[tokio::test]
async fn a_simulated_message_goes_through_the_signed_webhook_path() {
    let graph = fake_graph(Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = launch(local(dir.path()), &graph.uri()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/local/simulate", server.base);

    // Answers go to the Graph API here, not the outbox: no simulator page.
    let info: Value = client
        .get(&url)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(info, json!({ "simulator": false }));

    let message = json!({ "user_id": "5491155550042", "name": "Sim", "text": "hola" });
    let anonymous = client.post(&url).json(&message).send().await.expect("POST");
    assert_eq!(anonymous.status(), 401);
    for bad in [
        json!({ "user_id": "5491155550042" }),
        json!({ "user_id": "5491155550042", "text": "hola", "button": {"id": "a", "title": "A"} }),
        json!({ "user_id": "not a number", "text": "hola" }),
        json!({ "user_id": "5491155550042", "text": "hola", "extra": 1 }),
    ] {
        let r = client
            .post(&url)
            .bearer_auth(ADMIN_KEY)
            .json(&bad)
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), 400, "{bad}");
    }

    let sent: Value = client
        .post(&url)
        .bearer_auth(ADMIN_KEY)
        .json(&message)
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    let wamid = sent["wamid"].as_str().expect("a wamid").to_string();
    assert_eq!(sent["webhook"], 200);

    // Recorded as the user's message, with the profile name Meta sends
    // (behind the 200, from the journal)...
    let deadline = Instant::now() + Duration::from_secs(10);
    let conversation = loop {
        let conversation: Value = client
            .get(format!("{}/admin/conversations/5491155550042", server.base))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        if conversation["messages"][0].is_object() || Instant::now() > deadline {
            break conversation;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(conversation["contact_name"], "Sim", "{conversation}");
    let first = &conversation["messages"][0];
    assert_eq!(first["wamid"], wamid.as_str());
    assert_eq!(first["direction"], "inbound");
    assert_eq!(first["text"], "hola");

    // ...and answered by the bot, as any webhook is.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answered = graph
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("5491155550042"));
        if answered {
            break;
        }
        assert!(Instant::now() < deadline, "the bot never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
