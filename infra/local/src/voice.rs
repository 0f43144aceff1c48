//! Voice calls on one machine: call-trigger consuming the calls queue (as
//! SQS events, like Lambda), its sweep every few seconds (EventBridge's
//! schedule in AWS), and the voice webhooks' handler.
//!
//! Off, and said so at start, when the provider's settings are missing
//! (VAPI_API_KEY, ...): call requests then wait on their queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use shared::adapters::http::VoiceConfig;
use shared::config::env_parse;
use shared::ports::{AgentRecords, CallRecords, Clock, ConversationStore, MessageSender};
use tokio::sync::watch;
use tracing::warn;

use crate::consumer::Source;

/// What the server needs for voice.
pub struct VoiceWiring {
    pub webhooks: Arc<voice::Deps>,
    pub trigger: Arc<call_trigger::Deps>,
}

pub struct VoicePorts {
    pub store: Arc<dyn ConversationStore>,
    pub records: Arc<dyn AgentRecords>,
    pub calls: Arc<dyn CallRecords>,
    pub sender: Arc<dyn MessageSender>,
    pub clock: Arc<dyn Clock>,
    pub archive: Arc<dyn shared::ports::PayloadArchive>,
}

/// `Ok(None)` when no provider is configured (voice off).
pub fn build(
    ports: VoicePorts,
    profile: &agent::Profile,
    registry: agent::Registry,
) -> shared::Result<Option<VoiceWiring>> {
    let config = VoiceConfig::from_env()?;
    let provider = match call_trigger::provider(&config, profile) {
        Ok(p) => p,
        Err(shared::Error::Config(why)) => {
            eprintln!("  voice:    off ({why})");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    eprintln!(
        "  voice:    {} calls; webhooks at /webhooks/voice/{{vapi,retell}}",
        provider.kind().as_str()
    );
    let trigger = Arc::new(call_trigger::Deps {
        records: ports.records,
        store: ports.store,
        calls: ports.calls,
        provider,
        sender: ports.sender,
        clock: ports.clock,
        settings: call_trigger::settings(profile)?,
    });
    let webhooks = Arc::new(voice::Deps {
        calls: trigger.clone(),
        registry,
        vapi_secret: config.vapi.webhook_secret.clone(),
        retell_key: config.retell.api_key.clone(),
        transfer_to: voice::transfer_target(profile)?,
        archive: ports.archive,
    });
    Ok(Some(VoiceWiring { webhooks, trigger }))
}

/// The calls queue's consumer and the sweep, until `shutdown` turns true.
pub fn spawn(
    source: Source,
    deps: Arc<call_trigger::Deps>,
    shutdown: watch::Receiver<bool>,
) -> shared::Result<Vec<tokio::task::JoinHandle<()>>> {
    let sweep_every = Duration::from_millis(env_parse("CHARLA_CALL_SWEEP_MS", 5_000u64)?.max(100));
    let consumer = {
        let (deps, mut shutdown) = (deps.clone(), shutdown.clone());
        tokio::spawn(async move {
            while !*shutdown.borrow() {
                let jobs = match source.receive(10).await {
                    Ok(jobs) => jobs,
                    Err(e) => {
                        warn!(error = %e, "calls queue: receive failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if jobs.is_empty() {
                    tokio::select! {
                        _ = source.idle() => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
                let mut event = SqsEvent::default();
                for job in &jobs {
                    let mut m = SqsMessage::default();
                    m.message_id = Some(job.receipt.clone());
                    m.receipt_handle = Some(job.receipt.clone());
                    m.body = Some(job.body.clone());
                    m.attributes
                        .insert("MessageGroupId".into(), job.group.clone());
                    event.records.push(m);
                }
                let failed: HashSet<String> = call_trigger::handle_batch(&deps, event)
                    .await
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect();
                for job in jobs {
                    let settled = if failed.contains(&job.receipt) {
                        source.release(&job.receipt, job.receive_count).await
                    } else {
                        source.delete(&job.receipt).await
                    };
                    if let Err(e) = settled {
                        // Not lost: the visibility timeout brings it back.
                        warn!(error = %e, "calls queue: could not settle a message");
                    }
                }
            }
        })
    };
    let sweeper = {
        let mut shutdown = shutdown;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep_every);
            while !*shutdown.borrow() {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = call_trigger::sweep(&deps).await {
                            warn!(error = %e, "call sweep failed; the next one tries again");
                        }
                    }
                    _ = shutdown.changed() => {}
                }
            }
        })
    };
    Ok(vec![consumer, sweeper])
}
