//! Test doubles of Charla's ports, the contract suites every adapter of a
//! port must pass, and test inputs used across crates. Dev-dependencies
//! only: no production build links this crate.

pub mod calls_contract;
pub mod campaign_contract;
pub mod identity_contract;
pub mod media_samples;
pub mod memory;
pub mod memory_calls;
pub mod records_contract;
pub mod scripted_model;
pub mod store_contract;
pub mod usage_contract;
