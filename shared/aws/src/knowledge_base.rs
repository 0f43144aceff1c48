//! [`KnowledgeBase`] on an Amazon Bedrock knowledge base, with the Agent
//! Runtime's `Retrieve` API (`POST /knowledgebases/{id}/retrieve`): the
//! passages nearest to the query, with their scores and where they came from.

use async_trait::async_trait;
use aws_sdk_bedrockagentruntime::types::{
    KnowledgeBaseQuery, KnowledgeBaseRetrievalConfiguration, KnowledgeBaseRetrievalResult,
    KnowledgeBaseVectorSearchConfiguration, RetrievalResultLocation,
};
use aws_sdk_bedrockagentruntime::Client;

use super::sdk_error;
use domain::error::Result;
use domain::ports::KnowledgeBase;
use domain::Passage;

const SERVICE: &str = "bedrock-kb";

/// `numberOfResults` is 1 to 100.
const MAX_RESULTS: usize = 100;

/// Searches one Bedrock knowledge base.
#[derive(Debug, Clone)]
pub struct BedrockKnowledgeBase {
    client: Client,
    knowledge_base_id: String,
}

impl BedrockKnowledgeBase {
    pub fn new(client: Client, knowledge_base_id: impl Into<String>) -> Self {
        BedrockKnowledgeBase {
            client,
            knowledge_base_id: knowledge_base_id.into(),
        }
    }

    pub fn knowledge_base_id(&self) -> &str {
        &self.knowledge_base_id
    }

    /// Where a result came from, for the user: the document's URI or URL
    /// when the location has one, else the knowledge base's id.
    fn source(&self, location: Option<&RetrievalResultLocation>) -> String {
        location
            .and_then(|l| {
                l.s3_location()
                    .and_then(|x| x.uri())
                    .or_else(|| l.web_location().and_then(|x| x.url()))
                    .or_else(|| l.confluence_location().and_then(|x| x.url()))
                    .or_else(|| l.share_point_location().and_then(|x| x.url()))
                    .or_else(|| l.salesforce_location().and_then(|x| x.url()))
                    .or_else(|| l.one_drive_location().and_then(|x| x.url()))
                    .or_else(|| l.google_drive_location().and_then(|x| x.url()))
                    .or_else(|| l.kendra_document_location().and_then(|x| x.uri()))
                    .or_else(|| l.custom_document_location().and_then(|x| x.id()))
                    .or_else(|| l.sql_location().and_then(|x| x.query()))
            })
            .filter(|s| !s.trim().is_empty())
            .map_or_else(
                || format!("bedrock-kb:{}", self.knowledge_base_id),
                str::to_string,
            )
    }

    fn passage(&self, result: &KnowledgeBaseRetrievalResult) -> Option<Passage> {
        let text = result.content().map(content_text).unwrap_or_default();
        if text.trim().is_empty() {
            return None;
        }
        Some(Passage {
            text,
            source: self.source(result.location()),
            score: result.score().unwrap_or_default() as f32,
        })
    }
}

/// The text of a result; a row of structured data (a SQL knowledge base)
/// as `column: value` lines.
fn content_text(content: &aws_sdk_bedrockagentruntime::types::RetrievalResultContent) -> String {
    if !content.text().trim().is_empty() {
        return content.text().to_string();
    }
    content
        .row()
        .iter()
        .filter_map(|c| {
            let value = c.column_value()?;
            Some(match c.column_name() {
                Some(name) => format!("{name}: {value}"),
                None => value.to_string(),
            })
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[async_trait]
impl KnowledgeBase for BedrockKnowledgeBase {
    async fn search(&self, query: &str, limit: usize) -> Result<Vec<Passage>> {
        let query = query.trim();
        // The API refuses an empty query and zero results.
        if query.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let results = i32::try_from(limit.min(MAX_RESULTS)).unwrap_or(1);
        let config = KnowledgeBaseRetrievalConfiguration::builder()
            .vector_search_configuration(
                KnowledgeBaseVectorSearchConfiguration::builder()
                    .number_of_results(results)
                    .build(),
            )
            .build();
        let query = KnowledgeBaseQuery::builder().text(query).build();
        let answer = self
            .client
            .retrieve()
            .knowledge_base_id(&self.knowledge_base_id)
            .retrieval_query(query)
            .retrieval_configuration(config)
            .send()
            .await
            .map_err(|e| {
                sdk_error(
                    SERVICE,
                    format!("retrieve from {}", self.knowledge_base_id),
                    e,
                )
            })?;
        let mut passages: Vec<Passage> = answer
            .retrieval_results()
            .iter()
            .filter_map(|r| self.passage(r))
            .collect();
        // Best first, as the port promises, whatever order the answer had.
        passages.sort_by(|a, b| b.score.total_cmp(&a.score));
        passages.truncate(limit);
        Ok(passages)
    }
}
