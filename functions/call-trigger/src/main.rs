//! Lambda wiring only: tracing, config, AWS clients, `Deps`, run.
//! Two event sources: the call queue (SQS) and a one-minute schedule
//! (EventBridge) that places the calls that are due.

use runtime::config::FromVars;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use call_trigger::config::Config;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "call-trigger cannot start"))?;
    runtime::observability::set_log_content(config.settings.log_content);
    runtime::observability::set_function("call-trigger");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let deps = Arc::new(call_trigger::aws::deps(&config, &sdk).await?);

    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let deps = deps.clone();
        async move {
            let payload = event.payload;
            if payload.get("Records").is_some() {
                let sqs: SqsEvent = serde_json::from_value(payload)?;
                let response = call_trigger::handle_batch(&deps, sqs).await;
                Ok::<_, lambda_runtime::Error>(serde_json::to_value(response)?)
            } else {
                // The schedule: its failures show as the function's errors
                // and the next minute tries again.
                let outcomes = call_lifecycle::sweep(&deps).await?;
                Ok(serde_json::json!({ "placed": outcomes.len() }))
            }
        }
    }))
    .await
}
