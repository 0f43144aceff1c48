//! Lambda wiring only: config, clients and adapters once per cold start.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{service_fn, LambdaEvent};
use secrecy::SecretString;
use shared::adapters::aws::{
    load_whatsapp_secrets, DynamoMediaNotes, DynamoStore, MediaEncryption, RekognitionImages,
    S3MediaStore, SqsQueue, TextractDocuments, TranscribeSpeech,
};
use shared::adapters::http::{GraphClient, GraphMedia, GraphSettings};
use shared::config::{env_optional, env_required};
use shared::domain::media::MediaKeySalt;
use shared::ports::SystemClock;
use shared::Error;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = env_required("CHARLA_TABLE")?;
    let queue_url = env_required("CHARLA_TEXT_QUEUE_URL")?;
    let escalation_queue_url = env_required("CHARLA_ESCALATION_QUEUE_URL")?;
    let bucket = env_required("CHARLA_MEDIA_BUCKET")?;
    let kms_key = env_optional("CHARLA_MEDIA_KMS_KEY_ARN");
    let secret_id = env_required("WHATSAPP_SECRET_ARN")?;
    let salt_id = env_required("CHARLA_MEDIA_SALT_SECRET_ARN")?;
    let api_base = env_optional("WHATSAPP_API_BASE")
        .unwrap_or_else(|| shared::adapters::http::DEFAULT_GRAPH_BASE_URL.to_string());
    // The profile layer's languages; CHARLA_LANGUAGES ("es,en") overrides.
    let languages: Vec<String> = match env_optional("CHARLA_LANGUAGES") {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        None => {
            let path = env_optional("CHARLA_AGENT").unwrap_or_else(|| "/opt/agent.toml".into());
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::Config(format!("agent profile {path}: {e}")))?;
            media::profile_languages(&text)?
        }
    };

    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets_client = aws_sdk_secretsmanager::Client::new(&config);
    let secrets = load_whatsapp_secrets(&secrets_client, &secret_id).await?;
    let token = secrets
        .access_token
        .clone()
        .ok_or_else(|| Error::Config("the WhatsApp secret has no access_token".into()))?;
    let salt = secrets_client
        .get_secret_value()
        .secret_id(&salt_id)
        .send()
        .await
        .map_err(|e| Error::Config(format!("media key salt: {e}")))?
        .secret_string
        .ok_or_else(|| Error::Config("media key salt secret is empty".into()))?;
    let salt = MediaKeySalt::parse(SecretString::from(salt))?;

    let s3 = aws_sdk_s3::Client::new(&config);
    let encryption = match kms_key {
        Some(key) => MediaEncryption::Kms { key_id: Some(key) },
        None => MediaEncryption::S3Managed,
    };
    let graph_settings = GraphSettings::from_env()?;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let conversations = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        table.clone(),
    ));
    let deps = Arc::new(media::Deps {
        source: Arc::new(GraphMedia::new(
            api_base.clone(),
            token.clone(),
            graph_settings.clone(),
            Duration::from_secs(120),
        )?),
        store: Arc::new(S3MediaStore::new(s3.clone(), bucket.clone(), encryption)),
        images: Arc::new(RekognitionImages::new(
            aws_sdk_rekognition::Client::new(&config),
            bucket.clone(),
        )),
        documents: Arc::new(TextractDocuments::new(
            aws_sdk_textract::Client::new(&config),
            bucket.clone(),
        )),
        speech: Arc::new(TranscribeSpeech::new(
            aws_sdk_transcribe::Client::new(&config),
            s3,
            bucket.clone(),
            bucket,
        )),
        notes: Arc::new(DynamoMediaNotes::new(
            aws_sdk_dynamodb::Client::new(&config),
            table,
        )),
        conversations: conversations.clone(),
        records: conversations,
        sender: Arc::new(GraphClient::new(api_base, token, graph_settings)?),
        text_queue: Arc::new(SqsQueue::new(sqs.clone(), queue_url)),
        escalation_queue: Arc::new(SqsQueue::new(sqs, escalation_queue_url)),
        clock: Arc::new(SystemClock),
        salt,
        settings: media::Settings {
            notice_language: languages.first().cloned().unwrap_or_else(|| "en".into()),
            languages,
            work_dir: std::env::temp_dir().join("charla-media"),
        },
    });

    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let deps = deps.clone();
        async move { media::handle(&deps, event.payload).await }
    }))
    .await
}
