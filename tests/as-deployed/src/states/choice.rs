//! The Choice state: its rules (And/Or/Not, the comparison operators and
//! their `...Path` forms) and where it goes.

use serde_json::Value;

use super::{runtime_error, StatesError};
use crate::jsonpath;

/// The state a Choice state named `name` goes to, given its effective input.
pub(super) fn next(name: &str, state: &Value, effective: &Value) -> Result<String, StatesError> {
    let mut to = None;
    for rule in state
        .get("Choices")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        if choice(&rule, effective)? {
            to = rule.get("Next").and_then(Value::as_str).map(str::to_string);
            break;
        }
    }
    match to.or_else(|| {
        state
            .get("Default")
            .and_then(Value::as_str)
            .map(str::to_string)
    }) {
        Some(t) => Ok(t),
        None => Err(StatesError {
            error: "States.NoChoiceMatched".into(),
            cause: format!("no choice of {name} matched"),
        }),
    }
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
