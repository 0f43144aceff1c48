//! How a state's input becomes its output: InputPath, Parameters (and
//! ResultSelector, Payload) templates with `.$` keys, ResultPath and
//! OutputPath.

use serde_json::{json, Map, Value};

use super::{runtime_error, StatesError};
use crate::jsonpath;

/// Parameters / ResultSelector / Payload templates: `"key.$": "$.path"`.
pub(super) fn template(tpl: &Value, input: &Value, ctx: &Value) -> Result<Value, StatesError> {
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

/// The state's Parameters applied to its effective input, if it has any.
pub(super) fn parameters(
    state: &Value,
    effective: Value,
    ctx: &Value,
) -> Result<Value, StatesError> {
    match state.get("Parameters") {
        Some(p) => template(p, &effective, ctx),
        None => Ok(effective),
    }
}

pub(super) fn input_path(state: &Value, input: &Value) -> Result<Value, StatesError> {
    match state.get("InputPath") {
        None => Ok(input.clone()),
        Some(Value::Null) => Ok(json!({})),
        Some(Value::String(p)) => jsonpath::get(input, p)?
            .ok_or_else(|| runtime_error(format!("InputPath {p} is not in the input"))),
        Some(other) => Err(runtime_error(format!("InputPath {other} is not a path"))),
    }
}

pub(super) fn output_path(state: &Value, output: Value) -> Result<Value, StatesError> {
    match state.get("OutputPath") {
        None => Ok(output),
        Some(Value::Null) => Ok(json!({})),
        Some(Value::String(p)) => jsonpath::get(&output, p)?
            .ok_or_else(|| runtime_error(format!("OutputPath {p} is not in the output"))),
        Some(other) => Err(runtime_error(format!("OutputPath {other} is not a path"))),
    }
}

pub(super) fn result_path(
    state: &Value,
    raw_input: &Value,
    result: Value,
) -> Result<Value, StatesError> {
    match state.get("ResultPath") {
        None => Ok(result),
        Some(Value::Null) => Ok(raw_input.clone()),
        Some(Value::String(p)) => Ok(jsonpath::set(raw_input, p, result)?),
        Some(other) => Err(runtime_error(format!("ResultPath {other} is not a path"))),
    }
}
