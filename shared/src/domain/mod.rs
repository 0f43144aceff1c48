//! Plain types and rules: no AWS, no HTTP, no async runtime.

pub mod agent;
pub mod chat;
pub mod chatwoot;
pub mod conversation;
pub mod escalation;
pub mod handoff;
pub mod media;
pub mod media_pipeline;
pub mod signature;
pub mod text;
pub mod voice;
pub mod whatsapp;

pub use agent::*;
pub use chat::*;
pub use conversation::*;
