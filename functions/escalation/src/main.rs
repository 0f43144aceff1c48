//! Lambda wiring only: config, clients and adapters once per cold start.
//! Event sources: the escalation FIFO queue and the timer queue.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use escalation::config::{ChatwootConfig, ChatwootTokens};
use lambda_runtime::{service_fn, LambdaEvent};
use shared::adapters::aws::{
    ComprehendSentiment, DynamoEscalations, DynamoStore, SesNotifier, SnsNotifier, SqsQueue,
    SqsTimers,
};
use shared::adapters::http::{GraphClient, GraphSettings};
use shared::config::{env_optional, env_required};
use shared::ports::{HumanDesk, Notifier, Queue, SystemClock, Timers};
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
    let mut settings = escalation::Settings::from_profile(&profile)?;
    settings.admin_conversation_url = env_optional("CHARLA_ADMIN_CONVERSATION_URL");

    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets_client = aws_sdk_secretsmanager::Client::new(&config);
    let secrets = shared::adapters::aws::load_whatsapp_secrets(&secrets_client, &secret_id).await?;
    let token = secrets.access_token.clone().ok_or_else(|| {
        Error::Config("the WhatsApp secret has no access_token: escalation cannot send".into())
    })?;
    let raw = secrets_client
        .get_secret_value()
        .secret_id(&secret_id)
        .send()
        .await
        .map_err(|e| Error::Config(format!("secret cannot be read: {e}")))?;
    let tokens = ChatwootTokens::from_secret_json(raw.secret_string().unwrap_or("{}"))?;

    let sqs = aws_sdk_sqs::Client::new(&config);
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(topic) = env_optional("CHARLA_ESCALATION_TOPIC_ARN") {
        notifiers.push(Arc::new(SnsNotifier::new(
            aws_sdk_sns::Client::new(&config),
            topic,
        )));
    }
    if let (Some(from), Some(to)) = (
        env_optional("CHARLA_SES_FROM").filter(|s| !s.is_empty()),
        env_optional("CHARLA_SES_TO").filter(|s| !s.is_empty()),
    ) {
        let to = to.split(',').map(|s| s.trim().to_string()).collect();
        notifiers.push(Arc::new(SesNotifier::new(
            aws_sdk_sesv2::Client::new(&config),
            from,
            to,
        )?));
    }
    let desk: Option<Arc<dyn HumanDesk>> = match ChatwootConfig::from_env(&tokens)? {
        Some(c) => {
            settings.desk_conversation_url = Some(c.conversation_url());
            Some(Arc::new(c.desk()?))
        }
        None => None,
    };
    let timers: Option<Arc<dyn Timers>> = env_optional("CHARLA_TIMER_QUEUE_URL")
        .map(|url| Arc::new(SqsTimers::new(sqs.clone(), url)) as Arc<dyn Timers>);
    let call_queue: Option<Arc<dyn Queue>> = env_optional("CHARLA_CALL_QUEUE_URL")
        .map(|url| Arc::new(SqsQueue::new(sqs.clone(), url)) as Arc<dyn Queue>);
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let store = Arc::new(DynamoStore::new(dynamo.clone(), table.clone()));
    let deps = Arc::new(escalation::Deps {
        store: store.clone(),
        records: store,
        escalations: Arc::new(DynamoEscalations::new(dynamo, table)),
        sentiment: Arc::new(ComprehendSentiment::new(aws_sdk_comprehend::Client::new(
            &config,
        ))),
        notifiers,
        desk,
        sender: Arc::new(GraphClient::new(
            api_base,
            token,
            GraphSettings::from_env()?,
        )?),
        timers,
        call_queue,
        clock: Arc::new(SystemClock),
        settings,
    });

    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deps = deps.clone();
        async move {
            Ok::<_, std::convert::Infallible>(escalation::handle_batch(&deps, event.payload).await)
        }
    }))
    .await
}
