//! call-trigger: the call queue's consumer and the one-minute sweep
//! (EventBridge) that places the calls that are due. The lifecycle itself
//! (consent, calling hours, one call per request, retries, follow-ups) is
//! the `call-lifecycle` library, shared with the voice webhooks.

#[cfg(feature = "aws")]
pub mod aws;
pub mod config;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use call_lifecycle::{handle_request, Deps, MAX_BODY_BYTES};
use domain::CallRequest;
use domain::Error;
use tracing::info;

/// The SQS handler: one call request per message, through the shared batch
/// runner (partial failures; a FIFO group stops at its first failure). A
/// malformed or oversized body is reported as failed, so that after the
/// queue's tries it lands in the dead-letter queue, kept, rather than
/// dropped.
pub async fn handle_batch(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    runtime::sqs_batch::run(
        event,
        "call request",
        runtime::observability::Metric::CallRequestFailed,
        |m| async move {
            let body = m.body.unwrap_or_default();
            if body.len() > MAX_BODY_BYTES {
                return Err(Error::TooLarge {
                    limit: MAX_BODY_BYTES,
                });
            }
            let req: CallRequest = serde_json::from_str(&body)
                .map_err(|e| Error::Invalid(format!("not a call request: {e}")))?;
            let outcome = handle_request(deps, &req).await?;
            info!(request = %req.id, ?outcome, "call request handled");
            Ok(outcome)
        },
    )
    .await
}
