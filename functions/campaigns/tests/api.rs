//! The campaigns API through its handler, on the SQLite store: an operator
//! creates a campaign, uploads a messy spreadsheet, starts, pauses,
//! resumes, reads the counts and the report, and keeps the do-not-contact
//! list; bad input gets a clear 4xx and changes nothing.

use std::sync::Arc;

use bytes::Bytes;
use campaigns::{config::Settings, handle, Deps};
use domain::campaign::ContactState;
use domain::ports::CampaignStore;
use embedded::SqliteCampaigns;
use serde_json::{json, Value};
use test_support::memory::FixedClock;

const NOW: i64 = 1_796_025_600_000;

struct H {
    deps: Deps,
    store: Arc<SqliteCampaigns>,
}

fn harness() -> H {
    let store = Arc::new(SqliteCampaigns::open_in_memory().expect("store"));
    H {
        deps: Deps {
            campaigns: store.clone(),
            downloads: None,
            clock: Arc::new(FixedClock::at(NOW)),
            settings: Settings::default(),
        },
        store,
    }
}

async fn call(
    h: &H,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
) -> (u16, Value, http::HeaderMap) {
    let mut req = http::Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = handle(&h.deps, req.body(body.into()).expect("request")).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let json = serde_json::from_slice(resp.body()).unwrap_or(Value::Null);
    (status, json, headers)
}

async fn create(h: &H, spec: Value) -> String {
    let (status, body, _) = call(h, "POST", "/admin/campaigns", None, spec.to_string()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "draft");
    body["id"].as_str().expect("id").to_string()
}

/// A spreadsheet as operators send them: a title, a blank line, numbers with
/// spaces and dashes, a duplicate, a bad number, zones of their own.
const MESSY_CSV: &str = "Cobranza noviembre - Tienda Demo\n\
,,,,\n\
Teléfono,Nombre,Zona horaria,Monto,Vence\n\
+54 9 11 5555-0001,Ana,America/Argentina/Buenos_Aires,1200,2026-12-05\n\
(11) 5555-0002,Bruno,,800,2026-12-06\n\
+52 55 1234 5678,Carla,America/Mexico_City,950,2026-12-07\n\
+54 9 11 5555-0001,Ana otra vez,,1200,2026-12-05\n\
12,Nadie,,10,2026-12-01\n\
+54 9 11 5555-0003,Dora,Mars/Base,300,2026-12-08\n\
+54 9 11 5555-0004,Eva,,,2026-12-08\n";

fn payment_spec() -> Value {
    json!({
        "name": "Cobranza noviembre",
        "channel": "whatsapp_then_call",
        "template": {"name": "recordatorio_pago", "language": "es", "parameters": ["Monto"]},
        "window": "09:00-20:00",
        "max_concurrent": 3,
    })
}

#[tokio::test]
async fn an_operator_runs_a_campaign_from_a_messy_spreadsheet() {
    let h = harness();
    let id = create(&h, payment_spec()).await;
    // Opted out before the upload: refused at upload.
    let (status, _, _) = call(
        &h,
        "POST",
        "/admin/opt-outs",
        None,
        json!({"phone": "+52 55 1234 5678", "reason": "pidió no ser llamada"}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, report, _) = call(
        &h,
        "PUT",
        &format!("/admin/campaigns/{id}/contacts"),
        Some("text/csv"),
        MESSY_CSV,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["accepted"], 2, "{report}");
    let reasons: Vec<(u64, String)> = report["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| {
            (
                r["row"].as_u64().expect("row"),
                r["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect();
    let reason_of = |row: u64| {
        reasons
            .iter()
            .find(|(r, _)| *r == row)
            .map(|(_, why)| why.clone())
            .unwrap_or_else(|| panic!("row {row} not rejected: {reasons:?}"))
    };
    assert!(reason_of(6).contains("opted out"), "{reasons:?}");
    assert!(reason_of(7).contains("duplicate of row 4"), "{reasons:?}");
    assert!(reason_of(8).contains("bad number"), "{reasons:?}");
    assert!(reason_of(9).contains("unknown time zone"), "{reasons:?}");
    assert!(reason_of(10).contains("Monto"), "{reasons:?}");

    // Uploading again replaces the draft's contacts.
    let smaller = "Teléfono,Nombre,Monto\n+54 9 11 5555-0001,Ana,1200\n";
    let (status, again, _) = call(
        &h,
        "PUT",
        &format!("/admin/campaigns/{id}/contacts"),
        Some("text/csv"),
        smaller,
    )
    .await;
    assert_eq!((status, again["accepted"].as_u64()), (200, Some(1)));
    let (status, again, _) = call(
        &h,
        "PUT",
        &format!("/admin/campaigns/{id}/contacts"),
        None,
        MESSY_CSV,
    )
    .await;
    assert_eq!(
        (status, again["accepted"].as_u64()),
        (200, Some(2)),
        "sniffed as CSV"
    );

    for (action, state) in [
        ("start", "running"),
        ("pause", "paused"),
        ("resume", "running"),
    ] {
        let (status, body, _) = call(
            &h,
            "POST",
            &format!("/admin/campaigns/{id}/{action}"),
            None,
            "",
        )
        .await;
        assert_eq!(status, 200, "{action}: {body}");
        assert_eq!(body["state"], state);
    }
    let (status, body, _) = call(
        &h,
        "POST",
        &format!("/admin/campaigns/{id}/start"),
        None,
        "",
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap_or_default()
        .contains("running"));
    let (status, body, _) = call(
        &h,
        "PUT",
        &format!("/admin/campaigns/{id}/contacts"),
        Some("text/csv"),
        smaller,
    )
    .await;
    assert_eq!(status, 409, "{body}");

    let (status, view, _) = call(&h, "GET", &format!("/admin/campaigns/{id}"), None, "").await;
    assert_eq!(status, 200);
    assert_eq!(view["counts"]["pending"], 2, "{view}");
    assert_eq!(view["counts"]["calling"], 0);
    assert!(view["next_dial_at"].is_string(), "{view}");
    let (_, list, _) = call(&h, "GET", "/admin/campaigns", None, "").await;
    assert!(list["campaigns"]
        .as_array()
        .expect("list")
        .iter()
        .any(|c| c["id"] == id.as_str()));

    let (status, _, headers) = call(
        &h,
        "GET",
        &format!("/admin/campaigns/{id}/report"),
        None,
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap_or_default()
        .contains("spreadsheetml"));
    let req = http::Request::builder()
        .method("GET")
        .uri(format!("/admin/campaigns/{id}/report"))
        .header("accept", "text/csv")
        .body(Bytes::new())
        .expect("request");
    let resp = handle(&h.deps, req).await;
    let csv = String::from_utf8_lossy(resp.body()).to_string();
    assert!(csv.contains("next step"), "{csv}");
    assert!(csv.contains("+5491155550001"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "header and two contacts: {csv}");

    let (status, body, _) = call(
        &h,
        "POST",
        &format!("/admin/campaigns/{id}/cancel"),
        None,
        "",
    )
    .await;
    assert_eq!((status, body["state"].as_str()), (200, Some("cancelled")));
    let counts = h.store.counts(&id).await.expect("counts");
    assert_eq!(counts.get(&ContactState::Pending), Some(&2));
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let h = harness();
    for (spec, field) in [
        (
            json!({"name": "x", "channel": "fax"}),
            "`call`, `whatsapp`, `whatsapp_then_call`",
        ),
        (json!({"name": "x", "channel": "whatsapp"}), "template"),
        (
            json!({"name": "x", "channel": "call", "window": "25:00-26:00"}),
            "window",
        ),
        (
            json!({"name": "x", "channel": "call", "time_zone": "Mars/Base"}),
            "time_zone",
        ),
    ] {
        let (status, body, _) = call(&h, "POST", "/admin/campaigns", None, spec.to_string()).await;
        assert_eq!(status, 400, "{spec}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(field),
            "{body}"
        );
    }
    let (status, _, _) = call(&h, "POST", "/admin/campaigns", None, "not json").await;
    assert_eq!(status, 400);
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(70_000));
    let (status, _, _) = call(&h, "POST", "/admin/campaigns", None, big).await;
    assert_eq!(status, 413);
    assert!(h.store.campaigns(10).await.expect("list").is_empty());

    let id = create(&h, json!({"name": "x", "channel": "call"})).await;
    let path = format!("/admin/campaigns/{id}/contacts");
    let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj".to_vec();
    let (status, body, _) = call(&h, "PUT", &path, Some("application/pdf"), pdf).await;
    assert_eq!(status, 400, "{body}");
    let (status, body, _) =
        call(&h, "PUT", &path, Some("text/csv"), "Nombre,Monto\nAna,10\n").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap_or_default().contains("phone"),
        "{body}"
    );
    let huge = vec![b'a'; campaigns::config::MAX_UPLOAD_BYTES + 1];
    let (status, _, _) = call(&h, "PUT", &path, Some("text/csv"), huge).await;
    assert_eq!(status, 413);
    let (status, body, _) = call(
        &h,
        "POST",
        &format!("/admin/campaigns/{id}/start"),
        None,
        "",
    )
    .await;
    assert_eq!(status, 400, "no contacts: {body}");
    assert_eq!(
        h.store
            .counts(&id)
            .await
            .expect("counts")
            .values()
            .sum::<u64>(),
        0
    );
    let (status, _, _) = call(&h, "GET", "/admin/campaigns/cmp_nope", None, "").await;
    assert_eq!(status, 404);
    let (status, _, _) = call(
        &h,
        "POST",
        "/admin/opt-outs",
        None,
        "{\"phone\": \"call me\"}",
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _) = call(&h, "DELETE", "/admin/opt-outs/%2B5491199999999", None, "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_do_not_contact_list_is_kept_by_operators() {
    let h = harness();
    let (status, added, _) = call(
        &h,
        "POST",
        "/admin/opt-outs",
        None,
        json!({"phone": "+54 9 11 5555-0009", "reason": "BAJA"}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(added["phone"], "+5491155550009");
    let (_, list, _) = call(&h, "GET", "/admin/opt-outs", None, "").await;
    assert_eq!(list["opt_outs"][0]["phone"], "+5491155550009");
    assert_eq!(list["opt_outs"][0]["source"], "operator");
    let (status, _, _) = call(&h, "DELETE", "/admin/opt-outs/%2B5491155550009", None, "").await;
    assert_eq!(status, 200);
    let (_, list, _) = call(&h, "GET", "/admin/opt-outs", None, "").await;
    assert_eq!(list["opt_outs"].as_array().map(Vec::len), Some(0));
}
