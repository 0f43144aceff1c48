//! [`MediaNotes`] in the conversation table: one item per media message,
//! `pk = MEDIA#{wamid}`, `sk = NOTE`, the note as JSON.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::dynamodb_items::{key, n, s, Item, EXPIRES_AT};
use super::dynamodb_put::put;
use super::sdk_error;
use domain::error::{Error, Result};
use domain::media_pipeline::MediaNote;
use domain::ports::MediaNotes;

const SERVICE: &str = "dynamodb";
const NOTE: &str = "note";
/// Notes outlive the media (kept for the conversation's history).
const NOTE_TTL_SECS: i64 = 400 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct DynamoMediaNotes {
    client: Client,
    table: String,
}

impl DynamoMediaNotes {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoMediaNotes {
            client,
            table: table.into(),
        }
    }
}

fn note_key(wamid: &str) -> Item {
    key(format!("MEDIA#{wamid}"), "NOTE")
}

#[async_trait]
impl MediaNotes for DynamoMediaNotes {
    async fn record_note(&self, wamid: &str, note: &MediaNote) -> Result<()> {
        let expires = jiff::Timestamp::now().as_second() + NOTE_TTL_SECS;
        let mut item = note_key(wamid);
        item.insert(NOTE.into(), s(serde_json::to_string(note)?));
        item.insert(EXPIRES_AT.into(), n(expires));
        put(&self.client, &self.table, item, "record media note").await
    }

    async fn notes(&self, wamids: &[String]) -> Result<HashMap<String, MediaNote>> {
        // A turn holds a handful of messages: one consistent read each.
        let mut out = HashMap::new();
        for wamid in wamids {
            let got = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(note_key(wamid)))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, "media note", e))?;
            if let Some(AttributeValue::S(json)) = got.item.as_ref().and_then(|i| i.get(NOTE)) {
                let note: MediaNote = serde_json::from_str(json)
                    .map_err(|e| Error::dependency(SERVICE, "media note", false, e))?;
                out.insert(wamid.clone(), note);
            }
        }
        Ok(out)
    }
}
