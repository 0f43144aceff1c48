//! Lambda wiring only: tracing, config, AWS clients, `Deps`, run.

use ingestion::config::Config;
use runtime::config::FromVars;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "ingestion cannot start"))?;
    runtime::observability::set_log_content(config.log_content);
    runtime::observability::set_function("ingestion");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let deps = ingestion::aws::deps(&config, &sdk).await?;
    runtime::lambda_http_glue::run(|req| ingestion::handle(&deps, req)).await
}
