//! Charla as template.yaml deploys it, end to end: each test deploys its
//! own stack on moto (see the crate's docs) and talks to it over the HTTP
//! API as Meta, the voice provider or an operator would.
//!
//! Needs MOTO_ENDPOINT and CHARLA_LAMBDA_BIN_DIR: `bash scripts/test` sets
//! both. Every wait is bounded; a failure prints what was seen and the end
//! of every function's output.

use std::future::Future;
use std::time::{Duration, Instant};

use as_deployed::fakes::{self, shown_text, FakeGraph};
use as_deployed::meta;
use as_deployed::states::Status;
use as_deployed::{Options, Stack};
use serde_json::{json, Value};

const APP_SECRET: &str = "as-deployed-app-secret";
const VERIFY_TOKEN: &str = "as-deployed-verify";
const ACCESS_TOKEN: &str = "as-deployed-token";
const ADMIN_KEY: &str = "as-deployed-admin-key";
const WAIT: Duration = Duration::from_secs(20);

fn options(graph: &FakeGraph) -> Options {
    Options::default()
        .parameter("WhatsAppAppSecret", APP_SECRET)
        .parameter("WhatsAppVerifyToken", VERIFY_TOKEN)
        .parameter("WhatsAppAccessToken", ACCESS_TOKEN)
        .parameter(
            "AdminKeyHashes",
            format!(
                "{}:admin:read+admin:write",
                fakes::sha256_hex(ADMIN_KEY.as_bytes())
            ),
        )
        .parameter("WhatsAppApiBase", graph.uri())
        .parameter("DebounceMs", "100")
}

/// Voice calls at the fake Vapi `vapi`.
fn with_vapi(options: Options, vapi: &wiremock::MockServer) -> Options {
    options
        .parameter("VoiceProvider", "vapi")
        .parameter("VapiApiKey", "as-deployed-vapi-key")
        .parameter("VapiPhoneNumberId", "as-deployed-phone")
        .parameter("VapiAssistantId", "as-deployed-assistant")
        .parameter("VapiWebhookSecret", "as-deployed-vapi-secret")
        .parameter("VapiApiBase", vapi.uri())
}

/// An admin API request with the admin key: its status and body.
async fn admin_send(req: reqwest::RequestBuilder) -> (u16, String) {
    let r = req.bearer_auth(ADMIN_KEY).send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

async fn deploy(options: Options) -> Stack {
    match Stack::deploy(options).await {
        Ok(stack) => stack,
        Err(e) => panic!("deploy: {e}"),
    }
}

/// Polls `done` until it holds or `within` passes.
async fn until<F, Fut>(within: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if done().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// POSTs a webhook body with `signature` (None: unsigned).
async fn post_webhook(stack: &Stack, body: &[u8], signature: Option<String>) -> u16 {
    let mut req = reqwest::Client::new()
        .post(format!("{}/webhooks/whatsapp", stack.api_url))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    match req.send().await {
        Ok(r) => r.status().as_u16(),
        Err(e) => panic!("POST /webhooks/whatsapp: {e}"),
    }
}

async fn post_signed(stack: &Stack, body: &[u8]) -> u16 {
    post_webhook(stack, body, Some(fakes::meta_signature(APP_SECRET, body))).await
}

async fn say(stack: &Stack, user_id: &str, wamid: &str, text: &str) -> u16 {
    let body = serde_json::to_vec(&meta::message_webhook(
        user_id,
        "As Deployed",
        meta::text_message(user_id, wamid, text),
    ))
    .unwrap_or_default();
    post_signed(stack, &body).await
}

/// Waits for at least `n` sends to `wa_id`; returns what was sent.
async fn wait_messages(graph: &FakeGraph, user_id: &str, n: usize) -> Vec<Value> {
    until(WAIT, || async {
        graph.messages_to(user_id).await.len() >= n
    })
    .await;
    graph.messages_to(user_id).await
}

async fn admin_get(stack: &Stack, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("{}/admin/{path}", stack.api_url));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(e) => panic!("GET /admin/{path}: {e}"),
    }
}

/// A running campaign of `spec` with one contact, Ana, on a fresh Buenos
/// Aires mobile (one the number plan accepts: not every random one is);
/// answers the campaign's id and the contact's number.
async fn running_campaign_of_one(stack: &Stack, spec: &Value) -> (String, String) {
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}/admin/{path}", stack.api_url);
    let (status, body) = admin_send(client.post(url("campaigns")).body(spec.to_string())).await;
    assert_eq!(status, 201, "{body}\n{}", stack.diagnostics());
    let id = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)["id"]
        .as_str()
        .expect("id")
        .to_string();
    let user = format!("54911555{}", &meta::new_user_id()[8..]);
    let csv = format!("Teléfono,Nombre,Monto\n+{user},Ana,1200\n");
    let (status, body) = admin_send(
        client
            .put(url(&format!("campaigns/{id}/contacts")))
            .header("content-type", "text/csv")
            .body(csv),
    )
    .await;
    assert!(status == 200 && body.contains("\"accepted\":1"), "{body}");
    let (status, body) = admin_send(client.post(url(&format!("campaigns/{id}/start")))).await;
    assert_eq!(status, 200, "{body}");
    (id, user)
}

/// A stack with calls at the fake `vapi` and templates from the business
/// number, as campaigns need.
async fn campaign_stack(graph: &FakeGraph, vapi: &wiremock::MockServer) -> Stack {
    deploy(
        with_vapi(options(graph), vapi).parameter("WhatsAppPhoneNumberId", meta::PHONE_NUMBER_ID),
    )
    .await
}

/// The calls placed at the fake Vapi so far.
async fn vapi_calls(vapi: &wiremock::MockServer) -> Vec<wiremock::Request> {
    vapi.received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == "/call")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_text_message_is_answered_through_the_graph_api() {
    let graph = FakeGraph::start().await;
    let stack = deploy(options(&graph)).await;
    let user = meta::new_user_id();
    assert_eq!(say(&stack, &user, &meta::new_wamid(), "hola").await, 200);
    let sent = wait_messages(&graph, &user, 1).await;
    assert!(
        !sent.is_empty(),
        "no reply reached the Graph API for {user}; it saw {:?}\n{}",
        graph.requests().await,
        stack.diagnostics()
    );
    assert_eq!(sent[0]["to"], user.as_str());
    assert_eq!(sent[0]["messaging_product"], "whatsapp");
    assert!(!shown_text(&sent[0]).is_empty(), "{}", sent[0]);
    let auth = graph
        .server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .find(|r| r.url.path().ends_with("/messages"))
        .and_then(|r| {
            r.headers
                .get("authorization")
                .map(|v| v.to_str().unwrap_or("").to_string())
        });
    assert_eq!(
        auth.as_deref(),
        Some("Bearer as-deployed-token"),
        "the token from the stack's secret"
    );
    assert!(
        graph
            .requests()
            .await
            .iter()
            .all(|r| r.starts_with(&format!("POST /{}/", meta::PHONE_NUMBER_ID))),
        "sent from the business number of the webhook"
    );
    stack.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redelivered_webhook_is_answered_once_and_bad_ones_are_refused_or_kept() {
    let graph = FakeGraph::start().await;
    let stack = deploy(options(&graph)).await;
    let user = meta::new_user_id();
    let body = serde_json::to_vec(&meta::message_webhook(
        &user,
        "As Deployed",
        meta::text_message(&user, &meta::new_wamid(), "¿cuáles son los horarios?"),
    ))
    .unwrap_or_default();
    assert_eq!(post_signed(&stack, &body).await, 200);
    assert_eq!(
        post_signed(&stack, &body).await,
        200,
        "Meta's redelivery is acknowledged"
    );
    assert!(
        !wait_messages(&graph, &user, 1).await.is_empty(),
        "no reply\n{}",
        stack.diagnostics()
    );
    // The answer's other parts (a passage, then the menu) arrive one after
    // another: what came once they are all in is the first answer.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = graph.messages_to(&user).await;
    // Long enough for a second answer to have come, if one were coming.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = graph.messages_to(&user).await;
    assert_eq!(
        after.len(),
        first.len(),
        "the redelivery was answered again: {after:?}\n{}",
        stack.diagnostics()
    );

    // Unsigned and badly signed: 401, nothing answered.
    let other = meta::new_user_id();
    let forged = serde_json::to_vec(&meta::message_webhook(
        &other,
        "X",
        meta::text_message(&other, &meta::new_wamid(), "hola"),
    ))
    .unwrap_or_default();
    assert_eq!(post_webhook(&stack, &forged, None).await, 401);
    assert_eq!(
        post_webhook(
            &stack,
            &forged,
            Some(fakes::meta_signature("not-the-secret", &forged))
        )
        .await,
        401
    );

    // Signed but not understood: 200 and kept in the quarantine bucket.
    let malformed = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"nope":1}}]}]}"#;
    assert_eq!(post_signed(&stack, malformed).await, 200);
    let bucket = stack.physical("QuarantineBucket");
    let kept = until(WAIT, || async {
        stack
            .aws
            .s3
            .list_objects_v2()
            .bucket(&bucket)
            .send()
            .await
            .map(|o| o.key_count().unwrap_or(0) > 0)
            .unwrap_or(false)
    })
    .await;
    assert!(
        kept,
        "the malformed payload is not in {bucket}\n{}",
        stack.diagnostics()
    );
    let listed = stack.aws.s3.list_objects_v2().bucket(&bucket).send().await;
    let key = listed
        .ok()
        .and_then(|o| {
            o.contents()
                .first()
                .and_then(|c| c.key().map(str::to_string))
        })
        .unwrap_or_default();
    let object = stack
        .aws
        .s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await;
    let bytes = match object {
        Ok(o) => o
            .body
            .collect()
            .await
            .map(|b| b.into_bytes().to_vec())
            .unwrap_or_default(),
        Err(e) => panic!("get {key}: {e}"),
    };
    assert!(
        bytes.windows(malformed.len()).any(|w| w == malformed),
        "the raw body is kept as received ({key})"
    );

    // Meta's GET check.
    let verify = reqwest::get(format!(
        "{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=4711",
        stack.api_url
    ))
    .await;
    match verify {
        Ok(r) => {
            assert_eq!(r.status().as_u16(), 200);
            assert_eq!(r.text().await.unwrap_or_default(), "4711");
        }
        Err(e) => panic!("GET verify: {e}"),
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        graph.messages_to(&other).await.is_empty(),
        "a refused webhook was answered"
    );
    stack.teardown().await;
}

/// A queue subscribed to the escalation topic; returns its URL.
async fn subscribe_probe(stack: &Stack) -> String {
    let name = format!("{}-escalation-probe", stack.name);
    let probe = stack
        .aws
        .sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .ok()
        .and_then(|o| o.queue_url)
        .unwrap_or_default();
    let subscribed = stack
        .aws
        .sns
        .subscribe()
        .topic_arn(stack.physical("EscalationTopic"))
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:us-east-1:123456789012:{name}"))
        .send()
        .await;
    assert!(subscribed.is_ok(), "subscribe: {subscribed:?}");
    probe
}

/// Whether something was published to the probe within the wait.
async fn published(stack: &Stack, probe: &str) -> bool {
    until(WAIT, || async {
        stack
            .aws
            .sqs
            .receive_message()
            .queue_url(probe)
            .send()
            .await
            .ok()
            .is_some_and(|o| !o.messages().is_empty())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answered_turn_that_the_policy_escalates_goes_to_people() {
    let graph = FakeGraph::start().await;
    let stack = deploy(options(&graph)).await;
    // People hear of every escalation on the topic: subscribe a queue.
    let probe = subscribe_probe(&stack).await;

    let user = meta::new_user_id();
    // The playbook answers the hours question; "darme de baja" is in the
    // escalation policy's cancellation words (not in the profile's own
    // [escalation] keywords, which the playbook would hand off by itself).
    let text = "Quiero darme de baja. ¿Cuáles son los horarios?";
    assert_eq!(say(&stack, &user, &meta::new_wamid(), text).await, 200);
    let answered = wait_messages(&graph, &user, 1).await;
    assert!(
        !answered.is_empty(),
        "the turn was not answered\n{}",
        stack.diagnostics()
    );

    let escalated = until(WAIT, || async {
        let (_, c) = admin_get(&stack, &format!("conversations/{user}"), Some(ADMIN_KEY)).await;
        c["state"] == "pending_human"
    })
    .await;
    let (_, conversation) =
        admin_get(&stack, &format!("conversations/{user}"), Some(ADMIN_KEY)).await;
    let queued = stack
        .aws
        .sqs
        .get_queue_attributes()
        .queue_url(stack.physical("EscalationQueue"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .ok()
        .and_then(|o| o.attributes)
        .unwrap_or_default();
    assert!(
        escalated,
        "the answered turn was never escalated (conversation state {:?}, escalation queue {:?}). \
         Expected on a build where text-ai does not put answered turns on the escalation queue \
         (functions/text-ai/src/main.rs leaves Settings.escalation_queue unset), so the escalation \
         function never sees the turn.\n{}",
        conversation["state"],
        queued,
        stack.diagnostics()
    );
    let told = until(WAIT, || async {
        graph
            .messages_to(&user)
            .await
            .iter()
            .any(|m| shown_text(m).contains("persona del equipo"))
    })
    .await;
    assert!(
        told,
        "the user was not told a person is coming: {:?}\n{}",
        graph
            .messages_to(&user)
            .await
            .iter()
            .map(shown_text)
            .collect::<Vec<_>>(),
        stack.diagnostics()
    );
    let published = published(&stack, &probe).await;
    assert!(
        published,
        "nothing was published on the escalation topic\n{}",
        stack.diagnostics()
    );
    // What it used, as text-ai and escalation recorded it in the table: the
    // transcript's timeline and cost, and the day's numbers.
    let (_, conversation) =
        admin_get(&stack, &format!("conversations/{user}"), Some(ADMIN_KEY)).await;
    let turns = conversation["turns"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        turns.iter().any(|t| t["via"] == "playbook")
            && turns.iter().any(|t| t["escalation"].is_string()),
        "the timeline lacks the turn or the hand-off: {conversation}\n{}",
        stack.diagnostics()
    );
    assert_eq!(conversation["usage"]["turns"], 1, "{conversation}");
    let (status, stats) = admin_get(&stack, "stats?days=1", Some(ADMIN_KEY)).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["totals"]["turns"], 1, "{stats}");
    assert_eq!(stats["totals"]["conversations"], 1, "{stats}");
    assert_eq!(stats["totals"]["playbook_turns"], 1, "{stats}");
    assert!(
        stats["totals"]["cost"]["aws"].as_f64() > Some(0.0),
        "{stats}"
    );
    stack.teardown().await;
}

/// The escalation function on its own queue: a turn put there as text-ai
/// puts it (events/escalation/turn_angry.json's shape) is escalated. This
/// shows the rest of the hand-off path works as deployed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_turn_on_the_escalation_queue_is_handed_to_people() {
    let graph = FakeGraph::start().await;
    let stack = deploy(options(&graph)).await;
    let probe = subscribe_probe(&stack).await;
    let user = meta::new_user_id();
    assert_eq!(say(&stack, &user, &meta::new_wamid(), "hola").await, 200);
    assert!(
        !wait_messages(&graph, &user, 1).await.is_empty(),
        "no reply\n{}",
        stack.diagnostics()
    );
    let turn_id = meta::new_wamid();
    let turn = json!({
        "kind": "turn", "turn_id": turn_id, "wa_id": user,
        "phone_number_id": meta::PHONE_NUMBER_ID,
        "text": "Quiero darme de baja, esto es un desastre", "language": "es",
        "fallback": false, "intent": null, "at_ms": jiff_now_ms(),
    });
    let sent = stack
        .aws
        .sqs
        .send_message()
        .queue_url(stack.physical("EscalationQueue"))
        .message_group_id(&user)
        .message_deduplication_id(format!("{turn_id}:turn"))
        .message_body(turn.to_string())
        .send()
        .await;
    assert!(sent.is_ok(), "{sent:?}");
    let escalated = until(WAIT, || async {
        let (_, c) = admin_get(&stack, &format!("conversations/{user}"), Some(ADMIN_KEY)).await;
        c["state"] == "pending_human"
    })
    .await;
    assert!(escalated, "not escalated\n{}", stack.diagnostics());
    let told = until(WAIT, || async {
        graph
            .messages_to(&user)
            .await
            .iter()
            .any(|m| shown_text(m).contains("persona del equipo"))
    })
    .await;
    assert!(told, "no hand-off notice\n{}", stack.diagnostics());
    assert!(
        published(&stack, &probe).await,
        "nothing was published on the escalation topic\n{}",
        stack.diagnostics()
    );
    stack.teardown().await;
}

fn jiff_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// ------------------------------------------------------------------ media

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid RGB PNG of `w` x `h` grey pixels (zlib stored blocks).
fn png(w: u32, h: u32) -> Vec<u8> {
    let mut raw = Vec::new();
    for _ in 0..h {
        raw.push(0u8);
        raw.extend(std::iter::repeat_n(0x80u8, (w * 3) as usize));
    }
    let mut z = vec![0x78, 0x01];
    for (i, chunk) in raw.chunks(65_535).enumerate() {
        let last = (i + 1) * 65_535 >= raw.len();
        z.push(u8::from(last));
        let len = chunk.len() as u16;
        z.extend(len.to_le_bytes());
        z.extend((!len).to_le_bytes());
        z.extend(chunk);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for x in &raw {
        a = (a + u32::from(*x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend(data);
        c.extend(&body);
        c.extend(crc32(&body).to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(b"IDAT", &z));
    out.extend(chunk(b"IEND", &[]));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_photo_runs_the_media_state_machine_and_is_answered() {
    let graph = FakeGraph::start().await;
    let rekognition = fakes::fake_rekognition().await;
    let stack = deploy(options(&graph).endpoint("REKOGNITION", rekognition.uri())).await;
    let user = meta::new_user_id();
    let photo = png(64, 48);
    graph.serve_media("7001", "image/png", &photo).await;
    let body = serde_json::to_vec(&meta::message_webhook(
        &user,
        "As Deployed",
        meta::image_message(
            &user,
            &meta::new_wamid(),
            "7001",
            "image/png",
            &fakes::sha256_hex(&photo),
        ),
    ))
    .unwrap_or_default();
    assert_eq!(post_signed(&stack, &body).await, 200);

    let finished = until(WAIT, || async {
        stack
            .executions()
            .iter()
            .any(|e| e.status != Status::Running)
    })
    .await;
    let executions = stack.executions();
    assert!(
        finished,
        "no media execution finished: {executions:?}\n{}",
        stack.diagnostics()
    );
    let run = &executions[0];
    assert_eq!(
        run.status,
        Status::Succeeded,
        "{run:?}\n{}",
        stack.diagnostics()
    );
    assert_eq!(
        run.visited,
        [
            "Download",
            "Route",
            "AnalyzeImage",
            "Understood?",
            "Deliver"
        ],
        "{run:?}"
    );
    let asked = graph.requests().await;
    assert!(
        asked.iter().any(|r| r == "GET /7001") && asked.iter().any(|r| r == "GET /files/7001"),
        "the media was fetched in two steps: {asked:?}"
    );
    assert!(
        !rekognition
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "Rekognition was asked about the photo"
    );
    let sent = wait_messages(&graph, &user, 1).await;
    assert!(
        !sent.is_empty(),
        "the photo was not answered\n{}",
        stack.diagnostics()
    );
    // The operator's transcript shows what the pipeline saw in the photo.
    let (status, transcript) =
        admin_get(&stack, &format!("conversations/{user}"), Some(ADMIN_KEY)).await;
    assert_eq!(status, 200, "{transcript}");
    let photo = transcript["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["kind"] == "image"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(photo["media"]["result"], "understood", "{transcript}");
    assert!(
        photo["media"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Sneaker")),
        "{photo}"
    );
    stack.teardown().await;
}

/// profiles/demo, copied, with every day open 00:00-23:59.
fn open_all_day_profile() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/demo");
    copy_dir(&demo, dir.path());
    let toml_path = dir.path().join("agent.toml");
    let text = std::fs::read_to_string(&toml_path).unwrap_or_default();
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut out = String::new();
    let mut in_hours = false;
    for line in text.lines() {
        if line.starts_with('[') {
            if in_hours {
                for d in days {
                    out.push_str(&format!("{d} = \"00:00-23:59\"\n"));
                }
            }
            in_hours = line.trim() == "[hours]";
        }
        if in_hours && days.iter().any(|d| line.starts_with(&format!("{d} "))) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    std::fs::write(&toml_path, out).unwrap_or_else(|e| panic!("write profile: {e}"));
    dir
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).into_iter().flatten().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            let _ = std::fs::create_dir_all(&target);
            copy_dir(&entry.path(), &target);
        } else {
            let _ = std::fs::copy(entry.path(), &target);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn call_me_places_a_call_at_vapi() {
    let graph = FakeGraph::start().await;
    let vapi = fakes::fake_vapi().await;
    // The agent books calls in the business's opening hours ([hours] of the
    // profile layer): a copy of the demo profile that is open all day, so
    // that the call goes out now whatever the time of the test.
    let profile = open_all_day_profile();
    let stack = deploy(
        with_vapi(options(&graph), &vapi)
            .layer("AgentProfileLayer", profile.path())
            .parameter("CallingHours", "always"),
    )
    .await;
    let user = meta::new_user_id();
    assert_eq!(
        say(&stack, &user, &meta::new_wamid(), "llamame por favor").await,
        200
    );
    let told = wait_messages(&graph, &user, 1).await;
    assert!(
        !told.is_empty(),
        "the call request was not answered\n{}",
        stack.diagnostics()
    );
    let calls = || vapi_calls(&vapi);
    let mut placed = until(Duration::from_secs(10), || async {
        !calls().await.is_empty()
    })
    .await;
    if !placed {
        // A call held for later is placed by the one-minute schedule.
        let swept = stack.fire_schedule("CallTrigger").await;
        placed = until(Duration::from_secs(10), || async {
            !calls().await.is_empty()
        })
        .await;
        assert!(
            placed,
            "no call reached Vapi (schedule: {swept:?})\n{}",
            stack.diagnostics()
        );
    }
    let call = &calls().await[0];
    let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
    assert_eq!(body["customer"]["number"], format!("+{user}"), "{body}");
    assert_eq!(body["phoneNumberId"], "as-deployed-phone", "{body}");
    assert_eq!(
        call.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer as-deployed-vapi-key")
    );
    stack.teardown().await;
}

/// The template's defaults have no voice provider settings: a deployment
/// without voice calls. call-trigger and voice must still start: a call
/// request is refused and the user told, and the voice webhooks answer 401
/// (no secret), not 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_voice_settings_a_call_request_is_refused_and_the_user_told() {
    let graph = FakeGraph::start().await;
    let profile = open_all_day_profile();
    let stack = deploy(
        options(&graph)
            .layer("AgentProfileLayer", profile.path())
            .parameter("CallingHours", "always"),
    )
    .await;
    let user = meta::new_user_id();
    assert_eq!(
        say(&stack, &user, &meta::new_wamid(), "llamame por favor").await,
        200
    );
    // The agent's answer, then call-trigger's notice that no call is coming.
    let told = wait_messages(&graph, &user, 2).await;
    assert!(
        told.len() >= 2,
        "the refused call was not told: {told:?}\n{}",
        stack.diagnostics()
    );
    let status = reqwest::Client::new()
        .post(format!("{}/webhooks/voice/vapi", stack.api_url))
        .body(r#"{"message":{"type":"status-update"}}"#)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert_eq!(status, 401, "{}", stack.diagnostics());
    stack.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_api_is_behind_the_authorizer() {
    let graph = FakeGraph::start().await;
    let stack = deploy(options(&graph)).await;
    let user = meta::new_user_id();
    assert_eq!(say(&stack, &user, &meta::new_wamid(), "hola").await, 200);
    assert!(
        !wait_messages(&graph, &user, 1).await.is_empty(),
        "no reply\n{}",
        stack.diagnostics()
    );
    let (status, body) = admin_get(&stack, "conversations", None).await;
    assert_eq!((status, body), (401, json!({"message": "Unauthorized"})));
    let (status, body) = admin_get(&stack, "conversations", Some("wrong-key")).await;
    assert_eq!((status, body), (403, json!({"message": "Forbidden"})));
    let (status, body) = admin_get(&stack, "conversations", Some(ADMIN_KEY)).await;
    assert_eq!(status, 200, "{body}\n{}", stack.diagnostics());
    assert!(
        body["conversations"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["user_id"] == user.as_str())),
        "{body}"
    );
    let (status, _) = admin_get(&stack, "nothing-here", Some(ADMIN_KEY)).await;
    assert_eq!(status, 404, "an unknown route");
    stack.teardown().await;
}

/// On the Lambda wiring: a user known only by username is answered at their
/// BSUID, and when they share their number later it is one conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_username_only_user_is_answered_and_keeps_one_conversation() {
    let graph = FakeGraph::start().await;
    let stack = deploy(options(&graph)).await;
    let bsuid = meta::new_bsuid();
    assert_eq!(say(&stack, &bsuid, &meta::new_wamid(), "hola").await, 200);
    let sent = wait_messages(&graph, &bsuid, 1).await;
    assert!(
        !sent.is_empty(),
        "no reply for {bsuid}; the Graph API saw {:?}\n{}",
        graph.requests().await,
        stack.diagnostics()
    );
    assert_eq!(sent[0]["recipient"], bsuid.as_str());
    assert!(sent[0].get("to").is_none(), "{}", sent[0]);

    let phone = meta::new_user_id();
    let mut shared = meta::message_webhook(
        &phone,
        "As Deployed",
        meta::text_message(&phone, &meta::new_wamid(), "¿cuáles son los horarios?"),
    );
    let value = &mut shared["entry"][0]["changes"][0]["value"];
    value["contacts"][0]["user_id"] = json!(bsuid);
    value["messages"][0]["from_user_id"] = json!(bsuid);
    let body = serde_json::to_vec(&shared).unwrap_or_default();
    assert_eq!(post_signed(&stack, &body).await, 200);
    let sent = wait_messages(&graph, &bsuid, 2).await;
    assert!(sent.len() >= 2, "{}", stack.diagnostics());
    assert!(graph.messages_to(&phone).await.is_empty());
    let (status, body) =
        admin_get(&stack, &format!("conversations/{phone}"), Some(ADMIN_KEY)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], bsuid.as_str(), "{body}");
}

/// On the Lambda wiring, through API Gateway and the authorizer: an
/// operator creates a campaign, uploads a spreadsheet, starts it, reads its
/// counts and its report, and keeps the do-not-contact list.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_uploads_and_starts_a_campaign() {
    let graph = FakeGraph::start().await;
    // Every report by link (S3), as a large one goes.
    let stack = deploy(options(&graph).parameter("ReportInlineBytes", "0")).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}/admin/{path}", stack.api_url);
    let json_of = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);

    let spec = json!({"name": "Cobranza", "channel": "call", "max_concurrent": 2});
    let (status, body) = admin_send(client.post(url("campaigns")).body(spec.to_string())).await;
    assert_eq!(status, 201, "{body}\n{}", stack.diagnostics());
    let id = json_of(&body)["id"].as_str().expect("id").to_string();

    let (status, body) = admin_send(
        client
            .post(url("opt-outs"))
            .body(json!({"phone": "+54 9 11 5555-0003", "reason": "BAJA"}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let csv = "Cartera diciembre\nTeléfono,Nombre,Monto\n\
               +54 9 11 5555-0001,Ana,100\n+54 9 11 5555-0002,Bruno,200\n\
               +54 9 11 5555-0001,Ana,100\n+54 9 11 5555-0003,Carla,300\n";
    let (status, body) = admin_send(
        client
            .put(url(&format!("campaigns/{id}/contacts")))
            .header("content-type", "text/csv")
            .body(csv),
    )
    .await;
    assert_eq!(status, 200, "{body}\n{}", stack.diagnostics());
    let report = json_of(&body);
    assert_eq!(report["accepted"], 2, "{report}");
    assert_eq!(
        report["rejected"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );

    let (status, body) = admin_send(client.post(url(&format!("campaigns/{id}/start")))).await;
    assert_eq!(
        (status, json_of(&body)["state"].clone()),
        (200, json!("running")),
        "{body}"
    );
    let (status, body) = admin_send(client.get(url(&format!("campaigns/{id}")))).await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["counts"]["pending"], 2, "{body}");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let (status, body) = admin_send(
        no_redirects
            .get(url(&format!("campaigns/{id}/report")))
            .header("accept", "text/csv"),
    )
    .await;
    assert_eq!(status, 303, "{body}\n{}", stack.diagnostics());
    let link = json_of(&body)["download"]
        .as_str()
        .expect("a download link")
        .to_string();
    let report = reqwest::get(&link).await.expect("download");
    assert_eq!(report.status().as_u16(), 200, "{link}");
    let body = report.text().await.unwrap_or_default();
    assert_eq!(body.lines().count(), 3, "{body}");
    // As curl -L and browsers see it: the file, through the redirect.
    let (status, followed) = admin_send(
        client
            .get(url(&format!("campaigns/{id}/report")))
            .header("accept", "text/csv"),
    )
    .await;
    assert_eq!((status, followed.lines().count()), (200, 3), "{followed}");
    let (status, _) = admin_send(client.delete(url("opt-outs/%2B5491155550003"))).await;
    assert_eq!(status, 200);
    let anonymous = client.get(url("campaigns")).send().await.expect("request");
    assert_eq!(anonymous.status().as_u16(), 401);
}

/// The whole campaign path on the Lambda wiring: the dispatcher's schedule
/// claims the contact and queues its call, call-trigger places it at Vapi
/// with the campaign's assistant and the contact's columns, and Vapi's
/// end-of-call report comes back to the contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_calls_its_contact_and_the_outcome_comes_back() {
    let (graph, vapi) = (FakeGraph::start().await, fakes::fake_vapi().await);
    let stack = campaign_stack(&graph, &vapi).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}/admin/{path}", stack.api_url);
    // Any time of the test is inside this window, every day.
    let spec = json!({
        "name": "Cobranza", "channel": "call", "window": "always",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "assistant": "asst-campaign", "time_zone": "UTC",
    });
    let (id, user) = running_campaign_of_one(&stack, &spec).await;

    let tick = stack.fire_schedule("CampaignDispatcher").await;
    let calls = || vapi_calls(&vapi);
    let placed = until(WAIT, || async { !calls().await.is_empty() }).await;
    assert!(
        placed,
        "no call reached Vapi (tick: {tick:?})\n{}",
        stack.diagnostics()
    );
    let body: Value = serde_json::from_slice(&calls().await[0].body).unwrap_or(Value::Null);
    assert_eq!(body["assistantId"], "asst-campaign", "{body}");
    assert_eq!(body["customer"]["number"], format!("+{user}"), "{body}");
    assert_eq!(
        body["assistantOverrides"]["variableValues"]["Monto"], "1200",
        "{body}"
    );
    // A second tick while the call is in progress: no second call.
    let _ = stack.fire_schedule("CampaignDispatcher").await;

    // Vapi reports the end of the call, with the metadata Charla gave it.
    let metadata = body["metadata"].clone();
    let report = json!({"message": {
        "type": "end-of-call-report",
        "endedReason": "customer-ended-call",
        "call": {"id": "vapi-call-as-deployed-1", "type": "outboundPhoneCall", "metadata": metadata},
        "durationSeconds": 95.2,
        "analysis": {
            "summary": "Acordó pagar el viernes.",
            "structuredData": {"promise_to_pay": true, "date": "viernes"},
        },
    }});
    let status = reqwest::Client::new()
        .post(format!("{}/webhooks/voice/vapi", stack.api_url))
        .header("x-vapi-secret", "as-deployed-vapi-secret")
        .body(report.to_string())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert_eq!(status, 200, "{}", stack.diagnostics());
    let answered = until(WAIT, || async {
        let (_, body) = admin_send(client.get(url(&format!("campaigns/{id}")))).await;
        serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)["counts"]["answered"] == 1
    })
    .await;
    assert!(
        answered,
        "the outcome did not reach the contact\n{}",
        stack.diagnostics()
    );
    assert_eq!(calls().await.len(), 1, "one call");
    let (_, report) = admin_send(
        client
            .get(url(&format!("campaigns/{id}/report")))
            .header("accept", "text/csv"),
    )
    .await;
    assert!(report.contains("Acordó pagar el viernes."), "{report}");
    assert!(
        report.contains("promise_to_pay"),
        "the extracted results: {report}"
    );
    assert!(report.contains(",95,"), "the duration: {report}");
    assert!(
        graph.messages_to(&user).await.is_empty(),
        "no WhatsApp message"
    );
    stack.teardown().await;
}

/// A `whatsapp_then_call` campaign on the Lambda wiring: the dispatcher's
/// schedule sends the template through the Graph API; the contact answers
/// it on WhatsApp (ingestion, text-ai), which records the reply on the
/// contact and brings the call forward from tomorrow to now; the next tick
/// places it at Vapi.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_to_a_campaign_template_brings_its_call_forward() {
    let (graph, vapi) = (FakeGraph::start().await, fakes::fake_vapi().await);
    let stack = campaign_stack(&graph, &vapi).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}/admin/{path}", stack.api_url);
    let spec = json!({
        "name": "Recordatorio", "channel": "whatsapp_then_call", "window": "always",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "time_zone": "UTC",
        "template": {"name": "recordatorio_pago", "language": "es", "parameters": ["Monto"]},
        "call_after_minutes": 1440,
    });
    let (id, user) = running_campaign_of_one(&stack, &spec).await;

    let _ = stack.fire_schedule("CampaignDispatcher").await;
    let sent = wait_messages(&graph, &user, 1).await;
    assert_eq!(sent.len(), 1, "the template\n{}", stack.diagnostics());
    assert_eq!(sent[0]["type"], "template", "{}", sent[0]);
    assert_eq!(
        sent[0]["template"]["components"][0]["parameters"][0]["text"], "1200",
        "{}",
        sent[0]
    );
    // The call waits a day: a tick now places nothing.
    let _ = stack.fire_schedule("CampaignDispatcher").await;
    let calls = || async { vapi_calls(&vapi).await.len() };
    assert_eq!(calls().await, 0);

    assert_eq!(
        say(
            &stack,
            &user,
            &meta::new_wamid(),
            "¿Me pueden llamar ahora?"
        )
        .await,
        200
    );
    let replied = until(WAIT, || async {
        let (_, body) = admin_send(
            client
                .get(url(&format!("campaigns/{id}/report")))
                .header("accept", "text/csv"),
        )
        .await;
        body.contains("¿Me pueden llamar ahora?")
    })
    .await;
    assert!(
        replied,
        "the reply did not reach the contact\n{}",
        stack.diagnostics()
    );
    let _ = stack.fire_schedule("CampaignDispatcher").await;
    let called = until(WAIT, || async { calls().await == 1 }).await;
    assert!(
        called,
        "the reply did not bring the call forward\n{}",
        stack.diagnostics()
    );
    stack.teardown().await;
}

// ------------------------------------------------------ bill of materials

/// us-east-1 list prices (USD): Lambda arm64 per GB-second and per request,
/// the HTTP API per request, SQS FIFO per request, DynamoDB on demand per
/// write and read unit, CloudWatch Logs per GB ingested.
const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
const SQS_REQUEST: f64 = 0.50 / 1e6;
const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
const LOGS_GB: f64 = 0.50;

/// What 1,000 conversations of the demo profile cost on AWS, without a
/// model or (`CHARLA_BILL_MODEL=openai:<model>`) with one at a fake
/// OpenAI-compatible server that reports the prompt's real size as tokens,
/// measured on the stack as template.yaml deploys it: each conversation is
/// a new user's four messages, each reply reported sent, delivered and read
/// as Meta does. Lambda time is each invocation's measured duration at the
/// template's memory; DynamoDB and SQS requests are counted by a proxy in
/// front of moto; the HTTP API counts every webhook; logs are the bytes the
/// functions wrote. Run by `scripts/bill` (release binaries); prints the
/// table the README's cost section shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement: scripts/bill runs it"]
async fn bill_of_materials_per_conversation() {
    use futures::StreamExt;
    let conversations: usize = std::env::var("CHARLA_BILL_CONVERSATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let moto = std::env::var("MOTO_ENDPOINT").expect("MOTO_ENDPOINT");
    let proxy = as_deployed::counting::CountingProxy::start(&moto)
        .await
        .expect("counting proxy");
    let graph = FakeGraph::start().await;
    let model_server = fakes::fake_chat_model().await;
    let model = std::env::var("CHARLA_BILL_MODEL").unwrap_or_else(|_| "local".into());
    let stack = deploy(
        options(&graph)
            // The template's default: text-ai waits this long for more
            // messages of a burst, and Lambda bills the wait.
            .parameter("DebounceMs", "1500")
            .parameter("AgentModel", &model)
            .parameter("ModelUrl", model_server.uri())
            .parameter("ModelApiKey", "as-deployed-model-key")
            .endpoint("DYNAMODB", &proxy.url)
            .endpoint("SQS", &proxy.url),
    )
    .await;
    let turns = [
        "hola",
        "¿cuáles son los horarios?",
        "¿hacen envíos a Córdoba?",
        "gracias",
    ];
    let webhooks = std::sync::atomic::AtomicU64::new(0);
    futures::stream::iter(0..conversations)
        .for_each_concurrent(4, |_| async {
            let user = meta::new_user_id();
            for text in turns {
                let before = graph.messages_to(&user).await.len();
                assert_eq!(say(&stack, &user, &meta::new_wamid(), text).await, 200);
                webhooks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let answered = until(WAIT, || async {
                    graph.messages_to(&user).await.len() > before
                })
                .await;
                assert!(answered, "{text:?} not answered\n{}", stack.diagnostics());
            }
            let (_, conversation) =
                admin_get(&stack, &format!("conversations/{user}"), Some(ADMIN_KEY)).await;
            let sent: Vec<String> = conversation["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["direction"] == "outbound")
                .filter_map(|m| m["wamid"].as_str().map(str::to_string))
                .collect();
            for wamid in sent {
                for status in ["sent", "delivered", "read"] {
                    let body = serde_json::to_vec(&meta::status_webhook(&user, &wamid, status))
                        .unwrap_or_default();
                    assert_eq!(post_signed(&stack, &body).await, 200);
                    webhooks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
        .await;
    // Every answered turn goes on to the escalation function: wait until
    // nothing has been invoked for a while.
    let invoked = || -> usize { stack.functions.values().map(|f| f.durations().len()).sum() };
    let mut last = invoked();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = invoked();
        if now == last {
            break;
        }
        last = now;
    }

    let n = conversations as f64;
    let per_1000 = 1000.0 / n;
    println!("\nBill of materials: {conversations} conversations of the demo profile (model: {model}), 4 messages each\n");
    println!(
        "{:<22} {:>9} {:>8} {:>8} {:>8} {:>6} {:>12}",
        "function", "per conv", "mean ms", "p50 ms", "p95 ms", "MB", "GB-s/1000"
    );
    let (mut gb_seconds, mut invocations) = (0.0, 0.0);
    // The operator's reads above (admin, its authorizer) are not the
    // conversations' cost.
    let serving = stack
        .functions
        .iter()
        .filter(|(id, _)| !["Admin", "Authorizer"].contains(&id.as_str()));
    for (id, f) in serving {
        let mut d: Vec<f64> = f
            .durations()
            .iter()
            .map(|d| (d.as_secs_f64() * 1000.0).ceil())
            .collect();
        if d.is_empty() {
            continue;
        }
        d.sort_by(f64::total_cmp);
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        let at = |q: f64| d[((q * d.len() as f64).ceil() as usize).clamp(1, d.len()) - 1];
        let gbs = d.iter().sum::<f64>() / 1000.0 * f.memory_mb() as f64 / 1024.0;
        gb_seconds += gbs;
        invocations += d.len() as f64;
        println!(
            "{:<22} {:>9.2} {:>8.1} {:>8.0} {:>8.0} {:>6} {:>12.3}",
            id,
            d.len() as f64 / n,
            mean,
            at(0.5),
            at(0.95),
            f.memory_mb(),
            gbs * per_1000
        );
    }
    // Admin's reads are counted with the rest: a few per conversation, an
    // upper bound on the conversations' own.
    let counts = proxy.counts();
    println!("\nrequests per conversation (functions' own; the SQS pollers add a receive and a delete per batch):");
    let (mut sqs, mut wru, mut rru) = (0.0, 0.0, 0.0);
    for (action, c) in &counts {
        println!(
            "  {:<32} {:>7.2}  ({:.1} units)",
            action,
            c.requests as f64 / n,
            c.units / n
        );
        if action.starts_with("sqs:") {
            sqs += c.requests as f64;
        }
        match action.as_str() {
            "dynamodb:GetItem" | "dynamodb:Query" | "dynamodb:BatchGetItem" | "dynamodb:Scan" => {
                rru += c.units
            }
            a if a.starts_with("dynamodb:") => wru += c.units,
            _ => {}
        }
    }
    // The event source mappings: one receive and one delete per invocation
    // from a queue (a lower bound; idle long polls are a fixed cost).
    let from_queues: f64 = ["TextAi", "Escalation", "CallTrigger"]
        .iter()
        .filter_map(|id| stack.functions.get(*id))
        .map(|f| f.durations().len() as f64 * 2.0)
        .sum();
    sqs += from_queues;
    let log_bytes: u64 = stack
        .functions
        .values()
        .filter_map(|f| std::fs::metadata(&f.spec.log_path).ok())
        .map(|m| m.len())
        .sum();
    let webhooks = webhooks.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let api_requests = webhooks;
    let lines = [
        ("Lambda compute", gb_seconds * LAMBDA_GB_SECOND),
        ("Lambda requests", invocations * LAMBDA_REQUEST),
        ("HTTP API requests", api_requests * HTTP_API_REQUEST),
        ("SQS requests", sqs * SQS_REQUEST),
        ("DynamoDB writes", wru * DYNAMODB_WRITE_UNIT),
        ("DynamoDB reads", rru * DYNAMODB_READ_UNIT),
        ("CloudWatch Logs", log_bytes as f64 / 1e9 * LOGS_GB),
    ];
    println!("\nper 1,000 conversations (USD):");
    let mut total = 0.0;
    for (what, usd) in lines {
        total += usd * per_1000;
        println!("  {:<20} {:>10.4}", what, usd * per_1000);
    }
    println!("  {:<20} {:>10.4}", "total", total);
    println!(
        "  per message (4 a conversation): {:.6}; invocations {:.1}, webhooks {:.1}, \
         SQS {:.1}, DynamoDB WRU {:.1} RRU {:.1}, logs {:.1} KB per conversation",
        total / 4000.0,
        invocations / n,
        webhooks / n,
        sqs / n,
        wru / n,
        rru / n,
        log_bytes as f64 / 1024.0 / n
    );
    // The model's share, as the deployed admin API prices it.
    let (_, stats) = admin_get(&stack, "stats?days=1", Some(ADMIN_KEY)).await;
    let t = &stats["totals"];
    println!(
        "  model: {} of {} turns, {:.0} model calls, {:.0} tokens in and {:.0} out per conversation; \
         model cost per 1,000 conversations {:.4} (prices: CHARLA_PRICES defaults)",
        t["model_turns"],
        t["turns"],
        t["model_calls"].as_f64().unwrap_or(0.0) / n,
        t["tokens_in"].as_f64().unwrap_or(0.0) / n,
        t["tokens_out"].as_f64().unwrap_or(0.0) / n,
        t["cost"]["model"].as_f64().unwrap_or(0.0) * per_1000
    );
    assert!(invocations > 0.0 && wru > 0.0, "nothing was measured");
    stack.teardown().await;
}
