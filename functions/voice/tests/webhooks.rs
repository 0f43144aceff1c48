//! The voice webhooks with the local adapters and the sample events in
//! `events/voice/`, over the same handler Lambda and infra/local run.

use std::sync::Arc;

use bytes::Bytes;
use domain::ports::{AgentRecords, CallRecords, ConversationStore, VoiceProvider};
use domain::voice::*;
use domain::{NewInbound, UserId};
use embedded::{Outbox, SqliteStore};
use http::{Request, StatusCode};
use knowledge::LocalKnowledgeBase;
use serde_json::Value;
use test_support::memory::{FixedClock, MemoryArchive, MemoryQueue};
use test_support::memory_calls::MemoryCallRecords;
use voice_providers::webhooks::{retell_signature_header, RETELL_SIGNATURE_WINDOW_MS};

const ANA: &str = "5491155550123";
const REQUEST: &str = "wamid.VOICE1:call";
/// Tuesday 2026-11-24 13:00 UTC = 10:00 in Buenos Aires.
const NOW: i64 = 1_795_525_200_000;
const VAPI_SECRET: &str = "vapi-webhook-secret";
const RETELL_KEY: &str = "key_test";

struct NoProvider;

#[async_trait::async_trait]
impl VoiceProvider for NoProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Vapi
    }
    async fn start_call(&self, _: &CallOrder) -> domain::Result<StartedCall> {
        Ok(StartedCall {
            call_id: "unused".into(),
        })
    }
}

struct H {
    deps: voice::Deps,
    archive: Arc<MemoryArchive>,
    store: Arc<SqliteStore>,
    calls: Arc<MemoryCallRecords>,
    outbox: Arc<Outbox>,
    clock: Arc<FixedClock>,
    campaigns: Arc<embedded::SqliteCampaigns>,
    usage: Arc<test_support::memory::MemoryUsage>,
    _dir: tempfile::TempDir,
}

fn profile() -> ::agent::Profile {
    ::agent::Profile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../profiles/demo/agent.toml"
    )))
    .expect("demo")
}

async fn harness(call_id: Option<&str>, provider: ProviderKind) -> H {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let calls = Arc::new(MemoryCallRecords::default());
    let archive = Arc::new(MemoryArchive::default());
    let outbox = Arc::new(Outbox::open(dir.path()).expect("outbox"));
    let clock = Arc::new(FixedClock::at(NOW));
    let usage = Arc::new(test_support::memory::MemoryUsage::default());
    let profile = Arc::new(profile());
    let wa = UserId::parse(ANA).expect("wa");
    store
        .record_inbound(&NewInbound {
            wamid: "wamid.VOICE1".into(),
            user_id: wa.clone(),
            phone_number_id: "PN1".into(),
            contact_name: Some("Ana".into()),
            kind: "text".into(),
            text: "llamame".into(),
            payload: serde_json::json!({}),
            sent_at_ms: NOW - 60_000,
            received_at_ms: NOW - 60_000,
            starts_turn: true,
        })
        .await
        .expect("inbound");
    let mut record = test_support::calls_contract::record(REQUEST);
    record.provider = provider;
    record.call_id = call_id.map(str::to_string);
    record.context.customer_name = Some("Ana".into());
    assert!(calls.create(&record).await.expect("create"));
    let registry = ::agent::Registry::new(
        profile.clone(),
        ::agent::ToolDeps {
            knowledge: Some(Arc::new(
                LocalKnowledgeBase::open(profile.knowledge_dir.as_ref().expect("dir")).expect("kb"),
            )),
            customers: None,
            lead_sink: None,
            records: store.clone(),
            call_queue: Arc::new(MemoryQueue::default()),
            escalation_queue: Arc::new(MemoryQueue::default()),
            clock: clock.clone(),
        },
    );
    let campaigns = Arc::new(embedded::SqliteCampaigns::open_in_memory().expect("campaigns"));
    let deps = voice::Deps {
        calls: Arc::new(call_lifecycle::Deps {
            records: store.clone(),
            store: store.clone(),
            identities: store.clone(),
            campaigns: Some(campaigns.clone()),
            calls: calls.clone(),
            provider: Arc::new(NoProvider),
            sender: outbox.clone(),
            usage: usage.clone(),
            clock: clock.clone(),
            settings: call_lifecycle::Settings::new(None, &profile),
        }),
        registry,
        vapi_secret: Some(VAPI_SECRET.to_string().into()),
        retell_key: Some(RETELL_KEY.to_string().into()),
        transfer_to: profile.voice.transfer_to.clone(),
        archive: archive.clone(),
    };
    H {
        deps,
        archive,
        store,
        calls,
        outbox,
        clock,
        campaigns,
        usage,
        _dir: dir,
    }
}

fn event(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../events/voice/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("event")
}

fn vapi_req(body: &[u8], secret: Option<&str>) -> Request<Bytes> {
    let mut b = Request::post("/webhooks/voice/vapi");
    if let Some(s) = secret {
        b = b.header("x-vapi-secret", s);
    }
    b.body(Bytes::copy_from_slice(body)).expect("req")
}

fn retell_req(body: &[u8], ts: i64) -> Request<Bytes> {
    Request::post("/webhooks/voice/retell")
        .header(
            "x-retell-signature",
            retell_signature_header(RETELL_KEY.as_bytes(), body, ts),
        )
        .body(Bytes::copy_from_slice(body))
        .expect("req")
}

impl H {
    async fn vapi(&self, name: &str) -> (StatusCode, Value) {
        self.vapi_body(&event(name)).await
    }
    async fn vapi_body(&self, body: &[u8]) -> (StatusCode, Value) {
        let r = voice::handle(&self.deps, vapi_req(body, Some(VAPI_SECRET))).await;
        (
            r.status(),
            serde_json::from_slice(r.body()).unwrap_or(Value::Null),
        )
    }
    async fn retell(&self, name: &str) -> (StatusCode, Value) {
        let r = voice::handle(&self.deps, retell_req(&event(name), NOW)).await;
        (
            r.status(),
            serde_json::from_slice(r.body()).unwrap_or(Value::Null),
        )
    }
    async fn record(&self) -> CallRecord {
        self.calls.get(REQUEST).await.expect("get").expect("record")
    }
    /// The campaign contact of a call made by [`make_campaign_call`].
    async fn contact(
        &self,
        call: &domain::campaign::CampaignCall,
    ) -> domain::campaign::CampaignContact {
        use domain::ports::CampaignStore;
        self.campaigns
            .contact(&call.campaign_id, call.row)
            .await
            .expect("read")
            .expect("contact")
    }
    /// Ana's entry on the do-not-contact list.
    async fn ana_opted_out(&self) -> Option<domain::campaign::OptOut> {
        use domain::ports::CampaignStore;
        let ana = UserId::parse(ANA).expect("phone");
        self.campaigns.opted_out(&ana).await.expect("read")
    }
    fn told(&self) -> Vec<String> {
        self.outbox
            .since(ANA, 0)
            .into_iter()
            .filter_map(|e| e.message.map(|m| format!("{m:?}")))
            .collect()
    }
}

#[tokio::test]
async fn when_the_secret_or_signature_is_wrong_returns_401_and_changes_nothing() {
    let h = harness(Some("vapi-call-1"), ProviderKind::Vapi).await;
    let before = h.record().await;
    for secret in [None, Some("wrong"), Some("")] {
        let r = voice::handle(
            &h.deps,
            vapi_req(&event("vapi_end_of_call_report.json"), secret),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{secret:?}");
    }
    let body = event("retell_call_ended.json");
    let unsigned = Request::post("/webhooks/voice/retell")
        .body(Bytes::from(body.clone()))
        .expect("req");
    assert_eq!(
        voice::handle(&h.deps, unsigned).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let stale = retell_req(&body, NOW - RETELL_SIGNATURE_WINDOW_MS - 1);
    assert_eq!(
        voice::handle(&h.deps, stale).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let mut tampered = retell_req(&body, NOW);
    *tampered.body_mut() = Bytes::from(
        String::from_utf8(body)
            .expect("utf8")
            .replace("user_hangup", "dial_busy"),
    );
    assert_eq!(
        voice::handle(&h.deps, tampered).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.record().await, before);
    assert!(h.told().is_empty());
}

#[tokio::test]
async fn malformed_bodies_are_quarantined_and_oversized_ones_refused() {
    let h = harness(Some("vapi-call-1"), ProviderKind::Vapi).await;
    let r = voice::handle(&h.deps, vapi_req(b"{not json", Some(VAPI_SECRET))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = voice::handle(&h.deps, retell_req(b"[]", NOW)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(h.archive.kinds().len(), 2);
    // Unauthenticated garbage is not kept.
    let r = voice::handle(&h.deps, vapi_req(b"{not json", None)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let big = vec![b' '; voice::MAX_BODY_BYTES + 1];
    let r = voice::handle(&h.deps, vapi_req(&big, Some(VAPI_SECRET))).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(h.archive.kinds().len(), 2);
}

#[tokio::test]
async fn status_updates_move_forward_and_late_ones_are_ignored() {
    let h = harness(Some("vapi-call-1"), ProviderKind::Vapi).await;
    assert_eq!(
        h.vapi("vapi_status_in_progress.json").await.0,
        StatusCode::OK
    );
    assert_eq!(h.record().await.phase, CallPhase::InProgress);
    let version = h.record().await.version;
    assert_eq!(h.vapi("vapi_status_ringing.json").await.0, StatusCode::OK);
    assert_eq!(
        h.vapi("vapi_status_in_progress.json").await.0,
        StatusCode::OK
    );
    let r = h.record().await;
    assert_eq!((r.phase, r.version), (CallPhase::InProgress, version));
}

#[tokio::test]
async fn vapi_tool_calls_are_served_by_the_tool_registry() {
    let h = harness(Some("vapi-call-1"), ProviderKind::Vapi).await;
    let (status, body) = h.vapi("vapi_tool_calls.json").await;
    assert_eq!(status, StatusCode::OK);
    let results = body["results"].as_array().expect("results");
    assert_eq!(results[0]["toolCallId"], "toolu_01");
    assert!(
        results[0]["result"]
            .as_str()
            .expect("string")
            .contains("\"saved\":true"),
        "{body}"
    );
    assert_eq!(results[1]["toolCallId"], "toolu_02");
    assert!(
        results[1]["error"]
            .as_str()
            .expect("error")
            .contains("no tool"),
        "{body}"
    );
    // Delivered again: the same lead, not a second one.
    h.vapi("vapi_tool_calls.json").await;
    let leads = h
        .store
        .leads(&UserId::parse(ANA).expect("wa"))
        .await
        .expect("leads");
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0].name, "Ana Núñez");
}

#[tokio::test]
async fn a_transfer_request_gets_the_profiles_destination() {
    let h = harness(Some("vapi-call-1"), ProviderKind::Vapi).await;
    let (status, body) = h.vapi("vapi_transfer_destination_request.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["destination"]["type"], "number");
    assert_eq!(body["destination"]["number"], "+541143215678");
    assert_eq!(
        body["destination"]["transferPlan"]["mode"],
        "warm-transfer-say-summary"
    );
}

#[tokio::test]
async fn the_end_of_call_report_stores_the_transcript_and_follows_up_once() {
    let h = harness(Some("vapi-call-1"), ProviderKind::Vapi).await;
    for _ in 0..2 {
        assert_eq!(
            h.vapi("vapi_end_of_call_report.json").await.0,
            StatusCode::OK
        );
    }
    let r = h.record().await;
    assert_eq!(
        (r.phase, r.outcome, r.followed_up),
        (CallPhase::Done, Some(CallOutcome::Completed), true)
    );
    let told = h.told();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("plan anual con envío a Córdoba"),
        "{told:?}"
    );
    let wa = UserId::parse(ANA).expect("wa");
    let transcript = h
        .store
        .transcript(&wa, 50, None)
        .await
        .expect("transcript")
        .items;
    let call = transcript
        .iter()
        .find(|m| m.kind == "call_transcript")
        .expect("call transcript");
    assert!(call.text.contains("¿cuánto sale con envío a Córdoba?"));
    assert!(
        transcript.iter().any(|m| m.text.contains("Resumen")),
        "the follow-up is in the same conversation"
    );
    let leads = h.store.leads(&wa).await.expect("leads");
    assert!(leads.iter().any(|l| l
        .notes
        .as_deref()
        .is_some_and(|n| n.starts_with("call completed"))));
    // Counted once (the report came twice), with its minutes.
    let used = h.usage.all();
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0].user_id, wa);
    assert_eq!(used[0].counters["call.completed"], 1);
    assert!(used[0].counters["call_seconds"] > 0, "{used:?}");
}

#[tokio::test]
async fn a_busy_line_is_called_again_later_and_gives_up_after_the_attempts() {
    let h = harness(Some("vapi-call-1"), ProviderKind::Vapi).await;
    assert_eq!(
        h.vapi("vapi_end_of_call_report_busy.json").await.0,
        StatusCode::OK
    );
    let r = h.record().await;
    assert_eq!(
        (r.phase, r.due_at_ms, r.call_id.clone()),
        (CallPhase::Scheduled, Some(NOW + retry_delay_ms(1)), None)
    );
    assert!(h.told().is_empty());
    // The same report again (a redelivery) moves nothing.
    assert_eq!(
        h.vapi("vapi_end_of_call_report_busy.json").await.0,
        StatusCode::OK
    );
    assert_eq!(h.record().await, r);
    // The last attempt busy too: the user is told, once.
    let mut last = r.next(NOW);
    last.phase = CallPhase::Dialing;
    last.attempts = MAX_ATTEMPTS;
    last.call_id = Some("vapi-call-1".into());
    last.due_at_ms = None;
    last.outcome = None;
    assert!(h.calls.update(&r, &last).await.expect("update"));
    h.clock.advance(1);
    for _ in 0..2 {
        assert_eq!(
            h.vapi("vapi_end_of_call_report_busy.json").await.0,
            StatusCode::OK
        );
    }
    assert_eq!(h.record().await.phase, CallPhase::Failed);
    let told = h.told();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("no pudimos comunicarnos"), "{told:?}");
}

#[tokio::test]
async fn retell_events_follow_up_with_the_analysis_summary() {
    let h = harness(None, ProviderKind::Retell).await;
    assert_eq!(h.retell("retell_call_started.json").await.0, StatusCode::OK);
    let r = h.record().await;
    assert_eq!(
        (r.phase, r.call_id.as_deref()),
        (CallPhase::InProgress, Some("retell-call-1"))
    );
    assert_eq!(h.retell("retell_call_ended.json").await.0, StatusCode::OK);
    assert_eq!(h.record().await.phase, CallPhase::Ended);
    assert!(h.told().is_empty(), "waits for the analysis");
    for _ in 0..2 {
        assert_eq!(
            h.retell("retell_call_analyzed.json").await.0,
            StatusCode::OK
        );
    }
    let told = h.told();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("se le enviará el detalle"), "{told:?}");
}

#[tokio::test]
async fn retell_custom_functions_answer_with_the_result_as_the_body() {
    let h = harness(Some("retell-call-1"), ProviderKind::Retell).await;
    let (status, body) = h.retell("retell_function_kb_search.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["passages"].as_array().is_some_and(|p| !p.is_empty()),
        "{body}"
    );
}

/// Makes the harness's call record a campaign's call, for Ana as row 2 of a
/// running campaign, claimed for its first call.
async fn make_campaign_call(h: &H) -> domain::campaign::CampaignCall {
    use domain::campaign::*;
    use domain::ports::CampaignStore;
    let call = CampaignCall {
        campaign_id: "cmp_voice".into(),
        row: 2,
        attempt: 1,
        assistant: None,
        name: Some("Ana".into()),
        variables: Default::default(),
    };
    let record = h.record().await;
    let mut campaign_record = record.next(NOW);
    campaign_record.context.campaign = Some(call.clone());
    assert!(h
        .calls
        .update(&record, &campaign_record)
        .await
        .expect("update"));
    h.campaigns
        .create_campaign(&Campaign::draft(
            call.campaign_id.clone(),
            serde_json::from_value(serde_json::json!({"name": "c", "channel": "call"}))
                .expect("spec"),
            NOW,
        ))
        .await
        .expect("create");
    let contact = CampaignContact {
        campaign_id: call.campaign_id.clone(),
        row: 2,
        phone: UserId::parse(ANA).expect("phone"),
        name: Some("Ana".into()),
        time_zone: "America/Argentina/Buenos_Aires".into(),
        language: Some("es".into()),
        variables: Default::default(),
        state: ContactState::Calling,
        next_at_ms: None,
        attempts: vec![Attempt::new("call", NOW)],
        replies: vec![],
        version: 1,
    };
    assert!(h
        .campaigns
        .replace_contacts(&call.campaign_id, "up", &[contact], NOW)
        .await
        .expect("upload"));
    call
}

/// A campaign's call: its end goes to the campaign's contact (outcome,
/// summary, the call's id), and no WhatsApp message goes out.
#[tokio::test]
async fn a_campaign_calls_end_goes_to_its_contact_not_to_whatsapp() {
    use domain::campaign::*;
    let h = harness(Some("vapi-call-1"), ProviderKind::Vapi).await;
    let call = make_campaign_call(&h).await;
    for _ in 0..2 {
        assert_eq!(
            h.vapi("vapi_end_of_call_report.json").await.0,
            StatusCode::OK
        );
    }
    let c = h.contact(&call).await;
    assert_eq!(c.state, ContactState::Answered);
    assert_eq!(c.attempts[0].outcome, Some(CallOutcome::Completed));
    assert_eq!(c.attempts[0].reference.as_deref(), Some("vapi-call-1"));
    assert!(
        c.attempts[0]
            .summary
            .as_deref()
            .is_some_and(|s| s.contains("plan anual")),
        "{c:?}"
    );
    assert!(h.told().is_empty(), "no WhatsApp follow-up: {:?}", h.told());
    assert_eq!(h.record().await.phase, CallPhase::Done);
}

/// Retell's summary and extracted data come after the end: the contact's
/// call gets them then; still no WhatsApp message.
#[tokio::test]
async fn a_retell_campaign_call_gets_its_analysis_after_the_end() {
    use domain::campaign::*;
    let h = harness(None, ProviderKind::Retell).await;
    let call = make_campaign_call(&h).await;
    for event in [
        "retell_call_started.json",
        "retell_call_ended.json",
        "retell_call_analyzed.json",
        "retell_call_analyzed.json",
    ] {
        assert_eq!(h.retell(event).await.0, StatusCode::OK, "{event}");
    }
    let c = h.contact(&call).await;
    assert_eq!(c.state, ContactState::Answered, "{c:?}");
    assert_eq!(c.attempts[0].reference.as_deref(), Some("retell-call-1"));
    assert!(c.attempts[0].summary.is_some(), "{c:?}");
    assert!(h.told().is_empty(), "no WhatsApp follow-up: {:?}", h.told());
}

/// "Do not call me again" on a call: the voice agent's `do_not_contact`
/// tool puts the number on the do-not-contact list, and the call's end
/// leaves the contact opted out (no retry) whatever the outcome.
#[tokio::test]
async fn do_not_contact_on_the_call_opts_the_number_out() {
    use domain::campaign::*;
    let h = harness(Some("vapi-call-1"), ProviderKind::Vapi).await;
    let call = make_campaign_call(&h).await;
    let tool = serde_json::json!({"message": {
        "type": "tool-calls", "timestamp": 1795525300000i64,
        "call": {"id": "vapi-call-1", "type": "outboundPhoneCall",
                 "metadata": {"charla_request_id": REQUEST,
                              "charla_conversation_id": ANA,
                              "charla_phone_number_id": "PN1"}},
        "toolCallList": [{"id": "toolu_9", "type": "function",
            "function": {"name": "do_not_contact",
                         "arguments": {"reason": "dijo que no lo llamen más"}}}]}});
    let (status, body) = h.vapi_body(tool.to_string().as_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["results"][0]["result"]
            .as_str()
            .is_some_and(|r| r.contains("\"done\":true")),
        "{body}"
    );
    let listed = h.ana_opted_out().await.expect("on the list");
    assert_eq!(
        (listed.source.as_str(), listed.reason.as_str()),
        ("call", "dijo que no lo llamen más")
    );
    h.vapi("vapi_end_of_call_report.json").await;
    let c = h.contact(&call).await;
    assert_eq!(c.state, ContactState::OptedOut, "{c:?}");
    assert_eq!(c.attempts[0].outcome, Some(CallOutcome::Completed));
}

/// The same from the provider's structured results (`do_not_contact`,
/// `opt_out` or `do_not_call` true), for an assistant that extracts it
/// rather than calling a tool.
#[tokio::test]
async fn structured_results_saying_do_not_contact_opt_the_number_out() {
    use domain::campaign::*;
    let h = harness(Some("vapi-call-1"), ProviderKind::Vapi).await;
    let call = make_campaign_call(&h).await;
    let mut report: Value =
        serde_json::from_slice(&event("vapi_end_of_call_report.json")).expect("json");
    report["message"]["analysis"]["structuredData"] = serde_json::json!({"do_not_contact": "sí"});
    assert_eq!(
        h.vapi_body(report.to_string().as_bytes()).await.0,
        StatusCode::OK
    );
    let listed = h.ana_opted_out().await.expect("on the list");
    assert_eq!(listed.source, "call");
    let c = h.contact(&call).await;
    assert_eq!(c.state, ContactState::OptedOut, "{c:?}");
}

/// The call's end was written to its record, and the process died (or the
/// contact's write failed) before the contact had it: the provider sends
/// the end again, and the contact gets it then.
#[tokio::test]
async fn a_campaign_calls_end_sent_again_reaches_a_contact_that_missed_it() {
    use domain::campaign::*;
    let h = harness(Some("vapi-call-1"), ProviderKind::Vapi).await;
    let call = make_campaign_call(&h).await;
    // What the first delivery wrote before the crash: the record only.
    let record = h.record().await;
    let mut ended = record.next(NOW);
    ended.phase = CallPhase::Done;
    ended.outcome = Some(CallOutcome::Completed);
    ended.ended_reason = Some("customer-ended-call".into());
    assert!(h.calls.update(&record, &ended).await.expect("update"));

    assert_eq!(
        h.vapi("vapi_end_of_call_report.json").await.0,
        StatusCode::OK
    );
    let c = h.contact(&call).await;
    assert_eq!(c.state, ContactState::Answered, "{c:?}");
    assert_eq!(c.attempts[0].outcome, Some(CallOutcome::Completed));
    assert_eq!(c.attempts[0].reference.as_deref(), Some("vapi-call-1"));
    assert!(
        c.attempts[0]
            .summary
            .as_deref()
            .is_some_and(|s| s.contains("plan anual")),
        "{c:?}"
    );
    // Once: a third delivery changes nothing.
    assert_eq!(
        h.vapi("vapi_end_of_call_report.json").await.0,
        StatusCode::OK
    );
    let again = h.contact(&call).await;
    assert_eq!(again, c);
}
