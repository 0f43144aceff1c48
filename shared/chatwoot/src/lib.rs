//! Chatwoot, where people take over conversations: the desk (its API), its
//! webhook (what it sends when an agent replies or resolves), and its place.

mod api;
pub mod config;
mod contacts;
pub mod desk;
mod note;
#[cfg(test)]
mod testing;
pub mod webhook;

pub use config::{ChatwootConfig, ChatwootPlace};
pub use desk::ChatwootDesk;
