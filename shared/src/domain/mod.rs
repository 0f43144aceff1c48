//! Plain types and rules: no AWS, no HTTP, no async runtime.

pub mod agent;
pub mod chat;
pub mod conversation;
pub mod media;
pub mod signature;
pub mod whatsapp;

pub use agent::*;
pub use chat::*;
pub use conversation::*;
