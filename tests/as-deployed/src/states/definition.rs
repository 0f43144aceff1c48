//! What the harness accepts of a definition: a field it does not know
//! fails the execution by name rather than being silently ignored.

use serde_json::{Map, Value};

use super::{runtime_error, StatesError};

/// The definition's states and the name of its first one.
pub(super) fn parse(definition: &Value) -> Result<(&Map<String, Value>, String), StatesError> {
    if let Some(m) = definition.as_object() {
        for k in m.keys() {
            if !["Comment", "StartAt", "States", "TimeoutSeconds", "Version"].contains(&k.as_str())
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
    let start = definition
        .get("StartAt")
        .and_then(Value::as_str)
        .ok_or_else(|| runtime_error("no StartAt".into()))?
        .to_string();
    Ok((states, start))
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

/// Refuses a state of a type, or with a field, the interpreter lacks.
pub(super) fn check_fields(name: &str, state: &Value) -> Result<(), StatesError> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_interpreter;

    #[tokio::test]
    async fn unknown_fields_and_types_are_named() {
        let def = json!({"StartAt": "A", "States": {"A": {"Type": "Map", "End": true}}});
        let err = test_interpreter()
            .run(&def, json!({}), &json!({}), &mut Vec::new())
            .await
            .expect_err("refused");
        assert!(err.cause.contains("Map"), "{}", err.cause);
        let def =
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Bogus": 1, "End": true}}});
        let err = test_interpreter()
            .run(&def, json!({}), &json!({}), &mut Vec::new())
            .await
            .expect_err("refused");
        assert!(err.cause.contains("Bogus"), "{}", err.cause);
    }
}
