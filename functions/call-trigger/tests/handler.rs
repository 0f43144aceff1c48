//! call-trigger's handler with the local adapters (SQLite store, outbox)
//! and a provider that records what it is asked.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use call_lifecycle::{Deps, Outcome};
use domain::ports::{AgentRecords, CallRecords, ConversationStore, VoiceProvider};
use domain::voice::*;
use domain::*;
use domain::{Error, Result};
use embedded::{Outbox, SqliteStore};
use test_support::memory::FixedClock;
use test_support::memory_calls::MemoryCallRecords;

const ANA: &str = "5491155550123";
/// Tuesday 2026-11-24 13:00 UTC = 10:00 in Buenos Aires.
const TUESDAY_10AM: i64 = 1_795_525_200_000;

#[derive(Default)]
struct FakeProvider {
    orders: Mutex<Vec<CallOrder>>,
    fail_with: Mutex<Option<fn() -> Error>>,
}

#[async_trait]
impl VoiceProvider for FakeProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Vapi
    }
    async fn start_call(&self, order: &CallOrder) -> Result<StartedCall> {
        if let Some(f) = *self.fail_with.lock().expect("lock") {
            return Err(f());
        }
        let mut o = self.orders.lock().expect("lock");
        o.push(order.clone());
        Ok(StartedCall {
            call_id: format!("call-{}", o.len()),
        })
    }
}

struct Harness {
    deps: Deps,
    store: Arc<SqliteStore>,
    calls: Arc<MemoryCallRecords>,
    provider: Arc<FakeProvider>,
    outbox: Arc<Outbox>,
    clock: Arc<FixedClock>,
    campaigns: Arc<embedded::SqliteCampaigns>,
    _dir: tempfile::TempDir,
}

fn profile() -> ::agent::Profile {
    ::agent::Profile::parse(
        include_str!("../../../profiles/demo/agent.toml"),
        std::path::Path::new("."),
    )
    .expect("demo")
}

async fn harness(now: i64) -> Harness {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let calls = Arc::new(MemoryCallRecords::default());
    let provider = Arc::new(FakeProvider::default());
    let outbox = Arc::new(Outbox::open(dir.path()).expect("outbox"));
    let clock = Arc::new(FixedClock::at(now));
    let campaigns = Arc::new(embedded::SqliteCampaigns::open_in_memory().expect("campaigns"));
    let deps = Deps {
        records: store.clone(),
        store: store.clone(),
        identities: store.clone(),
        campaigns: Some(campaigns.clone()),
        calls: calls.clone(),
        provider: provider.clone(),
        sender: outbox.clone(),
        usage: Arc::new(test_support::memory::MemoryUsage::default()),
        clock: clock.clone(),
        settings: call_lifecycle::Settings::new(None, &profile()),
    };
    Harness {
        deps,
        store,
        calls,
        provider,
        outbox,
        clock,
        campaigns,
        _dir: dir,
    }
}

impl Harness {
    /// The user wrote "llamame" and the agent recorded a request.
    async fn asked(&self, turn: &str, when_ms: Option<i64>) -> CallRequest {
        self.asked_as(ANA, turn, when_ms, None).await
    }

    /// As [`Harness::asked`], by `user`, with the number they gave, if any.
    async fn asked_as(
        &self,
        user: &str,
        turn: &str,
        when_ms: Option<i64>,
        phone: Option<&str>,
    ) -> CallRequest {
        let now = self.clock.0.load(std::sync::atomic::Ordering::SeqCst);
        let wa = UserId::parse(user).expect("wa");
        self.store
            .record_inbound(&NewInbound {
                wamid: turn.into(),
                user_id: wa.clone(),
                phone_number_id: "PN1".into(),
                contact_name: Some("Ana".into()),
                kind: "text".into(),
                text: "llamame por favor".into(),
                payload: serde_json::json!({}),
                sent_at_ms: now,
                received_at_ms: now,
                starts_turn: true,
            })
            .await
            .expect("inbound");
        let req = CallRequest {
            id: format!("{turn}:call"),
            user_id: wa,
            phone_number_id: "PN1".into(),
            reason: "the user asked to be called".into(),
            when_ms,
            language: "es".into(),
            state: CallRequestState::Requested,
            created_at_ms: now,
            phone: phone.map(|p| UserId::phone(p).expect("phone")),
            campaign: None,
        };
        assert!(self.store.save_call_request(&req).await.expect("save"));
        req
    }

    fn told(&self) -> Vec<String> {
        self.outbox
            .since(ANA, 0)
            .into_iter()
            .filter_map(|e| match e.message? {
                domain::whatsapp::outbound::OutboundMessage::Text { body } => Some(body),
                other => Some(format!("{other:?}")),
            })
            .collect()
    }
}

fn sqs(bodies: &[String]) -> SqsEvent {
    let mut e = SqsEvent::default();
    for (i, b) in bodies.iter().enumerate() {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m{i}"));
        m.body = Some(b.clone());
        e.records.push(m);
    }
    e
}

#[tokio::test]
async fn a_request_in_calling_hours_places_one_call_with_the_context() {
    let h = harness(TUESDAY_10AM).await;
    let req = h.asked("wamid.A", None).await;
    let body = serde_json::to_string(&req).expect("json");
    let resp = call_trigger::handle_batch(&h.deps, sqs(std::slice::from_ref(&body))).await;
    assert!(resp.batch_item_failures.is_empty());
    // Redelivered: nothing more.
    let resp = call_trigger::handle_batch(&h.deps, sqs(&[body])).await;
    assert!(resp.batch_item_failures.is_empty());
    let orders = h.provider.orders.lock().expect("lock").clone();
    assert_eq!(orders.len(), 1);
    let ctx = &orders[0].context;
    assert_eq!(ctx.request_id, "wamid.A:call");
    assert_eq!(ctx.customer_name.as_deref(), Some("Ana"));
    assert!(ctx.summary.contains("llamame por favor"), "{}", ctx.summary);
    let rec = h
        .calls
        .get("wamid.A:call")
        .await
        .expect("get")
        .expect("record");
    assert_eq!(rec.phase, CallPhase::Dialing);
    assert_eq!(rec.call_id.as_deref(), Some("call-1"));
    assert_eq!(rec.attempts, 1);
}

#[tokio::test]
async fn outside_calling_hours_it_is_scheduled_and_the_user_told_when() {
    // 23:30 in Buenos Aires.
    let h = harness(TUESDAY_10AM + 13 * 3_600_000 + 30 * 60_000).await;
    let req = h.asked("wamid.B", None).await;
    let outcome = call_lifecycle::handle_request(&h.deps, &req)
        .await
        .expect("handle");
    let next_9am = TUESDAY_10AM + 23 * 3_600_000;
    assert_eq!(outcome, Outcome::Scheduled(next_9am));
    assert!(h.provider.orders.lock().expect("lock").is_empty());
    let told = h.told();
    assert!(
        told.iter()
            .any(|t| t.contains("miércoles 25 de noviembre, 09:00")),
        "{told:?}"
    );
    // The sweep before the opening does nothing; after it, calls.
    assert!(call_lifecycle::sweep(&h.deps)
        .await
        .expect("sweep")
        .is_empty());
    h.clock
        .advance(next_9am - h.clock.0.load(std::sync::atomic::Ordering::SeqCst));
    let placed = call_lifecycle::sweep(&h.deps).await.expect("sweep");
    assert_eq!(placed, vec![Outcome::Calling("call-1".into())]);
    assert_eq!(call_lifecycle::sweep(&h.deps).await.expect("sweep"), vec![]);
}

#[tokio::test]
async fn a_request_nobody_made_is_not_called() {
    let h = harness(TUESDAY_10AM).await;
    let mut req = h.asked("wamid.C", None).await;
    req.id = "forged:call".into();
    let outcome = call_lifecycle::handle_request(&h.deps, &req)
        .await
        .expect("handle");
    assert_eq!(outcome, Outcome::Refused(ConsentRefusal::NotAsked));
    assert!(h.provider.orders.lock().expect("lock").is_empty());
    assert!(h.calls.get("forged:call").await.expect("get").is_none());
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_failed_to_the_dead_letter_queue() {
    let h = harness(TUESDAY_10AM).await;
    let big = format!(
        "{{\"x\":\"{}\"}}",
        "a".repeat(call_lifecycle::MAX_BODY_BYTES)
    );
    let resp =
        call_trigger::handle_batch(&h.deps, sqs(&["not json".into(), "{}".into(), big])).await;
    assert_eq!(resp.batch_item_failures.len(), 3);
    assert!(h.provider.orders.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_provider_refusal_tells_the_user_once() {
    let h = harness(TUESDAY_10AM).await;
    *h.provider.fail_with.lock().expect("lock") = Some(|| Error::Invalid("bad number".into()));
    let req = h.asked("wamid.D", None).await;
    let outcome = call_lifecycle::handle_request(&h.deps, &req)
        .await
        .expect("handle");
    assert_eq!(outcome, Outcome::Failed);
    let rec = h
        .calls
        .get("wamid.D:call")
        .await
        .expect("get")
        .expect("record");
    assert_eq!(rec.phase, CallPhase::Failed);
    assert!(rec.followed_up);
    let told = h.told();
    assert_eq!(
        told.iter()
            .filter(|t| t.contains("no pudimos comunicarnos"))
            .count(),
        1,
        "{told:?}"
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_tried_again_without_using_an_attempt() {
    let h = harness(TUESDAY_10AM).await;
    *h.provider.fail_with.lock().expect("lock") =
        Some(|| Error::dependency("vapi", "could not connect", true, "refused"));
    let req = h.asked("wamid.E", None).await;
    assert_eq!(
        call_lifecycle::handle_request(&h.deps, &req)
            .await
            .expect("handle"),
        Outcome::RetryLater
    );
    let rec = h
        .calls
        .get("wamid.E:call")
        .await
        .expect("get")
        .expect("record");
    assert_eq!((rec.phase, rec.attempts), (CallPhase::Scheduled, 0));
    *h.provider.fail_with.lock().expect("lock") = None;
    h.clock.advance(call_lifecycle::START_RETRY_MS);
    assert_eq!(
        call_lifecycle::sweep(&h.deps).await.expect("sweep"),
        vec![Outcome::Calling("call-1".into())]
    );
}

#[tokio::test]
async fn a_dial_that_never_reached_the_provider_is_recovered_by_the_sweep() {
    let h = harness(TUESDAY_10AM).await;
    let req = h.asked("wamid.F", None).await;
    call_lifecycle::handle_request(&h.deps, &req)
        .await
        .expect("handle");
    // As if the worker had died after the claim: no call id.
    let placed = h
        .calls
        .get("wamid.F:call")
        .await
        .expect("get")
        .expect("record");
    let mut stuck = placed.next(TUESDAY_10AM);
    stuck.call_id = None;
    stuck.due_at_ms = Some(TUESDAY_10AM + DIAL_WATCHDOG_MS);
    assert!(h.calls.update(&placed, &stuck).await.expect("update"));
    assert!(call_lifecycle::sweep(&h.deps)
        .await
        .expect("sweep")
        .is_empty());
    h.clock.advance(DIAL_WATCHDOG_MS);
    assert_eq!(
        call_lifecycle::sweep(&h.deps).await.expect("sweep"),
        vec![Outcome::RetryLater]
    );
    assert_eq!(
        call_lifecycle::sweep(&h.deps).await.expect("sweep"),
        vec![Outcome::Calling("call-2".into())]
    );
    let rec = h
        .calls
        .get("wamid.F:call")
        .await
        .expect("get")
        .expect("record");
    assert_eq!((rec.attempts, rec.due_marker()), (2, None));
}

// ------------------------------------------------ users known by username

const BSUID: &str = "AR.1502576394655843";

async fn handle(h: &Harness, req: &CallRequest) -> Outcome {
    call_lifecycle::handle_request(&h.deps, req)
        .await
        .expect("handled")
}

#[tokio::test]
async fn a_username_only_user_is_asked_for_a_number_not_dialled() {
    let h = harness(TUESDAY_10AM).await;
    let req = h.asked_as(BSUID, "wamid.U1", None, None).await;
    assert_eq!(handle(&h, &req).await, Outcome::NoNumber);
    assert!(h.provider.orders.lock().expect("lock").is_empty());
    let told: Vec<String> = h
        .outbox
        .since(BSUID, 0)
        .into_iter()
        .filter_map(|e| match e.message? {
            domain::whatsapp::outbound::OutboundMessage::Text { body } => Some(body),
            _ => None,
        })
        .collect();
    assert!(
        told.iter().any(|t| t.contains("código de país")),
        "{told:?}"
    );
}

#[tokio::test]
async fn a_username_user_who_shared_a_number_is_called_on_it() {
    use domain::identity::{self, SeenUser};
    let h = harness(TUESDAY_10AM).await;
    let seen = SeenUser::from_raw(None, Some(BSUID)).expect("seen");
    identity::resolve(h.store.as_ref(), &seen, TUESDAY_10AM)
        .await
        .expect("resolve");
    let both = SeenUser::from_raw(Some(ANA), Some(BSUID)).expect("seen");
    let user = identity::resolve(h.store.as_ref(), &both, TUESDAY_10AM)
        .await
        .expect("resolve")
        .user;
    assert_eq!(user.as_str(), BSUID);
    let req = h.asked_as(BSUID, "wamid.U2", None, None).await;
    assert!(matches!(handle(&h, &req).await, Outcome::Calling(_)));
    let orders = h.provider.orders.lock().expect("lock").clone();
    assert_eq!(
        orders[0].context.to_e164().expect("number"),
        format!("+{ANA}")
    );
    assert_eq!(orders[0].context.user_id.as_str(), BSUID);
}

#[tokio::test]
async fn a_number_given_in_the_chat_is_called_and_cannot_be_swapped_on_the_queue() {
    let h = harness(TUESDAY_10AM).await;
    let req = h
        .asked_as(BSUID, "wamid.U3", None, Some("5215512345678"))
        .await;
    // The same request with another number put on the queue is not one the
    // user made.
    let swapped = CallRequest {
        phone: Some(UserId::phone("5491100000000").expect("phone")),
        ..req.clone()
    };
    assert!(matches!(handle(&h, &swapped).await, Outcome::Refused(_)));
    assert!(matches!(handle(&h, &req).await, Outcome::Calling(_)));
    let orders = h.provider.orders.lock().expect("lock").clone();
    assert_eq!(orders.len(), 1);
    assert_eq!(
        orders[0].context.to_e164().expect("number"),
        "+5215512345678"
    );
}

// ------------------------------------------------------------- campaigns

use domain::campaign::{Attempt, Campaign, CampaignCall, CampaignContact, ContactState};
use domain::ports::CampaignStore;

/// A running campaign with Ana as row 2, claimed by the dispatcher for its
/// first call (`claim: false`: still pending); the call request it queued.
async fn campaign_call(h: &Harness, claim: bool) -> (String, CallRequest) {
    let spec =
        serde_json::json!({"name": "Cobranza", "channel": "call", "assistant": "asst_campaign"});
    campaign_call_with(h, claim, spec).await
}

/// [`campaign_call`] for a campaign of `spec`.
async fn campaign_call_with(
    h: &Harness,
    claim: bool,
    spec: serde_json::Value,
) -> (String, CallRequest) {
    let now = h.clock.0.load(std::sync::atomic::Ordering::SeqCst);
    let id = "cmp_test".to_string();
    h.campaigns
        .create_campaign(&Campaign::draft(
            id.clone(),
            serde_json::from_value(spec).expect("spec"),
            now,
        ))
        .await
        .expect("create");
    let mut variables = std::collections::BTreeMap::new();
    variables.insert("Monto".to_string(), "1200".to_string());
    let contact = CampaignContact {
        campaign_id: id.clone(),
        row: 2,
        phone: UserId::parse(ANA).expect("phone"),
        name: Some("Ana".into()),
        time_zone: "America/Argentina/Buenos_Aires".into(),
        language: Some("es".into()),
        variables: variables.clone(),
        state: ContactState::Pending,
        next_at_ms: Some(0),
        attempts: vec![],
        replies: vec![],
        version: 1,
    };
    assert!(h
        .campaigns
        .replace_contacts(&id, "up", std::slice::from_ref(&contact), now)
        .await
        .expect("upload"));
    if claim {
        let mut claimed = contact.clone();
        claimed.version = 2;
        claimed.state = ContactState::Calling;
        claimed.next_at_ms = None;
        claimed.attempts.push(Attempt::new("call", now));
        assert!(h.campaigns.update_contact(&claimed).await.expect("claim"));
    }
    let req = CallRequest {
        id: format!("campaign:{id}:2:1"),
        user_id: UserId::parse(ANA).expect("phone"),
        phone_number_id: "PN1".into(),
        reason: "campaign: Cobranza".into(),
        when_ms: None,
        language: "es".into(),
        state: CallRequestState::Requested,
        created_at_ms: now,
        phone: None,
        campaign: Some(CampaignCall {
            campaign_id: id.clone(),
            row: 2,
            attempt: 1,
            assistant: Some("asst_campaign".into()),
            name: Some("Ana".into()),
            variables,
        }),
    };
    (id, req)
}

#[tokio::test]
async fn a_claimed_campaign_contact_is_called_with_the_campaigns_assistant_and_columns() {
    let h = harness(TUESDAY_10AM).await;
    let (_, req) = campaign_call(&h, true).await;
    let body = serde_json::to_string(&req).expect("json");
    let resp = call_trigger::handle_batch(&h.deps, sqs(std::slice::from_ref(&body))).await;
    assert!(resp.batch_item_failures.is_empty());
    // Redelivered: nothing more.
    call_trigger::handle_batch(&h.deps, sqs(&[body])).await;
    let orders = h.provider.orders.lock().expect("lock").clone();
    assert_eq!(orders.len(), 1);
    let ctx = &orders[0].context;
    assert_eq!(ctx.assistant(), Some("asst_campaign"));
    assert_eq!(
        ctx.variables().get("Monto").map(String::as_str),
        Some("1200")
    );
    assert_eq!(ctx.to_e164().expect("number"), format!("+{ANA}"));
    assert!(
        h.told().is_empty(),
        "a campaign's call sends no WhatsApp message"
    );
}

#[tokio::test]
async fn a_campaign_call_for_a_contact_not_waiting_for_it_is_refused() {
    let h = harness(TUESDAY_10AM).await;
    let (_, req) = campaign_call(&h, false).await;
    assert!(matches!(
        call_lifecycle::handle_request(&h.deps, &req)
            .await
            .expect("handled"),
        Outcome::Refused(_)
    ));
    assert!(h.provider.orders.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_refused_campaign_call_is_the_contacts_failed_attempt_retried_by_the_campaign() {
    let h = harness(TUESDAY_10AM).await;
    let (id, req) = campaign_call(&h, true).await;
    *h.provider.fail_with.lock().expect("lock") =
        Some(|| Error::Invalid("number not reachable".into()));
    assert_eq!(
        call_lifecycle::handle_request(&h.deps, &req)
            .await
            .expect("handled"),
        Outcome::Failed
    );
    let contact = h
        .campaigns
        .contact(&id, 2)
        .await
        .expect("read")
        .expect("contact");
    assert_eq!(
        contact.state,
        ContactState::Scheduled,
        "failed: 2 attempts by default"
    );
    assert_eq!(
        contact.attempts[0].outcome,
        Some(domain::voice::CallOutcome::Failed)
    );
    assert!(contact
        .next_at_ms
        .is_some_and(|t| t >= TUESDAY_10AM + 30 * 60_000));
    assert!(h.told().is_empty(), "no WhatsApp message");
}

/// The provider refused the call and the record says so, but the process
/// died before the contact had it: the same request again (the runner
/// queues a claimed contact's call again at its start) gives it the end.
#[tokio::test]
async fn a_campaign_call_that_ended_before_its_contact_knew_is_given_to_it_again() {
    let h = harness(TUESDAY_10AM).await;
    let (id, req) = campaign_call(&h, true).await;
    *h.provider.fail_with.lock().expect("lock") =
        Some(|| Error::Invalid("number not reachable".into()));
    assert_eq!(
        call_lifecycle::handle_request(&h.deps, &req)
            .await
            .expect("handled"),
        Outcome::Failed
    );
    // The contact as it was before the end reached it.
    let told = h
        .campaigns
        .contact(&id, 2)
        .await
        .expect("read")
        .expect("contact");
    let mut waiting = told.next();
    waiting.state = ContactState::Calling;
    waiting.next_at_ms = None;
    waiting.attempts[0].outcome = None;
    assert!(h.campaigns.update_contact(&waiting).await.expect("undo"));

    assert_eq!(
        call_lifecycle::handle_request(&h.deps, &req)
            .await
            .expect("handled"),
        Outcome::Duplicate
    );
    let contact = h
        .campaigns
        .contact(&id, 2)
        .await
        .expect("read")
        .expect("contact");
    assert_eq!(contact.state, ContactState::Scheduled, "{contact:?}");
    assert_eq!(
        contact.attempts[0].outcome,
        Some(domain::voice::CallOutcome::Failed)
    );
    assert_eq!(contact.attempts.len(), 1, "no second call: {contact:?}");
}

/// A campaign's call that could not reach the provider is placed by the
/// sweep inside its campaign's window, in its contact's zone, not the
/// profile's calling hours (09:00-20:00, for calls users ask for).
#[tokio::test]
async fn a_campaign_call_retried_by_the_sweep_keeps_to_its_campaigns_window() {
    const HOUR: i64 = 3_600_000;
    let spec = serde_json::json!({"name": "Madrugada", "channel": "call",
        "window": "05:00-07:00", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]});
    let unreachable = || Error::dependency("vapi", "could not connect", true, "refused");
    // 06:00 in Buenos Aires: inside the campaign's window, before the
    // profile's hours.
    let h = harness(TUESDAY_10AM - 4 * HOUR).await;
    let (_, req) = campaign_call_with(&h, true, spec.clone()).await;
    *h.provider.fail_with.lock().expect("lock") = Some(unreachable);
    assert_eq!(
        call_lifecycle::handle_request(&h.deps, &req)
            .await
            .expect("handled"),
        Outcome::RetryLater
    );
    *h.provider.fail_with.lock().expect("lock") = None;
    h.clock.advance(call_lifecycle::START_RETRY_MS);
    assert_eq!(
        call_lifecycle::sweep(&h.deps).await.expect("sweep"),
        vec![Outcome::Calling("call-1".into())]
    );

    // 06:59:50: the retry comes due after the window closed; it waits for
    // the window's next opening, 05:00 the next day.
    let h = harness(TUESDAY_10AM - 3 * HOUR - 10_000).await;
    let (_, req) = campaign_call_with(&h, true, spec).await;
    *h.provider.fail_with.lock().expect("lock") = Some(unreachable);
    call_lifecycle::handle_request(&h.deps, &req)
        .await
        .expect("handled");
    *h.provider.fail_with.lock().expect("lock") = None;
    h.clock.advance(call_lifecycle::START_RETRY_MS);
    assert_eq!(
        call_lifecycle::sweep(&h.deps).await.expect("sweep"),
        vec![Outcome::Scheduled(TUESDAY_10AM + 19 * HOUR)]
    );
    assert!(h.provider.orders.lock().expect("lock").is_empty());
}
