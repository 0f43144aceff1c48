//! Lambda wiring only: tracing, config, AWS clients, `Deps`, run.
//! Event sources: the escalation FIFO queue and the timer queue.

use runtime::config::FromVars;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use escalation::config::Config;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "escalation cannot start"))?;
    runtime::observability::set_log_content(config.settings.log_content);
    runtime::observability::set_function("escalation");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let deps = Arc::new(escalation::aws::deps(&config, &sdk).await?);

    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deps = deps.clone();
        async move {
            Ok::<_, std::convert::Infallible>(escalation::handle_batch(&deps, event.payload).await)
        }
    }))
    .await
}
