//! The webhook journal's applier: what ingestion keeps in the journal
//! before its 200 (see `ingestion::Deps::intake`) is processed here, in the
//! order it came, by ingestion's own [`ingestion::process`], a batch at a
//! time. An entry is marked applied only after its batch was processed; a
//! crash in between has the batch processed again, which ingestion's dedup
//! makes harmless.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use domain::Error;
use embedded::{Entry, Journal, SqliteQueue};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, warn};

/// Webhooks processed together at most. Their store calls share the SQLite
/// group commits; a few hundred keep a batch's work to milliseconds.
const BATCH: usize = 256;

/// Retries of a batch that failed for a passing reason (a busy or failing
/// disk): never given up, at most this long apart.
fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
}

/// How often the turns waiting are looked at.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// Applies the journal until `stop`; the batch under way is finished first.
///
/// While more than `turns_at_most` turns wait in `turns` (a flood's
/// backlog; `CHARLA_TURNS_WAITING_AT_MOST`, by default 10,000: about ten
/// seconds of answering at Meta's highest tier on a few numbers), it holds
/// back: the backlog waits in the journal, which is cheaper to keep than
/// queued turns, answering gets the CPU, and once the journal is full Meta
/// is told to come back later (503), rather than the queue growing without
/// bound.
pub fn spawn(
    journal: Journal,
    deps: Arc<ingestion::Deps>,
    turns: Option<Arc<SqliteQueue>>,
    turns_at_most: u64,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut looked = tokio::time::Instant::now();
        loop {
            if let Some(turns) = &turns {
                if looked.elapsed() >= LOOK_EVERY {
                    while turns.more_than(turns_at_most).await.unwrap_or(false) {
                        tokio::select! {
                            _ = stop.changed() => return,
                            _ = tokio::time::sleep(LOOK_EVERY) => {}
                        }
                    }
                    looked = tokio::time::Instant::now();
                }
            }
            let batch = tokio::select! {
                _ = stop.changed() => return,
                batch = journal.next(BATCH) => batch,
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    error!(error = %e, "webhook journal: reading failed; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some(last) = batch.last().map(|e| e.end) else {
                continue;
            };
            apply(&deps, &batch).await;
            if let Err(e) = journal.applied(last) {
                // Not lost: the batch is processed again after a restart.
                error!(error = %e, "webhook journal: the applied position was not saved");
            }
        }
    })
}

/// Processes `batch`, retrying what failed for a passing reason. A failure
/// that will not pass is one webhook's: each is then processed alone, and
/// one that still fails is kept in quarantine with the reason, for `local
/// replay`.
async fn apply(deps: &ingestion::Deps, batch: &[Entry]) {
    let all = webhooks(batch);
    let together = (|| ingestion::process(deps, &all))
        .retry(backoff())
        .when(Error::is_retryable)
        .notify(|e, after| warn!(error = %e, ?after, "webhooks not processed yet; retrying"))
        .await;
    let Err(e) = together else { return };
    warn!(error = %e, webhooks = batch.len(), "a batch of webhooks failed; processing them one by one");
    for entry in batch {
        let one = webhooks(std::slice::from_ref(entry));
        let alone = (|| ingestion::process(deps, &one))
            .retry(backoff())
            .when(Error::is_retryable)
            .await;
        if let Err(e) = alone {
            let reason = format!("accepted but could not be processed: {e}");
            let kept = (|| ingestion::quarantine(deps, &entry.body, &reason))
                .retry(backoff())
                .when(Error::is_retryable)
                .await;
            match kept {
                Ok(()) => {
                    error!(error = %e, "an accepted webhook could not be processed; quarantined")
                }
                Err(lost) => {
                    error!(error = %lost, cause = %e, "a webhook could be neither processed nor quarantined")
                }
            }
        }
    }
}

fn webhooks(batch: &[Entry]) -> Vec<ingestion::Webhook<'_>> {
    batch
        .iter()
        .map(|e| ingestion::Webhook {
            body: &e.body,
            received_at_ms: e.at_ms,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use domain::ports::{ArchiveKind, Queue, QueueMessage, WebhookIntake};
    use domain::Result;
    use embedded::{JournalSettings, SqliteStore};
    use runtime::config::WhatsAppSecrets;
    use test_support::memory::{FixedClock, MemoryArchive, MemoryQueue};

    /// Refuses one wamid for good, and the first send of another once, as
    /// a busy disk would.
    #[derive(Default)]
    struct Picky {
        inner: MemoryQueue,
        failed_once: AtomicBool,
    }

    #[async_trait]
    impl Queue for Picky {
        async fn send(&self, msg: &QueueMessage) -> Result<()> {
            match msg.dedup_id.as_str() {
                "wamid.BROKEN" => Err(Error::Invalid("refused for good".into())),
                "wamid.BUSY" if !self.failed_once.swap(true, Ordering::SeqCst) => {
                    Err(Error::dependency("queue", "send", true, "busy"))
                }
                _ => self.inner.send(msg).await,
            }
        }
    }

    fn text(from: &str, wamid: &str) -> bytes::Bytes {
        let webhook = crate::meta::message_webhook(
            from,
            "Test",
            crate::meta::text_message(from, wamid, "hola"),
        );
        serde_json::to_vec(&webhook).expect("json").into()
    }

    #[tokio::test]
    async fn the_applier_processes_in_order_retries_what_may_pass_and_quarantines_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path(), JournalSettings::default()).expect("journal");
        let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
        let queue = Arc::new(Picky::default());
        let archive = Arc::new(MemoryArchive::default());
        let deps = Arc::new(ingestion::Deps {
            secrets: WhatsAppSecrets::new("s".into(), "v".into(), None).expect("secrets"),
            store: store.clone(),
            identities: store,
            campaigns: None,
            queue: queue.clone(),
            archive: archive.clone(),
            clock: Arc::new(FixedClock::at(1_000)),
            media: None,
            intake: None,
        });
        let bodies = [
            text("5491100000001", "wamid.OK"),
            text("5491100000002", "wamid.BROKEN"),
            text("5491100000003", "wamid.BUSY"),
            bytes::Bytes::from_static(b"{not json"),
        ];
        for (i, body) in bodies.iter().enumerate() {
            journal
                .keep(500 + i as i64, body.clone())
                .await
                .expect("kept");
        }
        let (stop, stopped) = watch::channel(false);
        let applier = spawn(journal.clone(), deps, None, 0, stopped);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while journal.backlog().entries > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(journal.backlog().entries, 0, "everything was applied");
        let _ = stop.send(true);
        applier.await.expect("applier");

        let sent: Vec<String> = queue
            .inner
            .messages()
            .into_iter()
            .map(|m| m.dedup_id)
            .collect();
        assert_eq!(sent, ["wamid.OK", "wamid.BUSY"]);
        let kept = archive.items.lock().expect("archive").clone();
        let reasons: Vec<(Vec<u8>, bool)> = kept
            .iter()
            .map(|(kind, body, why)| {
                assert_eq!(*kind, ArchiveKind::Quarantine);
                (body.clone(), why.contains("could not be processed"))
            })
            .collect();
        assert_eq!(
            reasons,
            [(bodies[1].to_vec(), true), (bodies[3].to_vec(), false)],
            "each once, in order: the one refused for good with why, the unreadable one as ever"
        );
        // Reopened, nothing is applied twice.
        drop(journal);
        let journal = Journal::open(dir.path(), JournalSettings::default()).expect("reopen");
        assert_eq!(journal.backlog().entries, 0);
    }
}
