//! Outside HTTP services that are not AWS.

pub mod chatwoot;
pub mod chatwoot_config;
mod common;
pub mod crm;
pub mod graph;
pub mod graph_media;
pub mod openai;
pub mod retell;
pub mod vapi;
pub mod voice;

pub use chatwoot::{ChatwootDesk, ChatwootSettings};
pub use chatwoot_config::{ChatwootConfig, ChatwootPlace};
pub use crm::{CrmSettings, HttpCrm};
pub use graph::{GraphClient, GraphConfig, GraphSettings, DEFAULT_GRAPH_BASE_URL};
pub use graph_media::GraphMedia;
pub use openai::{OpenAiModel, OpenAiSettings};
pub use retell::RetellClient;
pub use vapi::VapiClient;
pub use voice::{VoiceConfig, VoiceHttpSettings};
