//! Finding the executions to run: moto is polled for new RUNNING
//! executions of each state machine; each runs in its own task and its
//! outcome is kept in the harness, then moto's copy is stopped.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{Execution, Interpreter, StateMachine, StatesError, Status};
use crate::aws::err_text;
use crate::event_sources::Journal;

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
