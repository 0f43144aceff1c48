//! Step Functions, interpreted: moto stores executions but cannot run
//! Lambda tasks, so the harness polls moto's `ListExecutions` for each of
//! the template's state machines and runs every new RUNNING execution here,
//! with the definition as deployed (DefinitionSubstitutions applied).
//!
//! Supported: Task (a Lambda function ARN as Resource, or
//! `arn:aws:states:::lambda:invoke` with `FunctionName`/`Payload`), Choice,
//! Wait, Pass, Succeed, Fail; InputPath, Parameters, ResultSelector,
//! ResultPath, OutputPath with the JSONPath subset of [`crate::jsonpath`];
//! Retry (ErrorEquals with States.ALL / States.TaskFailed, IntervalSeconds,
//! MaxAttempts, BackoffRate, MaxDelaySeconds, JitterStrategy) and Catch.
//! An unknown state type or field fails the execution with a cause naming
//! it. Waits and retry intervals are multiplied by the stack's
//! `time_scale` (e.g. 0.01: a 10 s Wait lasts 100 ms) so tests stay fast;
//! Task and execution timeouts are not scaled.
//!
//! The outcome is kept in the harness ([`Execution`]); moto's copy is then
//! stopped (moto shows it ABORTED: it has no API to mark one SUCCEEDED).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::aws::err_text;
use crate::event_sources::Journal;
use crate::jsonpath;
use crate::runtime::{Function, FunctionError};

#[derive(Debug, Clone)]
pub struct StateMachine {
    pub logical_id: String,
    pub arn: String,
    pub definition: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Running,
    Succeeded,
    Failed { error: String, cause: String },
}

#[derive(Debug, Clone)]
pub struct Execution {
    pub arn: String,
    pub name: String,
    pub state_machine: String,
    pub input: Value,
    pub status: Status,
    pub output: Option<Value>,
    /// The states entered, in order (retries not repeated).
    pub visited: Vec<String>,
}

/// A failure as States Language sees it.
#[derive(Debug, Clone)]
pub struct StatesError {
    pub error: String,
    pub cause: String,
}

fn runtime_error(cause: String) -> StatesError {
    StatesError {
        error: "States.Runtime".into(),
        cause,
    }
}

impl From<crate::error::Error> for StatesError {
    fn from(e: crate::error::Error) -> Self {
        runtime_error(e.0)
    }
}

pub struct Interpreter {
    /// By function ARN and by function name.
    pub functions: BTreeMap<String, Arc<Function>>,
    pub time_scale: f64,
    pub executions: Arc<Mutex<Vec<Execution>>>,
}

const COMMON: &[&str] = &["Type", "Comment", "Next", "End", "InputPath", "OutputPath"];

fn allowed(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Task" => &[
            "Resource",
            "Parameters",
            "ResultPath",
            "ResultSelector",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "HeartbeatSeconds",
        ],
        "Choice" => &["Choices", "Default"],
        "Wait" => &["Seconds", "SecondsPath", "Timestamp", "TimestampPath"],
        "Pass" => &["Result", "ResultPath", "Parameters"],
        "Succeed" => &[],
        "Fail" => &["Error", "Cause", "ErrorPath", "CausePath"],
        _ => return None,
    })
}

fn check_fields(name: &str, state: &Value) -> Result<(), StatesError> {
    let kind = state
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(extra) = allowed(kind) else {
        return Err(runtime_error(format!(
            "state {name}: type {kind:?} is not supported by the harness"
        )));
    };
    if let Some(m) = state.as_object() {
        for k in m.keys() {
            if !COMMON.contains(&k.as_str()) && !extra.contains(&k.as_str()) {
                return Err(runtime_error(format!(
                    "state {name} ({kind}): field {k} is not supported by the harness"
                )));
            }
        }
    }
    Ok(())
}

/// Parameters / ResultSelector / Payload templates: `"key.$": "$.path"`.
fn template(tpl: &Value, input: &Value, ctx: &Value) -> Result<Value, StatesError> {
    match tpl {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(key) = k.strip_suffix(".$") {
                    let path = v
                        .as_str()
                        .ok_or_else(|| runtime_error(format!("{k}: not a path")))?;
                    if path.starts_with("States.") {
                        return Err(runtime_error(format!(
                            "{k}: intrinsic function {path} is not supported by the harness"
                        )));
                    }
                    let value =
                        if let Some(p) = path.strip_prefix('$').and_then(|p| p.strip_prefix('$')) {
                            jsonpath::get(ctx, &format!("${p}"))?
                        } else {
                            jsonpath::get(input, path)?
                        };
                    let value = value.ok_or_else(|| {
                        runtime_error(format!("{k}: the path {path} is not in the input"))
                    })?;
                    out.insert(key.to_string(), value);
                } else {
                    out.insert(k.clone(), template(v, input, ctx)?);
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => Ok(Value::Array(
            a.iter()
                .map(|v| template(v, input, ctx))
                .collect::<Result<_, _>>()?,
        )),
        other => Ok(other.clone()),
    }
}

fn input_path(state: &Value, input: &Value) -> Result<Value, StatesError> {
    match state.get("InputPath") {
        None => Ok(input.clone()),
        Some(Value::Null) => Ok(json!({})),
        Some(Value::String(p)) => jsonpath::get(input, p)?
            .ok_or_else(|| runtime_error(format!("InputPath {p} is not in the input"))),
        Some(other) => Err(runtime_error(format!("InputPath {other} is not a path"))),
    }
}

fn output_path(state: &Value, output: Value) -> Result<Value, StatesError> {
    match state.get("OutputPath") {
        None => Ok(output),
        Some(Value::Null) => Ok(json!({})),
        Some(Value::String(p)) => jsonpath::get(&output, p)?
            .ok_or_else(|| runtime_error(format!("OutputPath {p} is not in the output"))),
        Some(other) => Err(runtime_error(format!("OutputPath {other} is not a path"))),
    }
}

fn result_path(state: &Value, raw_input: &Value, result: Value) -> Result<Value, StatesError> {
    match state.get("ResultPath") {
        None => Ok(result),
        Some(Value::Null) => Ok(raw_input.clone()),
        Some(Value::String(p)) => Ok(jsonpath::set(raw_input, p, result)?),
        Some(other) => Err(runtime_error(format!("ResultPath {other} is not a path"))),
    }
}

fn error_matches(list: &Value, error: &str) -> bool {
    list.as_array().is_some_and(|a| {
        a.iter().filter_map(Value::as_str).any(|e| {
            e == error
                || e == "States.ALL"
                || (e == "States.TaskFailed"
                    && error != "States.Timeout"
                    && !error.starts_with("States.Runtime"))
        })
    })
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn random_fraction() -> f64 {
    let b = uuid::Uuid::new_v4();
    let x = u32::from_le_bytes([
        b.as_bytes()[0],
        b.as_bytes()[1],
        b.as_bytes()[2],
        b.as_bytes()[3],
    ]);
    f64::from(x) / f64::from(u32::MAX)
}

/// Evaluates one Choice rule.
fn choice(rule: &Value, input: &Value) -> Result<bool, StatesError> {
    if let Some(all) = rule.get("And").and_then(Value::as_array) {
        for r in all {
            if !choice(r, input)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(any) = rule.get("Or").and_then(Value::as_array) {
        for r in any {
            if choice(r, input)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if let Some(not) = rule.get("Not") {
        return Ok(!choice(not, input)?);
    }
    let var = rule
        .get("Variable")
        .and_then(Value::as_str)
        .ok_or_else(|| runtime_error(format!("choice rule without Variable: {rule}")))?;
    let value = jsonpath::get(input, var)?;
    let m = rule.as_object().cloned().unwrap_or_default();
    for (op, operand) in &m {
        if op == "Variable" || op == "Next" || op == "Comment" {
            continue;
        }
        // `...Path` operands compare with another value of the input.
        let (op, operand) = match op.strip_suffix("Path").filter(|o| *o != "Is") {
            Some(base) if base != "Timestamp" && base != "Seconds" => {
                let p = operand
                    .as_str()
                    .ok_or_else(|| runtime_error(format!("{op}: not a path")))?;
                (
                    base.to_string(),
                    jsonpath::get(input, p)?.unwrap_or(Value::Null),
                )
            }
            _ => (op.clone(), operand.clone()),
        };
        let s = value.as_ref().and_then(Value::as_str);
        let n = value.as_ref().and_then(Value::as_f64);
        let on = operand.as_f64();
        let os = operand.as_str();
        let r = match op.as_str() {
            "IsPresent" => value.is_some() == (operand == true),
            "IsNull" => (value == Some(Value::Null)) == (operand == true),
            "IsString" => s.is_some() == (operand == true),
            "IsNumeric" => n.is_some() == (operand == true),
            "IsBoolean" => value.as_ref().is_some_and(Value::is_boolean) == (operand == true),
            "StringEquals" => s.is_some() && s == os,
            "StringLessThan" => matches!((s, os), (Some(a), Some(b)) if a < b),
            "StringGreaterThan" => matches!((s, os), (Some(a), Some(b)) if a > b),
            "StringLessThanEquals" => matches!((s, os), (Some(a), Some(b)) if a <= b),
            "StringGreaterThanEquals" => matches!((s, os), (Some(a), Some(b)) if a >= b),
            "StringMatches" => match (s, os) {
                (Some(a), Some(pat)) => {
                    let re = regex::escape(pat).replace("\\*", ".*");
                    regex::Regex::new(&format!("^{re}$")).is_ok_and(|re| re.is_match(a))
                }
                _ => false,
            },
            "NumericEquals" => matches!((n, on), (Some(a), Some(b)) if a == b),
            "NumericLessThan" => matches!((n, on), (Some(a), Some(b)) if a < b),
            "NumericGreaterThan" => matches!((n, on), (Some(a), Some(b)) if a > b),
            "NumericLessThanEquals" => matches!((n, on), (Some(a), Some(b)) if a <= b),
            "NumericGreaterThanEquals" => matches!((n, on), (Some(a), Some(b)) if a >= b),
            "BooleanEquals" => {
                value.as_ref().and_then(Value::as_bool).is_some()
                    && value.as_ref() == Some(&operand)
            }
            other => {
                return Err(runtime_error(format!(
                    "choice operator {other} is not supported by the harness"
                )))
            }
        };
        return Ok(r);
    }
    Err(runtime_error(format!(
        "choice rule without an operator: {rule}"
    )))
}

impl Interpreter {
    fn function(&self, resource: &str) -> Option<Arc<Function>> {
        if let Some(f) = self.functions.get(resource) {
            return Some(f.clone());
        }
        // `arn:...:function:name:qualifier` or `name:qualifier`.
        let base = match resource.find(":function:") {
            Some(i) => {
                let rest = &resource[i + ":function:".len()..];
                rest.split(':').next().unwrap_or(rest).to_string()
            }
            None => resource.split(':').next().unwrap_or(resource).to_string(),
        };
        self.functions.get(&base).cloned()
    }

    async fn task(
        &self,
        name: &str,
        state: &Value,
        effective: Value,
    ) -> Result<Value, StatesError> {
        let resource = state
            .get("Resource")
            .and_then(Value::as_str)
            .ok_or_else(|| runtime_error(format!("state {name}: no Resource")))?;
        let (function, payload, wrap) = if resource == "arn:aws:states:::lambda:invoke" {
            let fname = effective
                .get("FunctionName")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    runtime_error(format!("state {name}: lambda:invoke without FunctionName"))
                })?
                .to_string();
            (
                fname,
                effective.get("Payload").cloned().unwrap_or(Value::Null),
                true,
            )
        } else if resource.starts_with("arn:aws:lambda:") {
            (resource.to_string(), effective, false)
        } else {
            return Err(runtime_error(format!(
                "state {name}: Resource {resource} is not supported by the harness (Lambda only)"
            )));
        };
        let f = self.function(&function).ok_or_else(|| {
            runtime_error(format!(
                "state {name}: {function} is no function of the stack"
            ))
        })?;
        let timeout = state
            .get("TimeoutSeconds")
            .and_then(Value::as_u64)
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(99_999_999));
        let result = match tokio::time::timeout(timeout, f.invoke(&payload)).await {
            Err(_) => {
                return Err(StatesError {
                    error: "States.Timeout".into(),
                    cause: format!("state {name} ran past its TimeoutSeconds"),
                })
            }
            Ok(Err(e)) => {
                let error = match &e {
                    FunctionError::Timeout { .. } => "Sandbox.Timedout".to_string(),
                    FunctionError::Crashed { .. } => "Lambda.Unknown".to_string(),
                    FunctionError::Handled { .. } => e.error_type(),
                };
                return Err(StatesError {
                    error,
                    cause: e.cause(),
                });
            }
            Ok(Ok(v)) => v,
        };
        Ok(if wrap {
            json!({
                "ExecutedVersion": "$LATEST",
                "Payload": result,
                "SdkHttpMetadata": {"HttpStatusCode": 200},
                "SdkResponseMetadata": {"RequestId": uuid::Uuid::new_v4().to_string()},
                "StatusCode": 200,
            })
        } else {
            result
        })
    }

    async fn sleep_scaled(&self, seconds: f64) {
        let d = (seconds * self.time_scale).max(0.0);
        tokio::time::sleep(Duration::from_secs_f64(d)).await;
    }

    /// Runs one execution to its end.
    pub async fn run(
        &self,
        definition: &Value,
        input: Value,
        ctx: &Value,
        visited: &mut Vec<String>,
    ) -> Result<Value, StatesError> {
        if let Some(m) = definition.as_object() {
            for k in m.keys() {
                if !["Comment", "StartAt", "States", "TimeoutSeconds", "Version"]
                    .contains(&k.as_str())
                {
                    return Err(runtime_error(format!(
                        "state machine field {k} is not supported by the harness"
                    )));
                }
            }
        }
        let states = definition
            .get("States")
            .and_then(Value::as_object)
            .ok_or_else(|| runtime_error("no States".into()))?;
        let mut current = definition
            .get("StartAt")
            .and_then(Value::as_str)
            .ok_or_else(|| runtime_error("no StartAt".into()))?
            .to_string();
        let mut data = input;
        loop {
            let state = states
                .get(&current)
                .ok_or_else(|| runtime_error(format!("no state named {current}")))?
                .clone();
            check_fields(&current, &state)?;
            visited.push(current.clone());
            let mut ctx = ctx.clone();
            ctx["State"] = json!({"Name": current, "EnteredTime": jiff::Timestamp::now().to_string(), "RetryCount": 0});
            let kind = state
                .get("Type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let next = state
                .get("Next")
                .and_then(Value::as_str)
                .map(str::to_string);
            let end = state.get("End") == Some(&Value::Bool(true));
            let raw = data.clone();
            let effective = input_path(&state, &data)?;
            let outcome: Result<Value, StatesError> = match kind {
                "Pass" => {
                    let e = match state.get("Parameters") {
                        Some(p) => template(p, &effective, &ctx)?,
                        None => effective,
                    };
                    let r = state.get("Result").cloned().unwrap_or(e);
                    Ok(output_path(&state, result_path(&state, &raw, r)?)?)
                }
                "Task" => {
                    let e = match state.get("Parameters") {
                        Some(p) => template(p, &effective, &ctx)?,
                        None => effective,
                    };
                    let mut attempts: BTreeMap<usize, u32> = BTreeMap::new();
                    loop {
                        match self.task(&current, &state, e.clone()).await {
                            Ok(r) => {
                                let r = match state.get("ResultSelector") {
                                    Some(sel) => template(sel, &r, &ctx)?,
                                    None => r,
                                };
                                break Ok(output_path(&state, result_path(&state, &raw, r)?)?);
                            }
                            Err(err) => {
                                let retriers = state
                                    .get("Retry")
                                    .and_then(Value::as_array)
                                    .cloned()
                                    .unwrap_or_default();
                                let Some((i, retrier)) = retriers
                                    .iter()
                                    .enumerate()
                                    .find(|(_, r)| error_matches(&r["ErrorEquals"], &err.error))
                                else {
                                    break Err(err);
                                };
                                for k in retrier
                                    .as_object()
                                    .map(|m| m.keys().cloned().collect::<Vec<_>>())
                                    .unwrap_or_default()
                                {
                                    if ![
                                        "ErrorEquals",
                                        "IntervalSeconds",
                                        "MaxAttempts",
                                        "BackoffRate",
                                        "MaxDelaySeconds",
                                        "JitterStrategy",
                                        "Comment",
                                    ]
                                    .contains(&k.as_str())
                                    {
                                        return Err(runtime_error(format!("state {current}: Retry field {k} is not supported by the harness")));
                                    }
                                }
                                let max = number(retrier, "MaxAttempts").unwrap_or(3.0) as u32;
                                let n = attempts.entry(i).or_insert(0);
                                if *n >= max {
                                    break Err(err);
                                }
                                *n += 1;
                                let interval = number(retrier, "IntervalSeconds").unwrap_or(1.0);
                                let rate = number(retrier, "BackoffRate").unwrap_or(2.0);
                                let mut delay = interval * rate.powi(*n as i32 - 1);
                                if let Some(cap) = number(retrier, "MaxDelaySeconds") {
                                    delay = delay.min(cap);
                                }
                                if retrier.get("JitterStrategy").and_then(Value::as_str)
                                    == Some("FULL")
                                {
                                    delay *= random_fraction();
                                }
                                self.sleep_scaled(delay).await;
                            }
                        }
                    }
                }
                "Choice" => {
                    let mut to = None;
                    for rule in state
                        .get("Choices")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                    {
                        if choice(&rule, &effective)? {
                            to = rule.get("Next").and_then(Value::as_str).map(str::to_string);
                            break;
                        }
                    }
                    let to = match to.or_else(|| {
                        state
                            .get("Default")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    }) {
                        Some(t) => t,
                        None => {
                            return Err(StatesError {
                                error: "States.NoChoiceMatched".into(),
                                cause: format!("no choice of {current} matched"),
                            })
                        }
                    };
                    data = output_path(&state, effective)?;
                    current = to;
                    continue;
                }
                "Wait" => {
                    let seconds = if let Some(s) = number(&state, "Seconds") {
                        s
                    } else if let Some(p) = state.get("SecondsPath").and_then(Value::as_str) {
                        jsonpath::get(&effective, p)?
                            .and_then(|v| v.as_f64())
                            .ok_or_else(|| {
                                runtime_error(format!(
                                    "state {current}: SecondsPath {p} is not a number"
                                ))
                            })?
                    } else if let Some(ts) = state
                        .get("Timestamp")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .or_else(|| {
                            let p = state.get("TimestampPath")?.as_str()?;
                            jsonpath::get(&effective, p)
                                .ok()
                                .flatten()?
                                .as_str()
                                .map(str::to_string)
                        })
                    {
                        let at: jiff::Timestamp = ts.parse().map_err(|e| {
                            runtime_error(format!("state {current}: timestamp {ts}: {e}"))
                        })?;
                        (at.as_millisecond() - jiff::Timestamp::now().as_millisecond()) as f64
                            / 1000.0
                    } else {
                        return Err(runtime_error(format!(
                            "state {current}: Wait without a duration"
                        )));
                    };
                    self.sleep_scaled(seconds).await;
                    Ok(output_path(&state, effective)?)
                }
                "Succeed" => {
                    return output_path(&state, effective);
                }
                "Fail" => {
                    let pick = |k: &str, kp: &str| -> Result<Option<String>, StatesError> {
                        if let Some(v) = state.get(k).and_then(Value::as_str) {
                            return Ok(Some(v.to_string()));
                        }
                        if let Some(p) = state.get(kp).and_then(Value::as_str) {
                            return Ok(jsonpath::get(&effective, p)?
                                .and_then(|v| v.as_str().map(str::to_string)));
                        }
                        Ok(None)
                    };
                    return Err(StatesError {
                        error: pick("Error", "ErrorPath")?.unwrap_or_default(),
                        cause: pick("Cause", "CausePath")?.unwrap_or_default(),
                    });
                }
                other => {
                    return Err(runtime_error(format!(
                        "state {current}: type {other} is not supported"
                    )))
                }
            };
            match outcome {
                Ok(out) => {
                    data = out;
                    if end {
                        return Ok(data);
                    }
                    current = next.ok_or_else(|| {
                        runtime_error(format!("state {current} has neither Next nor End"))
                    })?;
                }
                Err(err) => {
                    let catchers = state
                        .get("Catch")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let Some(c) = catchers
                        .iter()
                        .find(|c| error_matches(&c["ErrorEquals"], &err.error))
                    else {
                        return Err(err);
                    };
                    let error_output = json!({"Error": err.error, "Cause": err.cause});
                    data = match c.get("ResultPath") {
                        None => error_output,
                        Some(Value::Null) => raw,
                        Some(Value::String(p)) => jsonpath::set(&raw, p, error_output)?,
                        Some(other) => {
                            return Err(runtime_error(format!("Catch ResultPath {other}")))
                        }
                    };
                    current = c
                        .get("Next")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            runtime_error(format!("state {current}: a Catch without Next"))
                        })?
                        .to_string();
                }
            }
        }
    }
}

fn note(journal: &Journal, line: String) {
    eprintln!("as-deployed: {line}");
    if let Ok(mut j) = journal.lock() {
        j.push(line);
    }
}

/// Polls moto for new executions of `machines` and runs each.
pub async fn watch(
    machines: Vec<StateMachine>,
    sfn: aws_sdk_sfn::Client,
    interpreter: Arc<Interpreter>,
    journal: Journal,
) {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    loop {
        for m in &machines {
            let listed = sfn
                .list_executions()
                .state_machine_arn(&m.arn)
                .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
                .send()
                .await;
            let executions = match listed {
                Ok(out) => out.executions,
                Err(e) => {
                    note(
                        &journal,
                        format!("{}: ListExecutions: {}", m.logical_id, err_text(&e)),
                    );
                    continue;
                }
            };
            for ex in executions {
                let arn = ex.execution_arn().to_string();
                if !seen.insert(arn.clone()) {
                    continue;
                }
                let described = match sfn.describe_execution().execution_arn(&arn).send().await {
                    Ok(d) => d,
                    Err(e) => {
                        note(
                            &journal,
                            format!("{}: DescribeExecution: {}", m.logical_id, err_text(&e)),
                        );
                        continue;
                    }
                };
                let input: Value = described
                    .input()
                    .and_then(|i| serde_json::from_str(i).ok())
                    .unwrap_or(json!({}));
                let record = Execution {
                    arn: arn.clone(),
                    name: ex.name().to_string(),
                    state_machine: m.logical_id.clone(),
                    input: input.clone(),
                    status: Status::Running,
                    output: None,
                    visited: Vec::new(),
                };
                if let Ok(mut all) = interpreter.executions.lock() {
                    all.push(record);
                }
                let (interp, sfn, journal, machine) =
                    (interpreter.clone(), sfn.clone(), journal.clone(), m.clone());
                let start = described.start_date().to_string();
                tokio::spawn(async move {
                    let ctx = json!({
                        "Execution": {"Id": arn, "Name": ex.name(), "Input": input, "StartTime": start,
                                       "RoleArn": described.state_machine_arn()},
                        "StateMachine": {"Id": machine.arn, "Name": machine.logical_id},
                    });
                    let limit = machine
                        .definition
                        .get("TimeoutSeconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(365 * 24 * 3600);
                    let mut visited = Vec::new();
                    let result = tokio::time::timeout(
                        Duration::from_secs(limit),
                        interp.run(&machine.definition, input, &ctx, &mut visited),
                    )
                    .await
                    .unwrap_or_else(|_| {
                        Err(StatesError {
                            error: "States.Timeout".into(),
                            cause: "the execution ran past TimeoutSeconds".into(),
                        })
                    });
                    let (status, output) = match result {
                        Ok(out) => (Status::Succeeded, Some(out)),
                        Err(e) => {
                            note(
                                &journal,
                                format!(
                                    "{}: execution {} failed: {}: {}",
                                    machine.logical_id,
                                    ex.name(),
                                    e.error,
                                    e.cause
                                ),
                            );
                            (
                                Status::Failed {
                                    error: e.error,
                                    cause: e.cause,
                                },
                                None,
                            )
                        }
                    };
                    if let Ok(mut all) = interp.executions.lock() {
                        if let Some(r) = all.iter_mut().find(|r| r.arn == arn) {
                            r.status = status.clone();
                            r.output = output;
                            r.visited = visited;
                        }
                    }
                    let _ = sfn
                        .stop_execution()
                        .execution_arn(&arn)
                        .error(match &status {
                            Status::Failed { error, .. } => error.clone(),
                            _ => "as-deployed.Succeeded".into(),
                        })
                        .cause("run by the as-deployed harness; its outcome is kept there")
                        .send()
                        .await;
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interp() -> Interpreter {
        Interpreter {
            functions: BTreeMap::new(),
            time_scale: 0.0,
            executions: Arc::new(Mutex::new(Vec::new())),
        }
    }

    #[tokio::test]
    async fn pass_choice_wait_and_fail_run_as_the_language_says() {
        let def = json!({
            "StartAt": "Shape",
            "States": {
                "Shape": {"Type": "Pass", "Parameters": {"job.$": "$", "n": 1}, "ResultPath": "$.shaped", "Next": "Route"},
                "Route": {"Type": "Choice", "Choices": [
                    {"Variable": "$.problem", "IsPresent": true, "Next": "Broken"},
                    {"Variable": "$.shaped.job.route", "StringEquals": "image", "Next": "Pause"}
                ], "Default": "Broken"},
                "Pause": {"Type": "Wait", "Seconds": 10, "Next": "Done"},
                "Done": {"Type": "Succeed", "OutputPath": "$.shaped"},
                "Broken": {"Type": "Fail", "Error": "Bad", "Cause": "no route"}
            }
        });
        let i = interp();
        let mut visited = Vec::new();
        let out = i
            .run(&def, json!({"route": "image"}), &json!({}), &mut visited)
            .await
            .expect("succeeds");
        assert_eq!(out, json!({"job": {"route": "image"}, "n": 1}));
        assert_eq!(visited, ["Shape", "Route", "Pause", "Done"]);
        let err = i
            .run(
                &def,
                json!({"route": "image", "problem": 1}),
                &json!({}),
                &mut Vec::new(),
            )
            .await
            .expect_err("fails");
        assert_eq!(err.error, "Bad");
    }

    #[tokio::test]
    async fn unknown_fields_and_types_are_named() {
        let def = json!({"StartAt": "A", "States": {"A": {"Type": "Map", "End": true}}});
        let err = interp()
            .run(&def, json!({}), &json!({}), &mut Vec::new())
            .await
            .expect_err("refused");
        assert!(err.cause.contains("Map"), "{}", err.cause);
        let def =
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Bogus": 1, "End": true}}});
        let err = interp()
            .run(&def, json!({}), &json!({}), &mut Vec::new())
            .await
            .expect_err("refused");
        assert!(err.cause.contains("Bogus"), "{}", err.cause);
    }
}
