//! Lambda wiring only for `POST /webhooks/chatwoot` (API Gateway).

use std::sync::Arc;

use bytes::Bytes;
use escalation::config::ChatwootTokens;
use escalation::webhook::{handle, WebhookDeps};
use lambda_http::{service_fn, Body, Error, Request, RequestExt};
use shared::adapters::aws::{DynamoEscalations, DynamoStore};
use shared::adapters::http::{GraphClient, GraphSettings};
use shared::config::{env_optional, env_required};
use shared::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let table = env_required("CHARLA_TABLE")?;
    let secret_id = env_required("WHATSAPP_SECRET_ARN")?;
    let api_base = env_optional("WHATSAPP_API_BASE")
        .unwrap_or_else(|| "https://graph.facebook.com/v23.0".to_string());
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets_client = aws_sdk_secretsmanager::Client::new(&config);
    let secrets = shared::adapters::aws::load_whatsapp_secrets(&secrets_client, &secret_id).await?;
    let token = secrets.access_token.clone().ok_or_else(|| {
        shared::Error::Config("the WhatsApp secret has no access_token: cannot send".into())
    })?;
    let raw = secrets_client
        .get_secret_value()
        .secret_id(&secret_id)
        .send()
        .await?;
    let tokens = ChatwootTokens::from_secret_json(raw.secret_string().unwrap_or("{}"))?;
    if tokens.webhook_token().is_none() {
        // Not fatal: every call gets 401 until the secret has one.
        tracing::warn!("no chatwoot_webhook_token in the secret: every webhook is refused");
    }
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let store = Arc::new(DynamoStore::new(dynamo.clone(), table.clone()));
    let deps = WebhookDeps {
        token: tokens.webhook_token(),
        store: store.clone(),
        records: store,
        escalations: Arc::new(DynamoEscalations::new(dynamo, table)),
        sender: Arc::new(GraphClient::new(
            api_base,
            token,
            GraphSettings::from_env()?,
        )?),
        clock: Arc::new(SystemClock),
    };
    let deps = &deps;
    lambda_http::run(service_fn(move |req: Request| async move {
        // The token is read from the URI's query; make sure it is there even
        // if the event's raw query string did not make it into the URI.
        let token = req
            .query_string_parameters()
            .first("token")
            .map(str::to_string);
        let (mut parts, body) = req.into_parts();
        if parts.uri.query().is_none() {
            if let Some(token) = token {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("token", &token)
                    .finish();
                if let Ok(uri) = format!("{}?{query}", parts.uri.path()).parse() {
                    parts.uri = uri;
                }
            }
        }
        let req = http::Request::from_parts(parts, Bytes::from(body.to_vec()));
        let resp = handle(deps, req).await;
        Ok::<_, Error>(resp.map(|b| Body::Text(String::from_utf8_lossy(&b).into_owned())))
    }))
    .await
}
