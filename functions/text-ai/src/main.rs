//! Lambda wiring only: config, clients and adapters once per cold start.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use shared::adapters::aws::{load_whatsapp_secrets, DynamoStore, SqsQueue};
use shared::adapters::http::{GraphClient, GraphSettings};
use shared::config::{env_optional, env_parse, env_required};
use shared::ports::SystemClock;
use shared::Error;
use text_ai::setup::{build_agent, AgentEnv, AgentPorts};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = env_required("CHARLA_TABLE")?;
    let secret_id = env_required("WHATSAPP_SECRET_ARN")?;
    let call_queue_url = env_required("CHARLA_CALL_QUEUE_URL")?;
    let escalation_queue_url = env_required("CHARLA_ESCALATION_QUEUE_URL")?;
    let api_base = env_optional("WHATSAPP_API_BASE")
        .unwrap_or_else(|| "https://graph.facebook.com/v23.0".to_string());
    let agent_env = AgentEnv::from_env("/opt/agent.toml")?;

    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets =
        load_whatsapp_secrets(&aws_sdk_secretsmanager::Client::new(&config), &secret_id).await?;
    let token = secrets.access_token.clone().ok_or_else(|| {
        Error::Config("the WhatsApp secret has no access_token: text-ai cannot send".into())
    })?;
    // Media messages hold their turn for the media pipeline when it is
    // deployed (template.yaml sets this beside the state machine).
    let media_notes =
        (env_optional("CHARLA_MEDIA_PIPELINE").as_deref() == Some("true")).then(|| {
            Arc::new(shared::adapters::aws::DynamoMediaNotes::new(
                aws_sdk_dynamodb::Client::new(&config),
                table.clone(),
            )) as Arc<dyn shared::ports::MediaNotes>
        });
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        table,
    ));
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
    let settings = text_ai::Settings {
        debounce_ms: env_parse("CHARLA_DEBOUNCE_MS", 1500)?,
        history_limit: agent.history_needed(),
        reengage_template: text_ai::reengage_template(agent.profile()),
        media: text_ai::media_hold::MediaHold {
            notes: media_notes,
            ..Default::default()
        },
        ..Default::default()
    };
    let deps = Arc::new(text_ai::Deps {
        store,
        sender: Arc::new(GraphClient::new(
            api_base,
            token,
            GraphSettings::from_env()?,
        )?),
        responder: Arc::new(agent),
        clock,
        settings,
    });

    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deps = deps.clone();
        async move {
            Ok::<_, std::convert::Infallible>(text_ai::handle_batch(&deps, event.payload).await)
        }
    }))
    .await
}
