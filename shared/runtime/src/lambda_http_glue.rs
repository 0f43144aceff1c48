//! The HTTP functions' one adapter to API Gateway (through `lambda_http`):
//! the handlers are written against `http::Request<Bytes>` so that Lambda,
//! the one-process runner and the tests call the same code.

use std::future::Future;

use bytes::Bytes;
use lambda_http::{service_fn, Body, Request, RequestExt};

/// Runs `handler` as the function's Lambda handler until the runtime stops.
pub async fn run<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(http::Request<Bytes>) -> Fut + Sync,
    Fut: Future<Output = http::Response<Bytes>> + Send,
{
    let handler = &handler;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(to_lambda(handler(from_lambda(req)).await))
    }))
    .await
}

/// The request with its raw body bytes (signatures are over them) and its
/// query in the URI, even where the event's raw query string did not make
/// it there.
pub fn from_lambda(req: Request) -> http::Request<Bytes> {
    let query = req.query_string_parameters();
    let (mut parts, body) = req.into_parts();
    if parts.uri.query().is_none() && !query.is_empty() {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (name, value) in query.iter() {
            serializer.append_pair(name, value);
        }
        if let Ok(uri) = format!("{}?{}", parts.uri.path(), serializer.finish()).parse() {
            parts.uri = uri;
        }
    }
    http::Request::from_parts(parts, Bytes::copy_from_slice(&body))
}

/// Text goes back as text, anything else as binary (base64 on the wire).
pub fn to_lambda(response: http::Response<Bytes>) -> http::Response<Body> {
    response.map(|bytes| {
        if bytes.is_empty() {
            return Body::Empty;
        }
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_text_and_bytes_stay_bytes() {
        let text = to_lambda(http::Response::new(Bytes::from_static(b"{\"ok\":true}")));
        assert!(matches!(text.body(), Body::Text(t) if t == "{\"ok\":true}"));
        let binary = to_lambda(http::Response::new(Bytes::from_static(&[0xff, 0x00])));
        assert!(matches!(binary.body(), Body::Binary(b) if b == &[0xff, 0x00]));
        let empty = to_lambda(http::Response::new(Bytes::new()));
        assert!(matches!(empty.body(), Body::Empty));
    }

    #[test]
    fn the_query_reaches_the_uri() {
        let mut query = std::collections::HashMap::new();
        query.insert("token".to_string(), "a b".to_string());
        let req = http::Request::builder()
            .uri("https://api.example/webhooks/chatwoot")
            .body(Body::Text("{}".into()))
            .expect("request")
            .with_query_string_parameters(query);
        let req = from_lambda(req);
        assert_eq!(req.uri().query(), Some("token=a+b"));
        assert_eq!(req.body().as_ref(), b"{}");
    }
}
