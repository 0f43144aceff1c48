//! The AI voice call providers: Vapi and Retell, placing calls through their
//! APIs, configured from the function's variables, and their webhooks.

pub mod config;
pub mod retell;
pub mod vapi;
pub mod webhooks;

pub use config::VoiceConfig;
pub use retell::RetellClient;
pub use vapi::VapiClient;
