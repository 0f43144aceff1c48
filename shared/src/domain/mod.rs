//! Plain types and rules: no AWS, no HTTP, no async runtime.

pub mod conversation;
pub mod signature;
pub mod whatsapp;

pub use conversation::*;
