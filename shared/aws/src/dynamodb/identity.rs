//! [`IdentityLinks`] in the single table:
//!
//! | item       | pk           | sk      | attributes              |
//! |------------|--------------|---------|-------------------------|
//! | link       | `ID#{id}`    | `LINK`  | `user_id`, `at_ms`      |
//! | user phone | `ID#{user}`  | `PHONE` | `phone`, `at_ms`        |
//!
//! A link is put once with `attribute_not_exists(pk)`; the item holding a
//! taken key comes back in the same request (`ALL_OLD`), so that a racing
//! resolver adopts the winner without a second read. Items written before
//! BSUIDs are untouched: a number-keyed conversation needs no link.

use async_trait::async_trait;

use super::DynamoStore;
use crate::dynamodb_items::*;
use crate::dynamodb_put::{put, put_if_absent_or_holder, PutOnce};
use domain::error::Result;
use domain::identity::IdentityLinks;
use domain::UserId;

const ID_PREFIX: &str = "ID#";
const LINK_SK: &str = "LINK";
const PHONE_SK: &str = "PHONE";

fn link_key(id: &UserId) -> Item {
    key(format!("{ID_PREFIX}{id}"), LINK_SK)
}

fn phone_key(user: &UserId) -> Item {
    key(format!("{ID_PREFIX}{user}"), PHONE_SK)
}

fn with(mut item: Item, attrs: [(&str, aws_sdk_dynamodb::types::AttributeValue); 2]) -> Item {
    for (k, v) in attrs {
        item.insert(k.to_string(), v);
    }
    item
}

fn id_from(item: &Item, name: &str, what: &'static str) -> Result<UserId> {
    let r = Reader::new(item, what);
    UserId::parse(r.str(name)?).map_err(|e| bad_item(what, e))
}

#[async_trait]
impl IdentityLinks for DynamoStore {
    async fn link_of(&self, id: &UserId) -> Result<Option<UserId>> {
        self.get(link_key(id), "reading an identity link")
            .await?
            .map(|item| id_from(&item, "user_id", "identity link"))
            .transpose()
    }

    async fn link_if_absent(&self, id: &UserId, user: &UserId, at_ms: i64) -> Result<UserId> {
        let item = with(
            link_key(id),
            [("user_id", s(user.as_str())), ("at_ms", n(at_ms))],
        );
        match put_if_absent_or_holder(&self.client, &self.table, item, "linking an identity")
            .await?
        {
            PutOnce::Written => Ok(user.clone()),
            PutOnce::Taken(Some(holder)) => id_from(&holder, "user_id", "identity link"),
            // An emulator that does not return the holder: read it.
            PutOnce::Taken(None) => Ok(self.link_of(id).await?.unwrap_or_else(|| user.clone())),
        }
    }

    async fn relink(&self, id: &UserId, user: &UserId, at_ms: i64) -> Result<()> {
        let item = with(
            link_key(id),
            [("user_id", s(user.as_str())), ("at_ms", n(at_ms))],
        );
        put(&self.client, &self.table, item, "relinking an identity").await
    }

    async fn phone_of(&self, user: &UserId) -> Result<Option<UserId>> {
        self.get(phone_key(user), "reading a user's phone")
            .await?
            .map(|item| id_from(&item, "phone", "user phone"))
            .transpose()
    }

    async fn set_phone(&self, user: &UserId, phone: &UserId, at_ms: i64) -> Result<()> {
        let item = with(
            phone_key(user),
            [("phone", s(phone.as_str())), ("at_ms", n(at_ms))],
        );
        put(&self.client, &self.table, item, "recording a user's phone").await
    }
}
