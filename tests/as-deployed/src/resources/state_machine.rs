//! AWS::Serverless::StateMachine and AWS::StepFunctions::StateMachine:
//! created in moto with the definition as deployed (DefinitionSubstitutions
//! applied), which the interpreter in `crate::states` then runs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::names::suffix;
use super::props::{only, s, text};
use crate::aws::{err_text, Aws, ACCOUNT_ID};
use crate::bail;
use crate::error::{Context, Result};
use crate::template::Template;

/// The definition's text with `${Key}` replaced by its substitution.
pub fn substitute(definition: &str, subs: &Map<String, Value>) -> Result<String> {
    let mut out = definition.to_string();
    for (k, v) in subs {
        let v = text(v).context(|| format!("DefinitionSubstitutions.{k} is not a string"))?;
        out = out.replace(&format!("${{{k}}}"), &v);
    }
    Ok(out)
}

pub(super) async fn create_state_machine(
    t: &Template,
    aws: &Aws,
    id: &str,
    kind: &str,
    p: &Value,
    attrs: &mut BTreeMap<String, String>,
) -> Result<String> {
    let serverless = kind == "AWS::Serverless::StateMachine";
    if serverless {
        only(
            p,
            &[
                "Type",
                "Name",
                "DefinitionUri",
                "Definition",
                "DefinitionSubstitutions",
                "Role",
            ],
            // Tracing and logging change nothing the interpreter does.
            &["Tracing", "Logging", "Tags", "PermissionsBoundary"],
        )?;
    } else {
        only(
            p,
            &[
                "StateMachineName",
                "StateMachineType",
                "DefinitionString",
                "Definition",
                "DefinitionSubstitutions",
                "RoleArn",
            ],
            &["TracingConfiguration", "LoggingConfiguration", "Tags"],
        )?;
    }
    let definition = if let Some(uri) = s(p, "DefinitionUri") {
        let path = t.file(uri);
        std::fs::read_to_string(&path).context(|| format!("DefinitionUri {}", path.display()))?
    } else if let Some(d) = s(p, "DefinitionString") {
        d.to_string()
    } else if let Some(d) = p.get("Definition") {
        d.to_string()
    } else {
        bail!("no definition (DefinitionUri, DefinitionString or Definition)");
    };
    let subs = p
        .get("DefinitionSubstitutions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let definition = substitute(&definition, &subs)?;
    if let Some(left) = regex::Regex::new(r"\$\{[A-Za-z0-9_]+\}")
        .ok()
        .and_then(|re| re.find(&definition).map(|m| m.as_str().to_string()))
    {
        bail!("the definition still has {left} after DefinitionSubstitutions");
    }
    let name = s(
        p,
        if serverless {
            "Name"
        } else {
            "StateMachineName"
        },
    )
    .map(str::to_string)
    .unwrap_or_else(|| format!("{id}-{}", suffix(12, false)));
    let role = s(p, if serverless { "Role" } else { "RoleArn" })
        .map(str::to_string)
        .unwrap_or_else(|| format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}-role"));
    let machine_type = s(
        p,
        if serverless {
            "Type"
        } else {
            "StateMachineType"
        },
    )
    .unwrap_or("STANDARD");
    let out = aws
        .sfn
        .create_state_machine()
        .name(&name)
        .definition(&definition)
        .role_arn(role)
        .r#type(aws_sdk_sfn::types::StateMachineType::from(machine_type))
        .send()
        .await
        .map_err(|e| crate::error::Error(format!("CreateStateMachine {name}: {}", err_text(&e))))?;
    let sm_arn = out.state_machine_arn().to_string();
    attrs.insert("Arn".into(), sm_arn.clone());
    attrs.insert("Name".into(), name);
    // The resolved definition, for the interpreter.
    attrs.insert("Definition".into(), definition);
    Ok(sm_arn)
}
