//! The states that call nothing: Pass, Wait and Fail (Succeed is only its
//! OutputPath; Choice has its own file, Task too).

use serde_json::Value;

use super::paths::{output_path, parameters, result_path};
use super::{number, runtime_error, Interpreter, StatesError};
use crate::jsonpath;

/// A Pass state's output, from its raw input and its effective input.
pub(super) fn pass(
    state: &Value,
    raw: &Value,
    effective: Value,
    ctx: &Value,
) -> Result<Value, StatesError> {
    let e = parameters(state, effective, ctx)?;
    let r = state.get("Result").cloned().unwrap_or(e);
    output_path(state, result_path(state, raw, r)?)
}

/// The failure a Fail state declares (Err when its paths cannot be read).
pub(super) fn fail(state: &Value, effective: &Value) -> Result<StatesError, StatesError> {
    let pick = |k: &str, kp: &str| -> Result<Option<String>, StatesError> {
        if let Some(v) = state.get(k).and_then(Value::as_str) {
            return Ok(Some(v.to_string()));
        }
        if let Some(p) = state.get(kp).and_then(Value::as_str) {
            return Ok(jsonpath::get(effective, p)?.and_then(|v| v.as_str().map(str::to_string)));
        }
        Ok(None)
    };
    Ok(StatesError {
        error: pick("Error", "ErrorPath")?.unwrap_or_default(),
        cause: pick("Cause", "CausePath")?.unwrap_or_default(),
    })
}

impl Interpreter {
    /// Waits as a Wait state says (scaled), then gives its output.
    pub(super) async fn wait(
        &self,
        name: &str,
        state: &Value,
        effective: Value,
    ) -> Result<Value, StatesError> {
        let seconds = if let Some(s) = number(state, "Seconds") {
            s
        } else if let Some(p) = state.get("SecondsPath").and_then(Value::as_str) {
            jsonpath::get(&effective, p)?
                .and_then(|v| v.as_f64())
                .ok_or_else(|| {
                    runtime_error(format!("state {name}: SecondsPath {p} is not a number"))
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
            let at: jiff::Timestamp = ts
                .parse()
                .map_err(|e| runtime_error(format!("state {name}: timestamp {ts}: {e}")))?;
            (at.as_millisecond() - jiff::Timestamp::now().as_millisecond()) as f64 / 1000.0
        } else {
            return Err(runtime_error(format!(
                "state {name}: Wait without a duration"
            )));
        };
        self.sleep_scaled(seconds).await;
        output_path(state, effective)
    }
}
