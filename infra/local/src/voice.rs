//! Voice calls on one machine: call-trigger consuming the calls queue (as
//! SQS events, like Lambda), its sweep every few seconds (EventBridge's
//! schedule in AWS), and the voice webhooks' handler.
//!
//! Off, and said so at start, when the provider's settings are missing
//! (VAPI_API_KEY, ...): call requests then wait on their queue.

use std::sync::Arc;
use std::time::Duration;

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
    let mut tasks = {
        let deps = deps.clone();
        crate::consumer::spawn(
            "calls",
            1,
            source,
            move |event| {
                let deps = deps.clone();
                async move { call_trigger::handle_batch(&deps, event).await }
            },
            shutdown.clone(),
        )
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
    tasks.push(sweeper);
    Ok(tasks)
}
