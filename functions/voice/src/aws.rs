//! The voice webhooks on AWS: what `main.rs` runs in Lambda and what
//! `local --aws` runs, built the same way from the same config.

use std::sync::Arc;

use aws_adapters::{
    load_whatsapp_secrets, s3_client, DynamoCallRecords, DynamoStore, S3Archive, SqsQueue,
};
use domain::ports::SystemClock;
use domain::Result;

use crate::config::Config;
use crate::{Deps, Ports};

pub async fn deps(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Deps> {
    let secrets_client = aws_sdk_secretsmanager::Client::new(sdk);
    let secrets = load_whatsapp_secrets(&secrets_client, &config.whatsapp_secret_arn).await?;
    let mut settings = config.settings.clone();
    settings.calls.voice = call_lifecycle::aws::voice_with_keys(
        &settings.calls.voice,
        &config.voice_secret_arn,
        &secrets_client,
    )
    .await?;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let store = Arc::new(DynamoStore::new(dynamo.clone(), config.table.clone()));
    let sender = Arc::new(
        settings
            .calls
            .graph
            .client(secrets.access_token.as_ref(), "voice")?,
    );
    Deps::new(
        &settings,
        &secrets,
        Ports {
            store: store.clone(),
            identities: store.clone(),
            campaigns: Some(Arc::new(aws_adapters::DynamoCampaigns::new(
                dynamo.clone(),
                config.table.clone(),
            ))),
            records: store,
            calls: Arc::new(DynamoCallRecords::new(dynamo.clone(), config.table.clone())),
            usage: Arc::new(aws_adapters::DynamoUsage::new(dynamo, config.table.clone())),
            sender,
            call_queue: Arc::new(SqsQueue::new(sqs.clone(), config.call_queue_url.clone())),
            escalation_queue: Arc::new(SqsQueue::new(sqs, config.escalation_queue_url.clone())),
            archive: Arc::new(S3Archive::new(
                s3_client(sdk),
                config.quarantine_bucket.clone(),
            )),
            clock: Arc::new(SystemClock),
        },
        Some(sdk),
    )
    .await
}
