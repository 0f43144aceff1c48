//! Lambda wiring only: config, clients and adapters once per cold start.

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::{service_fn, Body, Request};
use shared::adapters::aws::{
    load_whatsapp_secrets, DynamoStore, S3Archive, SfnMediaPipeline, SqsQueue,
};
use shared::config::env_required;
use shared::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let table = env_required("CHARLA_TABLE")?;
    let queue_url = env_required("CHARLA_TEXT_QUEUE_URL")?;
    let bucket = env_required("CHARLA_QUARANTINE_BUCKET")?;
    let secret_id = env_required("WHATSAPP_SECRET_ARN")?;

    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets =
        load_whatsapp_secrets(&aws_sdk_secretsmanager::Client::new(&config), &secret_id).await?;
    let deps = Arc::new(ingestion::Deps {
        secrets,
        store: Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&config),
            table,
        )),
        queue: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&config), queue_url)),
        archive: Arc::new(S3Archive::new(aws_sdk_s3::Client::new(&config), bucket)),
        clock: Arc::new(SystemClock),
        // Media messages go to the media state machine when it is wired.
        media: shared::config::env_optional("CHARLA_MEDIA_STATE_MACHINE_ARN").map(|arn| {
            Arc::new(SfnMediaPipeline::new(
                aws_sdk_sfn::Client::new(&config),
                arn,
            )) as Arc<dyn shared::ports::MediaPipeline>
        }),
    });

    lambda_http::run(service_fn(move |req: Request| {
        let deps = deps.clone();
        async move {
            let (parts, body) = req.into_parts();
            let req = http::Request::from_parts(parts, Bytes::copy_from_slice(&body));
            let resp = ingestion::handle(&deps, req).await;
            Ok::<_, std::convert::Infallible>(resp.map(to_body))
        }
    }))
    .await
}

fn to_body(bytes: Bytes) -> Body {
    match String::from_utf8(bytes.to_vec()) {
        Ok(s) => Body::Text(s),
        Err(e) => Body::Binary(e.into_bytes()),
    }
}
