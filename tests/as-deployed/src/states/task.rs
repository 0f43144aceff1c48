//! The Task state: a Lambda function of the stack invoked (by its ARN, or
//! through `arn:aws:states:::lambda:invoke`), retried as its Retry says.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::paths::{output_path, parameters, result_path, template};
use super::retry::Retries;
use super::{runtime_error, Interpreter, StatesError};
use crate::runtime::{Function, FunctionError};

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

    /// Runs Task state `name` to its output, retrying as it says. The outer
    /// Err fails the execution; the inner one is the task's error, which
    /// the state's Catch may take.
    pub(super) async fn task_state(
        &self,
        name: &str,
        state: &Value,
        raw: &Value,
        effective: Value,
        ctx: &Value,
    ) -> Result<Result<Value, StatesError>, StatesError> {
        let e = parameters(state, effective, ctx)?;
        let mut retries = Retries::default();
        loop {
            match self.task(name, state, e.clone()).await {
                Ok(r) => {
                    let r = match state.get("ResultSelector") {
                        Some(sel) => template(sel, &r, ctx)?,
                        None => r,
                    };
                    return Ok(Ok(output_path(state, result_path(state, raw, r)?)?));
                }
                Err(err) => match retries.delay(name, state, &err)? {
                    Some(delay) => self.sleep_scaled(delay).await,
                    None => return Ok(Err(err)),
                },
            }
        }
    }

    /// One attempt: the invocation's result, as Step Functions gives it.
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
}
