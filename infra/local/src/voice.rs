//! Voice calls on one machine: call-trigger consuming the calls queue (as
//! SQS events, like Lambda) and its sweep every few seconds (EventBridge's
//! schedule in AWS). The deps are the voice function's own (see `wiring`);
//! voice is off, and said so at start, when no provider is configured
//! (VAPI_API_KEY, ...): call requests then wait on their queue.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::warn;

use crate::consumer::Source;

/// The calls queue's consumer and the sweep, until `shutdown` turns true.
pub fn spawn(
    source: Source,
    deps: Arc<call_lifecycle::Deps>,
    sweep_ms: u64,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let sweep_every = Duration::from_millis(sweep_ms);
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
                        if let Err(e) = call_lifecycle::sweep(&deps).await {
                            warn!(error = %e, "call sweep failed; the next one tries again");
                        }
                    }
                    _ = shutdown.changed() => {}
                }
            }
        })
    };
    tasks.push(sweeper);
    tasks
}
