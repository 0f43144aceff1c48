//! Charla's domain: the types, the rules and the ports (the traits the
//! adapters implement), with the one error type. No AWS, no HTTP, no async
//! runtime: everything here is plain data and functions, tested without I/O.

pub mod agent;
pub mod campaign;
pub mod chat;
pub mod conversation;
pub mod error;
pub mod escalation;
pub mod handoff;
pub mod identity;
pub mod media;
pub mod media_pipeline;
pub mod ports;
pub mod signature;
pub mod text;
pub mod usage;
pub mod voice;
pub mod whatsapp;

pub use agent::*;
pub use chat::*;
pub use conversation::*;
pub use error::{BoxError, Error, Result};
