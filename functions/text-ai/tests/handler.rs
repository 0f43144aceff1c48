//! text-ai's handler with the local store, a scripted responder and a
//! recording sender that can fail the way the Graph API does.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use domain::ports::{Clock, ConversationStore, MessageSender, Responder, SystemClock, TurnInput};
use domain::whatsapp::errors::GraphErrorClass;
use domain::whatsapp::outbound::OutboundMessage;
use domain::{Error, Result};
use domain::{NewInbound, TurnJob, UserId, WINDOW_MS};
use embedded::SqliteStore;
use test_support::memory::{MemoryQueue, MemoryUsage};
use text_ai::{handle_batch, handle_job, Deps, Outcome, Settings};

const USER: &str = "5491155551234";
const PHONE: &str = "106540352242922";

#[derive(Default)]
struct RecordingSender {
    sent: Mutex<Vec<(String, OutboundMessage)>>,
    reads: Mutex<Vec<String>>,
    /// Errors to return, in order, before succeeding.
    failures: Mutex<VecDeque<Error>>,
}

impl RecordingSender {
    fn fail_next(&self, e: Error) {
        self.failures.lock().expect("lock").push_back(e);
    }
    fn sent(&self) -> Vec<(String, OutboundMessage)> {
        self.sent.lock().expect("lock").clone()
    }
}

#[async_trait]
impl MessageSender for RecordingSender {
    async fn send(
        &self,
        _phone: &str,
        to: &UserId,
        msg: &OutboundMessage,
        _reply_to: Option<&str>,
    ) -> Result<String> {
        if let Some(e) = self.failures.lock().expect("lock").pop_front() {
            return Err(e);
        }
        let mut sent = self.sent.lock().expect("lock");
        sent.push((to.to_string(), msg.clone()));
        Ok(format!("wamid.OUT{}", sent.len()))
    }
    async fn mark_read(&self, _phone: &str, wamid: &str, _typing: bool) -> Result<()> {
        self.reads.lock().expect("lock").push(wamid.to_string());
        Ok(())
    }
}

/// Answers every turn with the given parts, and remembers what it saw.
struct Scripted {
    parts: Vec<OutboundMessage>,
    seen: Mutex<Vec<TurnInput>>,
}

#[async_trait]
impl Responder for Scripted {
    async fn respond(&self, turn: &TurnInput) -> Result<Vec<OutboundMessage>> {
        self.seen.lock().expect("lock").push(turn.clone());
        Ok(self.parts.clone())
    }
}

/// Answers every turn with one text (the agent has its own suite).
fn one_answer() -> Arc<dyn Responder> {
    Arc::new(Scripted {
        parts: vec![text("¡Hola! ¿En qué te ayudo?")],
        seen: Mutex::new(Vec::new()),
    })
}

fn text(s: &str) -> OutboundMessage {
    OutboundMessage::Text { body: s.into() }
}

struct H {
    deps: Deps,
    store: Arc<SqliteStore>,
    sender: Arc<RecordingSender>,
    usage: Arc<MemoryUsage>,
}

fn harness(responder: Arc<dyn Responder>, settings: Settings) -> H {
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let sender = Arc::new(RecordingSender::default());
    let usage = Arc::new(MemoryUsage::default());
    H {
        deps: Deps {
            store: store.clone(),
            identities: store.clone(),
            campaigns: None,
            sender: sender.clone(),
            responder,
            escalation_queue: Arc::new(MemoryQueue::default()),
            media: Default::default(),
            usage: usage.clone(),
            clock: Arc::new(SystemClock),
            settings,
        },
        store,
        sender,
        usage,
    }
}

fn quick() -> Settings {
    Settings {
        debounce_ms: 0,
        ..Default::default()
    }
}

fn wa() -> UserId {
    UserId::parse(USER).expect("wa id")
}

async fn user_says(store: &SqliteStore, wamid: &str, body: &str, at_ms: i64) -> TurnJob {
    let msg = NewInbound {
        wamid: wamid.into(),
        user_id: wa(),
        phone_number_id: PHONE.into(),
        contact_name: Some("Ana".into()),
        kind: "text".into(),
        text: body.into(),
        payload: serde_json::json!({}),
        sent_at_ms: at_ms,
        received_at_ms: at_ms,
        starts_turn: true,
    };
    store.record_inbound(&msg).await.expect("record");
    TurnJob {
        phone_number_id: PHONE.into(),
        user_id: wa(),
        wamid: wamid.into(),
        received_at_ms: at_ms,
    }
}

fn now() -> i64 {
    SystemClock.now_ms()
}

#[tokio::test]
async fn a_message_is_answered_and_a_redelivery_is_not_answered_again() {
    let h = harness(one_answer(), quick());
    let job = user_says(&h.store, "wamid.A", "hola", now()).await;
    let outcome = handle_job(&h.deps, &job).await.expect("answered");
    assert_eq!(outcome, Outcome::Answered { parts: 1 });
    assert_eq!(h.sender.reads.lock().expect("lock").as_slice(), ["wamid.A"]);
    for _ in 0..3 {
        assert_eq!(
            handle_job(&h.deps, &job).await.expect("ok"),
            Outcome::AlreadyAnswered
        );
    }
    assert_eq!(h.sender.sent().len(), 1);
    assert!(h
        .store
        .pending_inbound(&wa())
        .await
        .expect("pending")
        .is_empty());
    let transcript = h
        .store
        .transcript(&wa(), 10, None)
        .await
        .expect("transcript");
    assert_eq!(transcript.items.len(), 2, "the question and the answer");
}

/// The numbers and costs: an answered turn is counted once, with what it
/// sent; a redelivery adds nothing.
#[tokio::test]
async fn an_answered_turn_records_its_usage_once() {
    let responder = Arc::new(Scripted {
        parts: vec![text("one"), text("two")],
        seen: Mutex::new(Vec::new()),
    });
    let h = harness(responder, quick());
    let job = user_says(&h.store, "wamid.U", "hola", now()).await;
    handle_job(&h.deps, &job).await.expect("answered");
    handle_job(&h.deps, &job).await.expect("redelivered");
    let events = h.usage.all();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.id, "turn:wamid.U");
    assert_eq!(e.user_id, wa());
    assert_eq!(e.counters["turns"], 1);
    assert_eq!(e.counters["messages_sent"], 2);
    assert_eq!(
        e.counters["via.other"], 1,
        "a responder that does not say who answered"
    );
    assert!(e.log.as_ref().and_then(|l| l.latency_ms).is_some());
}

#[tokio::test]
async fn a_burst_is_answered_once_with_every_message_in_view() {
    let responder = Arc::new(Scripted {
        parts: vec![text("one answer")],
        seen: Mutex::new(Vec::new()),
    });
    let h = harness(
        responder.clone(),
        Settings {
            debounce_ms: 300,
            ..Default::default()
        },
    );
    let first = user_says(&h.store, "wamid.B1", "hola", now()).await;
    let deps = Arc::new(h.deps);
    let running = {
        let deps = deps.clone();
        tokio::spawn(async move { handle_job(&deps, &first).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let second = user_says(&h.store, "wamid.B2", "quiero saber", now()).await;
    let third = user_says(&h.store, "wamid.B3", "los precios", now()).await;
    let outcome = running.await.expect("join").expect("answered");
    assert_eq!(outcome, Outcome::Answered { parts: 1 });
    for job in [second, third] {
        assert_eq!(
            handle_job(&deps, &job).await.expect("ok"),
            Outcome::AlreadyAnswered
        );
    }
    assert_eq!(h.sender.sent().len(), 1);
    let seen = responder.seen.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    let texts: Vec<&str> = seen[0]
        .new_messages
        .iter()
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(texts, ["hola", "quiero saber", "los precios"]);
}

#[tokio::test]
async fn a_retry_after_a_failed_send_sends_only_the_parts_not_yet_sent() {
    let responder = Arc::new(Scripted {
        parts: vec![text("part one"), text("part two"), text("part three")],
        seen: Mutex::new(Vec::new()),
    });
    let h = harness(responder.clone(), quick());
    let job = user_says(&h.store, "wamid.C", "hola", now()).await;
    // Part one goes out, part two meets a retryable failure (the Graph
    // client's own retries ran out): the job fails and the queue retries.
    let retryable = Error::Graph {
        code: 131000,
        message: "something went wrong".into(),
        class: GraphErrorClass::Retry,
    };
    assert!(handle_part_then_fail(&h, &job, retryable).await.is_err());
    let outcome = handle_job(&h.deps, &job).await.expect("answered on retry");
    assert_eq!(outcome, Outcome::Answered { parts: 2 });
    let bodies: Vec<String> = h
        .sender
        .sent()
        .into_iter()
        .map(|(_, m)| m.summary())
        .collect();
    assert_eq!(bodies, ["part one", "part two", "part three"]);
    // The responder was asked again on the retry, but the recorded answer won.
    assert_eq!(
        h.store
            .transcript(&wa(), 10, None)
            .await
            .expect("t")
            .items
            .len(),
        4
    );
}

/// Runs the job with a sender that accepts one part and then fails with `e`.
async fn handle_part_then_fail(h: &H, job: &TurnJob, e: Error) -> Result<Outcome> {
    struct OneThenFail {
        inner: Arc<RecordingSender>,
        calls: Mutex<u32>,
        error: Mutex<Option<Error>>,
    }
    #[async_trait]
    impl MessageSender for OneThenFail {
        async fn send(
            &self,
            p: &str,
            to: &UserId,
            m: &OutboundMessage,
            r: Option<&str>,
        ) -> Result<String> {
            let n = {
                let mut c = self.calls.lock().expect("lock");
                *c += 1;
                *c
            };
            if n == 2 {
                if let Some(e) = self.error.lock().expect("lock").take() {
                    return Err(e);
                }
            }
            self.inner.send(p, to, m, r).await
        }
        async fn mark_read(&self, p: &str, w: &str, t: bool) -> Result<()> {
            self.inner.mark_read(p, w, t).await
        }
    }
    let deps = Deps {
        store: h.deps.store.clone(),
        identities: h.deps.identities.clone(),
        campaigns: None,
        sender: Arc::new(OneThenFail {
            inner: h.sender.clone(),
            calls: Mutex::new(0),
            error: Mutex::new(Some(e)),
        }),
        responder: h.deps.responder.clone(),
        escalation_queue: h.deps.escalation_queue.clone(),
        media: h.deps.media.clone(),
        usage: h.deps.usage.clone(),
        clock: h.deps.clock.clone(),
        settings: h.deps.settings.clone(),
    };
    handle_job(&deps, job).await
}

#[tokio::test]
async fn a_final_graph_error_is_recorded_and_not_retried() {
    let h = harness(one_answer(), quick());
    let job = user_says(&h.store, "wamid.D", "hola", now()).await;
    h.sender.fail_next(Error::Graph {
        code: 131026,
        message: "undeliverable".into(),
        class: GraphErrorClass::from_code(131026),
    });
    assert_eq!(
        handle_job(&h.deps, &job).await.expect("ok"),
        Outcome::GaveUp { code: 131026 }
    );
    assert_eq!(
        handle_job(&h.deps, &job).await.expect("ok"),
        Outcome::AlreadyAnswered
    );
    assert!(h.sender.sent().is_empty());
}

#[tokio::test]
async fn outside_the_window_the_reengagement_template_goes_out_instead() {
    let settings = Settings {
        debounce_ms: 0,
        reengage_template: Some(("hello_world".into(), "en_US".into())),
        ..Default::default()
    };
    let h = harness(one_answer(), settings);
    let job = user_says(&h.store, "wamid.E", "hola", now()).await;
    h.sender.fail_next(Error::Graph {
        code: 131047,
        message: "re-engagement message".into(),
        class: GraphErrorClass::from_code(131047),
    });
    assert_eq!(
        handle_job(&h.deps, &job).await.expect("ok"),
        Outcome::GaveUp { code: 131047 }
    );
    let sent = h.sender.sent();
    assert_eq!(sent.len(), 1);
    assert!(matches!(&sent[0].1, OutboundMessage::Template { name, .. } if name == "hello_world"));
    let conv = h
        .store
        .conversation(&wa())
        .await
        .expect("store")
        .expect("conv");
    assert!(conv.window_closed);
}

#[tokio::test]
async fn a_turn_older_than_24_hours_gets_the_template_not_free_text() {
    let settings = Settings {
        debounce_ms: 0,
        reengage_template: Some(("hello_world".into(), "en_US".into())),
        ..Default::default()
    };
    let h = harness(one_answer(), settings);
    let job = user_says(&h.store, "wamid.F", "hola", now() - WINDOW_MS - 1000).await;
    assert_eq!(
        handle_job(&h.deps, &job).await.expect("ok"),
        Outcome::Answered { parts: 1 }
    );
    assert!(matches!(
        h.sender.sent()[0].1,
        OutboundMessage::Template { .. }
    ));
}

fn sqs_record(id: &str, group: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.body = Some(body.into());
    m.attributes.insert("MessageGroupId".into(), group.into());
    m
}

#[tokio::test]
async fn the_sample_sqs_event_is_answered() {
    let h = harness(one_answer(), quick());
    let event: SqsEvent =
        serde_json::from_str(include_str!("../../../events/sqs/text_turn.json")).expect("event");
    let job: TurnJob =
        serde_json::from_str(event.records[0].body.as_deref().expect("body")).expect("job");
    user_says(&h.store, &job.wamid, "hola", now()).await;
    let resp = handle_batch(&h.deps, event).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(h.sender.sent().len(), 1);
}

#[tokio::test]
async fn a_malformed_job_fails_alone_and_later_jobs_of_its_group_wait() {
    let h = harness(one_answer(), quick());
    let other = UserId::parse("5491166667777").expect("wa");
    let ok_job = user_says(&h.store, "wamid.G", "hola", now()).await;
    let msg = NewInbound {
        wamid: "wamid.H".into(),
        user_id: other.clone(),
        phone_number_id: PHONE.into(),
        contact_name: None,
        kind: "text".into(),
        text: "hola".into(),
        payload: serde_json::json!({}),
        sent_at_ms: now(),
        received_at_ms: now(),
        starts_turn: true,
    };
    h.store.record_inbound(&msg).await.expect("record");
    let other_job = TurnJob {
        phone_number_id: PHONE.into(),
        user_id: other,
        wamid: "wamid.H".into(),
        received_at_ms: now(),
    };
    let mut event = SqsEvent::default();
    event.records = vec![
        sqs_record("1", "g1", "{not a job"),
        sqs_record("2", "g1", &serde_json::to_string(&ok_job).expect("json")),
        sqs_record("3", "g2", &serde_json::to_string(&other_job).expect("json")),
    ];
    let resp = handle_batch(&h.deps, event).await;
    let failed: Vec<String> = resp
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert_eq!(failed, ["1", "2"], "the group stops at its first failure");
    let sent_to: Vec<String> = h.sender.sent().into_iter().map(|(to, _)| to).collect();
    assert_eq!(sent_to, ["5491166667777"]);
}

/// "BAJA" puts the number on the do-not-contact list every campaign checks,
/// and the answer says so in the user's language; the agent never sees it.
#[tokio::test]
async fn an_opt_out_message_puts_the_number_on_the_do_not_contact_list() {
    use domain::ports::CampaignStore;
    let responder = Arc::new(Scripted {
        parts: vec![text("la respuesta del agente")],
        seen: Mutex::new(Vec::new()),
    });
    let mut h = harness(responder.clone(), quick());
    let campaigns = Arc::new(embedded::SqliteCampaigns::open_in_memory().expect("campaigns"));
    h.deps.campaigns = Some(campaigns.clone());
    let job = user_says(&h.store, "wamid.OPT1", "BAJA por favor", now()).await;
    assert_eq!(
        handle_job(&h.deps, &job).await.expect("answered"),
        Outcome::Answered { parts: 1 }
    );
    let listed = campaigns
        .opted_out(&wa())
        .await
        .expect("read")
        .expect("listed");
    assert_eq!(listed.source, "whatsapp");
    assert_eq!(listed.reason, "BAJA por favor");
    let sent = h.sender.sent();
    assert!(
        matches!(&sent[0].1, OutboundMessage::Text { body } if body.contains("no te vamos a llamar")),
        "{sent:?}"
    );
    assert!(
        responder.seen.lock().expect("lock").is_empty(),
        "the agent never saw it"
    );
    // A sentence that merely holds the word is an ordinary turn.
    let job = user_says(
        &h.store,
        "wamid.OPT2",
        "no puedo parar de reír con el video",
        now(),
    )
    .await;
    handle_job(&h.deps, &job).await.expect("answered");
    assert_eq!(responder.seen.lock().expect("lock").len(), 1);
    // The business's own phrase (the profile's `[campaigns] opt_out_words`),
    // answered in its language.
    h.deps.settings.opt_out_words = vec![("en".into(), "remove me from your list".into())];
    let job = user_says(&h.store, "wamid.OPT3", "Remove me from your list!", now()).await;
    handle_job(&h.deps, &job).await.expect("answered");
    let sent = h.sender.sent();
    assert!(
        matches!(&sent.last().expect("sent").1, OutboundMessage::Text { body } if body.contains("won't call")),
        "{sent:?}"
    );
    assert_eq!(responder.seen.lock().expect("lock").len(), 1);
}

/// A reply to a `whatsapp_then_call` campaign's template: recorded on the
/// contact once (a redelivered job adds nothing), the call brought forward,
/// and the agent told which campaign reached the user.
#[tokio::test]
async fn a_reply_to_a_campaign_is_the_campaigns_and_the_agent_knows_it() {
    use domain::campaign::{Attempt, Campaign, CampaignContact, ContactState, Touch};
    use domain::ports::CampaignStore;
    let responder = Arc::new(Scripted {
        parts: vec![text("la respuesta del agente")],
        seen: Mutex::new(Vec::new()),
    });
    let mut h = harness(responder.clone(), quick());
    let campaigns = Arc::new(embedded::SqliteCampaigns::open_in_memory().expect("campaigns"));
    h.deps.campaigns = Some(campaigns.clone());
    let t0 = now() - 60_000;
    let spec = serde_json::from_value(serde_json::json!({
        "name": "Cobranza noviembre", "channel": "whatsapp_then_call",
        "template": {"name": "aviso_deuda", "language": "es", "parameters": ["monto"]},
        "window": "always", "days": ["mon","tue","wed","thu","fri","sat","sun"]
    }))
    .expect("spec");
    let campaign = Campaign::draft("camp1", spec, t0);
    campaigns.create_campaign(&campaign).await.expect("create");
    let mut contact = CampaignContact {
        campaign_id: "camp1".into(),
        row: 4,
        phone: wa(),
        name: Some("Ana".into()),
        time_zone: "America/Argentina/Buenos_Aires".into(),
        language: Some("es".into()),
        variables: [("monto".to_string(), "$ 12.500".to_string())].into(),
        state: ContactState::Pending,
        next_at_ms: Some(t0),
        attempts: vec![],
        replies: vec![],
        version: 1,
    };
    assert!(campaigns
        .replace_contacts("camp1", "u1", std::slice::from_ref(&contact), t0)
        .await
        .expect("upload"));
    // The dispatcher sent the template: the call waits a day.
    contact = contact.next();
    contact.state = ContactState::Scheduled;
    let day_later = t0 + 24 * 3_600_000;
    contact.next_at_ms = Some(day_later);
    contact.attempts.push(Attempt::new("whatsapp", t0));
    assert!(campaigns.update_contact(&contact).await.expect("moved"));
    campaigns
        .touch(&Touch {
            phone: wa(),
            campaign_id: "camp1".into(),
            row: 4,
            at_ms: t0,
        })
        .await
        .expect("touch");

    let job = user_says(&h.store, "wamid.CR1", "¿Cuánto debo exactamente?", now()).await;
    handle_job(&h.deps, &job).await.expect("answered");
    let stored = campaigns
        .contact("camp1", 4)
        .await
        .expect("read")
        .expect("contact");
    let texts: Vec<&str> = stored.replies.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["¿Cuánto debo exactamente?"]);
    assert_eq!(stored.state, ContactState::Scheduled);
    let due = stored.next_at_ms.expect("due");
    assert!(due < day_later && due <= now(), "brought forward: {due}");
    let seen = responder.seen.lock().expect("lock").clone();
    let context = seen[0].context.clone().expect("campaign context");
    assert!(context.contains("Cobranza noviembre"), "{context}");
    assert!(context.contains("monto: $ 12.500"), "{context}");

    // The same job again (a redelivery): the reply is not recorded twice.
    handle_job(&h.deps, &job).await.expect("redelivered");
    let again = campaigns
        .contact("camp1", 4)
        .await
        .expect("read")
        .expect("contact");
    assert_eq!(again.replies.len(), 1);

    // A late write of an older touch changes nothing: the next message is
    // still a reply.
    campaigns
        .touch(&Touch {
            phone: wa(),
            campaign_id: "camp1".into(),
            row: 4,
            at_ms: now() - domain::campaign::REPLY_WINDOW_MS - 60_000,
        })
        .await
        .expect("touch");
    let job = user_says(&h.store, "wamid.CR2", "gracias", now()).await;
    handle_job(&h.deps, &job).await.expect("answered");
    assert_eq!(
        campaigns
            .contact("camp1", 4)
            .await
            .expect("read")
            .expect("contact")
            .replies
            .len(),
        2
    );
}
