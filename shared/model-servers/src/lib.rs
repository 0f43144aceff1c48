//! Chat models served over HTTP with the OpenAI-compatible API (Amazon
//! Bedrock, the other model port, is an AWS adapter).

pub mod openai;

pub use openai::OpenAiModel;
