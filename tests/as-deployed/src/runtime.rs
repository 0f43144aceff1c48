//! The Lambda runtime API, emulated: each function's binary started as
//! Lambda starts it (only the environment Lambda gives, `env_clear` first),
//! talking to its own runtime API server on loopback:
//! `GET /2018-06-01/runtime/invocation/next` (long poll),
//! `POST .../invocation/{id}/response`, `POST .../invocation/{id}/error`,
//! `POST .../runtime/init/error`.
//!
//! One instance per function, invocations one at a time: Lambda would
//! scale out to more instances under concurrent load; the tests do not need
//! it, and a single instance keeps the output of a failure in one file.
//! A timed-out or crashed instance is killed and a fresh one started on the
//! next invocation (cold start), as Lambda does.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch, Mutex};

/// How a function was started: binary, environment, limits.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The template's logical id (`TextAi`).
    pub logical_id: String,
    /// The physical name (`charla-e2e-1a2b-TextAi-8F3...`).
    pub name: String,
    pub arn: String,
    pub binary: PathBuf,
    /// Everything but `AWS_LAMBDA_RUNTIME_API` (set per instance).
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    /// The file that gets the function's stdout and stderr.
    pub log_path: PathBuf,
}

/// Why an invocation did not give a result.
#[derive(Debug, Clone)]
pub enum FunctionError {
    /// The handler returned an error (`POST .../error`).
    Handled {
        function: String,
        error_type: String,
        error_message: String,
        /// The error document as the runtime posted it.
        body: Value,
    },
    /// The function ran past its Timeout.
    Timeout {
        function: String,
        after: Duration,
        log_tail: String,
    },
    /// The process ended (or never started, or failed its init).
    Crashed {
        function: String,
        what: String,
        log_tail: String,
    },
}

impl FunctionError {
    /// The error name Step Functions and the SQS poller see.
    pub fn error_type(&self) -> String {
        match self {
            FunctionError::Handled { error_type, .. } => error_type.clone(),
            FunctionError::Timeout { .. } => "States.Timeout".into(),
            FunctionError::Crashed { .. } => "Lambda.Unknown".into(),
        }
    }

    /// The cause, as Step Functions puts it in `Cause`.
    pub fn cause(&self) -> String {
        match self {
            FunctionError::Handled { body, .. } => body.to_string(),
            other => other.to_string(),
        }
    }
}

impl std::fmt::Display for FunctionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FunctionError::Handled {
                function,
                error_type,
                error_message,
                ..
            } => write!(
                f,
                "function {function} returned an error {error_type}: {error_message}"
            ),
            FunctionError::Timeout {
                function,
                after,
                log_tail,
            } => write!(
                f,
                "function {function} timed out after {after:?}; the end of its output:\n{log_tail}"
            ),
            FunctionError::Crashed {
                function,
                what,
                log_tail,
            } => write!(
                f,
                "function {function} {what}; the end of its output:\n{log_tail}"
            ),
        }
    }
}

impl std::error::Error for FunctionError {}

struct Invocation {
    id: String,
    payload: Vec<u8>,
    deadline_ms: u128,
}

enum Outcome {
    Response(Vec<u8>),
    Error(Vec<u8>),
}

/// One runtime API server, for one process.
struct RuntimeState {
    arn: String,
    next: Mutex<mpsc::UnboundedReceiver<Invocation>>,
    waiting: StdMutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: StdMutex<Option<String>>,
    ready: watch::Sender<bool>,
}

struct Instance {
    child: Mutex<Child>,
    invocations: mpsc::UnboundedSender<Invocation>,
    state: Arc<RuntimeState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
        // kill_on_drop(true) ends the process with the Child.
    }
}

/// A function: its spec and the instance running it (if any).
pub struct Function {
    pub spec: FunctionSpec,
    instance: Mutex<Option<Instance>>,
    /// How long each invocation took, from the event handed over to the
    /// answer (what Lambda bills), for the bill of materials.
    durations: StdMutex<Vec<Duration>>,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The last `n` lines of a file.
pub fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn trace_id() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let r = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{t:08x}-{};Parent={};Sampled=0",
        &r[..24],
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

async fn next(State(st): State<Arc<RuntimeState>>) -> Response {
    let _ = st.ready.send(true);
    let mut rx = st.next.lock().await;
    let Some(inv) = rx.recv().await else {
        return StatusCode::GONE.into_response();
    };
    drop(rx);
    let mut headers = HeaderMap::new();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    };
    put("lambda-runtime-aws-request-id", inv.id.clone());
    put("lambda-runtime-deadline-ms", inv.deadline_ms.to_string());
    put("lambda-runtime-invoked-function-arn", st.arn.clone());
    put("lambda-runtime-trace-id", trace_id());
    put("content-type", "application/json".into());
    (StatusCode::OK, headers, inv.payload).into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"status": "OK"})),
    )
        .into_response()
}

async fn respond(
    State(st): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    finish(&st, &id, Outcome::Response(body.to_vec()))
}

async fn error(
    State(st): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    finish(&st, &id, Outcome::Error(body.to_vec()))
}

fn finish(st: &RuntimeState, id: &str, outcome: Outcome) -> Response {
    let sender = st.waiting.lock().ok().and_then(|mut w| w.remove(id));
    match sender {
        Some(tx) => {
            let _ = tx.send(outcome);
            accepted()
        }
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({
                "errorMessage": format!("unknown or finished request id {id}"),
                "errorType": "InvalidRequestID"
            })),
        )
            .into_response(),
    }
}

async fn init_error(State(st): State<Arc<RuntimeState>>, body: Bytes) -> Response {
    if let Ok(mut e) = st.init_error.lock() {
        *e = Some(String::from_utf8_lossy(&body).to_string());
    }
    accepted()
}

impl Function {
    pub fn new(spec: FunctionSpec) -> Function {
        Function {
            spec,
            instance: Mutex::new(None),
            durations: StdMutex::new(Vec::new()),
        }
    }

    fn crashed(&self, what: String) -> FunctionError {
        FunctionError::Crashed {
            function: self.spec.logical_id.clone(),
            what,
            log_tail: tail(&self.spec.log_path, 40),
        }
    }

    async fn spawn(&self) -> Result<Instance, FunctionError> {
        let spec = &self.spec;
        if !spec.binary.is_file() {
            return Err(self.crashed(format!(
                "has no binary at {} (build it: cargo build --release --locked --bins -p <crate>)",
                spec.binary.display()
            )));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| self.crashed(format!("runtime API listener: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| self.crashed(format!("runtime API address: {e}")))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready, _) = watch::channel(false);
        let state = Arc::new(RuntimeState {
            arn: spec.arn.clone(),
            next: Mutex::new(rx),
            waiting: StdMutex::new(HashMap::new()),
            init_error: StdMutex::new(None),
            ready,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let log = File::options()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .map_err(|e| self.crashed(format!("log file {}: {e}", spec.log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(|e| self.crashed(format!("log file: {e}")))?;
        let child = Command::new(&spec.binary)
            .env_clear()
            .envs(&spec.env)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .current_dir(spec.binary.parent().unwrap_or(std::path::Path::new("/")))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.crashed(format!("could not start {}: {e}", spec.binary.display())))?;
        Ok(Instance {
            child: Mutex::new(child),
            invocations: tx,
            state,
            server,
        })
    }

    /// Starts the instance (a cold start) and waits until it asks for its
    /// first invocation; an init error or an exit is an error with its output.
    pub async fn start(&self, within: Duration) -> Result<(), FunctionError> {
        let mut slot = self.instance.lock().await;
        let inst = self.spawn().await?;
        let mut ready = inst.state.ready.subscribe();
        let result = {
            let mut child = inst.child.lock().await;
            tokio::select! {
                r = ready.wait_for(|r| *r) => r.map(|_| ()).map_err(|_| self.crashed("lost its runtime API".into())),
                status = child.wait() => {
                    let init = inst.state.init_error.lock().ok().and_then(|e| e.clone());
                    Err(self.crashed(match init {
                        Some(e) => format!("failed its init ({e}) and exited ({status:?})"),
                        None => format!("exited during init ({status:?})"),
                    }))
                }
                _ = tokio::time::sleep(within) => Err(self.crashed(format!("did not ask for an invocation within {within:?}"))),
            }
        };
        *slot = Some(inst);
        result
    }

    /// Invokes the function synchronously (RequestResponse), within its Timeout.
    pub async fn invoke(&self, payload: &Value) -> Result<Value, FunctionError> {
        let mut slot = self.instance.lock().await;
        // A dead instance is replaced (Lambda starts a new environment).
        let alive = match slot.as_ref() {
            Some(inst) => matches!(inst.child.lock().await.try_wait(), Ok(None)),
            None => false,
        };
        if !alive {
            *slot = Some(self.spawn().await?);
        }
        let Some(inst) = slot.as_ref() else {
            return Err(self.crashed("has no instance".into()));
        };
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = inst.state.waiting.lock() {
            w.insert(id.clone(), tx);
        }
        let body = serde_json::to_vec(payload).unwrap_or_default();
        let timeout = self.spec.timeout;
        let started = std::time::Instant::now();
        let _ = inst.invocations.send(Invocation {
            id,
            payload: body,
            deadline_ms: now_ms() + timeout.as_millis(),
        });
        let outcome = {
            let mut child = inst.child.lock().await;
            tokio::select! {
                o = rx => Ok(o),
                status = child.wait() => Err(format!("exited during an invocation ({status:?})")),
                _ = tokio::time::sleep(timeout) => Err(String::new()),
            }
        };
        if let Ok(mut d) = self.durations.lock() {
            d.push(started.elapsed());
        }
        match outcome {
            Ok(Ok(Outcome::Response(bytes))) => {
                if bytes.is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_slice(&bytes).map_err(|e| {
                    self.crashed(format!(
                        "answered something that is not JSON ({e}): {}",
                        String::from_utf8_lossy(&bytes)
                    ))
                })
            }
            Ok(Ok(Outcome::Error(bytes))) => {
                let body: Value = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).to_string()));
                Err(FunctionError::Handled {
                    function: self.spec.logical_id.clone(),
                    error_type: body["errorType"]
                        .as_str()
                        .unwrap_or("Unhandled")
                        .to_string(),
                    error_message: body["errorMessage"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    body,
                })
            }
            Ok(Err(_)) => Err(self.crashed("dropped an invocation".into())),
            Err(what) if what.is_empty() => {
                // Lambda ends a timed-out environment.
                *slot = None;
                Err(FunctionError::Timeout {
                    function: self.spec.logical_id.clone(),
                    after: timeout,
                    log_tail: tail(&self.spec.log_path, 40),
                })
            }
            Err(what) => {
                *slot = None;
                Err(self.crashed(what))
            }
        }
    }

    /// Every invocation's duration so far.
    pub fn durations(&self) -> Vec<Duration> {
        self.durations.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// The configured memory (MB), as Lambda gives it to the function.
    pub fn memory_mb(&self) -> u64 {
        self.spec
            .env
            .get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .and_then(|m| m.parse().ok())
            .unwrap_or(128)
    }

    /// Stops the instance (the process is killed).
    pub async fn stop(&self) {
        let mut slot = self.instance.lock().await;
        if let Some(inst) = slot.take() {
            let _ = inst.child.lock().await.kill().await;
        }
    }
}
