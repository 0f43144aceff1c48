//! Lambda wiring only: tracing, config, AWS clients, `Deps`, run.

use runtime::config::FromVars;
use voice::config::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "voice cannot start"))?;
    runtime::observability::set_log_content(config.settings.calls.log_content);
    runtime::observability::set_function("voice");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let deps = voice::aws::deps(&config, &sdk).await?;
    // The raw bytes as API Gateway gave them: Retell signs them.
    runtime::lambda_http_glue::run(|req| voice::handle(&deps, req)).await
}
