//! Implementations of the ports.

#[cfg(feature = "aws")]
pub mod aws;
pub mod deterministic;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "local")]
pub mod local;
pub mod memory;
