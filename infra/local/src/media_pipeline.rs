//! The media pipeline on one machine: the media function's own steps, run
//! in-process in the state machine's order ([`media::run_local`]) by
//! workers reading a durable local queue. The steps' deps are the media
//! function's own (`media::Deps::new`): the local analysers, or with
//! `--aws` and a media bucket S3 and the AWS analysers (see `wiring`).

use std::sync::Arc;
use std::time::Duration;

use domain::media_pipeline::parse_job;
use domain::Result;
use embedded::{QueueSettings, SqliteQueue};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Settings;

/// How long the in-process runner waits between polls of a long job (the
/// state machine's Wait states).
const POLL_WAIT: Duration = Duration::from_millis(500);

pub struct LocalMedia {
    pub deps: Arc<media::Deps>,
    pub queue: Arc<SqliteQueue>,
}

/// The pipeline's durable queue: one message per execution.
pub fn open(settings: &Settings) -> Result<Arc<SqliteQueue>> {
    let queue = SqliteQueue::open(
        &settings.data_dir.join("queue.db"),
        QueueSettings {
            name: "media".into(),
            delay_ms: 0,
            // A 100 MB document read locally takes a while.
            visibility_timeout_ms: 10 * 60_000,
            max_receives: 5,
        },
    )?;
    Ok(Arc::new(queue))
}

/// Runs `workers` pipeline workers until `shutdown` turns true.
pub fn spawn(
    workers: usize,
    media: &LocalMedia,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|_| {
            let (queue, deps, mut shutdown) =
                (media.queue.clone(), media.deps.clone(), shutdown.clone());
            tokio::spawn(async move {
                while !*shutdown.borrow() {
                    let jobs = match queue.receive(1).await {
                        Ok(jobs) => jobs,
                        Err(e) => {
                            warn!(error = %e, "media receive failed");
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
                    for job in jobs {
                        let ran = match serde_json::from_str::<serde_json::Value>(&job.body)
                            .map_err(domain::Error::from)
                            .and_then(parse_job)
                        {
                            Ok(parsed) => {
                                media::run_local(&deps, parsed, POLL_WAIT).await.map(|_| ())
                            }
                            Err(e) => Err(e),
                        };
                        let settled = match ran {
                            Ok(()) => queue.delete(&job.receipt).await,
                            Err(e) => {
                                // Even `fail` failed (the store or queue is
                                // down): the job comes back, and after
                                // `max_receives` waits in dead letters.
                                warn!(error = %e, "media pipeline failed, will be retried");
                                queue
                                    .release(&job.receipt, 1000u64 << job.receive_count.min(6))
                                    .await
                            }
                        };
                        if let Err(e) = settled {
                            warn!(error = %e, "could not settle a media job");
                        }
                    }
                }
                info!("media worker stopped");
            })
        })
        .collect()
}
