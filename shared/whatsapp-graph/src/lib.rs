//! The WhatsApp Cloud API (Meta's Graph API): messages out, read receipts,
//! and media in.

pub mod body;
mod config;
mod errors;
pub mod graph;
mod limiter;
pub mod media;
#[cfg(test)]
mod testing;

pub use config::{GraphConfig, GraphSettings, DEFAULT_GRAPH_BASE_URL};
pub use graph::GraphClient;
pub use media::GraphMedia;
