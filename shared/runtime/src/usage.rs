//! Recording usage from a handler.

use domain::ports::UsageLedger;
use domain::usage::UsageEvent;

use crate::observability::{self, Metric};

/// Counts `event` in the ledger. What was used already happened, so a
/// failure here is logged and counted (`UsageLost`), never the caller's: a
/// retried turn would not send again, and would not count either.
pub async fn record(ledger: &dyn UsageLedger, event: &UsageEvent) {
    if let Err(e) = ledger.add(event).await {
        tracing::warn!(error = %e, event = %event.id, "usage not recorded");
        observability::count(Metric::UsageLost, 1);
    }
}
