//! Where the humans are: the Chatwoot settings, shared with admin (see
//! [`shared::adapters::http::chatwoot_config`]).

pub use shared::adapters::http::chatwoot_config::{ChatwootConfig, ChatwootTokens};
