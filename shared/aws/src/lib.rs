//! AWS adapters: one file per service. Each is a struct holding the SDK
//! client and the resource name; the caller builds the client (once per cold
//! start) and injects it, the adapter never loads configuration.

#[cfg(feature = "bedrock")]
pub mod bedrock;
pub mod calls;
pub mod campaigns;
#[cfg(feature = "escalation")]
pub mod comprehend;
pub mod dynamodb;
mod dynamodb_items;
mod dynamodb_put;
pub mod escalations;
#[cfg(feature = "bedrock")]
pub mod knowledge_base;
#[cfg(feature = "media-analysis")]
pub mod media_analysis;
pub mod media_notes;
pub mod media_store;
pub mod s3;
pub mod secrets;
#[cfg(feature = "escalation")]
pub mod ses;
#[cfg(feature = "media-sfn")]
pub mod sfn;
#[cfg(feature = "escalation")]
pub mod sns;
pub mod sqs;
pub mod usage;

#[cfg(feature = "bedrock")]
pub use bedrock::BedrockModel;
pub use calls::DynamoCallRecords;
pub use campaigns::DynamoCampaigns;
#[cfg(feature = "escalation")]
pub use comprehend::ComprehendSentiment;
pub use dynamodb::DynamoStore;
pub use escalations::{DynamoEscalations, SqsTimers};
#[cfg(feature = "bedrock")]
pub use knowledge_base::BedrockKnowledgeBase;
#[cfg(feature = "media-analysis")]
pub use media_analysis::{RekognitionImages, TextractDocuments, TranscribeSpeech};
pub use media_notes::DynamoMediaNotes;
pub use media_store::{MediaEncryption, S3MediaStore};
pub use s3::{S3Archive, S3Downloads};
pub use secrets::{load_whatsapp_secrets, secret_string};
#[cfg(feature = "escalation")]
pub use ses::SesNotifier;
#[cfg(feature = "media-sfn")]
pub use sfn::SfnMediaPipeline;
#[cfg(feature = "escalation")]
pub use sns::SnsNotifier;
pub use sqs::SqsQueue;
pub use usage::DynamoUsage;

use aws_sdk_dynamodb::config::http::HttpResponse;

/// The S3 client for `config`. With an endpoint of its own (moto, an
/// emulator: `AWS_ENDPOINT_URL`), path-style addressing, since bucket
/// subdomains of a loopback address do not resolve; on AWS, the default.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .build(),
    )
}
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use domain::error::Error;

/// Error codes that mean "try again later" across the AWS services used here
/// (the SDK has already retried them with backoff by the time we see them).
const RETRYABLE_CODES: &[&str] = &[
    "InternalFailure",
    "InternalServerError",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
    "SlowDown",
    "ThrottledException",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// Whether an SDK error may go away if the same call is made again later:
/// network and timeout failures, throttling and 5xx answers.
fn is_retryable<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => {
            let status = e.raw().status().as_u16();
            status >= 500
                || status == 429
                || e.err()
                    .code()
                    .is_some_and(|code| RETRYABLE_CODES.contains(&code))
        }
        _ => false,
    }
}

/// Maps an SDK error to the one error type, keeping it as the source. The
/// service's error code, when there is one, is added to the context.
pub(crate) fn sdk_error<E>(
    service: &'static str,
    context: impl Into<String>,
    err: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retryable = is_retryable(&err);
    let mut context = context.into();
    if let Some(code) = error_code(&err) {
        context = format!("{context} ({code})");
    }
    Error::dependency(service, context, retryable, err)
}

/// Every item `query` selects, page after page (DynamoDB answers at most
/// 1 MB a page); any failure is an error with `context`.
pub(crate) async fn query_all(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    context: &str,
) -> domain::error::Result<Vec<dynamodb_items::Item>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = query
            .clone()
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", context, e))?;
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(items),
        }
    }
}

/// How a conditional write ended: `Ok(true)` written, `Ok(false)` its
/// condition failed (nothing written); any other failure is an error with
/// `context`.
pub(crate) fn conditional<T, E>(
    result: std::result::Result<T, SdkError<E, HttpResponse>>,
    service: &'static str,
    context: &str,
) -> domain::error::Result<bool>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(sdk_error(service, context, e)),
    }
}

/// The service's error code (`ConditionalCheckFailedException`, ...), if the
/// service answered with one.
pub(crate) fn error_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}
