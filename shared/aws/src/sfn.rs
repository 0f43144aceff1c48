//! [`MediaPipeline`] on Step Functions: one execution of the media state
//! machine per media message, named from its wamid.

use async_trait::async_trait;
use aws_sdk_sfn::Client;

use super::sdk_error;
use domain::error::Result;
use domain::media_pipeline::MediaJob;
use domain::ports::{MediaPipeline, PipelineStart};

const SERVICE: &str = "stepfunctions";

#[derive(Debug, Clone)]
pub struct SfnMediaPipeline {
    client: Client,
    state_machine_arn: String,
}

impl SfnMediaPipeline {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        SfnMediaPipeline {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }
}

#[async_trait]
impl MediaPipeline for SfnMediaPipeline {
    async fn start(&self, job: &MediaJob) -> Result<PipelineStart> {
        let input = serde_json::to_string(job)?;
        let started = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(job.execution_name())
            .input(input)
            .send()
            .await;
        match started {
            Ok(_) => Ok(PipelineStart::Started),
            // The name is the wamid's: this message's pipeline exists (a
            // redelivered webhook). Step Functions answers a start with the
            // same name and input while the first runs with success, and
            // with this once it has ended: both are the same duplicate.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_execution_already_exists()) =>
            {
                Ok(PipelineStart::Duplicate)
            }
            Err(e) => Err(sdk_error(SERVICE, "start media execution", e)),
        }
    }
}
