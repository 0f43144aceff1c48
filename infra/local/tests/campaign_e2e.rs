//! End to end for campaigns: the `local` binary driven over HTTP as an
//! operator and the voice providers drive it. The operator creates a
//! campaign, keeps the do-not-contact list, uploads a spreadsheet, starts,
//! pauses and resumes it, and downloads its report; a fake Vapi or Retell
//! (wiremock) takes the calls, which stay in progress until the test posts
//! their end, signed as the provider signs it.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use calamine::{Data, Reader, Xlsx};
use hmac::{Hmac, Mac};
use rust_xlsxwriter::{Format, Workbook};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

mod common;

use common::{Server, ADMIN_KEY};

const VAPI_SECRET: &str = "e2e-vapi-secret";
const RETELL_KEY: &str = "e2e-retell-key";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const EVERY_DAY: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Generous: a loaded two-core machine runs these next to a build.
const WAIT: Duration = Duration::from_secs(45);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Provider {
    Vapi,
    Retell,
}

impl Provider {
    fn create_path(self) -> &'static str {
        match self {
            Provider::Vapi => "/call",
            Provider::Retell => "/v2/create-phone-call",
        }
    }

    /// The number a create-call body dials.
    fn number(self, body: &Value) -> String {
        let n = match self {
            Provider::Vapi => &body["customer"]["number"],
            Provider::Retell => &body["to_number"],
        };
        n.as_str().unwrap_or_default().to_string()
    }

    /// The provider's id for the call Charla asked for with `request_id`.
    fn call_id(self, request_id: &str) -> String {
        let prefix = match self {
            Provider::Vapi => "vapi",
            Provider::Retell => "retell",
        };
        format!("{prefix}-{}", request_id.replace([':', '.'], "-"))
    }
}

/// Charla's id for a call, from the metadata it gave the provider:
/// `campaign:{campaign}:{row}:{attempt}`.
fn request_id(body: &Value) -> String {
    body["metadata"]["charla_request_id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Which of its contact's calls a call is (1 for the first).
fn attempt_of(body: &Value) -> u32 {
    request_id(body)
        .rsplit(':')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0)
}

/// What the fake provider saw, as the calls were placed.
#[derive(Default)]
struct Calls {
    /// Every create-call body, in the order they arrived.
    received: Vec<Value>,
    /// The request ids of the calls whose end the test posted (marked just
    /// before posting: a new call cannot be placed for the slot before).
    ended: HashSet<String>,
    /// The most calls in progress at once, counted as each call arrived.
    max_in_flight: usize,
    /// Numbers that were called while a call to them was in progress.
    overlaps: Vec<String>,
}

type Log = Arc<Mutex<Calls>>;

fn received(log: &Log) -> Vec<Value> {
    log.lock().expect("the call log").received.clone()
}

fn mark_ended(log: &Log, body: &Value) {
    log.lock()
        .expect("the call log")
        .ended
        .insert(request_id(body));
}

/// A voice provider that takes every call (its answer delayed by `hold.1`
/// for the `hold.0`-th call) and keeps it in progress until the test ends
/// it.
async fn fake_provider(
    provider: Provider,
    log: Log,
    hold: Option<(usize, Duration)>,
) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(provider.create_path()))
        .respond_with(move |req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let id = request_id(&body);
            let number = provider.number(&body);
            let nth = {
                let mut calls = log.lock().expect("the call log");
                let in_flight: Vec<String> = calls
                    .received
                    .iter()
                    .filter(|b| !calls.ended.contains(&request_id(b)))
                    .map(|b| provider.number(b))
                    .collect();
                if in_flight.contains(&number) {
                    calls.overlaps.push(number);
                }
                calls.max_in_flight = calls.max_in_flight.max(in_flight.len() + 1);
                calls.received.push(body);
                calls.received.len()
            };
            let answer = match provider {
                Provider::Vapi => json!({"id": provider.call_id(&id), "status": "queued"}),
                Provider::Retell => {
                    json!({"call_id": provider.call_id(&id), "call_status": "registered"})
                }
            };
            let template = ResponseTemplate::new(201).set_body_json(answer);
            match hold {
                Some((n, delay)) if n == nth => template.set_delay(delay),
                _ => template,
            }
        })
        .mount(&server)
        .await;
    server
}

/// The runner with campaigns ticking every `tick_ms` and `provider` at `api`.
async fn start(data: &Path, graph: &str, provider: Provider, api: &str, tick_ms: u64) -> Server {
    let mut cmd = common::local(data);
    cmd.env("CHARLA_CAMPAIGN_TICK_MS", tick_ms.to_string())
        .env("CHARLA_CALL_SWEEP_MS", "200")
        .env("WHATSAPP_PHONE_NUMBER_ID", "e2e-phone-id");
    match provider {
        Provider::Vapi => cmd
            .env("CHARLA_VOICE_PROVIDER", "vapi")
            .env("VAPI_API_BASE", api)
            .env("VAPI_API_KEY", "e2e-vapi-key")
            .env("VAPI_PHONE_NUMBER_ID", "pn-e2e")
            .env("VAPI_ASSISTANT_ID", "as-e2e")
            .env("VAPI_WEBHOOK_SECRET", VAPI_SECRET),
        Provider::Retell => cmd
            .env("CHARLA_VOICE_PROVIDER", "retell")
            .env("RETELL_API_BASE", api)
            .env("RETELL_API_KEY", RETELL_KEY)
            .env("RETELL_FROM_NUMBER", "+14155550100")
            .env("RETELL_AGENT_ID", "agent-e2e"),
    };
    common::launch_within(cmd, graph, Duration::from_secs(40)).await
}

/// Polls `f` until it answers, or `within` passes.
async fn until<T, F, Fut>(within: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The operator: the admin API with the admin key.
struct Admin {
    client: reqwest::Client,
    base: String,
}

impl Admin {
    fn new(server: &Server) -> Admin {
        Admin {
            client: reqwest::Client::new(),
            base: server.base.clone(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/admin/{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Vec<u8>) {
        let r = req
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("an admin request");
        let status = r.status().as_u16();
        (
            status,
            r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
        )
    }

    async fn json(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let (status, body) = self.send(req).await;
        (
            status,
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.json(self.client.post(self.url(path)).json(&body))
            .await
    }

    /// Creates a campaign; answers its id.
    async fn create(&self, spec: Value) -> String {
        let (status, created) = self.post("campaigns", spec).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["state"], "draft", "{created}");
        created["id"].as_str().expect("a campaign id").to_string()
    }

    async fn opt_out(&self, phone: &str, reason: &str) -> Value {
        let (status, body) = self
            .post("opt-outs", json!({"phone": phone, "reason": reason}))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn upload(&self, id: &str, content_type: &str, file: Vec<u8>) -> Value {
        let req = self
            .client
            .put(self.url(&format!("campaigns/{id}/contacts")))
            .header("content-type", content_type)
            .body(file);
        let (status, report) = self.json(req).await;
        assert_eq!(status, 200, "{report}");
        report
    }

    /// start, pause, resume or cancel; answers the campaign.
    async fn act(&self, id: &str, action: &str) -> Value {
        let req = self
            .client
            .post(self.url(&format!("campaigns/{id}/{action}")));
        let (status, body) = self.json(req).await;
        assert_eq!(status, 200, "{action}: {body}");
        body
    }

    async fn campaign(&self, id: &str) -> Value {
        let (status, body) = self
            .json(self.client.get(self.url(&format!("campaigns/{id}"))))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls the campaign until its state is `state`.
    async fn wait_state(&self, id: &str, state: &str) -> Option<Value> {
        until(WAIT, || async {
            let c = self.campaign(id).await;
            (c["state"] == state).then_some(c)
        })
        .await
    }

    /// The report as CSV (`csv`) or XLSX, with its content type.
    async fn report(&self, id: &str, csv: bool) -> (String, Vec<u8>) {
        let mut req = self.client.get(self.url(&format!("campaigns/{id}/report")));
        if csv {
            req = req.header("accept", "text/csv");
        }
        let r = req.bearer_auth(ADMIN_KEY).send().await.expect("the report");
        assert_eq!(r.status().as_u16(), 200);
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (
            content_type,
            r.bytes().await.expect("the report's bytes").to_vec(),
        )
    }

    async fn csv_report(&self, id: &str) -> Table {
        let (content_type, bytes) = self.report(id, true).await;
        assert!(content_type.starts_with("text/csv"), "{content_type}");
        csv_table(&bytes)
    }
}

/// A report as read back: its header and its rows, each cell as text.
#[derive(Debug, PartialEq)]
struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// The row of a contact, by its number.
    fn contact(&self, phone: &str) -> BTreeMap<String, String> {
        let col = self.column("phone");
        let row = self
            .rows
            .iter()
            .find(|r| r[col] == phone)
            .unwrap_or_else(|| panic!("no report row for {phone}: {self:#?}"));
        self.headers
            .iter()
            .cloned()
            .zip(row.iter().cloned())
            .collect()
    }

    fn column(&self, name: &str) -> usize {
        self.headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.headers))
    }

    fn values(&self, name: &str) -> Vec<String> {
        let col = self.column(name);
        self.rows.iter().map(|r| r[col].clone()).collect()
    }
}

fn csv_table(bytes: &[u8]) -> Table {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text);
    let mut rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| {
            r.expect("a CSV record")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    assert!(!rows.is_empty(), "an empty CSV report");
    let headers = rows.remove(0);
    Table { headers, rows }
}

fn xlsx_table(bytes: &[u8]) -> Table {
    let mut book: Xlsx<_> =
        Xlsx::new(std::io::Cursor::new(bytes.to_vec())).expect("the report opens as XLSX");
    let range = book
        .worksheet_range_at(0)
        .expect("a worksheet")
        .expect("a readable worksheet");
    let text = |d: &Data| match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        // As the CSV writes numbers: 4, 95, 1200.5.
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        other => other.to_string(),
    };
    let mut rows: Vec<Vec<String>> = range.rows().map(|r| r.iter().map(text).collect()).collect();
    assert!(!rows.is_empty(), "an empty XLSX report");
    let headers = rows.remove(0);
    Table { headers, rows }
}

/// A Vapi server message, with the secret header Vapi sends.
async fn vapi_post(base: &str, message: &Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/webhooks/voice/vapi"))
        .header("x-vapi-secret", VAPI_SECRET)
        .json(&json!({ "message": message }))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// How a test ends a call.
#[derive(Debug, Clone)]
enum End {
    /// Vapi's `endedReason` or Retell's `disconnection_reason`, nothing else.
    Unanswered(&'static str),
    /// A conversation: its length, summary and extracted data.
    Talked {
        seconds: f64,
        summary: String,
        data: Value,
    },
}

/// Vapi's end-of-call-report for the call placed with `body`.
fn vapi_report(body: &Value, end: &End) -> Value {
    let call = json!({
        "id": Provider::Vapi.call_id(&request_id(body)),
        "type": "outboundPhoneCall",
        "metadata": body["metadata"],
    });
    match end {
        End::Unanswered(reason) => {
            json!({"type": "end-of-call-report", "endedReason": reason, "call": call})
        }
        End::Talked {
            seconds,
            summary,
            data,
        } => json!({
            "type": "end-of-call-report",
            "endedReason": "customer-ended-call",
            "call": call,
            "durationSeconds": seconds,
            "artifact": {"transcript": "AI: Hola, le llamo por su cuenta.\nUser: Sí, dígame."},
            "analysis": {"summary": summary, "structuredData": data},
        }),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `X-Retell-Signature` as Retell computes it: `v=<unix ms>,d=<hex
/// HMAC-SHA256(api key, raw body + timestamp)>`.
fn retell_signature(key: &str, body: &[u8], ts_ms: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    mac.update(ts_ms.to_string().as_bytes());
    format!("v={ts_ms},d={}", hex::encode(mac.finalize().into_bytes()))
}

/// A Retell webhook with the signature header given.
async fn retell_post(base: &str, body: &[u8], signature: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/webhooks/voice/retell"))
        .header("content-type", "application/json")
        .header("x-retell-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// A Retell webhook, signed now with Retell's key.
async fn retell_signed(base: &str, payload: &Value) -> u16 {
    let body = payload.to_string().into_bytes();
    retell_post(base, &body, &retell_signature(RETELL_KEY, &body, now_ms())).await
}

/// The spreadsheet as operators keep it: a merged title above the header,
/// a blank row, Spanish headers with stray spaces, numbers written every
/// way (one typed as a number), zones in any case, a duplicate, the
/// opted-out number, a bad number, an unknown zone, an empty row, a row
/// without a number, and two extra columns that become variables.
fn messy_sheet() -> Vec<u8> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet
        .merge_range(
            0,
            0,
            0,
            5,
            "Cartera de cobranza — julio (no editar)",
            &Format::new().set_bold(),
        )
        .expect("the title");
    let header = [
        "Teléfono ",
        " Nombre",
        "Zona horaria",
        "Idioma",
        "Monto",
        "Vencimiento",
    ];
    for (col, h) in (0u16..).zip(header) {
        sheet.write_string(2, col, h).expect("a header");
    }
    // Spreadsheet row (1-based, as the operator sees it) and its cells:
    // phone, name, zone, language, amount (a number), due date. Row 5's
    // phone is typed as a number: Excel keeps 5491155550002, no `+`.
    let rows = "\
        4|+54 9 11 5555-0001|Ana|America/Argentina/Buenos_Aires||1200|15/08
        5||Bruno|america/argentina/buenos_aires||800|20/08
        6|(011) 15 5555-0003|Carla|||450|22/08
        7|+52 (55) 1234-5678|Diego|America/Mexico_City||3000|01/09
        8|+34 612-34-56-78|Elena|Europe/Madrid|es-ES|90.5|05/09
        9|+81 90 1234 5678|Fumiko|Asia/Tokyo|English|15000|10/09
        10|+54 9 11 5555 0001|Ana (otra vez)|||1200|15/08
        11|011 15 5555-0009|Gastón|||700|30/08
        12|11 5555|Héctor|||100|30/08
        13|+54 9 11 5555-0013|Inés|Mars/Base||100|30/08";
    for line in rows.lines() {
        let cells: Vec<&str> = line.trim().split('|').collect();
        let row: u32 = cells[0].parse().expect("a row number");
        let r = row - 1;
        if row == 5 {
            sheet
                .write_number(r, 0, 5_491_155_550_002.0)
                .expect("a cell");
        }
        for (col, text) in (0u16..).zip(&cells[1..]) {
            if text.is_empty() {
                continue;
            }
            match text.parse::<f64>() {
                Ok(n) if col == 4 => sheet.write_number(r, col, n),
                _ => sheet.write_string(r, col, *text),
            }
            .expect("a cell");
        }
    }
    // Row 14 is empty; row 15 has a name and no number.
    sheet.write_string(14, 1, "Julián").expect("a cell");
    sheet.write_number(14, 4, 10.0).expect("a cell");
    book.save_to_buffer().expect("an XLSX")
}

const ANA: &str = "+5491155550001";
const BRUNO: &str = "+5491155550002";
const CARLA: &str = "+5491155550003";
const DIEGO: &str = "+525512345678";
const ELENA: &str = "+34612345678";
const FUMIKO: &str = "+819012345678";
const GASTON: &str = "+5491155550009";

/// How the Vapi campaign's contacts answer: Ana not at first, Diego never,
/// Elena's voicemail; the others talk.
fn vapi_outcome(body: &Value) -> End {
    let talked = |name: &str| End::Talked {
        seconds: 95.2,
        summary: format!("{name} acordó pagar el viernes."),
        data: json!({"promise_to_pay": true, "who": name}),
    };
    match (Provider::Vapi.number(body).as_str(), attempt_of(body)) {
        (ANA, 1) | (DIEGO, _) => End::Unanswered("customer-did-not-answer"),
        (ELENA, _) => End::Unanswered("voicemail"),
        (ANA, _) => talked("Ana"),
        (CARLA, _) => talked("Carla"),
        _ => talked("Fumiko"),
    }
}

/// Ends every call that came and has not been ended, on `base`; answers
/// how many it ended.
async fn end_new_calls(base: &str, log: &Log, outcome: impl Fn(&Value) -> End) -> usize {
    let open: Vec<Value> = {
        let calls = log.lock().expect("the call log");
        calls
            .received
            .iter()
            .filter(|b| !calls.ended.contains(&request_id(b)))
            .cloned()
            .collect()
    };
    for body in &open {
        mark_ended(log, body);
        let status = vapi_post(base, &vapi_report(body, &outcome(body))).await;
        assert_eq!(status, 200, "the end of {}", request_id(body));
    }
    open.len()
}

#[tokio::test]
async fn an_operator_runs_a_vapi_campaign_from_a_messy_spreadsheet_to_its_report() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let graph = common::fake_graph(Duration::ZERO).await;
    let log = Log::default();
    let vapi = fake_provider(Provider::Vapi, log.clone(), None).await;
    let server = start(
        &dir.path().join("data"),
        &graph.uri(),
        Provider::Vapi,
        &vapi.uri(),
        200,
    )
    .await;
    let admin = Admin::new(&server);

    let id = admin
        .create(json!({
            "name": "Cobranza julio",
            "channel": "call",
            "window": "always",
            "days": EVERY_DAY,
            "max_concurrent": 2,
            "retries": {
                "no_answer": {"attempts": 2, "retry_after_minutes": 0},
                "voicemail": {"attempts": 1, "retry_after_minutes": 0},
            },
            "assistant": "asst-cobranza",
            "time_zone": "America/Argentina/Cordoba",
            "default_country": "AR",
        }))
        .await;
    let listed = admin.opt_out("+54 9 11 5555-0009", "pidió la baja").await;
    assert_eq!(listed["phone"], GASTON, "{listed}");

    let upload = admin.upload(&id, XLSX, messy_sheet()).await;
    assert_eq!(upload["accepted"], 6, "{upload}");
    assert_eq!(
        upload["rejected"],
        json!([
            {"row": 10, "reason": "duplicate of row 4"},
            {"row": 11, "reason": "opted out"},
            {"row": 12, "reason": "bad number: \"11 5555\""},
            {"row": 13, "reason": "unknown time zone: \"Mars/Base\""},
            {"row": 15, "reason": "missing phone number"},
        ]),
        "{upload}"
    );
    assert_eq!(
        upload["columns"],
        json!([
            "Teléfono",
            "Nombre",
            "Zona horaria",
            "Idioma",
            "Monto",
            "Vencimiento"
        ]),
        "{upload}"
    );
    // Bruno asks to be left alone after the upload: never called.
    admin.opt_out(BRUNO, "BAJA").await;

    let started = admin.act(&id, "start").await;
    assert_eq!(started["state"], "running", "{started}");
    assert_eq!(started["contacts"], 6, "{started}");

    // Two calls at once, and no third while both are in progress.
    let first_two = until(WAIT, || async {
        let calls = received(&log);
        (calls.len() >= 2).then_some(calls)
    })
    .await
    .expect("two calls at the fake Vapi");
    let paused = admin.act(&id, "pause").await;
    assert_eq!(paused["state"], "paused", "{paused}");
    assert_eq!(received(&log).len(), 2, "max_concurrent is 2");

    // Paused: a call that ends frees a place, and nobody new is called.
    let first = &first_two[0];
    mark_ended(&log, first);
    assert_eq!(
        vapi_post(&server.base, &vapi_report(first, &vapi_outcome(first))).await,
        200
    );
    let one_calling = until(WAIT, || async {
        let c = admin.campaign(&id).await;
        (c["counts"]["calling"] == 1).then_some(c)
    })
    .await
    .expect("the ended call leaves one in progress");
    assert_eq!(one_calling["state"], "paused", "{one_calling}");
    // A few ticks (200 ms each) of a paused campaign.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        received(&log).len(),
        2,
        "no call while paused: {:?}",
        received(&log).iter().map(request_id).collect::<Vec<_>>()
    );

    let resumed = admin.act(&id, "resume").await;
    assert_eq!(resumed["state"], "running", "{resumed}");
    let done = until(WAIT, || async {
        end_new_calls(&server.base, &log, vapi_outcome).await;
        let c = admin.campaign(&id).await;
        (c["state"] == "completed").then_some(c)
    })
    .await;
    let calls = received(&log);
    let Some(done) = done else {
        panic!(
            "the campaign did not complete: {}\ncalls: {:?}",
            admin.campaign(&id).await,
            calls.iter().map(request_id).collect::<Vec<_>>()
        );
    };
    let counts = &done["counts"];
    assert_eq!(
        counts,
        &json!({"pending": 0, "scheduled": 0, "calling": 0, "answered": 3, "no_answer": 1,
                "busy": 0, "voicemail": 1, "failed": 0, "opted_out": 1, "done": 0}),
        "{done}"
    );

    // What Vapi was asked: each contact's own call, at most two at once.
    let log_now = log.lock().expect("the call log").max_in_flight;
    assert_eq!(log_now, 2, "calls in progress at once");
    assert!(log.lock().expect("the call log").overlaps.is_empty());
    let mut per_number: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &calls {
        per_number
            .entry(Provider::Vapi.number(c))
            .or_default()
            .push(request_id(c));
    }
    let rows = |row: u32, attempts: u32| -> Vec<String> {
        (1..=attempts)
            .map(|a| format!("campaign:{id}:{row}:{a}"))
            .collect()
    };
    let expected: BTreeMap<String, Vec<String>> = [
        (ANA, rows(4, 2)),
        (CARLA, rows(6, 1)),
        (DIEGO, rows(7, 2)),
        (ELENA, rows(8, 1)),
        (FUMIKO, rows(9, 1)),
    ]
    .into_iter()
    .map(|(n, r)| (n.to_string(), r))
    .collect();
    assert_eq!(per_number, expected, "the calls Vapi got");
    let call_to = |number: &str| {
        calls
            .iter()
            .find(|c| Provider::Vapi.number(c) == number)
            .expect("a call")
            .clone()
    };
    let ana = call_to(ANA);
    assert_eq!(ana["assistantId"], "asst-cobranza", "{ana}");
    assert_eq!(ana["phoneNumberId"], "pn-e2e", "{ana}");
    assert_eq!(
        ana["customer"],
        json!({"number": ANA, "name": "Ana"}),
        "{ana}"
    );
    assert_eq!(
        ana["metadata"],
        json!({"charla_request_id": format!("campaign:{id}:4:1"),
               "charla_conversation_id": "5491155550001",
               "charla_phone_number_id": "e2e-phone-id"}),
        "{ana}"
    );
    assert_eq!(
        ana["assistantOverrides"]["metadata"], ana["metadata"],
        "{ana}"
    );
    let vars = &ana["assistantOverrides"]["variableValues"];
    assert_eq!(vars["customer_name"], "Ana", "{ana}");
    assert_eq!(vars["Monto"], "1200", "{ana}");
    assert_eq!(vars["Vencimiento"], "15/08", "{ana}");
    assert_eq!(vars["language"], "es", "{ana}");
    assert_eq!(vars["call_reason"], "campaign: Cobranza julio", "{ana}");
    let fumiko = call_to(FUMIKO);
    assert_eq!(fumiko["customer"]["name"], "Fumiko", "{fumiko}");
    let vars = &fumiko["assistantOverrides"]["variableValues"];
    assert_eq!(vars["language"], "en", "{fumiko}");
    assert_eq!(vars["Monto"], "15000", "{fumiko}");
    let elena = call_to(ELENA);
    assert_eq!(
        elena["assistantOverrides"]["variableValues"]["Monto"],
        "90.5"
    );
    assert_eq!(
        elena["assistantOverrides"]["variableValues"]["language"],
        "es"
    );

    // The report: one row per accepted contact, in sheet order.
    let report = admin.csv_report(&id).await;
    assert_eq!(
        report.values("row"),
        ["4", "5", "6", "7", "8", "9"],
        "{report:#?}"
    );
    assert_eq!(
        report.values("phone"),
        [ANA, BRUNO, CARLA, DIEGO, ELENA, FUMIKO],
        "{report:#?}"
    );
    for (phone, state, attempts, last, next) in [
        (ANA, "answered", "2", "completed", "none"),
        (BRUNO, "opted_out", "0", "", "do not contact"),
        (CARLA, "answered", "1", "completed", "none"),
        (
            DIEGO,
            "no_answer",
            "2",
            "no_answer",
            "none: attempts used up",
        ),
        (
            ELENA,
            "voicemail",
            "1",
            "voicemail",
            "none: attempts used up",
        ),
        (FUMIKO, "answered", "1", "completed", "none"),
    ] {
        let row = report.contact(phone);
        assert_eq!(row["state"], state, "{row:#?}");
        assert_eq!(row["attempts"], attempts, "{row:#?}");
        assert_eq!(row["last outcome"], last, "{row:#?}");
        assert_eq!(row["next step"], next, "{row:#?}");
    }
    let ana = report.contact(ANA);
    assert_eq!(ana["name"], "Ana");
    assert_eq!(ana["time zone"], "America/Argentina/Buenos_Aires");
    assert_eq!(
        ana["call summary"], "Ana acordó pagar el viernes.",
        "{ana:#?}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&ana["call results"]).ok(),
        Some(json!({"promise_to_pay": true, "who": "Ana"})),
        "{ana:#?}"
    );
    assert_eq!(ana["last duration (s)"], "95", "{ana:#?}");
    let every: Vec<&str> = ana["every attempt"].split("; ").collect();
    assert_eq!(every.len(), 2, "{ana:#?}");
    assert!(every[0].ends_with(" call no_answer"), "{ana:#?}");
    assert!(every[1].ends_with(" call completed 95s"), "{ana:#?}");
    assert_eq!(ana["Monto"], "1200");
    assert_eq!(ana["Vencimiento"], "15/08");
    let bruno = report.contact(BRUNO);
    assert_eq!(
        bruno["time zone"], "America/Argentina/Buenos_Aires",
        "{bruno:#?}"
    );
    assert_eq!(bruno["every attempt"], "", "{bruno:#?}");
    let carla = report.contact(CARLA);
    // No zone in the sheet: the campaign's.
    assert_eq!(
        carla["time zone"], "America/Argentina/Cordoba",
        "{carla:#?}"
    );
    assert_eq!(carla["call summary"], "Carla acordó pagar el viernes.");
    let diego = report.contact(DIEGO);
    assert_eq!(diego["time zone"], "America/Mexico_City");
    assert_eq!(diego["call summary"], "", "{diego:#?}");
    assert_eq!(report.contact(ELENA)["time zone"], "Europe/Madrid");
    assert_eq!(report.contact(ELENA)["language"], "es");
    let fumiko = report.contact(FUMIKO);
    assert_eq!(fumiko["time zone"], "Asia/Tokyo");
    assert_eq!(fumiko["language"], "en");
    assert_eq!(fumiko["Monto"], "15000");

    // The XLSX holds the same table.
    let (content_type, xlsx) = admin.report(&id, false).await;
    assert_eq!(content_type, XLSX);
    assert_eq!(xlsx_table(&xlsx), report);
}

/// A Retell call's webhook body: `event` for the call placed with `body`.
fn retell_event(body: &Value, event: &str, call: Value) -> Value {
    let mut c = json!({
        "call_id": Provider::Retell.call_id(&request_id(body)),
        "call_type": "phone_call",
        "from_number": body["from_number"],
        "to_number": body["to_number"],
        "direction": "outbound",
        "metadata": body["metadata"],
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), call.as_object()) {
        c.extend(extra.clone());
    }
    json!({"event": event, "call": c})
}

#[tokio::test]
async fn a_retell_campaign_is_called_and_its_analysis_reaches_the_report() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let graph = common::fake_graph(Duration::ZERO).await;
    let log = Log::default();
    let retell = fake_provider(Provider::Retell, log.clone(), None).await;
    let server = start(
        &dir.path().join("data"),
        &graph.uri(),
        Provider::Retell,
        &retell.uri(),
        200,
    )
    .await;
    let admin = Admin::new(&server);
    let id = admin
        .create(json!({
            "name": "Renovaciones",
            "channel": "call",
            "window": "always",
            "days": EVERY_DAY,
            "max_concurrent": 2,
            "retries": {"no_answer": {"attempts": 1, "retry_after_minutes": 0}},
        }))
        .await;
    let csv =
        "Celular;Nombre;Plan\n+54 9 11 5555-0101;Lucía;Anual\n+54 9 11 5555-0102;Mateo;Mensual\n";
    let upload = admin.upload(&id, "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(upload["accepted"], 2, "{upload}");
    assert_eq!(upload["rejected"], json!([]), "{upload}");
    admin.act(&id, "start").await;

    let calls = until(WAIT, || async {
        let calls = received(&log);
        (calls.len() >= 2).then_some(calls)
    })
    .await
    .expect("two calls at the fake Retell");
    let to = |number: &str| {
        calls
            .iter()
            .find(|c| c["to_number"] == number)
            .unwrap_or_else(|| panic!("no call to {number}: {calls:?}"))
            .clone()
    };
    let lucia = to("+5491155550101");
    let mateo = to("+5491155550102");
    assert_eq!(lucia["from_number"], "+14155550100", "{lucia}");
    assert_eq!(lucia["override_agent_id"], "agent-e2e", "{lucia}");
    assert_eq!(
        lucia["metadata"]["charla_request_id"],
        format!("campaign:{id}:2:1"),
        "{lucia}"
    );
    let vars = &lucia["retell_llm_dynamic_variables"];
    assert_eq!(vars["customer_name"], "Lucía", "{lucia}");
    assert_eq!(vars["Plan"], "Anual", "{lucia}");
    assert_eq!(vars["call_reason"], "campaign: Renovaciones", "{lucia}");
    assert_eq!(mateo["retell_llm_dynamic_variables"]["Plan"], "Mensual");

    // Not signed with Retell's key, or signed too long ago: refused, and
    // nothing changes.
    let forged = retell_event(
        &lucia,
        "call_ended",
        json!({"disconnection_reason": "user_hangup"}),
    )
    .to_string()
    .into_bytes();
    let now = now_ms();
    for signature in [
        retell_signature("another-key", &forged, now),
        retell_signature(RETELL_KEY, &forged, now - 10 * 60 * 1000),
        format!("v={now},d=00"),
    ] {
        assert_eq!(
            retell_post(&server.base, &forged, &signature).await,
            401,
            "{signature}"
        );
    }
    assert_eq!(admin.campaign(&id).await["counts"]["calling"], 2);

    // Lucía talks: the end first, the analysis after it (as Retell sends them).
    let started = retell_event(&lucia, "call_started", json!({"call_status": "ongoing"}));
    assert_eq!(retell_signed(&server.base, &started).await, 200);
    let ended = retell_event(
        &lucia,
        "call_ended",
        json!({
            "call_status": "ended",
            "disconnection_reason": "user_hangup",
            "duration_ms": 61_400,
            "transcript": "Agente: ¿Hablo con Lucía?\nUsuario: Sí, renuevo el plan anual mañana.",
        }),
    );
    mark_ended(&log, &lucia);
    assert_eq!(retell_signed(&server.base, &ended).await, 200);
    // Mateo does not pick up: one attempt only, so that is final.
    let unanswered = retell_event(
        &mateo,
        "call_ended",
        json!({"call_status": "not_connected", "disconnection_reason": "dial_no_answer"}),
    );
    mark_ended(&log, &mateo);
    assert_eq!(retell_signed(&server.base, &unanswered).await, 200);
    let analysed = retell_event(
        &lucia,
        "call_analyzed",
        json!({
            "call_status": "ended",
            "disconnection_reason": "user_hangup",
            "call_analysis": {
                "call_summary": "Lucía renueva el plan anual mañana.",
                "user_sentiment": "Positive",
                "call_successful": true,
                "custom_analysis_data": {"renews": true, "plan": "anual"},
            },
        }),
    );
    assert_eq!(retell_signed(&server.base, &analysed).await, 200);
    // Retell retries a webhook it did not see answered: the same again.
    assert_eq!(retell_signed(&server.base, &analysed).await, 200);
    assert_eq!(retell_signed(&server.base, &ended).await, 200);

    let Some(done) = admin.wait_state(&id, "completed").await else {
        panic!("not completed: {}", admin.campaign(&id).await);
    };
    assert_eq!(done["counts"]["answered"], 1, "{done}");
    assert_eq!(done["counts"]["no_answer"], 1, "{done}");
    let report = admin.csv_report(&id).await;
    let lucia_row = report.contact("+5491155550101");
    assert_eq!(lucia_row["state"], "answered", "{lucia_row:#?}");
    assert_eq!(lucia_row["attempts"], "1", "{lucia_row:#?}");
    assert_eq!(lucia_row["last outcome"], "completed", "{lucia_row:#?}");
    assert_eq!(lucia_row["last duration (s)"], "61", "{lucia_row:#?}");
    assert_eq!(
        lucia_row["call summary"], "Lucía renueva el plan anual mañana.",
        "{lucia_row:#?}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&lucia_row["call results"]).ok(),
        Some(json!({"renews": true, "plan": "anual"})),
        "{lucia_row:#?}"
    );
    assert_eq!(lucia_row["Plan"], "Anual");
    let mateo_row = report.contact("+5491155550102");
    assert_eq!(mateo_row["state"], "no_answer", "{mateo_row:#?}");
    assert_eq!(mateo_row["attempts"], "1", "{mateo_row:#?}");
    assert_eq!(mateo_row["last outcome"], "no_answer", "{mateo_row:#?}");
    assert_eq!(mateo_row["next step"], "none: attempts used up");
    assert_eq!(received(&log).len(), 2, "one call each");
    let (_, xlsx) = admin.report(&id, false).await;
    assert_eq!(xlsx_table(&xlsx), report);
}

/// Removes the call requests waiting on the runner's call queue (never
/// received) and their deduplication marks; answers how many. The runner
/// must be down.
fn drop_waiting_calls(data: &Path) -> usize {
    let db = rusqlite::Connection::open(data.join("queue.db")).expect("the queue's database");
    let waiting: Vec<String> = db
        .prepare(
            "SELECT dedup_id FROM queue_messages
             WHERE queue = 'calls' AND dead = 0 AND receive_count = 0",
        )
        .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
        .expect("the waiting calls");
    for id in &waiting {
        for table in ["queue_messages", "queue_dedup"] {
            db.execute(
                &format!("DELETE FROM {table} WHERE queue = 'calls' AND dedup_id = ?1"),
                [id],
            )
            .expect("a removed call");
        }
    }
    waiting.len()
}

/// The crash test's contacts: 30 Buenos Aires mobiles.
fn crash_numbers() -> Vec<String> {
    (0..30).map(|i| format!("+54911555510{i:02}")).collect()
}

/// Every fourth contact does not answer its first call; every other call
/// is a conversation.
fn crash_outcome(body: &Value) -> End {
    let number = Provider::Vapi.number(body);
    let index: usize = number[number.len() - 2..].parse().unwrap_or(1);
    if index.is_multiple_of(4) && attempt_of(body) == 1 {
        End::Unanswered("customer-did-not-answer")
    } else {
        End::Talked {
            seconds: 30.0,
            summary: format!("Habló {number}."),
            data: json!({"ok": true}),
        }
    }
}

/// Ends the calls that came, except `held`, on `base`; a post the server
/// did not take (it is down) is tried again next time. Answers how many
/// ends the server took.
async fn end_calls_delivering(
    base: &str,
    log: &Log,
    delivered: &mut HashSet<String>,
    held: Option<&str>,
) -> usize {
    let open: Vec<Value> = received(log)
        .into_iter()
        .filter(|b| !delivered.contains(&request_id(b)))
        .filter(|b| held != Some(request_id(b).as_str()))
        .collect();
    for body in open {
        mark_ended(log, &body);
        if vapi_post(base, &vapi_report(&body, &crash_outcome(&body))).await == 200 {
            delivered.insert(request_id(&body));
        }
    }
    delivered.len()
}

#[tokio::test]
async fn a_campaign_survives_sigkill_without_losing_or_doubling_a_call() {
    const HOLD: usize = 9;
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("data");
    let graph = common::fake_graph(Duration::ZERO).await;
    let log = Log::default();
    // The 9th call's answer is slow: the runner dies waiting for it, after
    // Vapi placed the call.
    let vapi = fake_provider(
        Provider::Vapi,
        log.clone(),
        Some((HOLD, Duration::from_secs(8))),
    )
    .await;
    let mut first = start(&data, &graph.uri(), Provider::Vapi, &vapi.uri(), 100).await;
    let admin = Admin::new(&first);
    let id = admin
        .create(json!({
            "name": "Recordatorio",
            "channel": "call",
            "window": "always",
            "days": EVERY_DAY,
            "max_concurrent": 5,
            "retries": {"no_answer": {"attempts": 2, "retry_after_minutes": 0}},
        }))
        .await;
    let numbers = crash_numbers();
    let mut csv = String::from("Teléfono,Nombre\n");
    for (i, n) in numbers.iter().enumerate() {
        csv.push_str(&format!("{n},Cliente {i}\n"));
    }
    let upload = admin.upload(&id, "text/csv", csv.into_bytes()).await;
    assert_eq!(upload["accepted"], 30, "{upload}");
    admin.act(&id, "start").await;

    // Calls come and end until the held one is placed (four have ended
    // by then: five at most are in progress).
    let mut delivered = HashSet::new();
    let deadline = Instant::now() + WAIT;
    let held = loop {
        let held = received(&log).get(HOLD - 1).map(request_id);
        end_calls_delivering(&first.base, &log, &mut delivered, held.as_deref()).await;
        if let Some(held) = held {
            break held;
        }
        assert!(
            Instant::now() < deadline,
            "the held call never came: {:?}",
            received(&log).iter().map(request_id).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(delivered.len() >= HOLD - 5, "{delivered:?}");
    // A few ticks for the dispatcher to claim what it may, then SIGKILL
    // while the held call waits for Vapi's answer.
    tokio::time::sleep(Duration::from_millis(400)).await;
    first.kill();
    let before_kill = received(&log).len();
    let expected_calls = 30 + numbers.iter().step_by(4).count();
    assert!(
        before_kill < expected_calls,
        "the kill came before all the calls were placed"
    );

    // A crash between a claim and its enqueue leaves a contact claimed for
    // a call that never reached the queue. Made exact here: while the runner
    // is down, the calls it had queued and not taken yet are removed, with
    // their deduplication marks (as if never sent).
    let dropped = drop_waiting_calls(&data);
    assert!(dropped > 0, "calls were waiting on the queue at the kill");

    let second = start(&data, &graph.uri(), Provider::Vapi, &vapi.uri(), 100).await;
    let admin = Admin::new(&second);
    // Vapi placed the held call although the runner never heard back: its
    // end comes all the same, with the others'.
    let deadline = Instant::now() + WAIT;
    let done = loop {
        end_calls_delivering(&second.base, &log, &mut delivered, None).await;
        let c = admin.campaign(&id).await;
        if c["state"] == "completed" {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "the campaign did not complete after the restart: {c}\nheld {held}; calls: {:?}",
            received(&log).iter().map(request_id).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let calls = received(&log);
    assert_eq!(done["counts"]["answered"], 30, "none lost: {done}");

    // No number called twice for the same attempt, nor twice at once.
    let ids: Vec<String> = calls.iter().map(request_id).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a call placed twice: {ids:?}");
    assert_eq!(ids.len(), expected_calls, "{ids:?}");
    {
        let log = log.lock().expect("the call log");
        assert!(
            log.overlaps.is_empty(),
            "called while in a call: {:?}",
            log.overlaps
        );
        assert!(
            log.max_in_flight <= 5,
            "{} calls at once",
            log.max_in_flight
        );
    }
    let report = admin.csv_report(&id).await;
    assert_eq!(report.rows.len(), 30, "{report:#?}");
    for (i, number) in numbers.iter().enumerate() {
        let row = report.contact(number);
        let placed = calls
            .iter()
            .filter(|c| Provider::Vapi.number(c) == *number)
            .count();
        let attempts = if i.is_multiple_of(4) { 2 } else { 1 };
        assert_eq!(placed, attempts, "calls to {number}");
        assert_eq!(row["state"], "answered", "{row:#?}");
        assert_eq!(row["attempts"], attempts.to_string(), "{row:#?}");
        let every: Vec<&str> = row["every attempt"].split("; ").collect();
        assert_eq!(every.len(), attempts, "{row:#?}");
        assert!(
            every[attempts - 1].ends_with(" call completed 30s"),
            "{row:#?}"
        );
        if attempts == 2 {
            assert!(every[0].ends_with(" call no_answer"), "{row:#?}");
        }
    }
}
