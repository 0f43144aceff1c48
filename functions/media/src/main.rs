//! Lambda wiring only: tracing, config, AWS clients, `Deps`, run.

use runtime::config::FromVars;
use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use media::config::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "media cannot start"))?;
    runtime::observability::set_log_content(config.settings.log_content);
    runtime::observability::set_function("media");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let deps = Arc::new(media::aws::deps(&config, &sdk).await?);

    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let deps = deps.clone();
        async move { media::handle(&deps, event.payload).await }
    }))
    .await
}
