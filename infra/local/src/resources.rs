//! `local --aws --create-resources`: the table, queues, buckets and secrets
//! the functions need, made on an emulator (moto) and named in the
//! variables the functions read, as template.yaml names them in Lambda.
//! Names: `CHARLA_TABLE` (default `charla-local`), `CHARLA_TEXT_QUEUE_NAME`
//! (`charla-local-text`, and its `-calls`, `-escalations`,
//! `-escalation-timers` siblings), `CHARLA_QUARANTINE_BUCKET`
//! (`charla-local-quarantine`, and its `-media` and `-downloads` siblings),
//! and the secrets
//! `<table>-whatsapp` (this process's development or configured values),
//! `<table>-voice`, `<table>-media-salt`.

use aws_adapters::{s3_client, DynamoStore, S3Archive, SqsQueue};
use domain::{Error, Result};
use secrecy::ExposeSecret;

use crate::config::Settings;

pub async fn create(settings: &mut Settings, sdk: &aws_config::SdkConfig) -> Result<()> {
    let vars = &settings.vars;
    let table = vars
        .optional("CHARLA_TABLE")
        .unwrap_or_else(|| "charla-local".into());
    let name = vars
        .optional("CHARLA_TEXT_QUEUE_NAME")
        .unwrap_or_else(|| "charla-local-text".into());
    let bucket = vars
        .optional("CHARLA_QUARANTINE_BUCKET")
        .unwrap_or_else(|| "charla-local-quarantine".into());
    let media_bucket = vars
        .optional("CHARLA_MEDIA_BUCKET")
        .unwrap_or_else(|| format!("{bucket}-media"));
    let downloads_bucket = vars
        .optional("CHARLA_DOWNLOADS_BUCKET")
        .unwrap_or_else(|| format!("{bucket}-downloads"));

    DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table.clone())
        .create_table()
        .await?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let (text, _) = SqsQueue::create_fifo_with_dlq(&sqs, &name, 5, 60).await?;
    let (calls, _) = SqsQueue::create_fifo_with_dlq(&sqs, &format!("{name}-calls"), 5, 60).await?;
    let (escalations, _) =
        SqsQueue::create_fifo_with_dlq(&sqs, &format!("{name}-escalations"), 5, 60).await?;
    let timers = standard_queue(&sqs, &format!("{name}-escalation-timers")).await?;
    let s3 = s3_client(sdk);
    S3Archive::create_bucket(&s3, &bucket).await?;
    S3Archive::create_bucket(&s3, &media_bucket).await?;
    S3Archive::create_bucket(&s3, &downloads_bucket).await?;

    let secrets = &settings.secrets;
    let expose =
        |s: &Option<secrecy::SecretString>| s.as_ref().map(|s| s.expose_secret().to_string());
    let whatsapp = serde_json::json!({
        "app_secret": secrets.app_secret.expose_secret(),
        "verify_token": secrets.verify_token.expose_secret(),
        "access_token": expose(&secrets.access_token),
        "crm_api_key": expose(&secrets.crm_api_key),
        "model_api_key": expose(&secrets.model_api_key),
        "chatwoot_api_token": expose(&secrets.chatwoot_api_token),
        "chatwoot_webhook_token": expose(&secrets.chatwoot_webhook_token),
    });
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let whatsapp_arn =
        put_secret(&client, &format!("{table}-whatsapp"), &whatsapp.to_string()).await?;
    // The providers' keys stay in the variables (they win over the secret).
    let voice_arn = put_secret(&client, &format!("{table}-voice"), "{}").await?;
    let salt = vars.required("CHARLA_MEDIA_KEY_SALT")?;
    let salt_arn = put_secret(&client, &format!("{table}-media-salt"), &salt).await?;

    let vars = &mut settings.vars;
    vars.set("CHARLA_TABLE", table);
    vars.set("CHARLA_TEXT_QUEUE_URL", text);
    vars.set("CHARLA_CALL_QUEUE_URL", calls);
    vars.set("CHARLA_ESCALATION_QUEUE_URL", escalations);
    vars.set("CHARLA_TIMER_QUEUE_URL", timers);
    vars.set("CHARLA_QUARANTINE_BUCKET", bucket);
    vars.set("CHARLA_MEDIA_BUCKET", media_bucket);
    vars.set("CHARLA_DOWNLOADS_BUCKET", downloads_bucket);
    vars.set("CHARLA_MEDIA_PIPELINE", "true");
    vars.set("WHATSAPP_SECRET_ARN", whatsapp_arn);
    vars.set("CHARLA_VOICE_SECRET_ARN", voice_arn);
    vars.set("CHARLA_MEDIA_SALT_SECRET_ARN", salt_arn);
    Ok(())
}

/// A standard queue (the timers: each message its own delay).
async fn standard_queue(client: &aws_sdk_sqs::Client, name: &str) -> Result<String> {
    client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| Error::dependency("sqs", format!("creating queue {name}"), false, e))?
        .queue_url
        .ok_or_else(|| {
            Error::dependency(
                "sqs",
                format!("creating queue {name}"),
                false,
                "no QueueUrl",
            )
        })
}

/// Creates secret `name` with `value`, or gives the existing one the value;
/// returns its ARN.
async fn put_secret(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &str,
) -> Result<String> {
    let arn = match client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
    {
        Ok(out) => out.arn,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .map_err(|e| {
                    Error::dependency("secretsmanager", format!("updating {name}"), false, e)
                })?
                .arn
        }
        Err(e) => {
            return Err(Error::dependency(
                "secretsmanager",
                format!("creating {name}"),
                false,
                e,
            ))
        }
    };
    arn.ok_or_else(|| {
        Error::dependency(
            "secretsmanager",
            format!("creating {name}"),
            false,
            "no ARN",
        )
    })
}
