//! Lambda wiring only: the campaigns' dispatcher, once a minute
//! (EventBridge). A failed tick shows as the function's error; the next
//! minute tries again (every step is idempotent).

use campaigns::config::DispatchConfig;
use lambda_runtime::{service_fn, LambdaEvent};
use runtime::config::FromVars;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = DispatchConfig::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "campaign-dispatcher cannot start"))?;
    runtime::observability::set_log_content(config.log_content);
    runtime::observability::set_function("campaign-dispatcher");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dispatcher = campaigns::aws::dispatcher(&config, &sdk).await?;
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let tick = campaigns::dispatch::tick(dispatcher).await?;
            tracing::info!(?tick, "campaign tick");
            Ok::<_, lambda_runtime::Error>(serde_json::json!({
                "calls": tick.calls,
                "templates": tick.templates,
            }))
        },
    ))
    .await
}
