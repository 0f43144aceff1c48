//! Lambda wiring only: tracing, config, AWS clients, `Deps`, run.

use admin::config::Config;
use runtime::config::FromVars;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "admin cannot start"))?;
    runtime::observability::set_log_content(config.settings.log_content);
    runtime::observability::set_function("admin");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let deps = admin::aws::deps(&config, &sdk).await?;
    runtime::lambda_http_glue::run(|req| admin::handle(&deps, req)).await
}
