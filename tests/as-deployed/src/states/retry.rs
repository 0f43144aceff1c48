//! A Task's Retry and Catch: which error a retrier or catcher takes, the
//! delay before the next attempt, and where a caught error goes.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{number, runtime_error, StatesError};
use crate::jsonpath;

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

/// For JitterStrategy FULL; uuid is already a dependency, rand is not.
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

/// The attempts so far of one Task state, per retrier.
#[derive(Default)]
pub(super) struct Retries(BTreeMap<usize, u32>);

impl Retries {
    /// The seconds to wait before trying state `name` again after `err`
    /// (unscaled); None when no retrier takes `err` or its attempts are spent.
    pub(super) fn delay(
        &mut self,
        name: &str,
        state: &Value,
        err: &StatesError,
    ) -> Result<Option<f64>, StatesError> {
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
            return Ok(None);
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
                return Err(runtime_error(format!(
                    "state {name}: Retry field {k} is not supported by the harness"
                )));
            }
        }
        let max = number(retrier, "MaxAttempts").unwrap_or(3.0) as u32;
        let n = self.0.entry(i).or_insert(0);
        if *n >= max {
            return Ok(None);
        }
        *n += 1;
        let interval = number(retrier, "IntervalSeconds").unwrap_or(1.0);
        let rate = number(retrier, "BackoffRate").unwrap_or(2.0);
        let mut delay = interval * rate.powi(*n as i32 - 1);
        if let Some(cap) = number(retrier, "MaxDelaySeconds") {
            delay = delay.min(cap);
        }
        if retrier.get("JitterStrategy").and_then(Value::as_str) == Some("FULL") {
            delay *= random_fraction();
        }
        Ok(Some(delay))
    }
}

/// Where `err` of state `name` goes: the first catcher that takes it, with
/// the data its ResultPath makes of `raw` (the state's input) and the error.
/// `Err(err)` when no catcher takes it.
pub(super) fn catch(
    name: &str,
    state: &Value,
    raw: Value,
    err: StatesError,
) -> Result<(String, Value), StatesError> {
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
    let data = match c.get("ResultPath") {
        None => error_output,
        Some(Value::Null) => raw,
        Some(Value::String(p)) => jsonpath::set(&raw, p, error_output)?,
        Some(other) => return Err(runtime_error(format!("Catch ResultPath {other}"))),
    };
    let next = c
        .get("Next")
        .and_then(Value::as_str)
        .ok_or_else(|| runtime_error(format!("state {name}: a Catch without Next")))?
        .to_string();
    Ok((next, data))
}
