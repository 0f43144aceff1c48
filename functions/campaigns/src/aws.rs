//! campaigns on AWS: what `main.rs` runs in Lambda, built from the config.

use std::sync::Arc;

use aws_adapters::{
    load_whatsapp_secrets, DynamoCallRecords, DynamoCampaigns, DynamoStore, S3Downloads, SqsQueue,
};
use domain::ports::{MessageSender, SystemClock};
use domain::Result;

use crate::config::{Config, DispatchConfig};
use crate::dispatch::Dispatcher;
use crate::Deps;

pub fn deps(config: &Config, sdk: &aws_config::SdkConfig) -> Deps {
    Deps {
        campaigns: Arc::new(DynamoCampaigns::new(
            aws_sdk_dynamodb::Client::new(sdk),
            config.table.clone(),
        )),
        downloads: Some(Arc::new(S3Downloads::new(
            aws_sdk_s3::Client::new(sdk),
            config.downloads_bucket.clone(),
        ))),
        clock: Arc::new(SystemClock),
        settings: config.settings.clone(),
    }
}

/// The dispatcher on AWS: the table, the call queue, the Graph API.
pub async fn dispatcher(
    config: &DispatchConfig,
    sdk: &aws_config::SdkConfig,
) -> Result<Dispatcher> {
    let secrets = load_whatsapp_secrets(
        &aws_sdk_secretsmanager::Client::new(sdk),
        &config.whatsapp_secret_arn,
    )
    .await?;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let store = Arc::new(DynamoStore::new(dynamo.clone(), config.table.clone()));
    let sender = config
        .graph
        .client_if_token(secrets.access_token.as_ref(), "campaigns")?
        .map(|c| Arc::new(c) as Arc<dyn MessageSender>);
    Ok(Dispatcher {
        campaigns: Arc::new(DynamoCampaigns::new(dynamo.clone(), config.table.clone())),
        calls: Arc::new(DynamoCallRecords::new(dynamo.clone(), config.table.clone())),
        usage: Arc::new(aws_adapters::DynamoUsage::new(dynamo, config.table.clone())),
        call_queue: Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(sdk),
            config.call_queue_url.clone(),
        )),
        sender,
        store: store.clone(),
        identities: store,
        clock: Arc::new(SystemClock),
        settings: config.settings.clone(),
    })
}
