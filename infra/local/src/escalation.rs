//! The escalation function on one machine: its consumer tasks (the
//! escalation queue, and the timer queue whose messages become visible after
//! the profile's no-human limit), and the Chatwoot webhook's deps. Chatwoot,
//! SNS and SES are used when their variables are set.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
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
    let workers = vec![
        spawn(queue, deps.clone(), shutdown.clone()),
        spawn(timer_queue, deps, shutdown),
    ];
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

/// One consumer task: receive, hand the batch to the Lambda handler as an
/// SQS event, delete what succeeded, release what failed with a backoff.
fn spawn(
    queue: Arc<SqliteQueue>,
    deps: Arc<escalation::Deps>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !*shutdown.borrow() {
            let jobs = match queue.receive(10).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    warn!(error = %e, "escalation receive failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if jobs.is_empty() {
                tokio::select! {
                    _ = queue.wait(Duration::from_millis(500)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut event = SqsEvent::default();
            for job in &jobs {
                let mut m = SqsMessage::default();
                m.message_id = Some(job.receipt.clone());
                m.body = Some(job.body.clone());
                m.attributes
                    .insert("MessageGroupId".to_string(), job.group_id.clone());
                event.records.push(m);
            }
            let response = escalation::handle_batch(&deps, event).await;
            let failed: std::collections::HashSet<String> = response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect();
            for job in jobs {
                let result = if failed.contains(&job.receipt) {
                    let delay = 250u64.saturating_mul(1 << job.receive_count.min(6));
                    queue.release(&job.receipt, delay).await.map(|_| ())
                } else {
                    queue.delete(&job.receipt).await.map(|_| ())
                };
                if let Err(e) = result {
                    // Not lost: the visibility timeout brings it back.
                    warn!(error = %e, "could not settle an escalation message");
                }
            }
        }
    })
}
