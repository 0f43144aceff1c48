//! The HTTP API (API Gateway v2) in front of the functions: routes from
//! every function's `HttpApi` events, payload format 2.0 events, the Lambda
//! authorizer with simple responses (no caching: the template says
//! `ReauthorizeEvery: 0`), the response mapping, and API Gateway's own
//! answers (401, 403, 404, 413, 500, 503 with `{"message": ...}`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::aws::{ACCOUNT_ID, REGION};
use crate::bail;
use crate::error::{Context, Result};
use crate::runtime::Function;
use crate::template::{Resolver, Template};

/// API Gateway's payload limit.
pub const MAX_BODY: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Lit(String),
    Param(String),
    Greedy(String),
}

#[derive(Debug, Clone)]
pub struct Authorizer {
    pub name: String,
    /// Logical id of the authorizer function.
    pub function: String,
    pub identity_headers: Vec<String>,
    pub identity_query: Vec<String>,
    pub simple_responses: bool,
}

#[derive(Debug, Clone)]
pub struct Route {
    /// `GET /admin/conversations/{user_id}`.
    pub route_key: String,
    method: String,
    segs: Vec<Seg>,
    /// Logical id of the function.
    pub function: String,
    pub authorizer: Option<Authorizer>,
    pub timeout: Duration,
}

fn segments(path: &str) -> Vec<Seg> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if let Some(p) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                match p.strip_suffix('+') {
                    Some(g) => Seg::Greedy(g.to_string()),
                    None => Seg::Param(p.to_string()),
                }
            } else {
                Seg::Lit(s.to_string())
            }
        })
        .collect()
}

/// The path parameters if `route` matches, and how specific it is.
fn matches(segs: &[Seg], path: &str) -> Option<(BTreeMap<String, String>, usize)> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let mut params = BTreeMap::new();
    let mut score = 0;
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Seg::Lit(l) => {
                if parts.get(i) != Some(&l.as_str()) {
                    return None;
                }
                score += 100;
            }
            Seg::Param(p) => {
                let v = parts.get(i)?;
                params.insert(p.clone(), decode(v));
                score += 10;
            }
            Seg::Greedy(p) => {
                if i >= parts.len() {
                    return None;
                }
                params.insert(p.clone(), parts[i..].join("/"));
                return Some((params, score + 1));
            }
        }
    }
    (parts.len() == segs.len()).then_some((params, score))
}

fn decode(s: &str) -> String {
    form_decode(s, false)
}

fn form_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Every HttpApi route of the template.
pub fn routes(t: &Template, r: &Resolver, props: &BTreeMap<String, Value>) -> Result<Vec<Route>> {
    // Authorizers by (api logical id, name).
    let arn_to_function: BTreeMap<String, String> = t
        .resources
        .values()
        .filter(|x| x.kind == "AWS::Serverless::Function")
        .filter_map(|x| {
            Some((
                r.physical.get(&x.id)?.attrs.get("Arn")?.clone(),
                x.id.clone(),
            ))
        })
        .collect();
    let id_to_api: BTreeMap<String, String> = t
        .resources
        .values()
        .filter(|x| x.kind == "AWS::Serverless::HttpApi")
        .filter_map(|x| Some((r.physical.get(&x.id)?.id.clone(), x.id.clone())))
        .collect();
    let mut out = Vec::new();
    for f in t
        .resources
        .values()
        .filter(|x| x.kind == "AWS::Serverless::Function")
    {
        let Some(fp) = props.get(&f.id) else { continue };
        let Some(events) = fp.get("Events").and_then(Value::as_object) else {
            continue;
        };
        for (ename, e) in events {
            if e.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let at = format!("{}.Events.{ename}", f.id);
            let p = e.get("Properties").cloned().unwrap_or(json!({}));
            let version = p
                .get("PayloadFormatVersion")
                .and_then(Value::as_str)
                .unwrap_or("2.0");
            if version != "2.0" {
                bail!("{at}: PayloadFormatVersion {version} is not supported by the harness");
            }
            let api_logical = match p.get("ApiId").and_then(Value::as_str) {
                Some(id) => id_to_api
                    .get(id)
                    .cloned()
                    .context(|| format!("{at}: ApiId {id} is no HttpApi of the template"))?,
                None => bail!("{at}: the implicit ServerlessHttpApi is not supported; set ApiId"),
            };
            let api_props = props.get(&api_logical).cloned().unwrap_or(json!({}));
            let auth_name = match p.pointer("/Auth/Authorizer").and_then(Value::as_str) {
                Some(a) => Some(a.to_string()),
                None => api_props
                    .pointer("/Auth/DefaultAuthorizer")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            let authorizer = match auth_name.as_deref() {
                None | Some("NONE") => None,
                Some(name) => {
                    let a = api_props
                        .pointer(&format!("/Auth/Authorizers/{name}"))
                        .context(|| {
                            format!("{at}: authorizer {name} is not declared on {api_logical}")
                        })?;
                    if a.get("JwtConfiguration").is_some() {
                        bail!("{at}: JWT authorizers are not supported by the harness");
                    }
                    let fa = a
                        .get("FunctionArn")
                        .and_then(Value::as_str)
                        .context(|| format!("{at}: authorizer {name} has no FunctionArn"))?;
                    let v = a
                        .get("AuthorizerPayloadFormatVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if v != "2.0" {
                        bail!("{at}: authorizer {name}: payload format {v:?} is not supported (2.0 only)");
                    }
                    let strings = |k: &str| -> Vec<String> {
                        a.pointer(&format!("/Identity/{k}"))
                            .and_then(Value::as_array)
                            .map(|v| {
                                v.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                    Some(Authorizer {
                        name: name.to_string(),
                        function: arn_to_function.get(fa).cloned().context(|| {
                            format!("{at}: authorizer {name}: {fa} is no function of the template")
                        })?,
                        identity_headers: strings("Headers"),
                        identity_query: strings("QueryStrings"),
                        simple_responses: a
                            .get("EnableSimpleResponses")
                            .is_some_and(|v| v == true || v == "true"),
                    })
                }
            };
            let method = p
                .get("Method")
                .and_then(Value::as_str)
                .unwrap_or("ANY")
                .to_uppercase();
            let path = p.get("Path").and_then(Value::as_str).unwrap_or("/{proxy+}");
            let timeout_ms = p
                .get("TimeoutInMillis")
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                .unwrap_or(30_000);
            out.push(Route {
                route_key: format!("{method} {path}"),
                method,
                segs: segments(path),
                function: f.id.clone(),
                authorizer,
                timeout: Duration::from_millis(timeout_ms),
            });
        }
    }
    Ok(out)
}

pub struct Gateway {
    pub routes: Vec<Route>,
    pub functions: BTreeMap<String, Arc<Function>>,
    pub api_id: String,
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

/// API Gateway hands these content types over as text; the rest base64.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct.starts_with("text/")
        || ct == "application/json"
        || ct.ends_with("+json")
        || ct == "application/xml"
        || ct.ends_with("+xml")
        || ct == "application/javascript"
}

fn request_id() -> String {
    let b = uuid::Uuid::new_v4();
    base64::engine::general_purpose::STANDARD.encode(&b.as_bytes()[..10])
}

pub async fn handle(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
    };
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let best = gw
        .routes
        .iter()
        .filter(|r| r.method == method || r.method == "ANY")
        .filter_map(|r| {
            matches(&r.segs, &path).map(|(p, score)| (r, p, score + usize::from(r.method != "ANY")))
        })
        .max_by_key(|(_, _, score)| *score);
    let Some((route, path_params, _)) = best else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };

    // Headers: lowercased, repeated ones joined with commas; cookies apart.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (k, v) in &parts.headers {
        let v = String::from_utf8_lossy(v.as_bytes()).to_string();
        if k.as_str() == "cookie" {
            cookies.extend(
                v.split(';')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        headers
            .entry(k.as_str().to_string())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    headers.insert("x-forwarded-for".into(), peer.ip().to_string());
    headers.insert("x-forwarded-port".into(), "443".into());
    headers.insert("x-forwarded-proto".into(), "https".into());
    let now = jiff::Timestamp::now();
    let epoch_ms = now.as_millisecond();
    headers.insert(
        "x-amzn-trace-id".into(),
        format!(
            "Root=1-{:08x}-{}",
            now.as_second(),
            &uuid::Uuid::new_v4().simple().to_string()[..24]
        ),
    );
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (form_decode(k, true), form_decode(v, true));
        query
            .entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let host = headers.get("host").cloned().unwrap_or_default();
    let domain = host.split(':').next().unwrap_or_default().to_string();
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
    let time = now.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string();
    let mut context = json!({
        "accountId": ACCOUNT_ID,
        "apiId": gw.api_id,
        "domainName": domain,
        "domainPrefix": domain.split('.').next().unwrap_or_default(),
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": peer.ip().to_string(),
            "userAgent": user_agent,
        },
        "requestId": request_id(),
        "routeKey": route.route_key,
        "stage": "$default",
        "time": time,
        "timeEpoch": epoch_ms,
    });

    let mut event = Map::new();
    event.insert("version".into(), json!("2.0"));
    event.insert("routeKey".into(), json!(route.route_key));
    event.insert("rawPath".into(), json!(path));
    event.insert("rawQueryString".into(), json!(raw_query));
    if !cookies.is_empty() {
        event.insert("cookies".into(), json!(cookies));
    }
    event.insert("headers".into(), json!(headers));
    if !query.is_empty() {
        event.insert("queryStringParameters".into(), json!(query));
    }
    if !path_params.is_empty() {
        event.insert("pathParameters".into(), json!(path_params));
    }

    if let Some(a) = &route.authorizer {
        let mut identity = Vec::new();
        for h in &a.identity_headers {
            match headers.get(&h.to_ascii_lowercase()) {
                Some(v) if !v.is_empty() => identity.push(v.clone()),
                _ => return message(StatusCode::UNAUTHORIZED, "Unauthorized"),
            }
        }
        for q in &a.identity_query {
            match query.get(q) {
                Some(v) if !v.is_empty() => identity.push(v.clone()),
                _ => return message(StatusCode::UNAUTHORIZED, "Unauthorized"),
            }
        }
        let mut auth_event = event.clone();
        auth_event.insert("type".into(), json!("REQUEST"));
        auth_event.insert(
            "routeArn".into(),
            json!(format!(
                "arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{}/$default/{method}{path}",
                gw.api_id
            )),
        );
        auth_event.insert("identitySource".into(), json!(identity));
        auth_event.insert("requestContext".into(), context.clone());
        let Some(f) = gw.functions.get(&a.function) else {
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        };
        let answer = match f.invoke(&Value::Object(auth_event)).await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("as-deployed gateway: authorizer {}: {e}", a.name);
                return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
        };
        let (allowed, ctx) = if a.simple_responses {
            (
                answer.get("isAuthorized").and_then(Value::as_bool),
                answer.get("context").cloned(),
            )
        } else {
            let effect = answer
                .pointer("/policyDocument/Statement/0/Effect")
                .and_then(Value::as_str);
            (effect.map(|e| e == "Allow"), answer.get("context").cloned())
        };
        match allowed {
            Some(true) => {
                context["authorizer"] = json!({ "lambda": ctx.unwrap_or(json!({})) });
            }
            Some(false) => return message(StatusCode::FORBIDDEN, "Forbidden"),
            None => {
                eprintln!(
                    "as-deployed gateway: authorizer {} answered without a decision: {answer}",
                    a.name
                );
                return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
        }
    }
    event.insert("requestContext".into(), context);
    if !body.is_empty() {
        let content_type = headers.get("content-type").map(String::as_str);
        if is_text(content_type) {
            event.insert("body".into(), json!(String::from_utf8_lossy(&body)));
            event.insert("isBase64Encoded".into(), json!(false));
        } else {
            event.insert(
                "body".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(&body)),
            );
            event.insert("isBase64Encoded".into(), json!(true));
        }
    } else {
        event.insert("isBase64Encoded".into(), json!(false));
    }

    let Some(f) = gw.functions.get(&route.function) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let result = tokio::time::timeout(route.timeout, f.invoke(&Value::Object(event))).await;
    match result {
        Err(_) => message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        Ok(Err(e)) => {
            eprintln!("as-deployed gateway: {}: {e}", route.route_key);
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        Ok(Ok(v)) => to_http(v),
    }
}

/// The function's answer as API Gateway (payload 2.0) turns it into HTTP.
pub fn to_http(v: Value) -> Response {
    let Some(status) = v.get("statusCode").filter(|_| v.is_object()) else {
        // Not a response object: the JSON itself is the body.
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            v.to_string(),
        )
            .into_response();
    };
    let status = status
        .as_u64()
        .or_else(|| status.as_str()?.parse().ok())
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = v.get("body").and_then(Value::as_str).unwrap_or("");
    let bytes = if v.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        match base64::engine::general_purpose::STANDARD.decode(body) {
            Ok(b) => b,
            Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        }
    } else {
        body.as_bytes().to_vec()
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if let Some(m) = v.get("headers").and_then(Value::as_object) {
        for (k, val) in m {
            let text = match val {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(k), Ok(val)) = (
                HeaderName::try_from(k.as_str()),
                HeaderValue::from_str(&text),
            ) {
                h.insert(k, val);
            }
        }
    }
    if let Some(cs) = v.get("cookies").and_then(Value::as_array) {
        for c in cs.iter().filter_map(Value::as_str) {
            if let Ok(val) = HeaderValue::from_str(c) {
                h.append("set-cookie", val);
            }
        }
    }
    resp
}

/// Serves the API on 127.0.0.1:0; returns its base URL and the server task.
pub async fn serve(gw: Arc<Gateway>) -> Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context(|| "gateway listener".to_string())?;
    let addr = listener
        .local_addr()
        .context(|| "gateway address".to_string())?;
    let app = axum::Router::new().fallback(handle).with_state(gw);
    let task = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    Ok((format!("http://{addr}"), task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_by_specificity() {
        let lit = segments("/admin/conversations");
        let param = segments("/admin/conversations/{user_id}");
        let greedy = segments("/{proxy+}");
        assert!(matches(&lit, "/admin/conversations").is_some());
        assert!(matches(&lit, "/admin/conversations/1").is_none());
        let (p, _) = matches(&param, "/admin/conversations/549%2B1").expect("match");
        assert_eq!(p["user_id"], "549+1");
        let (g, _) = matches(&greedy, "/a/b/c").expect("greedy");
        assert_eq!(g["proxy"], "a/b/c");
        assert!(
            matches(&lit, "/admin/conversations").expect("m").1
                > matches(&greedy, "/admin/conversations").expect("g").1
        );
    }

    #[test]
    fn text_types_stay_text() {
        assert!(is_text(Some("application/json; charset=utf-8")));
        assert!(is_text(Some("text/plain")));
        assert!(!is_text(Some("application/octet-stream")));
        assert!(!is_text(None));
    }
}
