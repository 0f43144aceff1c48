//! The media steps on AWS: what `main.rs` runs in Lambda, and the
//! analysers `local --aws` uses with a media bucket.

use std::sync::Arc;

use aws_adapters::{
    load_whatsapp_secrets, s3_client, secret_string, DynamoMediaNotes, DynamoStore,
    MediaEncryption, RekognitionImages, S3MediaStore, SqsQueue, TextractDocuments,
    TranscribeSpeech,
};
use domain::media::MediaKeySalt;
use domain::ports::SystemClock;
use domain::{Error, Result};
use secrecy::SecretString;

use crate::config::Config;
use crate::{Analysers, Deps, Ports};

/// S3 (the bucket, encrypted as configured), Rekognition, Textract,
/// Transcribe, and the notes in the table.
pub fn analysers(
    sdk: &aws_config::SdkConfig,
    bucket: &str,
    encryption: MediaEncryption,
    table: &str,
) -> Analysers {
    let s3 = s3_client(sdk);
    Analysers {
        store: Arc::new(S3MediaStore::new(
            s3.clone(),
            bucket.to_string(),
            encryption,
        )),
        images: Arc::new(RekognitionImages::new(
            aws_sdk_rekognition::Client::new(sdk),
            bucket.to_string(),
        )),
        documents: Arc::new(TextractDocuments::new(
            aws_sdk_textract::Client::new(sdk),
            bucket.to_string(),
        )),
        speech: Arc::new(TranscribeSpeech::new(
            aws_sdk_transcribe::Client::new(sdk),
            s3,
            bucket.to_string(),
            bucket.to_string(),
        )),
        notes: Arc::new(DynamoMediaNotes::new(
            aws_sdk_dynamodb::Client::new(sdk),
            table.to_string(),
        )),
    }
}

pub async fn deps(config: &Config, sdk: &aws_config::SdkConfig) -> Result<Deps> {
    let secrets_client = aws_sdk_secretsmanager::Client::new(sdk);
    let secrets = load_whatsapp_secrets(&secrets_client, &config.whatsapp_secret_arn).await?;
    let token: SecretString = secrets
        .access_token
        .clone()
        .ok_or_else(|| Error::Config("the WhatsApp secret has no access_token".into()))?;
    let salt = MediaKeySalt::parse(secret_string(&secrets_client, &config.salt_secret_arn).await?)?;
    let encryption = match &config.kms_key_arn {
        Some(key) => MediaEncryption::Kms {
            key_id: Some(key.clone()),
        },
        None => MediaEncryption::S3Managed,
    };
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let conversations = Arc::new(DynamoStore::new(dynamo.clone(), config.table.clone()));
    let sender = Arc::new(config.settings.graph.client(Some(&token), "media")?);
    Deps::new(
        &config.settings,
        token,
        salt,
        Ports {
            analysers: analysers(sdk, &config.media_bucket, encryption, &config.table),
            conversations: conversations.clone(),
            records: conversations,
            sender,
            text_queue: Arc::new(SqsQueue::new(sqs.clone(), config.text_queue_url.clone())),
            escalation_queue: Arc::new(SqsQueue::new(sqs, config.escalation_queue_url.clone())),
            usage: Arc::new(aws_adapters::DynamoUsage::new(dynamo, config.table.clone())),
            clock: Arc::new(SystemClock),
        },
    )
}
