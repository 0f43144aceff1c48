//! Lambda wiring only: tracing, config, the AWS SDK once, the store, run.

use std::sync::Arc;

use admin::{handle, Deps};
use aws_config::BehaviorVersion;
use bytes::Bytes;
use lambda_http::{service_fn, Body, Error, Request, Response};
use shared::adapters::aws::{DynamoEscalations, DynamoStore};
use shared::adapters::http::{ChatwootConfig, ChatwootTokens, GraphClient, GraphSettings};
use shared::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let table = shared::config::env_required("CHARLA_TABLE").inspect_err(|e| {
        tracing::error!(error = %e, "admin cannot start");
    })?;
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let store = Arc::new(DynamoStore::new(dynamo.clone(), table.clone()));
    // Takeover, release and messages need the WhatsApp token: without the
    // secret (or its access_token) those routes answer 404.
    let control = match shared::config::env_optional("WHATSAPP_SECRET_ARN") {
        Some(secret_id) => {
            let secrets_client = aws_sdk_secretsmanager::Client::new(&config);
            let secrets =
                shared::adapters::aws::load_whatsapp_secrets(&secrets_client, &secret_id).await?;
            let desk = chatwoot_desk(&secrets_client, &secret_id).await?;
            match secrets.access_token {
                Some(token) => Some(admin::control::Control {
                    records: store.clone(),
                    escalations: Arc::new(DynamoEscalations::new(dynamo, table)),
                    sender: Arc::new(GraphClient::new(
                        shared::config::env_optional("WHATSAPP_API_BASE")
                            .unwrap_or_else(|| "https://graph.facebook.com/v23.0".to_string()),
                        token,
                        GraphSettings::from_env()?,
                    )?),
                    clock: Arc::new(SystemClock),
                    desk,
                }),
                None => None,
            }
        }
        None => None,
    };
    let deps = Deps { store, control };
    let deps = &deps;
    lambda_http::run(service_fn(move |req: Request| async move {
        let (parts, body) = req.into_parts();
        let req = http::Request::from_parts(parts, Bytes::from(body.to_vec()));
        Ok::<_, Error>(to_lambda(handle(deps, req).await))
    }))
    .await
}

/// Chatwoot, as escalation sees it (`CHATWOOT_URL` and the ids; the API
/// token in the WhatsApp secret): `None` when not configured.
async fn chatwoot_desk(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<Option<Arc<dyn shared::ports::HumanDesk>>, Error> {
    if shared::config::env_optional("CHATWOOT_URL").is_none() {
        return Ok(None);
    }
    let raw = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| shared::Error::Config(format!("secret cannot be read: {e}")))?;
    let tokens = ChatwootTokens::from_secret_json(raw.secret_string().unwrap_or("{}"))?;
    Ok(match ChatwootConfig::from_env(&tokens)? {
        Some(c) => Some(Arc::new(c.desk()?)),
        None => None,
    })
}

/// JSON goes back as text; anything else as binary (base64 on the wire).
fn to_lambda(response: http::Response<Bytes>) -> Response<Body> {
    response.map(|bytes| match String::from_utf8(bytes.to_vec()) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    })
}
