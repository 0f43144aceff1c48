//! Charla exactly as template.yaml deploys it, on moto's server: the
//! template's resources created in moto from the template, every function's
//! release binary run against an emulated Lambda runtime API with the
//! environment the template gives it, the HTTP API (payload 2.0, the Lambda
//! authorizer), the SQS event source mappings, and the media state machine
//! interpreted. One [`Stack`] per test; stacks of parallel tests share one
//! moto without meeting (every physical name carries the stack's name or a
//! random suffix).
//!
//! Needs `MOTO_ENDPOINT` (bash scripts/moto.sh start) and
//! `CHARLA_LAMBDA_BIN_DIR` (the folder of the built binaries; `bash
//! scripts/test` sets both).

pub mod aws;
pub mod counting;
pub mod error;
pub mod event_sources;
pub mod fakes;
pub mod gateway;
pub mod jsonpath;
pub mod meta;
pub mod resources;
pub mod runtime;
pub mod states;
pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::aws::{Aws, ACCESS_KEY, ACCOUNT_ID, REGION};
use crate::error::{Context, Error, Result};
use crate::event_sources::{Journal, Schedule};
use crate::runtime::{Function, FunctionError, FunctionSpec};
use crate::states::{Execution, Interpreter, StateMachine};
use crate::template::{Pseudo, Resolver, Template};

pub const BUILD_HINT: &str = "CHARLA_LAMBDA_BIN_DIR is not set: run `bash scripts/test`, or build the binaries with `cargo build --release --locked --bins -p ingestion -p text-ai -p authorizer -p admin -p call-trigger -p voice -p escalation -p media` and set CHARLA_LAMBDA_BIN_DIR=$PWD/target/release";

/// What a test deploys with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Like `sam deploy --parameter-overrides`.
    pub parameters: BTreeMap<String, String>,
    /// Extra SDK endpoint variables for every function, e.g.
    /// `AWS_ENDPOINT_URL_REKOGNITION` for a stand-in of a service moto lacks.
    pub endpoints: BTreeMap<String, String>,
    /// Factor on the state machines' Wait and Retry intervals.
    pub time_scale: f64,
    /// A layer's content from another folder (as if its ContentUri pointed
    /// there), e.g. a copy of the agent profile with other opening hours.
    pub layers: BTreeMap<String, PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parameters: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            time_scale: 0.01,
            layers: BTreeMap::new(),
        }
    }
}

impl Options {
    pub fn parameter(mut self, name: &str, value: impl Into<String>) -> Self {
        self.parameters.insert(name.to_string(), value.into());
        self
    }

    /// Deploys layer `logical_id` from `dir` instead of its ContentUri.
    pub fn layer(mut self, logical_id: &str, dir: impl Into<PathBuf>) -> Self {
        self.layers.insert(logical_id.to_string(), dir.into());
        self
    }

    /// `service` as the SDK names it in `AWS_ENDPOINT_URL_<SERVICE>`.
    pub fn endpoint(mut self, service: &str, url: impl Into<String>) -> Self {
        self.endpoints
            .insert(format!("AWS_ENDPOINT_URL_{service}"), url.into());
        self
    }
}

pub fn template_path() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    p.canonicalize().unwrap_or(p)
}

/// One deployed stack.
pub struct Stack {
    pub name: String,
    /// The HTTP API's base URL (`http://127.0.0.1:PORT`).
    pub api_url: String,
    pub aws: Aws,
    pub resolver: Resolver,
    pub functions: BTreeMap<String, Arc<Function>>,
    pub schedules: Vec<Schedule>,
    pub journal: Journal,
    pub executions: Arc<Mutex<Vec<Execution>>>,
    pub logs_dir: PathBuf,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _logs: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // The functions' processes end with their last Arc (kill on drop).
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Stack {
    /// Creates the stack's resources in moto and starts everything.
    pub async fn deploy(options: Options) -> Result<Stack> {
        let bin_dir = PathBuf::from(
            std::env::var("CHARLA_LAMBDA_BIN_DIR").map_err(|_| Error(BUILD_HINT.into()))?,
        );
        let Provisioned {
            template,
            resolver,
            created,
            aws,
            name,
        } = provision(&options).await?;
        let moto = aws.endpoint.clone();

        let logs = tempfile::Builder::new()
            .prefix(&format!("{name}-logs-"))
            .tempdir()
            .context(|| "log folder".to_string())?;
        let logs_dir = logs.path().to_path_buf();

        // The functions.
        let mut functions = BTreeMap::new();
        for r in template.resources.values().filter(|r| {
            r.kind == "AWS::Serverless::Function" && created.properties.contains_key(&r.id)
        }) {
            let spec = function_spec(
                &template,
                &resolver,
                &created,
                &r.id,
                &r.metadata,
                &bin_dir,
                &moto,
                &options,
                &logs_dir,
            )?;
            functions.insert(r.id.clone(), Arc::new(Function::new(spec)));
        }
        // Cold starts, all at once. A function that cannot start is noted
        // (and printed): as in Lambda, only its invocations fail, each
        // with a fresh start and its output.
        let journal: Journal = Arc::new(Mutex::new(Vec::new()));
        let starts = functions.values().map(|f| {
            let f = f.clone();
            async move { f.start(Duration::from_secs(30)).await }
        });
        for r in futures::future::join_all(starts).await {
            if let Err(e) = r {
                eprintln!("as-deployed: stack {name}: {e}");
                if let Ok(mut j) = journal.lock() {
                    j.push(format!("cold start failed: {e}"));
                }
            }
        }

        let mut tasks = Vec::new();

        // The HTTP API.
        let routes = gateway::routes(&template, &resolver, &created.properties)?;
        let api_id = template
            .resources
            .values()
            .find(|r| r.kind == "AWS::Serverless::HttpApi")
            .and_then(|r| resolver.physical.get(&r.id))
            .map(|p| p.id.clone())
            .unwrap_or_default();
        let gw = Arc::new(gateway::Gateway {
            routes,
            functions: functions.clone(),
            api_id,
        });
        let (api_url, task) = gateway::serve(gw).await?;
        tasks.push(task);

        // SQS event sources.
        let (sqs_sources, schedules) =
            event_sources::sources(&template, &resolver, &created.properties)?;
        for s in sqs_sources {
            let f = functions
                .get(&s.function)
                .cloned()
                .context(|| format!("{}: no function {}", s.name, s.function))?;
            tasks.push(tokio::spawn(event_sources::poll(
                s,
                aws.sqs.clone(),
                f,
                journal.clone(),
            )));
        }

        // State machines.
        let mut by_arn = BTreeMap::new();
        for (id, f) in &functions {
            if let Some(p) = resolver.physical.get(id) {
                by_arn.insert(p.id.clone(), f.clone());
                if let Some(a) = p.attrs.get("Arn") {
                    by_arn.insert(a.clone(), f.clone());
                }
            }
        }
        let executions = Arc::new(Mutex::new(Vec::new()));
        let machines: Vec<StateMachine> = template
            .resources
            .values()
            .filter(|r| {
                matches!(
                    r.kind.as_str(),
                    "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine"
                )
            })
            .filter_map(|r| resolver.physical.get(&r.id).map(|p| (r, p)))
            .map(|(r, p)| {
                let def = p.attrs.get("Definition").cloned().unwrap_or_default();
                Ok(StateMachine {
                    logical_id: r.id.clone(),
                    arn: p.id.clone(),
                    definition: serde_json::from_str(&def)
                        .context(|| format!("{}: the definition is not JSON", r.id))?,
                })
            })
            .collect::<Result<_>>()?;
        if !machines.is_empty() {
            let interp = Arc::new(Interpreter {
                functions: by_arn,
                time_scale: options.time_scale,
                executions: executions.clone(),
            });
            tasks.push(tokio::spawn(states::watch(
                machines,
                aws.sfn.clone(),
                interp,
                journal.clone(),
            )));
        }

        Ok(Stack {
            name,
            api_url,
            aws,
            resolver,
            functions,
            schedules,
            journal,
            executions,
            logs_dir,
            tasks,
            _logs: logs,
        })
    }

    /// `!Ref logical_id`: the physical id.
    pub fn physical(&self, logical_id: &str) -> String {
        self.resolver
            .physical
            .get(logical_id)
            .map(|p| p.id.clone())
            .unwrap_or_default()
    }

    /// `!GetAtt logical_id.attr`.
    pub fn attr(&self, logical_id: &str, attr: &str) -> String {
        self.resolver
            .physical
            .get(logical_id)
            .and_then(|p| p.attrs.get(attr).cloned())
            .unwrap_or_default()
    }

    /// Invokes a function (by logical id) as `aws lambda invoke` would.
    pub async fn invoke(
        &self,
        function: &str,
        payload: &Value,
    ) -> std::result::Result<Value, FunctionError> {
        match self.functions.get(function) {
            Some(f) => f.invoke(payload).await,
            None => Err(FunctionError::Crashed {
                function: function.to_string(),
                what: "is no function of the template".into(),
                log_tail: String::new(),
            }),
        }
    }

    /// Fires `function`'s schedule now, with the scheduled event.
    pub async fn fire_schedule(&self, function: &str) -> std::result::Result<Value, FunctionError> {
        let Some(s) = self.schedules.iter().find(|s| s.function == function) else {
            return Err(FunctionError::Crashed {
                function: function.to_string(),
                what: "has no Schedule event".into(),
                log_tail: String::new(),
            });
        };
        self.invoke(function, &event_sources::scheduled_event(s, &self.name))
            .await
    }

    /// The executions the interpreter ran or runs.
    pub fn executions(&self) -> Vec<Execution> {
        self.executions
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// A function's whole output so far.
    pub fn log(&self, function: &str) -> String {
        self.functions
            .get(function)
            .map(|f| std::fs::read_to_string(&f.spec.log_path).unwrap_or_default())
            .unwrap_or_default()
    }

    /// What to print when a test fails: the harness's journal and the end of
    /// every function's output.
    pub fn diagnostics(&self) -> String {
        let mut out = format!(
            "stack {} (logs in {})\n",
            self.name,
            self.logs_dir.display()
        );
        if let Ok(j) = self.journal.lock() {
            for line in j.iter() {
                out.push_str(&format!("  harness: {line}\n"));
            }
        }
        for (id, f) in &self.functions {
            let t = runtime::tail(&f.spec.log_path, 6);
            if !t.is_empty() {
                out.push_str(&format!("--- {id}:\n"));
                for line in t.lines() {
                    let cut: String = line.chars().take(400).collect();
                    out.push_str(&cut);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// Stops every function and poller.
    pub async fn teardown(self) {
        for f in self.functions.values() {
            f.stop().await;
        }
    }
}

/// A stack's resources, created in moto, before anything runs.
pub struct Provisioned {
    pub template: Template,
    pub resolver: Resolver,
    pub created: resources::Created,
    pub aws: Aws,
    pub name: String,
}

/// Loads template.yaml, resolves its parameters and creates its resources
/// in moto under a fresh stack name.
pub async fn provision(options: &Options) -> Result<Provisioned> {
    let moto = std::env::var("MOTO_ENDPOINT").map_err(|_| {
        Error("MOTO_ENDPOINT is not set: run `bash scripts/test`, or `eval \"export $(bash scripts/moto.sh start)\"`".into())
    })?;
    let template = Template::load(&template_path())?;
    let name = format!(
        "charla-e2e-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let pseudo = Pseudo {
        region: REGION.into(),
        account_id: ACCOUNT_ID.into(),
        stack_name: name.clone(),
        stack_id: format!(
            "arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{name}/{}",
            uuid::Uuid::new_v4()
        ),
        partition: "aws".into(),
        url_suffix: "amazonaws.com".into(),
    };
    let parameters = template.parameter_values(&options.parameters)?;
    let mut resolver = Resolver::new(&template, pseudo, parameters)?;
    let aws = Aws::new(&moto).await;
    let created = resources::create_all(&template, &mut resolver, &aws)
        .await
        .context(|| format!("deploying stack {name}"))?;
    Ok(Provisioned {
        template,
        resolver,
        created,
        aws,
        name,
    })
}

/// The environment and limits a function starts with (see [`Stack::deploy`]).
pub fn function_spec_of(
    p: &Provisioned,
    id: &str,
    bin_dir: &Path,
    options: &Options,
    logs_dir: &Path,
) -> Result<FunctionSpec> {
    let r = p
        .template
        .resources
        .get(id)
        .context(|| format!("no resource {id}"))?;
    function_spec(
        &p.template,
        &p.resolver,
        &p.created,
        id,
        &r.metadata,
        bin_dir,
        &p.aws.endpoint,
        options,
        logs_dir,
    )
}

#[allow(clippy::too_many_arguments)]
fn function_spec(
    t: &Template,
    r: &Resolver,
    created: &resources::Created,
    id: &str,
    metadata: &Value,
    bin_dir: &Path,
    moto: &str,
    options: &Options,
    logs_dir: &Path,
) -> Result<FunctionSpec> {
    let props = &created.properties[id];
    let physical = r
        .physical
        .get(id)
        .context(|| format!("{id}: not created"))?;
    let binary = metadata
        .pointer("/BuildProperties/Binary")
        .and_then(Value::as_str)
        .context(|| format!("{id}: no Metadata.BuildProperties.Binary"))?;
    // The layers' folders, mounted at /opt.
    let mut layer_dirs = Vec::new();
    for l in props
        .get("Layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let arn = l.as_str().unwrap_or_default();
        let layer = r
            .physical
            .iter()
            .find(|(_, p)| p.id == arn)
            .map(|(lid, _)| lid.clone())
            .context(|| format!("{id}: layer {arn} is no layer of the template"))?;
        if let Some(dir) = options.layers.get(&layer) {
            layer_dirs.push(dir.clone());
            continue;
        }
        let uri = created
            .properties
            .get(&layer)
            .and_then(|p| p.get("ContentUri"))
            .and_then(Value::as_str)
            .context(|| format!("{id}: layer {layer} has no local ContentUri"))?;
        layer_dirs.push(t.file(uri));
    }
    let mut env = BTreeMap::new();
    if let Some(vars) = props
        .pointer("/Environment/Variables")
        .and_then(Value::as_object)
    {
        for (k, v) in vars {
            let mut v =
                text(v).context(|| format!("{id}: Environment.Variables.{k} is not a string"))?;
            if let Some(rest) = v.strip_prefix("/opt/") {
                let dir = layer_dirs
                    .iter()
                    .find(|d| d.join(rest).exists())
                    .or(layer_dirs.first());
                if let Some(d) = dir {
                    v = d.join(rest).to_string_lossy().to_string();
                }
            }
            env.insert(k.clone(), v);
        }
    }
    let timeout = props
        .get("Timeout")
        .and_then(text)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(3);
    let memory = props
        .get("MemorySize")
        .and_then(text)
        .unwrap_or_else(|| "128".into());
    let log_group = props
        .pointer("/LoggingConfig/LogGroup")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("/aws/lambda/{}", physical.id));
    let day = jiff::Timestamp::now().strftime("%Y/%m/%d").to_string();
    let lambda_env = [
        ("AWS_LAMBDA_FUNCTION_NAME", physical.id.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("{day}/[$LATEST]{}", uuid::Uuid::new_v4().simple()),
        ),
        ("AWS_LAMBDA_LOG_GROUP_NAME", log_group),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_DEFAULT_REGION", REGION.into()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", ACCESS_KEY.into()),
        (
            "_HANDLER",
            text(props.get("Handler").unwrap_or(&Value::Null))
                .unwrap_or_else(|| "bootstrap".into()),
        ),
        ("LAMBDA_TASK_ROOT", bin_dir.to_string_lossy().to_string()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin:/opt/bin".into()),
        ("AWS_ENDPOINT_URL", moto.to_string()),
    ];
    for (k, v) in lambda_env {
        env.insert(k.to_string(), v);
    }
    if let Some(lc) = props.get("LoggingConfig") {
        if lc.get("LogFormat").and_then(Value::as_str) == Some("JSON") {
            env.insert("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into());
            if let Some(level) = lc.get("ApplicationLogLevel").and_then(Value::as_str) {
                env.insert("AWS_LAMBDA_LOG_LEVEL".into(), level.to_string());
            }
        }
    }
    for (k, v) in &options.endpoints {
        env.insert(k.clone(), v.clone());
    }
    Ok(FunctionSpec {
        logical_id: id.to_string(),
        name: physical.id.clone(),
        arn: physical.attrs.get("Arn").cloned().unwrap_or_default(),
        binary: bin_dir.join(binary),
        env,
        timeout: Duration::from_secs(timeout),
        log_path: logs_dir.join(format!("{id}.log")),
    })
}
