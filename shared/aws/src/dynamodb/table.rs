//! The table itself, for emulators and tests (on AWS, template.yaml
//! creates it).

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use super::tx::build_error;
use super::DynamoStore;
use crate::dynamodb_items::*;
use crate::sdk_error;
use domain::error::{Error, Result};

/// How long `create_table` waits for the table to be `ACTIVE`.
const CREATE_TABLE_WAIT: Duration = Duration::from_secs(60);

impl DynamoStore {
    /// Creates the table as template.yaml defines it (keys, `gsi1`,
    /// on-demand billing, TTL on `expires_at`) and waits until it is active.
    /// For emulators and tests; an existing table is left as it is.
    pub async fn create_table(&self) -> Result<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(build_error)
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(key(GSI1PK, KeyType::Hash)?)
            .key_schema(key(GSI1SK, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(build_error)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PK)?)
            .attribute_definitions(attr(SK)?)
            .attribute_definitions(attr(GSI1PK)?)
            .attribute_definitions(attr(GSI1SK)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .send()
            .await;
        let is_new = match created {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                false
            }
            Err(e) => {
                return Err(sdk_error(
                    "dynamodb",
                    format!("creating table {}", self.table),
                    e,
                ))
            }
        };
        self.client
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(CREATE_TABLE_WAIT)
            .await
            .map_err(|e| {
                Error::dependency(
                    "dynamodb",
                    format!("waiting for table {} to be active", self.table),
                    true,
                    e,
                )
            })?;
        if is_new {
            let ttl = TimeToLiveSpecification::builder()
                .attribute_name(EXPIRES_AT)
                .enabled(true)
                .build()
                .map_err(build_error)?;
            self.client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(ttl)
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb", format!("enabling TTL on {}", self.table), e))?;
        }
        Ok(())
    }
}
