//! text-ai's ports on AWS: what `main.rs` runs in Lambda and what
//! `local --aws` runs, built the same way from the same config.

use std::sync::Arc;

use aws_adapters::{load_whatsapp_secrets, DynamoMediaNotes, DynamoStore, DynamoUsage, SqsQueue};
use domain::ports::{MediaNotes, SystemClock};
use domain::Result;
use runtime::config::WhatsAppSecrets;

use crate::config::Config;
use crate::Ports;

/// The WhatsApp secret, named by the config.
pub async fn secrets(config: &Config, sdk: &aws_config::SdkConfig) -> Result<WhatsAppSecrets> {
    load_whatsapp_secrets(
        &aws_sdk_secretsmanager::Client::new(sdk),
        &config.resources.whatsapp_secret_arn,
    )
    .await
}

/// DynamoDB, the call and escalation queues, the media notes when the
/// media pipeline is deployed, and the Graph API.
pub fn ports(
    config: &Config,
    sdk: &aws_config::SdkConfig,
    secrets: &WhatsAppSecrets,
) -> Result<Ports> {
    let r = &config.resources;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let store = Arc::new(DynamoStore::new(dynamo.clone(), r.table.clone()));
    let media_notes = config.settings.media_pipeline.then(|| {
        Arc::new(DynamoMediaNotes::new(dynamo.clone(), r.table.clone())) as Arc<dyn MediaNotes>
    });
    Ok(Ports {
        store: store.clone(),
        identities: store.clone(),
        campaigns: Some(Arc::new(aws_adapters::DynamoCampaigns::new(
            dynamo.clone(),
            r.table.clone(),
        ))),
        records: store,
        sender: Arc::new(
            config
                .settings
                .graph
                .client(secrets.access_token.as_ref(), "text-ai")?,
        ),
        call_queue: Arc::new(SqsQueue::new(sqs.clone(), r.call_queue_url.clone())),
        escalation_queue: Arc::new(SqsQueue::new(sqs, r.escalation_queue_url.clone())),
        media_notes,
        usage: Arc::new(DynamoUsage::new(dynamo.clone(), r.table.clone())),
        clock: Arc::new(SystemClock),
    })
}
