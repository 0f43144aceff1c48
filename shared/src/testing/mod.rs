//! Shared test suites that every adapter of a port must pass (enabled by the
//! `testing` feature, used by the adapters' own tests).

pub mod calls_contract;
pub mod records_contract;
pub mod scripted_model;
pub mod store_contract;
