//! Lambda wiring only: config, clients and adapters once per cold start.

use std::sync::Arc;

use lambda_http::{service_fn, Body, Request};
use shared::adapters::aws::{
    load_whatsapp_secrets, DynamoCallRecords, DynamoStore, S3Archive, SqsQueue,
};
use shared::adapters::http::{GraphClient, GraphSettings, VoiceConfig};
use shared::config::{env_optional, env_required};
use shared::ports::SystemClock;
use shared::Error;
use text_ai::setup::{build_agent, AgentEnv, AgentPorts};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let table = env_required("CHARLA_TABLE")?;
    let bucket = env_required("CHARLA_QUARANTINE_BUCKET")?;
    let secret_id = env_required("WHATSAPP_SECRET_ARN")?;
    let call_queue_url = env_required("CHARLA_CALL_QUEUE_URL")?;
    let escalation_queue_url = env_required("CHARLA_ESCALATION_QUEUE_URL")?;
    let api_base = env_optional("WHATSAPP_API_BASE")
        .unwrap_or_else(|| "https://graph.facebook.com/v23.0".to_string());
    let agent_env = AgentEnv::from_env("/opt/agent.toml")?;

    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets_client = aws_sdk_secretsmanager::Client::new(&config);
    let secrets = load_whatsapp_secrets(&secrets_client, &secret_id).await?;
    let mut voice_config = VoiceConfig::from_env()?;
    if let Some(id) = env_optional("CHARLA_VOICE_SECRET_ARN") {
        voice_config = call_trigger::load_voice_secret(&secrets_client, &id, voice_config).await?;
    }
    let token = secrets.access_token.clone().ok_or_else(|| {
        Error::Config("the WhatsApp secret has no access_token: voice cannot follow up".into())
    })?;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let store = Arc::new(DynamoStore::new(dynamo.clone(), table.clone()));
    let sqs = aws_sdk_sqs::Client::new(&config);
    let clock = Arc::new(SystemClock);
    let agent = build_agent(
        &agent_env,
        &secrets,
        AgentPorts {
            records: store.clone(),
            call_queue: Arc::new(SqsQueue::new(sqs.clone(), call_queue_url)),
            escalation_queue: Arc::new(SqsQueue::new(sqs, escalation_queue_url)),
            clock: clock.clone(),
        },
        Some(&config),
    )
    .await?;
    let profile = agent.profile().clone();
    let deps = Arc::new(voice::Deps {
        calls: Arc::new(call_trigger::Deps {
            records: store.clone(),
            store,
            calls: Arc::new(DynamoCallRecords::new(dynamo, table)),
            provider: call_trigger::provider(&voice_config, &profile)?,
            sender: Arc::new(GraphClient::new(
                api_base,
                token,
                GraphSettings::from_env()?,
            )?),
            clock,
            settings: call_trigger::settings(&profile)?,
        }),
        registry: agent.registry().clone(),
        vapi_secret: voice_config.vapi.webhook_secret.clone(),
        retell_key: voice_config.retell.api_key.clone(),
        transfer_to: voice::transfer_target(&profile)?,
        archive: Arc::new(S3Archive::new(aws_sdk_s3::Client::new(&config), bucket)),
    });

    lambda_http::run(service_fn(move |req: Request| {
        let deps = deps.clone();
        async move {
            let (parts, body) = req.into_parts();
            // The raw bytes as API Gateway gave them: Retell signs them.
            let req = http::Request::from_parts(parts, bytes::Bytes::copy_from_slice(&body));
            let resp = voice::handle(&deps, req).await;
            Ok::<_, std::convert::Infallible>(resp.map(|b| match String::from_utf8(b.to_vec()) {
                Ok(s) => Body::Text(s),
                Err(e) => Body::Binary(e.into_bytes()),
            }))
        }
    }))
    .await
}
