//! The agent's own time per turn, outside the model call: profile, memory,
//! language, playbook, tools (SQLite store, the demo knowledge index and
//! customers file) and shaping. The model is scripted and answers at once;
//! its time is subtracted anyway. Prints p50 and p99 per scenario.
//!
//!     cargo bench -p agent --bench turn

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::agent::{Agent, Profile, ToolDeps};
use domain::ports::{ChatModel, ConversationStore, SystemClock, TurnInput};
use domain::*;
use embedded::SqliteStore;
use knowledge::{CsvCustomers, LocalKnowledgeBase};
use serde_json::json;
use test_support::memory::MemoryQueue;
use test_support::scripted_model::{text_reply, tool_reply, tool_results, ScriptedModel};

const TURNS: usize = 2000;

fn demo(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../profiles/demo")
        .join(file)
}

fn agent(store: Arc<SqliteStore>, model: Option<Arc<dyn ChatModel>>) -> Agent {
    let profile = Arc::new(Profile::load(&demo("agent.toml")).expect("profile"));
    Agent::new(
        profile,
        ToolDeps {
            knowledge: Some(Arc::new(
                LocalKnowledgeBase::open(&demo("knowledge")).expect("knowledge"),
            )),
            customers: Some(Arc::new(
                CsvCustomers::open(&demo("customers.csv")).expect("customers"),
            )),
            lead_sink: None,
            records: store,
            call_queue: Arc::new(MemoryQueue::default()),
            escalation_queue: Arc::new(MemoryQueue::default()),
            clock: Arc::new(SystemClock),
        },
        model,
    )
}

fn message(i: usize, direction: Direction, text: &str) -> StoredMessage {
    StoredMessage {
        wamid: format!("wamid.{i}"),
        direction,
        kind: "text".into(),
        text: text.into(),
        at_ms: i as i64,
        delivery: None,
        delivery_at_ms: None,
        error_code: None,
        answered: direction == Direction::Inbound,
        starts_turn: direction == Direction::Inbound,
    }
}

async fn turn(store: &SqliteStore, i: usize, text: &str) -> TurnInput {
    let user_id = UserId::parse(&format!("54911{:08}", i % 1000)).expect("wa id");
    let wamid = format!("wamid.bench{i}");
    store
        .record_inbound(&NewInbound {
            wamid: wamid.clone(),
            user_id: user_id.clone(),
            phone_number_id: "1065".into(),
            contact_name: Some("Ana".into()),
            kind: "text".into(),
            text: text.into(),
            payload: json!({}),
            sent_at_ms: 0,
            received_at_ms: 0,
            starts_turn: true,
        })
        .await
        .expect("record");
    let conversation = store
        .conversation(&user_id)
        .await
        .expect("conversation")
        .expect("exists");
    // Twenty earlier messages, as a returning customer has.
    let history = (0..20)
        .map(|k| {
            let d = if k % 2 == 0 {
                Direction::Inbound
            } else {
                Direction::Outbound
            };
            message(k, d, "una pregunta anterior sobre envíos y planes")
        })
        .collect();
    TurnInput {
        turn_id: wamid.clone(),
        conversation,
        new_messages: vec![message(100, Direction::Inbound, text)],
        history,
        phone: Some(user_id),
        context: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn scenario(name: &str, agent: &Agent, store: &SqliteStore, text: &str) {
    let mut own = Vec::with_capacity(TURNS);
    for i in 0..TURNS + 100 {
        let input = turn(store, i + name.len() * 100_000, text).await;
        let started = Instant::now();
        let (_, report) = agent.answer(&input).await.expect("answer");
        let spent = started.elapsed().saturating_sub(report.model_time);
        if i >= 100 {
            own.push(spent);
        }
    }
    own.sort();
    println!(
        "{name:<34} p50 {:>8.1} µs   p99 {:>8.1} µs   ({TURNS} turns)",
        percentile(&own, 0.50).as_secs_f64() * 1e6,
        percentile(&own, 0.99).as_secs_f64() * 1e6,
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
        let local = agent(store.clone(), None);
        scenario(
            "playbook: FAQ from the index",
            &local,
            &store,
            "¿Cuáles son los horarios?",
        )
        .await;
        scenario(
            "playbook: customer by DNI",
            &local,
            &store,
            "mi dni es 30.123.456",
        )
        .await;
        scenario(
            "no model: fallback",
            &local,
            &store,
            "¿venden repuestos para tractores?",
        )
        .await;

        let one_tool: Arc<dyn ChatModel> = Arc::new(ScriptedModel::new(|req| {
            Ok(if tool_results(req).is_empty() {
                tool_reply("t1", "kb_search", json!({"query": "devoluciones"}))
            } else {
                text_reply(
                    "Podés devolverlo dentro de los 30 días.\n- Sí, gracias\n- Otra pregunta",
                )
            })
        }));
        let with_model = agent(store.clone(), Some(one_tool));
        scenario(
            "model: kb_search then answer",
            &with_model,
            &store,
            "¿puedo devolver algo que compré?",
        )
        .await;
        let plain: Arc<dyn ChatModel> =
            Arc::new(ScriptedModel::new(|_| Ok(text_reply("Claro, te cuento."))));
        let with_model = agent(store.clone(), Some(plain));
        scenario(
            "model: plain answer",
            &with_model,
            &store,
            "contame algo de ustedes",
        )
        .await;
    });
}
