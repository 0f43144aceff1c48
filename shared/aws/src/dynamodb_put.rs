//! Puts on the single table: put-if-absent, the one idempotent write that
//! every DynamoDB adapter here needs (a claim, a once-only record, a slot),
//! and the plain put (last write wins).
//!
//! One conditional `PutItem` on `attribute_not_exists(pk)`: the condition
//! is on the write itself, so two racing callers cannot both win.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use aws_sdk_dynamodb::Client;

use super::dynamodb_items::Item;
use super::sdk_error;
use domain::error::Result;

/// Puts `item`, replacing any item with its key (last write wins).
pub(crate) async fn put(client: &Client, table: &str, item: Item, context: &str) -> Result<()> {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .map_err(|e| sdk_error("dynamodb", context, e))?;
    Ok(())
}

/// How a [`put_if_absent_or_holder`] ended.
pub(crate) enum PutOnce {
    Written,
    /// The key was taken: the item holding it, when the service returned it
    /// (DynamoDB does with `ALL_OLD`; an emulator may not).
    Taken(Option<Item>),
}

/// Puts `item` unless an item with its key exists: `Ok(true)` when written,
/// `Ok(false)` when the key was already there (nothing written). Any other
/// failure is an error with `context`.
pub(crate) async fn put_if_absent(
    client: &Client,
    table: &str,
    item: Item,
    context: &str,
) -> Result<bool> {
    let put = conditional_put(client, table, item);
    Ok(matches!(send(put, context).await?, PutOnce::Written))
}

/// As [`put_if_absent`], but a taken key also answers the item holding it,
/// in the same request, so that the caller can say why without a second
/// read.
pub(crate) async fn put_if_absent_or_holder(
    client: &Client,
    table: &str,
    item: Item,
    context: &str,
) -> Result<PutOnce> {
    let put = conditional_put(client, table, item)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    send(put, context).await
}

fn conditional_put(
    client: &Client,
    table: &str,
    item: Item,
) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
}

async fn send(
    put: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
    context: &str,
) -> Result<PutOnce> {
    let err = match put.send().await {
        Ok(_) => return Ok(PutOnce::Written),
        Err(err) => err,
    };
    match err.as_service_error() {
        Some(PutItemError::ConditionalCheckFailedException(failed)) => {
            Ok(PutOnce::Taken(failed.item().cloned()))
        }
        _ => Err(sdk_error("dynamodb", context, err)),
    }
}
