//! SDK clients on moto's server, as the harness (and the tests) use them.

use aws_config::{BehaviorVersion, Region, SdkConfig};

pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT_ID: &str = "123456789012";
/// What the functions get as credentials (moto takes anything).
pub const ACCESS_KEY: &str = "testing";

#[derive(Clone, Debug)]
pub struct Aws {
    pub endpoint: String,
    pub config: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sns: aws_sdk_sns::Client,
    pub sfn: aws_sdk_sfn::Client,
}

impl Aws {
    pub async fn new(endpoint: &str) -> Aws {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                ACCESS_KEY,
                ACCESS_KEY,
                None,
                None,
                "as-deployed",
            ))
            .load()
            .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        Aws {
            endpoint: endpoint.to_string(),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            s3,
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            sfn: aws_sdk_sfn::Client::new(&config),
            config,
        }
    }
}

/// The full text of an SDK error (its source chain), for messages.
pub fn err_text<E: std::error::Error>(e: &E) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
