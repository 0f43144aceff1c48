//! Chatwoot, where people take over conversations: the desk (its API), its
//! webhook (what it sends when an agent replies or resolves), and its place.

pub mod config;
pub mod desk;
pub mod webhook;

pub use config::{ChatwootConfig, ChatwootPlace};
pub use desk::{ChatwootDesk, ChatwootSettings};
