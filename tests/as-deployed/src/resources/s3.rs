//! AWS::S3::Bucket, with its encryption, versioning and public access block.

use std::collections::BTreeMap;

use serde_json::Value;

use super::names::generated;
use super::props::{only, s, truthy};
use crate::aws::{err_text, Aws};
use crate::error::{Context, Result};

pub(super) async fn create_bucket(
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
