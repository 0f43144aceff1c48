//! The template's resources, created in moto from the template itself (no
//! second list), in dependency order, with the physical ids CloudFormation
//! would give them (generated names carry the stack name and a random
//! suffix, so stacks of parallel tests never meet in one moto).
//!
//! One file per kind created in moto; the kinds the harness only names
//! (functions, roles, log groups, layers, the HTTP API) are in
//! [`create_one`]. The template's intrinsic functions are resolved by
//! [`crate::template::Resolver`] before a resource is created.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::aws::{Aws, ACCOUNT_ID};
use crate::bail;
use crate::error::{Context, Result};
use crate::template::{references, Physical, Resolver, Template};

mod dynamodb;
mod names;
mod props;
mod s3;
mod secrets;
mod sns;
mod sqs;
mod state_machine;

use names::{arn, generated, suffix};
use props::s;
pub use state_machine::substitute;

/// Types the harness does not create in moto, and why.
pub const SKIPPED: &[(&str, &str)] = &[
    (
        "AWS::IAM::Role",
        "moto does not enforce IAM; the harness gives an ARN",
    ),
    ("AWS::IAM::Policy", "moto does not enforce IAM"),
    ("AWS::IAM::ManagedPolicy", "moto does not enforce IAM"),
    (
        "AWS::Logs::LogGroup",
        "the harness keeps each function's output in a file",
    ),
    ("AWS::CloudWatch::Alarm", "no metrics here"),
    ("AWS::CloudWatch::Dashboard", "no metrics here"),
    (
        "AWS::S3::BucketPolicy",
        "a deny of plain HTTP; moto is plain HTTP",
    ),
    (
        "AWS::SQS::QueuePolicy",
        "a deny of plain HTTP; moto is plain HTTP",
    ),
    (
        "AWS::SQS::QueueInlinePolicy",
        "a deny of plain HTTP; moto is plain HTTP",
    ),
    (
        "AWS::SNS::Subscription",
        "the tests subscribe their own queues",
    ),
    (
        "AWS::SNS::TopicPolicy",
        "moto does not enforce resource policies",
    ),
    (
        "AWS::Lambda::Permission",
        "the harness invokes the functions itself",
    ),
    (
        "AWS::Serverless::LayerVersion",
        "mounted at /opt by the runtime emulator",
    ),
    ("AWS::Serverless::HttpApi", "emulated by the gateway"),
    (
        "AWS::CloudFront::Distribution",
        "the console's static site; the runner serves it in the tests",
    ),
    (
        "AWS::CloudFront::OriginAccessControl",
        "the console's static site; the runner serves it in the tests",
    ),
    (
        "AWS::CloudFront::ResponseHeadersPolicy",
        "the console's static site; the runner serves it in the tests",
    ),
    // Not in moto either: run by the runtime emulator.
    ("AWS::Serverless::Function", "run by the runtime emulator"),
];

/// Everything the stack's resources resolved to.
#[derive(Debug, Default)]
pub struct Created {
    /// Logical id -> resolved properties (every active resource).
    pub properties: BTreeMap<String, Value>,
    /// Resources left out by their condition.
    pub inactive: BTreeSet<String>,
}

/// Creates every active resource in dependency order; fills
/// `resolver.physical` as it goes.
pub async fn create_all(t: &Template, resolver: &mut Resolver, aws: &Aws) -> Result<Created> {
    let mut created = Created::default();
    let mut active = BTreeMap::new();
    for (id, r) in &t.resources {
        let on = match &r.condition {
            Some(c) => *resolver
                .conditions
                .get(c)
                .context(|| format!("resource {id}: unknown condition {c}"))?,
            None => true,
        };
        if on {
            let mut deps = BTreeSet::new();
            references(&r.properties, &mut deps);
            deps.extend(r.depends_on.iter().cloned());
            deps.retain(|d| t.resources.contains_key(d) && d != id);
            active.insert(id.clone(), deps);
        } else {
            created.inactive.insert(id.clone());
        }
    }
    // Kahn's order, ties by name (deterministic).
    let mut done: BTreeSet<String> = BTreeSet::new();
    while done.len() < active.len() {
        let ready: Vec<String> = active
            .iter()
            .filter(|(id, deps)| {
                !done.contains(*id)
                    && deps
                        .iter()
                        .all(|d| done.contains(d) || created.inactive.contains(d))
            })
            .map(|(id, _)| id.clone())
            .collect();
        if ready.is_empty() {
            let left: Vec<&String> = active.keys().filter(|k| !done.contains(*k)).collect();
            bail!("resources refer to each other in a cycle: {left:?}");
        }
        for id in ready {
            let r = &t.resources[&id];
            let props = resolver
                .resolve(&r.properties, &format!("Resources.{id}.Properties"))?
                .unwrap_or(Value::Object(Map::new()));
            let physical = create_one(t, resolver, aws, &id, &r.kind, &props)
                .await
                .context(|| format!("resource {id} ({})", r.kind))?;
            resolver.physical.insert(id.clone(), physical);
            created.properties.insert(id.clone(), props);
            done.insert(id);
        }
    }
    Ok(created)
}

async fn create_one(
    t: &Template,
    resolver: &Resolver,
    aws: &Aws,
    id: &str,
    kind: &str,
    props: &Value,
) -> Result<Physical> {
    let stack = resolver.pseudo.stack_name.as_str();
    let mut attrs = BTreeMap::new();
    let physical_id = match kind {
        "AWS::DynamoDB::Table" => dynamodb::create_table(aws, stack, id, props, &mut attrs).await?,
        "AWS::SQS::Queue" => sqs::create_queue(aws, stack, id, props, &mut attrs).await?,
        "AWS::S3::Bucket" => s3::create_bucket(aws, stack, id, props, &mut attrs).await?,
        "AWS::SecretsManager::Secret" => secrets::create_secret(aws, id, props, &mut attrs).await?,
        "AWS::SNS::Topic" => sns::create_topic(aws, stack, id, props, &mut attrs).await?,
        "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine" => {
            state_machine::create_state_machine(t, aws, id, kind, props, &mut attrs).await?
        }
        "AWS::Serverless::Function" => {
            let name = s(props, "FunctionName")
                .map(str::to_string)
                .unwrap_or_else(|| generated(stack, id, 64));
            attrs.insert("Arn".into(), arn("lambda", &format!("function:{name}")));
            name
        }
        "AWS::IAM::Role" => {
            let name = s(props, "RoleName")
                .map(str::to_string)
                .unwrap_or_else(|| generated(stack, id, 64));
            attrs.insert(
                "Arn".into(),
                format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}"),
            );
            attrs.insert("RoleId".into(), format!("AROA{}", suffix(17, false)));
            name
        }
        "AWS::Logs::LogGroup" => {
            let name = s(props, "LogGroupName")
                .map(str::to_string)
                .unwrap_or_else(|| generated(stack, id, 512));
            attrs.insert("Arn".into(), arn("logs", &format!("log-group:{name}:*")));
            name
        }
        "AWS::Serverless::LayerVersion" => {
            arn("lambda", &format!("layer:{}:1", generated(stack, id, 64)))
        }
        "AWS::Serverless::HttpApi" => {
            let api = suffix(10, true);
            attrs.insert(
                "ApiEndpoint".into(),
                format!(
                    "https://{api}.execute-api.{}.{}",
                    resolver.pseudo.region, resolver.pseudo.url_suffix
                ),
            );
            api
        }
        other => {
            if SKIPPED.iter().any(|(k, _)| *k == other) {
                generated(stack, id, 64)
            } else {
                bail!("resource type {other} is unknown to the harness: create it in resources/ or add it to SKIPPED with the reason")
            }
        }
    };
    Ok(Physical {
        id: physical_id,
        attrs,
    })
}
