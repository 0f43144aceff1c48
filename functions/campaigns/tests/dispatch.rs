//! The dispatcher with a simulated clock, on the SQLite stores: calls never
//! over `max_concurrent`, never a contact twice at once (two dispatchers
//! racing), pause within one tick, the do-not-contact list before each
//! dial, windows in each contact's zone, templates through the sender.

use std::collections::BTreeMap;
use std::sync::Arc;

use campaigns::dispatch::{requeue_claimed, tick, DispatchSettings, Dispatcher};
use domain::campaign::*;
use domain::ports::{CallRecords, CampaignStore, Clock, ConversationStore};
use domain::{CallRequest, UserId};
use embedded::{Outbox, SqliteCampaigns, SqliteStore};
use serde_json::json;
use test_support::memory::{FixedClock, MemoryQueue};

/// Tuesday 2026-12-01 13:00 UTC: 10:00 in Buenos Aires, 22:00 in Tokyo.
const TUESDAY_10AM_BA: i64 = 1_796_130_000_000;
const MINUTE: i64 = 60_000;

struct H {
    d: Dispatcher,
    calls: Arc<test_support::memory_calls::MemoryCallRecords>,
    campaigns: Arc<SqliteCampaigns>,
    store: Arc<SqliteStore>,
    queue: Arc<MemoryQueue>,
    outbox: Arc<Outbox>,
    clock: Arc<FixedClock>,
    _dir: tempfile::TempDir,
}

fn harness() -> H {
    let dir = tempfile::tempdir().expect("tmp");
    let campaigns = Arc::new(SqliteCampaigns::open_in_memory().expect("campaigns"));
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let queue = Arc::new(MemoryQueue::default());
    let calls = Arc::new(test_support::memory_calls::MemoryCallRecords::default());
    let outbox = Arc::new(Outbox::open(dir.path()).expect("outbox").with_echo(false));
    let clock = Arc::new(FixedClock::at(TUESDAY_10AM_BA));
    let d = Dispatcher {
        campaigns: campaigns.clone(),
        call_queue: queue.clone(),
        calls: calls.clone(),
        sender: Some(outbox.clone()),
        store: store.clone(),
        identities: store.clone(),
        usage: Arc::new(test_support::memory::MemoryUsage::default()),
        clock: clock.clone(),
        settings: DispatchSettings {
            phone_number_id: Some("106540352242922".into()),
            number_calls: 100,
            ..DispatchSettings::default()
        },
    };
    H {
        d,
        calls,
        campaigns,
        store,
        queue,
        outbox,
        clock,
        _dir: dir,
    }
}

fn contact(id: &str, row: u32, zone: &str) -> CampaignContact {
    let mut variables = BTreeMap::new();
    variables.insert("Monto".to_string(), format!("{row}00"));
    CampaignContact {
        campaign_id: id.into(),
        row,
        phone: UserId::phone(&format!("5491166{row:06}")).expect("phone"),
        name: Some(format!("Cliente {row}")),
        time_zone: zone.into(),
        language: Some("es".into()),
        variables,
        state: ContactState::Pending,
        next_at_ms: Some(0),
        attempts: vec![],
        replies: vec![],
        version: 1,
    }
}

/// A running campaign with `rows` contacts in `zone`.
async fn running(h: &H, spec: serde_json::Value, rows: u32, zone: &str) -> String {
    running_with(h, spec, |id| {
        (0..rows).map(|i| contact(id, i + 2, zone)).collect()
    })
    .await
}

/// A running campaign with the contacts `contacts` makes for its id.
async fn running_with(
    h: &H,
    spec: serde_json::Value,
    contacts: impl FnOnce(&str) -> Vec<CampaignContact>,
) -> String {
    let id = format!("cmp_{}", uuid::Uuid::new_v4().simple());
    let c = Campaign::draft(
        id.clone(),
        serde_json::from_value(spec).expect("spec"),
        TUESDAY_10AM_BA,
    );
    h.campaigns.create_campaign(&c).await.expect("create");
    let contacts = contacts(&id);
    assert!(h
        .campaigns
        .replace_contacts(&id, "up1", &contacts, TUESDAY_10AM_BA)
        .await
        .expect("upload"));
    assert!(h
        .campaigns
        .set_campaign_state(
            &id,
            &[CampaignState::Draft],
            CampaignState::Running,
            TUESDAY_10AM_BA
        )
        .await
        .expect("start"));
    id
}

fn queued(h: &H) -> Vec<CallRequest> {
    h.queue
        .messages()
        .iter()
        .map(|m| serde_json::from_str(&m.body).expect("call request"))
        .collect()
}

async fn state(h: &H, id: &str, row: u32) -> ContactState {
    h.campaigns
        .contact(id, row)
        .await
        .expect("read")
        .expect("contact")
        .state
}

/// What call-trigger and the voice webhooks do when a call ends answered.
async fn answered(h: &H, id: &str, row: u32) {
    let c = h
        .campaigns
        .contact(id, row)
        .await
        .expect("read")
        .expect("contact");
    let mut next = c.next();
    next.state = ContactState::Answered;
    assert!(h.campaigns.update_contact(&next).await.expect("update"));
}

const BA: &str = "America/Argentina/Buenos_Aires";

#[tokio::test]
async fn calls_never_exceed_max_concurrent_and_go_on_as_calls_end() {
    let h = harness();
    let id = running(
        &h,
        json!({"name": "c", "channel": "call", "max_concurrent": 3}),
        8,
        BA,
    )
    .await;
    let first = tick(&h.d).await.expect("tick");
    assert_eq!(first.calls, 3);
    let requests = queued(&h);
    assert_eq!(requests.len(), 3);
    let call = requests[0].campaign.as_ref().expect("campaign call");
    assert_eq!((call.campaign_id.as_str(), call.attempt), (id.as_str(), 1));
    assert_eq!(call.variables.get("Monto").map(String::as_str), Some("200"));
    assert_eq!(requests[0].user_id.as_str(), "5491166000002");
    // Calls held open: nothing more, tick after tick.
    for _ in 0..3 {
        h.clock.advance(MINUTE);
        assert_eq!(tick(&h.d).await.expect("tick").calls, 0);
    }
    answered(&h, &id, 2).await;
    answered(&h, &id, 3).await;
    h.clock.advance(MINUTE);
    assert_eq!(tick(&h.d).await.expect("tick").calls, 2);
    let counts = h.campaigns.counts(&id).await.expect("counts");
    assert_eq!(counts.get(&ContactState::Calling), Some(&3));
    assert_eq!(counts.get(&ContactState::Answered), Some(&2));
}

/// A process that died between a claim and its enqueue: at the next start
/// the claimed contacts' calls go on the queue again, the same messages, so
/// that the queue's deduplication and call-trigger's one call per request
/// id hold. Not for a cancelled campaign, nor for a contact whose call
/// ended.
#[tokio::test]
async fn claimed_calls_go_on_the_queue_again_as_the_same_messages() {
    let h = harness();
    let spec = json!({"name": "c", "channel": "call", "max_concurrent": 3});
    let id = running(&h, spec.clone(), 5, BA).await;
    assert_eq!(tick(&h.d).await.expect("tick").calls, 3);
    let cancelled = running(&h, spec, 2, BA).await;
    assert_eq!(tick(&h.d).await.expect("tick").calls, 2);
    assert!(h
        .campaigns
        .set_campaign_state(
            &cancelled,
            &[CampaignState::Running],
            CampaignState::Cancelled,
            TUESDAY_10AM_BA
        )
        .await
        .expect("cancel"));
    let first = h.queue.messages();
    answered(&h, &id, 2).await;
    h.clock.advance(MINUTE);

    // Younger than asked: not yet.
    assert_eq!(requeue_claimed(&h.d, 2 * MINUTE).await.expect("requeue"), 0);
    assert_eq!(requeue_claimed(&h.d, 0).await.expect("requeue"), 2);
    let all = h.queue.messages();
    let again = &all[first.len()..];
    let expected: Vec<_> = first
        .iter()
        .filter(|m| {
            m.group_id == format!("campaign:{id}:3") || m.group_id == format!("campaign:{id}:4")
        })
        .cloned()
        .collect();
    assert_eq!(again, expected.as_slice());
    assert_eq!(state(&h, &id, 3).await, ContactState::Calling);

    // call-trigger saw row 3's call (its record): only row 4's goes again,
    // at the tick once the claim is older than two minutes.
    let request: CallRequest = serde_json::from_str(&expected[0].body).expect("request");
    let record = domain::voice::CallRecord::scheduled(
        domain::voice::CallContext {
            request_id: request.id.clone(),
            user_id: request.user_id.clone(),
            phone_number_id: request.phone_number_id.clone(),
            customer_name: None,
            language: "es".into(),
            summary: String::new(),
            interest: None,
            reason: request.reason.clone(),
            phone: None,
            campaign: request.campaign.clone(),
        },
        domain::voice::ProviderKind::Vapi,
        TUESDAY_10AM_BA,
        TUESDAY_10AM_BA,
    );
    assert!(h.calls.create(&record).await.expect("record"));
    let before = h.queue.messages().len();
    h.clock.advance(campaigns::dispatch::REQUEUE_AFTER_MS);
    assert_eq!(tick(&h.d).await.expect("tick").requeued, 1);
    let groups: Vec<String> = h.queue.messages()[before..]
        .iter()
        .map(|m| m.group_id.clone())
        .collect();
    // Row 4 again, and row 5 in the place row 2's answered call left.
    assert_eq!(
        groups,
        [format!("campaign:{id}:4"), format!("campaign:{id}:5")]
    );
}

#[tokio::test]
async fn the_business_number_limit_holds_across_campaigns() {
    let mut h = harness();
    h.d.settings.number_calls = 4;
    running(
        &h,
        json!({"name": "a", "channel": "call", "max_concurrent": 3}),
        5,
        BA,
    )
    .await;
    running(
        &h,
        json!({"name": "b", "channel": "call", "max_concurrent": 3}),
        5,
        BA,
    )
    .await;
    assert_eq!(tick(&h.d).await.expect("tick").calls, 4);
    assert_eq!(tick(&h.d).await.expect("tick").calls, 0);
}

#[tokio::test]
async fn two_dispatchers_at_once_claim_each_contact_once() {
    let h = harness();
    running(
        &h,
        json!({"name": "c", "channel": "call", "max_concurrent": 50}),
        30,
        BA,
    )
    .await;
    let second = Dispatcher {
        campaigns: h.d.campaigns.clone(),
        call_queue: h.d.call_queue.clone(),
        calls: h.d.calls.clone(),
        sender: h.d.sender.clone(),
        store: h.d.store.clone(),
        identities: h.d.identities.clone(),
        usage: h.d.usage.clone(),
        clock: h.d.clock.clone(),
        settings: h.d.settings.clone(),
    };
    let (a, b) = tokio::join!(tick(&h.d), tick(&second));
    let (a, b) = (a.expect("tick"), b.expect("tick"));
    assert_eq!(a.calls + b.calls, 30, "{a:?} {b:?}");
    let mut rows: Vec<u32> = queued(&h)
        .iter()
        .filter_map(|r| r.campaign.as_ref().map(|c| c.row))
        .collect();
    rows.sort_unstable();
    rows.dedup();
    assert_eq!(rows.len(), 30, "nobody queued twice");
}

#[tokio::test]
async fn a_pause_stops_new_dials_at_the_next_tick() {
    let h = harness();
    let id = running(
        &h,
        json!({"name": "c", "channel": "call", "max_concurrent": 2}),
        6,
        BA,
    )
    .await;
    assert_eq!(tick(&h.d).await.expect("tick").calls, 2);
    h.campaigns
        .set_campaign_state(
            &id,
            &[CampaignState::Running],
            CampaignState::Paused,
            TUESDAY_10AM_BA,
        )
        .await
        .expect("pause");
    answered(&h, &id, 2).await;
    assert_eq!(tick(&h.d).await.expect("tick").calls, 0);
    assert_eq!(
        state(&h, &id, 3).await,
        ContactState::Calling,
        "the call in progress finishes"
    );
    h.campaigns
        .set_campaign_state(
            &id,
            &[CampaignState::Paused],
            CampaignState::Running,
            TUESDAY_10AM_BA,
        )
        .await
        .expect("resume");
    assert_eq!(tick(&h.d).await.expect("tick").calls, 1);
}

#[tokio::test]
async fn an_opted_out_number_is_never_dialled() {
    let h = harness();
    let id = running(&h, json!({"name": "c", "channel": "call"}), 2, BA).await;
    h.campaigns
        .opt_out(&OptOut {
            phone: UserId::phone("5491166000003").expect("phone"),
            reason: "BAJA".into(),
            source: "whatsapp".into(),
            at_ms: TUESDAY_10AM_BA,
        })
        .await
        .expect("opt out");
    let t = tick(&h.d).await.expect("tick");
    assert_eq!((t.calls, t.opted_out), (1, 1));
    assert_eq!(state(&h, &id, 3).await, ContactState::OptedOut);
}

#[tokio::test]
async fn contacts_outside_their_window_wait_for_it() {
    let h = harness();
    let id = running(&h, json!({"name": "c", "channel": "call"}), 1, "Asia/Tokyo").await;
    let t = tick(&h.d).await.expect("tick");
    assert_eq!((t.calls, t.deferred), (0, 1));
    let c = h
        .campaigns
        .contact(&id, 2)
        .await
        .expect("read")
        .expect("contact");
    // Wednesday 09:00 in Tokyo.
    assert_eq!(c.next_at_ms, Some(1_796_169_600_000));
    h.clock.advance(1_796_169_600_000 - TUESDAY_10AM_BA);
    assert_eq!(tick(&h.d).await.expect("tick").calls, 1);
}

#[tokio::test]
async fn templates_go_through_the_sender_and_into_the_conversation() {
    let h = harness();
    let id = running(
        &h,
        json!({"name": "t", "channel": "whatsapp_then_call", "call_after_minutes": 60,
               "template": {"name": "recordatorio", "language": "es", "parameters": ["Cliente", "Monto"]}}),
        1,
        BA,
    )
    .await;
    let t = tick(&h.d).await.expect("tick");
    assert_eq!((t.templates, t.calls), (1, 0));
    let sent = h.outbox.since("5491166000002", 0);
    let body = serde_json::to_value(&sent[0].message).expect("json");
    assert_eq!(body["name"], "recordatorio", "{body}");
    assert_eq!(
        body["components"][0]["parameters"][0]["text"], "Cliente 2",
        "{body}"
    );
    assert_eq!(
        body["components"][0]["parameters"][1]["text"], "200",
        "{body}"
    );
    let conversation = h
        .store
        .recent_messages(&UserId::phone("5491166000002").expect("phone"), 5)
        .await
        .expect("messages");
    assert_eq!(conversation.len(), 1, "the template is in the conversation");
    let c = h
        .campaigns
        .contact(&id, 2)
        .await
        .expect("read")
        .expect("contact");
    assert_eq!(c.state, ContactState::Scheduled);
    assert_eq!(c.next_at_ms, Some(TUESDAY_10AM_BA + 60 * MINUTE));
    assert!(c.attempts[0].reference.is_some(), "the template's wamid");
    // The number's messages are replies to this contact from now on.
    let touch = h
        .campaigns
        .touch_of(&c.phone)
        .await
        .expect("read")
        .expect("touched");
    assert_eq!(
        (touch.campaign_id.as_str(), touch.row, touch.at_ms),
        (id.as_str(), 2, TUESDAY_10AM_BA)
    );
    // Not again at the next tick; the call an hour later.
    assert_eq!(tick(&h.d).await.expect("tick").templates, 0);
    h.clock.advance(60 * MINUTE);
    assert_eq!(tick(&h.d).await.expect("tick").calls, 1);
}

#[tokio::test]
async fn a_campaign_whose_contacts_are_all_done_completes() {
    let h = harness();
    let id = running(&h, json!({"name": "c", "channel": "call"}), 1, BA).await;
    assert_eq!(tick(&h.d).await.expect("tick").calls, 1);
    answered(&h, &id, 2).await;
    assert_eq!(tick(&h.d).await.expect("tick").completed, 1);
    let c = h
        .campaigns
        .campaign(&id)
        .await
        .expect("read")
        .expect("campaign");
    assert_eq!(c.state, CampaignState::Completed);
}

#[tokio::test]
async fn templates_without_a_sender_wait_and_the_campaign_is_reported_stuck() {
    let mut h = harness();
    h.d.sender = None;
    let id = running(
        &h,
        json!({"name": "t", "channel": "whatsapp", "template": {"name": "x", "language": "es"}}),
        1,
        BA,
    )
    .await;
    let t = tick(&h.d).await.expect("tick");
    assert_eq!((t.templates, t.stuck), (0, 1));
    assert_eq!(
        state(&h, &id, 2).await,
        ContactState::Pending,
        "nothing claimed"
    );
}

/// 1,000 contacts across 24 time zones (a half-hour one and both
/// hemispheres' summer time among them), a simulated clock in 15-minute
/// ticks over three days: each contact is dialled once, on a weekday, inside
/// 09:00-20:00 of its own zone, and never more than `max_concurrent` at
/// once.
#[tokio::test]
async fn a_thousand_contacts_in_24_zones_are_each_dialled_inside_their_own_window() {
    const ZONES: [&str; 24] = [
        "Pacific/Pago_Pago",
        "Pacific/Honolulu",
        "America/Anchorage",
        "America/Los_Angeles",
        "America/Denver",
        "America/Mexico_City",
        "America/New_York",
        "America/Halifax",
        "America/Argentina/Buenos_Aires",
        "America/Noronha",
        "Atlantic/Azores",
        "Europe/London",
        "Europe/Madrid",
        "Africa/Cairo",
        "Europe/Moscow",
        "Asia/Dubai",
        "Asia/Kolkata",
        "Asia/Dhaka",
        "Asia/Bangkok",
        "Asia/Shanghai",
        "Asia/Tokyo",
        "Australia/Sydney",
        "Pacific/Noumea",
        "Pacific/Auckland",
    ];
    let mut h = harness();
    h.d.settings.number_calls = 200;
    h.d.settings.batch = 300;
    let id = running_with(
        &h,
        json!({"name": "c", "channel": "call", "max_concurrent": 40,
               "window": "09:00-20:00", "days": ["mon", "tue", "wed", "thu", "fri"]}),
        |id| {
            (0..1000u32)
                .map(|i| contact(id, i + 2, ZONES[i as usize % ZONES.len()]))
                .collect()
        },
    )
    .await;
    let contacts = h
        .campaigns
        .contacts_page(&id, None, 2000)
        .await
        .expect("contacts");
    assert_eq!(contacts.len(), 1000);
    let zone_of: BTreeMap<String, &str> = contacts
        .iter()
        .map(|c| (c.phone.to_string(), c.time_zone.as_str()))
        .collect();
    let mut dialled: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = 0;
    for _ in 0..(3 * 24 * 4) {
        tick(&h.d).await.expect("tick");
        let requests = queued(&h);
        let new = &requests[seen..];
        assert!(new.len() <= 40, "over max_concurrent: {}", new.len());
        for r in new {
            let phone = r.user_id.to_string();
            let zone = zone_of[&phone];
            let local = jiff::Timestamp::from_millisecond(h.clock.now_ms())
                .expect("now")
                .to_zoned(jiff::tz::TimeZone::get(zone).expect("zone"));
            let hour = local.hour();
            assert!(
                (9..20).contains(&hour)
                    && !matches!(
                        local.weekday(),
                        jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
                    ),
                "{phone} in {zone} dialled at {local}"
            );
            *dialled.entry(phone).or_default() += 1;
            let row = r.campaign.as_ref().expect("campaign call").row;
            answered(&h, &id, row).await;
        }
        seen = requests.len();
        h.clock.advance(15 * MINUTE);
    }
    assert_eq!(dialled.len(), 1000, "every contact dialled");
    assert!(dialled.values().all(|n| *n == 1), "each once");
    let counts = h.campaigns.counts(&id).await.expect("counts");
    assert_eq!(counts.get(&ContactState::Answered), Some(&1000));
}
