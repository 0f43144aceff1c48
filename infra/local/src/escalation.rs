//! The escalation function on one machine: its consumer tasks (the
//! escalation queue, and the timer queue whose messages become visible after
//! the profile's no-human limit), and the Chatwoot webhook's deps. Chatwoot,
//! SNS and SES are used when their variables are set.

use std::sync::Arc;

use escalation::config::{ChatwootConfig, ChatwootTokens};
use escalation::webhook::WebhookDeps;
use shared::adapters::local::{
    LexiconSentiment, QueueSettings, QueueTimers, SqliteEscalations, SqliteQueue,
};
use shared::config::env_optional;
use shared::ports::{
    AgentRecords, Clock, ConversationStore, EscalationRecords, HumanDesk, MessageSender, Notifier,
    Queue, Timers,
};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::consumer::Source;

pub struct Wiring {
    pub webhook: Arc<WebhookDeps>,
    pub workers: Vec<tokio::task::JoinHandle<()>>,
    pub escalations: Arc<dyn EscalationRecords>,
    /// What the banner says about where people are told.
    pub desk: Option<String>,
    /// Chatwoot when configured: the admin API's release resolves there too.
    pub human_desk: Option<Arc<dyn HumanDesk>>,
}

pub struct Inputs<'a> {
    pub data_dir: &'a std::path::Path,
    pub profile: &'a agent::Profile,
    pub store: Arc<dyn ConversationStore>,
    pub records: Arc<dyn AgentRecords>,
    pub sender: Arc<dyn MessageSender>,
    pub clock: Arc<dyn Clock>,
    /// The escalation queue (local mode); `None` with AWS queues, where the
    /// escalation Lambda consumes them.
    pub queue: Option<Arc<SqliteQueue>>,
    pub call_queue: Arc<dyn Queue>,
    pub admin_base: String,
}

pub async fn wire(input: Inputs<'_>, shutdown: watch::Receiver<bool>) -> shared::Result<Wiring> {
    let mut settings = escalation::Settings::from_profile(input.profile)?;
    settings.admin_conversation_url = Some(format!("{}/admin/conversations/", input.admin_base));
    let escalations: Arc<dyn EscalationRecords> =
        Arc::new(SqliteEscalations::open(&input.data_dir.join("charla.db"))?);
    let tokens = ChatwootTokens::from_env();
    let desk: Option<Arc<dyn HumanDesk>> = match ChatwootConfig::from_env(&tokens)? {
        Some(c) => {
            settings.desk_conversation_url = Some(c.conversation_url());
            Some(Arc::new(c.desk()?))
        }
        None => None,
    };
    let desk_label = env_optional("CHATWOOT_URL").filter(|_| desk.is_some());
    let notifiers = notifiers().await?;
    let webhook = Arc::new(WebhookDeps {
        token: tokens.webhook_token(),
        store: input.store.clone(),
        records: input.records.clone(),
        escalations: escalations.clone(),
        sender: input.sender.clone(),
        clock: input.clock.clone(),
    });
    let Some(queue) = input.queue else {
        warn!("AWS queues: the escalation Lambda consumes the escalation queue, not this process");
        return Ok(Wiring {
            webhook,
            workers: Vec::new(),
            escalations,
            desk: desk_label,
            human_desk: desk,
        });
    };
    let timer_queue = Arc::new(SqliteQueue::open(
        &input.data_dir.join("queue.db"),
        QueueSettings {
            name: "escalation-timers".into(),
            delay_ms: settings.no_human_ms,
            visibility_timeout_ms: 60_000,
            max_receives: 5,
        },
    )?);
    let recovered = queue.recover_in_flight().await? + timer_queue.recover_in_flight().await?;
    if recovered > 0 {
        info!(
            recovered,
            "escalation messages in flight at the last stop are queued again"
        );
    }
    let timers: Arc<dyn Timers> = Arc::new(QueueTimers::new((*timer_queue).clone()));
    let deps = Arc::new(escalation::Deps {
        store: input.store,
        records: input.records,
        escalations: escalations.clone(),
        sentiment: Arc::new(LexiconSentiment),
        notifiers,
        desk: desk.clone(),
        sender: input.sender,
        timers: Some(timers),
        call_queue: Some(input.call_queue),
        clock: input.clock,
        settings,
    });
    let mut workers = spawn("escalations", queue, deps.clone(), shutdown.clone());
    workers.extend(spawn("escalation-timers", timer_queue, deps, shutdown));
    Ok(Wiring {
        webhook,
        workers,
        escalations,
        desk: desk_label,
        human_desk: desk,
    })
}

/// SNS (`CHARLA_ESCALATION_TOPIC_ARN`) and SES (`CHARLA_SES_FROM`,
/// `CHARLA_SES_TO`) when set, on the AWS endpoints of the environment.
async fn notifiers() -> shared::Result<Vec<Arc<dyn Notifier>>> {
    let topic = env_optional("CHARLA_ESCALATION_TOPIC_ARN").filter(|s| !s.is_empty());
    let ses = env_optional("CHARLA_SES_FROM")
        .filter(|s| !s.is_empty())
        .zip(env_optional("CHARLA_SES_TO").filter(|s| !s.is_empty()));
    let mut out: Vec<Arc<dyn Notifier>> = Vec::new();
    if topic.is_none() && ses.is_none() {
        return Ok(out);
    }
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    if let Some(topic) = topic {
        out.push(Arc::new(shared::adapters::aws::SnsNotifier::new(
            aws_sdk_sns::Client::new(&config),
            topic,
        )));
    }
    if let Some((from, to)) = ses {
        let to = to.split(',').map(|s| s.trim().to_string()).collect();
        out.push(Arc::new(shared::adapters::aws::SesNotifier::new(
            aws_sdk_sesv2::Client::new(&config),
            from,
            to,
        )?));
    }
    Ok(out)
}

/// One consumer of `queue` for the escalation function's batch handler.
fn spawn(
    name: &'static str,
    queue: Arc<SqliteQueue>,
    deps: Arc<escalation::Deps>,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    crate::consumer::spawn(
        name,
        1,
        Source::Local(queue),
        move |event| {
            let deps = deps.clone();
            async move { escalation::handle_batch(&deps, event).await }
        },
        shutdown,
    )
}
