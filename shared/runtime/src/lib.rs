//! What every function runs on, in Lambda and in the one-process runner: its
//! configuration from the environment, logs and metrics, HTTP answers, and
//! the glue to the Lambda event sources (API Gateway, SQS batches).

pub mod config;
pub mod http_answer;
#[cfg(feature = "lambda-http")]
pub mod lambda_http_glue;
pub mod observability;
#[cfg(feature = "sqs-batch")]
pub mod sqs_batch;
pub mod usage;
