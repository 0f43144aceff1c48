//! Charla's agent: the business profile (TOML), the playbook that runs
//! before any model call, the tool registry shared by text and voice, and
//! the model loop. `Agent` is the text-ai `Responder`.

mod agent;
pub mod playbook;
pub mod profile;
pub mod schedule;
pub mod text;
pub mod timezone;
pub mod tools;

pub use agent::{Agent, TurnReport};
pub use profile::Profile;

/// Where the profile is in Lambda: the profile layer, mounted at `/opt`.
pub const LAYER_PROFILE: &str = "/opt/agent.toml";
pub use tools::{Registry, ToolContext, ToolDeps, ToolName, ToolOutcome, TurnEffects};
