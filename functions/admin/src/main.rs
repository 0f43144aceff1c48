//! Lambda wiring only: tracing, config, the AWS SDK once, the store, run.

use std::sync::Arc;

use admin::{handle, Deps};
use aws_config::BehaviorVersion;
use bytes::Bytes;
use lambda_http::{service_fn, Body, Error, Request, Response};
use shared::adapters::aws::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let table = shared::config::env_required("CHARLA_TABLE").inspect_err(|e| {
        tracing::error!(error = %e, "admin cannot start");
    })?;
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    let deps = Deps {
        store: Arc::new(store),
    };
    let deps = &deps;
    lambda_http::run(service_fn(move |req: Request| async move {
        let (parts, body) = req.into_parts();
        let req = http::Request::from_parts(parts, Bytes::from(body.to_vec()));
        Ok::<_, Error>(to_lambda(handle(deps, req).await))
    }))
    .await
}

/// JSON goes back as text; anything else as binary (base64 on the wire).
fn to_lambda(response: http::Response<Bytes>) -> Response<Body> {
    response.map(|bytes| match String::from_utf8(bytes.to_vec()) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    })
}
