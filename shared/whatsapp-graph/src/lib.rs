//! The WhatsApp Cloud API (Meta's Graph API): messages out, read receipts,
//! and media in.

pub mod graph;
pub mod media;

pub use graph::{GraphClient, GraphConfig, GraphSettings, DEFAULT_GRAPH_BASE_URL};
pub use media::GraphMedia;
