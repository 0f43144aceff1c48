//! AWS::DynamoDB::Table.

use std::collections::BTreeMap;

use serde_json::Value;

use super::names::{arn, generated};
use super::props::{only, s, text, truthy};
use crate::aws::{err_text, Aws};
use crate::error::{Context, Result};

pub(super) async fn create_table(
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
