//! Charla's shared library: the domain, the ports the functions depend on,
//! and the adapters that implement them (AWS, outside HTTP services, and the
//! embedded one-machine defaults).

pub mod adapters;
pub mod config;
pub mod domain;
pub mod error;
pub mod http_answer;
#[cfg(feature = "lambda-http")]
pub mod lambda_http_glue;
pub mod observability;
pub mod ports;
#[cfg(feature = "sqs-batch")]
pub mod sqs_batch;

pub use error::{Error, Result};
