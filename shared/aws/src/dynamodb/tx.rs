//! The client plumbing every part of the store shares: transactions (and
//! their outcome), consistent reads, and queries that follow their pages.

use std::time::Duration;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::{ConditionCheckBuilder, PutBuilder, UpdateBuilder};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::DynamoStore;
use crate::dynamodb_items::Item;
use crate::sdk_error;
use domain::error::{Error, Result};

/// Our own limit on items per `Query` request (pages are followed).
const QUERY_PAGE_MAX: usize = 1_000;
/// A transaction cancelled because another one touched the same item
/// (`TransactionConflict`) is tried again this many times, with backoff.
const CONFLICT_RETRIES: u32 = 5;

const CCF: &str = "ConditionalCheckFailed";

/// How a transaction ended when it did not fail outright.
pub(super) enum Tx {
    Done,
    /// Cancelled by a failed condition: one code per item, in order
    /// (`"None"` where the item was fine).
    Cancelled(Vec<String>),
}

impl Tx {
    pub(super) fn failed_at(&self, index: usize) -> bool {
        matches!(self, Tx::Cancelled(codes) if codes.get(index).is_some_and(|c| c == CCF))
    }
}

pub(super) fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::dependency("dynamodb", "building a request", false, e)
}

pub(super) fn write_put(p: PutBuilder) -> Result<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .put(p.build().map_err(build_error)?)
        .build())
}

pub(super) fn write_update(u: UpdateBuilder) -> Result<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .update(u.build().map_err(build_error)?)
        .build())
}

pub(super) fn write_check(c: ConditionCheckBuilder) -> Result<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .condition_check(c.build().map_err(build_error)?)
        .build())
}

fn small_jitter_ms() -> u64 {
    (uuid::Uuid::new_v4().as_u128() % 25) as u64
}

impl DynamoStore {
    pub(super) fn put(&self) -> PutBuilder {
        Put::builder().table_name(&self.table)
    }

    pub(super) fn update(&self) -> UpdateBuilder {
        Update::builder().table_name(&self.table)
    }

    /// Runs one transaction. A cancellation by a failed condition is an
    /// outcome (`Tx::Cancelled`), not an error; one caused by a concurrent
    /// transaction on the same item is tried again a few times.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        context: &str,
    ) -> Result<Tx> {
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Tx::Done),
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
                err.as_service_error()
            else {
                return Err(sdk_error("dynamodb", context, err));
            };
            let codes: Vec<String> = cancel
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect();
            if codes.iter().any(|c| c == CCF) {
                return Ok(Tx::Cancelled(codes));
            }
            // TransactionConflict, ThrottlingError, ProvisionedThroughputExceeded:
            // all worth another try; a ValidationError is not.
            let retryable = codes.iter().any(|c| {
                matches!(
                    c.as_str(),
                    "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                )
            });
            if retryable && attempt < CONFLICT_RETRIES {
                attempt += 1;
                let backoff = 20u64 << attempt;
                tokio::time::sleep(Duration::from_millis(backoff + small_jitter_ms())).await;
                continue;
            }
            return Err(Error::dependency(
                "dynamodb",
                format!("{context}: transaction cancelled ({})", codes.join(", ")),
                retryable,
                err,
            ));
        }
    }

    pub(super) async fn get(&self, key: Item, context: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", context, e))?;
        Ok(out.item)
    }

    /// Follows `LastEvaluatedKey` until `want` items or the end.
    pub(super) async fn query_upto(
        &self,
        query: QueryFluentBuilder,
        want: usize,
        start: Option<Item>,
        context: &str,
    ) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = start;
        while items.len() < want {
            let page = (want - items.len()).min(QUERY_PAGE_MAX) as i32;
            let out = query
                .clone()
                .limit(page)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb", context, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        items.truncate(want);
        Ok(items)
    }
}
