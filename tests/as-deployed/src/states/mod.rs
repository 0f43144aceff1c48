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
//!
//! One file per job: `definition` (what the harness accepts), `paths`
//! (InputPath, Parameters, ResultPath, OutputPath), `run` (the state loop),
//! `choice`, `kinds` (Pass, Wait, Fail), `task` (Lambda), `retry` (Retry and
//! Catch), `watch` (finding executions in moto).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::runtime::Function;

mod choice;
mod definition;
mod kinds;
mod paths;
mod retry;
mod run;
mod task;
mod watch;

pub use watch::watch;

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

impl Interpreter {
    /// Waits and retry intervals, scaled so that tests stay fast.
    async fn sleep_scaled(&self, seconds: f64) {
        let d = (seconds * self.time_scale).max(0.0);
        tokio::time::sleep(Duration::from_secs_f64(d)).await;
    }
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// An interpreter without functions whose waits take no time.
#[cfg(test)]
fn test_interpreter() -> Interpreter {
    Interpreter {
        functions: BTreeMap::new(),
        time_scale: 0.0,
        executions: Arc::new(Mutex::new(Vec::new())),
    }
}
