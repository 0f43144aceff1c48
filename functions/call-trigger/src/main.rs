//! Lambda wiring only: config, clients and adapters once per cold start.
//! Two event sources: the call queue (SQS) and a one-minute schedule
//! (EventBridge) that places the calls that are due.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use shared::adapters::aws::{load_whatsapp_secrets, DynamoCallRecords, DynamoStore};
use shared::adapters::http::{GraphClient, GraphSettings, VoiceConfig};
use shared::config::{env_optional, env_required};
use shared::ports::SystemClock;
use shared::Error;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = env_required("CHARLA_TABLE")?;
    let secret_id = env_required("WHATSAPP_SECRET_ARN")?;
    let api_base = env_optional("WHATSAPP_API_BASE")
        .unwrap_or_else(|| "https://graph.facebook.com/v23.0".to_string());
    let profile = agent::Profile::load(std::path::Path::new(
        &env_optional("CHARLA_AGENT").unwrap_or_else(|| "/opt/agent.toml".into()),
    ))?;

    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets_client = aws_sdk_secretsmanager::Client::new(&config);
    let secrets = load_whatsapp_secrets(&secrets_client, &secret_id).await?;
    let mut voice = VoiceConfig::from_env()?;
    if let Some(id) = env_optional("CHARLA_VOICE_SECRET_ARN") {
        voice = call_trigger::load_voice_secret(&secrets_client, &id, voice).await?;
    }
    let token = secrets.access_token.clone().ok_or_else(|| {
        Error::Config(
            "the WhatsApp secret has no access_token: call-trigger cannot tell users".into(),
        )
    })?;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let store = Arc::new(DynamoStore::new(dynamo.clone(), table.clone()));
    let deps = Arc::new(call_trigger::Deps {
        records: store.clone(),
        store,
        calls: Arc::new(DynamoCallRecords::new(dynamo, table)),
        provider: call_trigger::provider(&voice, &profile)?,
        sender: Arc::new(GraphClient::new(
            api_base,
            token,
            GraphSettings::from_env()?,
        )?),
        clock: Arc::new(SystemClock),
        settings: call_trigger::settings(&profile)?,
    });

    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let deps = deps.clone();
        async move {
            let payload = event.payload;
            if payload.get("Records").is_some() {
                let sqs: SqsEvent = serde_json::from_value(payload)?;
                let response = call_trigger::handle_batch(&deps, sqs).await;
                Ok::<_, lambda_runtime::Error>(serde_json::to_value(response)?)
            } else {
                // The schedule: its failures show as the function's errors
                // and the next minute tries again.
                let outcomes = call_trigger::sweep(&deps).await?;
                Ok(serde_json::json!({ "placed": outcomes.len() }))
            }
        }
    }))
    .await
}
