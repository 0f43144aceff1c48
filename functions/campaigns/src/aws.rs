//! campaigns on AWS: what `main.rs` runs in Lambda, built from the config.

use std::sync::Arc;

use aws_adapters::DynamoCampaigns;
use domain::ports::SystemClock;

use crate::config::Config;
use crate::Deps;

pub fn deps(config: &Config, sdk: &aws_config::SdkConfig) -> Deps {
    Deps {
        campaigns: Arc::new(DynamoCampaigns::new(
            aws_sdk_dynamodb::Client::new(sdk),
            config.table.clone(),
        )),
        clock: Arc::new(SystemClock),
        settings: config.settings.clone(),
    }
}
