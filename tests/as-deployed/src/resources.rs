//! The template's resources, created in moto from the template itself (no
//! second list), in dependency order, with the physical ids CloudFormation
//! would give them (generated names carry the stack name and a random
//! suffix, so stacks of parallel tests never meet in one moto).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::aws::{err_text, Aws, ACCOUNT_ID};
use crate::bail;
use crate::error::{Context, Result};
use crate::template::{references, Physical, Resolver, Template};

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

fn suffix(n: usize, lower: bool) -> String {
    let mut s = String::new();
    while s.len() < n {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(n);
    if lower {
        s
    } else {
        s.to_uppercase()
    }
}

/// CloudFormation's generated name: `{stack}-{LogicalId}-{RANDOM}`, cut to `max`.
fn generated(stack: &str, id: &str, max: usize) -> String {
    let tail = format!("-{}", suffix(12, false));
    let mut head = format!("{stack}-{id}");
    head.truncate(max.saturating_sub(tail.len()));
    head + &tail
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

fn s<'a>(props: &'a Value, key: &str) -> Option<&'a str> {
    props.get(key).and_then(Value::as_str)
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn truthy(v: Option<&Value>) -> bool {
    v.and_then(text).is_some_and(|t| t == "true")
}

/// Refuses properties the harness would silently not honour.
fn only(props: &Value, known: &[&str], ignored: &[&str]) -> Result<()> {
    if let Some(m) = props.as_object() {
        for k in m.keys() {
            if !known.contains(&k.as_str()) && !ignored.contains(&k.as_str()) {
                bail!("property {k} is not supported by the harness (add it to resources.rs)");
            }
        }
    }
    Ok(())
}

fn arn(service: &str, resource: &str) -> String {
    format!(
        "arn:aws:{service}:{}:{ACCOUNT_ID}:{resource}",
        crate::aws::REGION
    )
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
        "AWS::DynamoDB::Table" => create_table(aws, stack, id, props, &mut attrs).await?,
        "AWS::SQS::Queue" => create_queue(aws, stack, id, props, &mut attrs).await?,
        "AWS::S3::Bucket" => create_bucket(aws, stack, id, props, &mut attrs).await?,
        "AWS::SecretsManager::Secret" => create_secret(aws, id, props, &mut attrs).await?,
        "AWS::SNS::Topic" => create_topic(aws, stack, id, props, &mut attrs).await?,
        "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine" => {
            create_state_machine(t, aws, id, kind, props, &mut attrs).await?
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
                bail!("resource type {other} is unknown to the harness: create it in resources.rs or add it to SKIPPED with the reason")
            }
        }
    };
    Ok(Physical {
        id: physical_id,
        attrs,
    })
}

async fn create_table(
    aws: &Aws,
    stack: &str,
    id: &str,
    p: &Value,
    attrs: &mut BTreeMap<String, String>,
) -> Result<String> {
    use aws_sdk_dynamodb::types::*;
    only(
        p,
        &[
            "TableName",
            "AttributeDefinitions",
            "KeySchema",
            "GlobalSecondaryIndexes",
            "BillingMode",
            "ProvisionedThroughput",
            "SSESpecification",
            "TimeToLiveSpecification",
            "StreamSpecification",
        ],
        // Backups and protection change nothing a test can see.
        &[
            "PointInTimeRecoverySpecification",
            "DeletionProtectionEnabled",
            "Tags",
        ],
    )?;
    let name = s(p, "TableName")
        .map(str::to_string)
        .unwrap_or_else(|| generated(stack, id, 255));
    let keys = |v: Option<&Value>| -> Result<Vec<KeySchemaElement>> {
        v.and_then(Value::as_array)
            .context(|| "KeySchema missing".to_string())?
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(s(k, "AttributeName").unwrap_or_default())
                    .key_type(KeyType::from(s(k, "KeyType").unwrap_or_default()))
                    .build()
                    .context(|| "KeySchema".to_string())
            })
            .collect()
    };
    let throughput = |v: Option<&Value>| -> Result<Option<ProvisionedThroughput>> {
        let Some(v) = v else { return Ok(None) };
        let n = |k: &str| v.get(k).and_then(text).and_then(|t| t.parse::<i64>().ok());
        Ok(Some(
            ProvisionedThroughput::builder()
                .set_read_capacity_units(n("ReadCapacityUnits"))
                .set_write_capacity_units(n("WriteCapacityUnits"))
                .build()
                .context(|| "ProvisionedThroughput".to_string())?,
        ))
    };
    let mut req = aws.dynamodb.create_table().table_name(&name);
    for a in p
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(s(&a, "AttributeName").unwrap_or_default())
                .attribute_type(ScalarAttributeType::from(
                    s(&a, "AttributeType").unwrap_or_default(),
                ))
                .build()
                .context(|| "AttributeDefinitions".to_string())?,
        );
    }
    req = req.set_key_schema(Some(keys(p.get("KeySchema"))?));
    for g in p
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let proj = g.get("Projection").cloned().unwrap_or(Value::Null);
        let non_key: Option<Vec<String>> = proj
            .get("NonKeyAttributes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(text).collect());
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(s(&g, "IndexName").unwrap_or_default())
                .set_key_schema(Some(keys(g.get("KeySchema"))?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            s(&proj, "ProjectionType").unwrap_or("ALL"),
                        ))
                        .set_non_key_attributes(non_key)
                        .build(),
                )
                .set_provisioned_throughput(throughput(g.get("ProvisionedThroughput"))?)
                .build()
                .context(|| "GlobalSecondaryIndexes".to_string())?,
        );
    }
    if let Some(b) = s(p, "BillingMode") {
        req = req.billing_mode(BillingMode::from(b));
    }
    req = req.set_provisioned_throughput(throughput(p.get("ProvisionedThroughput"))?);
    if let Some(sse) = p.get("SSESpecification") {
        req = req.sse_specification(
            SseSpecification::builder()
                .enabled(truthy(sse.get("SSEEnabled")))
                .build(),
        );
    }
    if let Some(st) = p.get("StreamSpecification") {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(
                    s(st, "StreamViewType").unwrap_or_default(),
                ))
                .build()
                .context(|| "StreamSpecification".to_string())?,
        );
    }
    let out = req
        .send()
        .await
        .map_err(|e| crate::error::Error(format!("CreateTable {name}: {}", err_text(&e))))?;
    let table_arn = out
        .table_description()
        .and_then(|d| d.table_arn())
        .map(str::to_string)
        .unwrap_or_else(|| arn("dynamodb", &format!("table/{name}")));
    if let Some(ttl) = p.get("TimeToLiveSpecification") {
        aws.dynamodb
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(s(ttl, "AttributeName").unwrap_or_default())
                    .enabled(truthy(ttl.get("Enabled")))
                    .build()
                    .context(|| "TimeToLiveSpecification".to_string())?,
            )
            .send()
            .await
            .map_err(|e| {
                crate::error::Error(format!("UpdateTimeToLive {name}: {}", err_text(&e)))
            })?;
    }
    attrs.insert("Arn".into(), table_arn);
    Ok(name)
}

async fn create_queue(
    aws: &Aws,
    stack: &str,
    id: &str,
    p: &Value,
    attrs: &mut BTreeMap<String, String>,
) -> Result<String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    only(
        p,
        &[
            "QueueName",
            "FifoQueue",
            "ContentBasedDeduplication",
            "DeduplicationScope",
            "FifoThroughputLimit",
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds",
            "RedrivePolicy",
            "RedriveAllowPolicy",
            "SqsManagedSseEnabled",
            "KmsMasterKeyId",
        ],
        &["Tags", "KmsDataKeyReusePeriodSeconds"],
    )?;
    let fifo = truthy(p.get("FifoQueue"));
    let name = match s(p, "QueueName") {
        Some(n) => n.to_string(),
        None if fifo => generated(stack, id, 75) + ".fifo",
        None => generated(stack, id, 80),
    };
    let mut req = aws.sqs.create_queue().queue_name(&name);
    let simple = [
        ("FifoQueue", A::FifoQueue),
        ("ContentBasedDeduplication", A::ContentBasedDeduplication),
        ("DeduplicationScope", A::DeduplicationScope),
        ("FifoThroughputLimit", A::FifoThroughputLimit),
        ("VisibilityTimeout", A::VisibilityTimeout),
        ("MessageRetentionPeriod", A::MessageRetentionPeriod),
        ("DelaySeconds", A::DelaySeconds),
        ("MaximumMessageSize", A::MaximumMessageSize),
        (
            "ReceiveMessageWaitTimeSeconds",
            A::ReceiveMessageWaitTimeSeconds,
        ),
        ("SqsManagedSseEnabled", A::SqsManagedSseEnabled),
        ("KmsMasterKeyId", A::KmsMasterKeyId),
    ];
    for (key, attr) in simple {
        if let Some(v) = p.get(key).and_then(text) {
            // FifoQueue=false is not accepted by SQS on a standard queue.
            if key == "FifoQueue" && v != "true" {
                continue;
            }
            req = req.attributes(attr, v);
        }
    }
    for (key, attr) in [
        ("RedrivePolicy", A::RedrivePolicy),
        ("RedriveAllowPolicy", A::RedriveAllowPolicy),
    ] {
        if let Some(v) = p.get(key) {
            let json = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            req = req.attributes(attr, json);
        }
    }
    let out = req
        .send()
        .await
        .map_err(|e| crate::error::Error(format!("CreateQueue {name}: {}", err_text(&e))))?;
    let url = out
        .queue_url()
        .context(|| format!("CreateQueue {name}: no URL"))?
        .to_string();
    attrs.insert("Arn".into(), arn("sqs", &name));
    attrs.insert("QueueName".into(), name);
    attrs.insert("QueueUrl".into(), url.clone());
    Ok(url)
}

async fn create_bucket(
    aws: &Aws,
    stack: &str,
    id: &str,
    p: &Value,
    attrs: &mut BTreeMap<String, String>,
) -> Result<String> {
    use aws_sdk_s3::types::*;
    only(
        p,
        &[
            "BucketName",
            "BucketEncryption",
            "VersioningConfiguration",
            "PublicAccessBlockConfiguration",
        ],
        // Object expiry takes days; ownership is moot with one account.
        &["LifecycleConfiguration", "OwnershipControls", "Tags"],
    )?;
    let name = match s(p, "BucketName") {
        Some(n) => n.to_string(),
        None => generated(stack, id, 63).to_lowercase(),
    };
    aws.s3
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .map_err(|e| crate::error::Error(format!("CreateBucket {name}: {}", err_text(&e))))?;
    if let Some(rule) = p
        .pointer("/BucketEncryption/ServerSideEncryptionConfiguration/0")
        .cloned()
    {
        let by_default = rule
            .get("ServerSideEncryptionByDefault")
            .cloned()
            .unwrap_or(Value::Null);
        let conf = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(
                        ServerSideEncryptionByDefault::builder()
                            .sse_algorithm(ServerSideEncryption::from(
                                s(&by_default, "SSEAlgorithm").unwrap_or("AES256"),
                            ))
                            .set_kms_master_key_id(
                                s(&by_default, "KMSMasterKeyID").map(str::to_string),
                            )
                            .build()
                            .context(|| "ServerSideEncryptionByDefault".to_string())?,
                    )
                    .bucket_key_enabled(truthy(rule.get("BucketKeyEnabled")))
                    .build(),
            )
            .build()
            .context(|| "BucketEncryption".to_string())?;
        aws.s3
            .put_bucket_encryption()
            .bucket(&name)
            .server_side_encryption_configuration(conf)
            .send()
            .await
            .map_err(|e| {
                crate::error::Error(format!("PutBucketEncryption {name}: {}", err_text(&e)))
            })?;
    }
    if let Some(status) = p
        .pointer("/VersioningConfiguration/Status")
        .and_then(Value::as_str)
    {
        aws.s3
            .put_bucket_versioning()
            .bucket(&name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::from(status))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                crate::error::Error(format!("PutBucketVersioning {name}: {}", err_text(&e)))
            })?;
    }
    if let Some(pab) = p.get("PublicAccessBlockConfiguration") {
        aws.s3
            .put_public_access_block()
            .bucket(&name)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(truthy(pab.get("BlockPublicAcls")))
                    .block_public_policy(truthy(pab.get("BlockPublicPolicy")))
                    .ignore_public_acls(truthy(pab.get("IgnorePublicAcls")))
                    .restrict_public_buckets(truthy(pab.get("RestrictPublicBuckets")))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                crate::error::Error(format!("PutPublicAccessBlock {name}: {}", err_text(&e)))
            })?;
    }
    attrs.insert("Arn".into(), format!("arn:aws:s3:::{name}"));
    attrs.insert("DomainName".into(), format!("{name}.s3.amazonaws.com"));
    attrs.insert(
        "RegionalDomainName".into(),
        format!("{name}.s3.{}.amazonaws.com", crate::aws::REGION),
    );
    Ok(name)
}

/// Secrets Manager's GenerateSecretString, done here.
fn generate_secret(g: &Value) -> Result<String> {
    only(
        g,
        &[
            "PasswordLength",
            "ExcludePunctuation",
            "ExcludeCharacters",
            "ExcludeUppercase",
            "ExcludeLowercase",
            "ExcludeNumbers",
            "IncludeSpace",
            "SecretStringTemplate",
            "GenerateStringKey",
        ],
        &["RequireEachIncludedType"],
    )?;
    let len: usize = g
        .get("PasswordLength")
        .and_then(text)
        .and_then(|t| t.parse().ok())
        .unwrap_or(32);
    let mut alphabet = String::new();
    if !truthy(g.get("ExcludeLowercase")) {
        alphabet.push_str("abcdefghijklmnopqrstuvwxyz");
    }
    if !truthy(g.get("ExcludeUppercase")) {
        alphabet.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    }
    if !truthy(g.get("ExcludeNumbers")) {
        alphabet.push_str("0123456789");
    }
    if !truthy(g.get("ExcludePunctuation")) {
        alphabet.push_str("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
    }
    if truthy(g.get("IncludeSpace")) {
        alphabet.push(' ');
    }
    let exclude = s(g, "ExcludeCharacters").unwrap_or_default();
    let chars: Vec<char> = alphabet.chars().filter(|c| !exclude.contains(*c)).collect();
    if chars.is_empty() {
        bail!("GenerateSecretString leaves no characters");
    }
    let mut out = String::new();
    while out.chars().count() < len {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.chars().count() < len {
                out.push(chars[*b as usize % chars.len()]);
            }
        }
    }
    match (s(g, "SecretStringTemplate"), s(g, "GenerateStringKey")) {
        (Some(tpl), Some(key)) => {
            let mut v: Value =
                serde_json::from_str(tpl).context(|| "SecretStringTemplate".to_string())?;
            v[key] = Value::String(out);
            Ok(v.to_string())
        }
        _ => Ok(out),
    }
}

async fn create_secret(
    aws: &Aws,
    id: &str,
    p: &Value,
    attrs: &mut BTreeMap<String, String>,
) -> Result<String> {
    only(
        p,
        &[
            "Name",
            "Description",
            "SecretString",
            "GenerateSecretString",
        ],
        &["KmsKeyId", "Tags"],
    )?;
    // CloudFormation names a secret `{LogicalId}-{random}`.
    let name = s(p, "Name")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{id}-{}", suffix(12, false)));
    let value = match (s(p, "SecretString"), p.get("GenerateSecretString")) {
        (Some(v), None) => v.to_string(),
        (None, Some(g)) => generate_secret(g)?,
        _ => bail!("a secret needs exactly one of SecretString and GenerateSecretString"),
    };
    let out = aws
        .secrets
        .create_secret()
        .name(&name)
        .set_description(s(p, "Description").map(str::to_string))
        .secret_string(value)
        .send()
        .await
        .map_err(|e| crate::error::Error(format!("CreateSecret {name}: {}", err_text(&e))))?;
    let secret_arn = out
        .arn()
        .context(|| "CreateSecret: no ARN".to_string())?
        .to_string();
    attrs.insert("Id".into(), secret_arn.clone());
    Ok(secret_arn)
}

async fn create_topic(
    aws: &Aws,
    stack: &str,
    id: &str,
    p: &Value,
    attrs: &mut BTreeMap<String, String>,
) -> Result<String> {
    only(
        p,
        &[
            "TopicName",
            "DisplayName",
            "KmsMasterKeyId",
            "FifoTopic",
            "ContentBasedDeduplication",
        ],
        &["Tags"],
    )?;
    let fifo = truthy(p.get("FifoTopic"));
    let name = match s(p, "TopicName") {
        Some(n) => n.to_string(),
        None if fifo => generated(stack, id, 251) + ".fifo",
        None => generated(stack, id, 256),
    };
    let mut req = aws.sns.create_topic().name(&name);
    for key in [
        "DisplayName",
        "KmsMasterKeyId",
        "FifoTopic",
        "ContentBasedDeduplication",
    ] {
        if let Some(v) = p.get(key).and_then(text) {
            req = req.attributes(key, v);
        }
    }
    let out = req
        .send()
        .await
        .map_err(|e| crate::error::Error(format!("CreateTopic {name}: {}", err_text(&e))))?;
    let topic_arn = out
        .topic_arn()
        .context(|| "CreateTopic: no ARN".to_string())?
        .to_string();
    attrs.insert("TopicArn".into(), topic_arn.clone());
    attrs.insert("TopicName".into(), name);
    Ok(topic_arn)
}

/// The definition's text with `${Key}` replaced by its substitution.
pub fn substitute(definition: &str, subs: &Map<String, Value>) -> Result<String> {
    let mut out = definition.to_string();
    for (k, v) in subs {
        let v = text(v).context(|| format!("DefinitionSubstitutions.{k} is not a string"))?;
        out = out.replace(&format!("${{{k}}}"), &v);
    }
    Ok(out)
}

async fn create_state_machine(
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
