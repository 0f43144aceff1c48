//! Lambda wiring only: tracing, config (the key hashes, read once), run.

use authorizer::config::Config;
use authorizer::handler;
use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use runtime::config::FromVars;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "authorizer cannot start"))?;
    let keys = &config.keys;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| async move {
            Ok::<_, Error>(handler(keys, event.payload).await)
        },
    ))
    .await
}
