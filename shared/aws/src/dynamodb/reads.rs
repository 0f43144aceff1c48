//! Reading conversations and their messages: pages for the admin console,
//! the history and pending messages for a turn.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

use super::{DynamoStore, PENDING_SCAN};
use crate::dynamodb_items::*;
use domain::error::Result;
use domain::*;

/// Sets `ProjectionExpression` to the message attributes and `extra` (through
/// names, as some of them are reserved words).
fn project_messages(q: QueryFluentBuilder, extra: &[&str]) -> QueryFluentBuilder {
    let mut q = q;
    let mut expr = Vec::with_capacity(MESSAGE_PROJECTION.len() + extra.len());
    for (i, name) in MESSAGE_PROJECTION.iter().chain(extra).enumerate() {
        let alias = format!("#p{i}");
        q = q.expression_attribute_names(alias.clone(), *name);
        expr.push(alias);
    }
    q.projection_expression(expr.join(", "))
}

impl DynamoStore {
    /// A conversation's messages, newest first (consistent read).
    fn messages_newest_first(&self, user_id: &UserId) -> QueryFluentBuilder {
        project_messages(self.messages_query(user_id).scan_index_forward(false), &[])
    }

    pub(super) fn messages_query(&self, user_id: &UserId) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :msg)")
            .expression_attribute_values(":pk", s(conv_pk(user_id)))
            .expression_attribute_values(":msg", s(MSG_PREFIX))
            .consistent_read(true)
    }
}

pub(super) async fn conversation(
    store: &DynamoStore,
    user_id: &UserId,
) -> Result<Option<Conversation>> {
    store
        .get(meta_key(user_id), "reading a conversation")
        .await?
        .map(|item| conversation_from(&item))
        .transpose()
}

pub(super) async fn pending_inbound(
    store: &DynamoStore,
    user_id: &UserId,
) -> Result<Vec<StoredMessage>> {
    let items = store
        .query_upto(
            store.messages_newest_first(user_id),
            PENDING_SCAN,
            None,
            "reading pending messages",
        )
        .await?;
    let mut pending = Vec::new();
    for item in items.iter().rev() {
        let m = message_from(item)?;
        if m.direction == Direction::Inbound && m.starts_turn && !m.answered {
            pending.push(m);
        }
    }
    Ok(pending)
}

pub(super) async fn recent_messages(
    store: &DynamoStore,
    user_id: &UserId,
    limit: usize,
) -> Result<Vec<StoredMessage>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let items = store
        .query_upto(
            store.messages_newest_first(user_id),
            limit,
            None,
            "reading recent messages",
        )
        .await?;
    items.iter().rev().map(message_from).collect()
}

pub(super) async fn list_conversations(
    store: &DynamoStore,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Conversation>> {
    const KEY: &[&str] = &[PK, SK, GSI1PK, GSI1SK];
    let start = cursor
        .map(|c| decode_cursor(c, KEY, |k| k.get(GSI1PK).is_some_and(|v| v == CONVS)))
        .transpose()?;
    if limit == 0 {
        return Ok(Page {
            items: Vec::new(),
            next: None,
        });
    }
    let query = store
        .client
        .query()
        .table_name(&store.table)
        .index_name(GSI1)
        .key_condition_expression("gsi1pk = :convs")
        .expression_attribute_values(":convs", s(CONVS))
        .scan_index_forward(false);
    // One more than asked, to know whether there is a next page.
    let mut items = store
        .query_upto(
            query,
            limit.saturating_add(1),
            start,
            "listing conversations",
        )
        .await?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|i| encode_cursor(i, KEY)).transpose()?
    } else {
        None
    };
    Ok(Page {
        items: items.iter().map(conversation_from).collect::<Result<_>>()?,
        next,
    })
}

pub(super) async fn transcript(
    store: &DynamoStore,
    user_id: &UserId,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<StoredMessage>> {
    const KEY: &[&str] = &[PK, SK];
    let pk = conv_pk(user_id);
    let start = cursor
        .map(|c| {
            decode_cursor(c, KEY, |k| {
                k.get(PK) == Some(&pk) && k.get(SK).is_some_and(|v| v.starts_with(MSG_PREFIX))
            })
        })
        .transpose()?;
    if limit == 0 {
        return Ok(Page {
            items: Vec::new(),
            next: None,
        });
    }
    // The cursor needs `pk` and `sk`, so they are projected too.
    let query = project_messages(store.messages_query(user_id).scan_index_forward(true), KEY);
    let mut items = store
        .query_upto(
            query,
            limit.saturating_add(1),
            start,
            "reading a transcript",
        )
        .await?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|i| encode_cursor(i, KEY)).transpose()?
    } else {
        None
    };
    Ok(Page {
        items: items.iter().map(message_from).collect::<Result<_>>()?,
        next,
    })
}
