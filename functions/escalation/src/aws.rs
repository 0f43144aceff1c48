//! escalation on AWS: what the Lambda binaries run and what `local --aws`
//! runs, built the same way from the same config.

use std::sync::Arc;

use aws_adapters::{
    load_whatsapp_secrets, ComprehendSentiment, DynamoEscalations, DynamoStore, SesNotifier,
    SnsNotifier, SqsQueue, SqsTimers,
};
use domain::ports::{Notifier, SystemClock};
use domain::Result;

use crate::config::{Config, Notify, WebhookConfig};
use crate::webhook::WebhookDeps;
use crate::{Deps, Ports};

pub async fn deps(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Deps> {
    let secrets = load_whatsapp_secrets(
        &aws_sdk_secretsmanager::Client::new(sdk),
        &config.whatsapp_secret_arn,
    )
    .await?;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let store = Arc::new(DynamoStore::new(dynamo.clone(), config.table.clone()));
    Deps::new(
        &config.settings,
        &secrets,
        Ports {
            store: store.clone(),
            records: store,
            escalations: Arc::new(DynamoEscalations::new(dynamo.clone(), config.table.clone())),
            usage: Arc::new(aws_adapters::DynamoUsage::new(dynamo, config.table.clone())),
            sentiment: Arc::new(ComprehendSentiment::new(aws_sdk_comprehend::Client::new(
                sdk,
            ))),
            notifiers: notifiers(&config.settings.notify, sdk)?,
            sender: Arc::new(
                config
                    .settings
                    .graph
                    .client(secrets.access_token.as_ref(), "escalation")?,
            ),
            timers: Arc::new(SqsTimers::new(sqs.clone(), config.timer_queue_url.clone())),
            call_queue: Arc::new(SqsQueue::new(sqs, config.call_queue_url.clone())),
            clock: Arc::new(SystemClock),
        },
    )
}

/// SNS and SES, as configured.
pub fn notifiers(notify: &Notify, sdk: &aws_config::SdkConfig) -> Result<Vec<Arc<dyn Notifier>>> {
    let mut out: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(topic) = &notify.topic_arn {
        out.push(Arc::new(SnsNotifier::new(
            aws_sdk_sns::Client::new(sdk),
            topic.clone(),
        )));
    }
    if let Some((from, to)) = &notify.email {
        out.push(Arc::new(SesNotifier::new(
            aws_sdk_sesv2::Client::new(sdk),
            from.clone(),
            to.clone(),
        )?));
    }
    Ok(out)
}

/// Chatwoot's webhook.
pub async fn webhook_deps(
    config: &WebhookConfig,
    sdk: &aws_config::SdkConfig,
) -> Result<WebhookDeps> {
    let secrets = load_whatsapp_secrets(
        &aws_sdk_secretsmanager::Client::new(sdk),
        &config.whatsapp_secret_arn,
    )
    .await?;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let store = Arc::new(DynamoStore::new(dynamo.clone(), config.table.clone()));
    Ok(WebhookDeps::new(
        &secrets,
        store.clone(),
        store,
        Arc::new(DynamoEscalations::new(dynamo, config.table.clone())),
        Arc::new(
            config
                .graph
                .client(secrets.access_token.as_ref(), "the Chatwoot webhook")?,
        ),
        Arc::new(SystemClock),
    ))
}
