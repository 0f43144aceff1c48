//! Lambda wiring only: tracing, config, AWS clients, `Deps`, run.

use runtime::config::FromVars;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use text_ai::config::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "text-ai cannot start"))?;
    runtime::observability::set_log_content(config.settings.log_content);
    runtime::observability::set_function("text-ai");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets = text_ai::aws::secrets(&config, &sdk).await?;
    let ports = text_ai::aws::ports(&config, &sdk, &secrets)?;
    let deps = Arc::new(text_ai::Deps::new(&config.settings, &secrets, ports, Some(&sdk)).await?);

    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deps = deps.clone();
        async move {
            Ok::<_, std::convert::Infallible>(text_ai::handle_batch(&deps, event.payload).await)
        }
    }))
    .await
}
