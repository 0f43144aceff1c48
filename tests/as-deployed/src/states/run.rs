//! One execution, state after state: each state's input through its
//! InputPath to its kind, then along Next, a Choice, or a Catch.

use serde_json::{json, Value};

use super::definition::{check_fields, parse};
use super::paths::{input_path, output_path};
use super::{choice, kinds, retry, runtime_error, Interpreter, StatesError};

impl Interpreter {
    /// Runs one execution to its end.
    pub async fn run(
        &self,
        definition: &Value,
        input: Value,
        ctx: &Value,
        visited: &mut Vec<String>,
    ) -> Result<Value, StatesError> {
        let (states, mut current) = parse(definition)?;
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
            // Errors from `?` here fail the execution; only a task's own
            // error (after its retries) may be caught.
            let out = match kind {
                "Pass" => kinds::pass(&state, &raw, effective, &ctx)?,
                "Task" => match self
                    .task_state(&current, &state, &raw, effective, &ctx)
                    .await?
                {
                    Ok(out) => out,
                    Err(err) => {
                        (current, data) = retry::catch(&current, &state, raw, err)?;
                        continue;
                    }
                },
                "Choice" => {
                    let to = choice::next(&current, &state, &effective)?;
                    data = output_path(&state, effective)?;
                    current = to;
                    continue;
                }
                "Wait" => self.wait(&current, &state, effective).await?,
                "Succeed" => return output_path(&state, effective),
                "Fail" => return Err(kinds::fail(&state, &effective)?),
                other => {
                    return Err(runtime_error(format!(
                        "state {current}: type {other} is not supported"
                    )))
                }
            };
            data = out;
            if end {
                return Ok(data);
            }
            current = next.ok_or_else(|| {
                runtime_error(format!("state {current} has neither Next nor End"))
            })?;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_interpreter;

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
        let i = test_interpreter();
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
}
