//! Lambda wiring only for `POST /webhooks/chatwoot` (API Gateway): tracing,
//! config, AWS clients, `Deps`, run.

use escalation::config::WebhookConfig;
use runtime::config::FromVars;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = WebhookConfig::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "chatwoot-webhook cannot start"))?;
    runtime::observability::set_log_content(config.log_content);
    runtime::observability::set_function("chatwoot-webhook");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let deps = escalation::aws::webhook_deps(&config, &sdk).await?;
    // The token travels in the query: the glue puts it in the URI.
    runtime::lambda_http_glue::run(|req| escalation::webhook::handle(&deps, req)).await
}
