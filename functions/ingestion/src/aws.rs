//! ingestion on AWS: what `main.rs` runs in Lambda and what `local --aws`
//! runs, built the same way from the same config.

use std::sync::Arc;

use aws_adapters::{
    load_whatsapp_secrets, s3_client, DynamoCampaigns, DynamoStore, S3Archive, SfnMediaPipeline,
    SqsQueue,
};
use domain::ports::{MediaPipeline, SystemClock};
use domain::Result;

use crate::config::Config;
use crate::Deps;

pub async fn deps(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Deps> {
    let secrets = load_whatsapp_secrets(
        &aws_sdk_secretsmanager::Client::new(sdk),
        &config.whatsapp_secret_arn,
    )
    .await?;
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        config.table.clone(),
    ));
    Ok(Deps {
        secrets,
        store: store.clone(),
        identities: store,
        campaigns: Some(Arc::new(DynamoCampaigns::new(
            aws_sdk_dynamodb::Client::new(sdk),
            config.table.clone(),
        ))),
        queue: Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(sdk),
            config.text_queue_url.clone(),
        )),
        archive: Arc::new(S3Archive::new(
            s3_client(sdk),
            config.quarantine_bucket.clone(),
        )),
        clock: Arc::new(SystemClock),
        media: config.media_state_machine_arn.as_ref().map(|arn| {
            Arc::new(SfnMediaPipeline::new(
                aws_sdk_sfn::Client::new(sdk),
                arn.clone(),
            )) as Arc<dyn MediaPipeline>
        }),
        // Processed before the 200: SQS and DynamoDB are the durable part.
        intake: None,
    })
}
