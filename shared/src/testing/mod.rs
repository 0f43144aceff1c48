//! Shared test suites that every adapter of a port must pass, and test
//! inputs used across crates (enabled by the `testing` feature, used by the
//! adapters' own tests).

pub mod calls_contract;
pub mod media_samples;
pub mod records_contract;
pub mod scripted_model;
pub mod store_contract;
