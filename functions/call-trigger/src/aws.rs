//! call-trigger on AWS: what `main.rs` runs in Lambda and what `local --aws`
//! runs, built the same way from the same config.

use std::sync::Arc;

use aws_adapters::{load_whatsapp_secrets, DynamoCallRecords, DynamoStore};
use call_lifecycle::aws::voice_with_keys;
use call_lifecycle::{Deps, Ports};
use domain::ports::SystemClock;
use domain::Result;

use crate::config::Config;

pub async fn deps(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Deps> {
    let secrets_client = aws_sdk_secretsmanager::Client::new(sdk);
    let secrets = load_whatsapp_secrets(&secrets_client, &config.whatsapp_secret_arn).await?;
    let mut settings = config.settings.clone();
    settings.voice =
        voice_with_keys(&settings.voice, &config.voice_secret_arn, &secrets_client).await?;
    let profile = agent::Profile::load(&settings.profile)?;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let store = Arc::new(DynamoStore::new(dynamo.clone(), config.table.clone()));
    Deps::new(
        &settings,
        &profile,
        Ports {
            records: store.clone(),
            identities: store.clone(),
            campaigns: Some(Arc::new(aws_adapters::DynamoCampaigns::new(
                dynamo.clone(),
                config.table.clone(),
            ))),
            store,
            calls: Arc::new(DynamoCallRecords::new(dynamo.clone(), config.table.clone())),
            usage: Arc::new(aws_adapters::DynamoUsage::new(dynamo, config.table.clone())),
            sender: Arc::new(
                settings
                    .graph
                    .client(secrets.access_token.as_ref(), "call-trigger")?,
            ),
            clock: Arc::new(SystemClock),
        },
    )
}
