//! admin on AWS: what `main.rs` runs in Lambda and what `local --aws` runs.

use std::sync::Arc;

use aws_adapters::{
    load_whatsapp_secrets, DynamoEscalations, DynamoMediaNotes, DynamoStore, DynamoUsage,
};
use domain::ports::{MessageSender, SystemClock};
use domain::Result;

use crate::config::Config;
use crate::{Deps, Ports};

pub async fn deps(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Deps> {
    let secrets = load_whatsapp_secrets(
        &aws_sdk_secretsmanager::Client::new(sdk),
        &config.whatsapp_secret_arn,
    )
    .await?;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let store = Arc::new(DynamoStore::new(dynamo.clone(), config.table.clone()));
    let sender = config
        .settings
        .graph
        .client_if_token(secrets.access_token.as_ref(), "admin")?
        .map(|c| Arc::new(c) as Arc<dyn MessageSender>);
    Deps::new(
        &config.settings,
        &secrets,
        Ports {
            store: store.clone(),
            identities: store.clone(),
            records: store,
            escalations: Arc::new(DynamoEscalations::new(dynamo.clone(), config.table.clone())),
            sender,
            media_notes: Arc::new(DynamoMediaNotes::new(dynamo.clone(), config.table.clone())),
            usage: Arc::new(DynamoUsage::new(dynamo, config.table.clone())),
            clock: Arc::new(SystemClock),
        },
    )
}
