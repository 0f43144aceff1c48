//! Shared test suites that every adapter of a port must pass (enabled by the
//! `testing` feature, used by the adapters' own tests).

pub mod store_contract;
