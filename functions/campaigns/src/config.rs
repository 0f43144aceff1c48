//! Every variable campaigns reads, read once at start.

use domain::{Error, Result};
use runtime::config::{FromVars, Vars};
use whatsapp_graph::GraphConfig;

use crate::dispatch::DispatchSettings;

/// Contact files bigger than this are refused (API Gateway's own limit on a
/// request body is 10 MB).
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// What campaigns needs wherever it runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `CHARLA_CAMPAIGN_TIME_ZONE`: the zone of contacts without one, when
    /// the campaign sets none (IANA name; default the demo business's).
    pub default_time_zone: String,
    /// `CHARLA_CAMPAIGN_COUNTRY`: the country of numbers written without
    /// `+`, when the campaign sets none (ISO alpha-2; default `AR`).
    pub default_country: String,
    pub max_upload_bytes: usize,
    /// `CHARLA_CAMPAIGN_IMPORT_BUDGET_MS`: how long an upload request
    /// writes contacts before answering `202` and leaving the rest to the
    /// dispatcher's ticks (default 20 s, under the HTTP API's 30 s).
    pub import_budget: std::time::Duration,
    /// `CHARLA_REPORT_INLINE_BYTES`: a larger report goes by download link,
    /// where there are downloads (default 4 MB: base64 in a Lambda answer,
    /// under its 6 MB).
    pub report_inline_bytes: usize,
    /// `CHARLA_LOG_CONTENT`
    pub log_content: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_time_zone: "America/Argentina/Buenos_Aires".into(),
            default_country: "AR".into(),
            max_upload_bytes: MAX_UPLOAD_BYTES,
            import_budget: std::time::Duration::from_secs(20),
            report_inline_bytes: REPORT_INLINE_BYTES,
            log_content: false,
        }
    }
}

impl Settings {
    pub fn from_vars(vars: &Vars) -> Result<Settings> {
        let defaults = Settings::default();
        let zone = vars
            .optional("CHARLA_CAMPAIGN_TIME_ZONE")
            .unwrap_or(defaults.default_time_zone);
        jiff::tz::TimeZone::get(&zone).map_err(|_| {
            Error::Config(format!("CHARLA_CAMPAIGN_TIME_ZONE: unknown zone {zone:?}"))
        })?;
        let country = vars
            .optional("CHARLA_CAMPAIGN_COUNTRY")
            .unwrap_or(defaults.default_country)
            .to_ascii_uppercase();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::Config(format!(
                "CHARLA_CAMPAIGN_COUNTRY: {country:?} is not a two-letter country code"
            )));
        }
        Ok(Settings {
            default_time_zone: zone,
            default_country: country,
            max_upload_bytes: MAX_UPLOAD_BYTES,
            import_budget: std::time::Duration::from_millis(
                vars.parse("CHARLA_CAMPAIGN_IMPORT_BUDGET_MS", 20_000u64)?,
            ),
            report_inline_bytes: vars.parse("CHARLA_REPORT_INLINE_BYTES", REPORT_INLINE_BYTES)?,
            log_content: vars.flag("CHARLA_LOG_CONTENT", false)?,
        })
    }
}

/// A report in the answer, at most (see [`Settings::report_inline_bytes`]).
pub const REPORT_INLINE_BYTES: usize = 4_000_000;

/// campaigns as Lambda runs it.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// `CHARLA_TABLE`
    pub table: String,
    /// `CHARLA_DOWNLOADS_BUCKET`: where large reports are kept for their
    /// link.
    pub downloads_bucket: String,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Config> {
        Ok(Config {
            settings: Settings::from_vars(vars)?,
            table: vars.required("CHARLA_TABLE")?,
            downloads_bucket: vars.required("CHARLA_DOWNLOADS_BUCKET")?,
        })
    }
}

impl DispatchSettings {
    /// `WHATSAPP_PHONE_NUMBER_ID` (the business number templates go out
    /// from), `CHARLA_CAMPAIGN_NUMBER_CALLS` (calls in flight across
    /// campaigns, at most; default 10).
    pub fn from_vars(vars: &Vars) -> Result<DispatchSettings> {
        let defaults = DispatchSettings::default();
        let number_calls = match vars.optional("CHARLA_CAMPAIGN_NUMBER_CALLS") {
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "CHARLA_CAMPAIGN_NUMBER_CALLS: {v:?} is not 1 to 1000"
                    ))
                })?,
            None => defaults.number_calls,
        };
        Ok(DispatchSettings {
            phone_number_id: vars
                .optional("WHATSAPP_PHONE_NUMBER_ID")
                .filter(|v| !v.trim().is_empty()),
            number_calls,
            ..defaults
        })
    }
}

/// The dispatcher as Lambda runs it.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub settings: DispatchSettings,
    pub graph: GraphConfig,
    /// `CHARLA_TABLE`
    pub table: String,
    /// `CHARLA_CALL_QUEUE_URL`: call-trigger places the calls.
    pub call_queue_url: String,
    /// `WHATSAPP_SECRET_ARN`: the Graph API token, for templates.
    pub whatsapp_secret_arn: String,
    /// `CHARLA_LOG_CONTENT`
    pub log_content: bool,
}

impl FromVars for DispatchConfig {
    fn from_vars(vars: &Vars) -> Result<DispatchConfig> {
        Ok(DispatchConfig {
            settings: DispatchSettings::from_vars(vars)?,
            graph: GraphConfig::from_vars(vars)?,
            table: vars.required("CHARLA_TABLE")?,
            call_queue_url: vars.required("CHARLA_CALL_QUEUE_URL")?,
            whatsapp_secret_arn: vars.required("WHATSAPP_SECRET_ARN")?,
            log_content: vars.flag("CHARLA_LOG_CONTENT", false)?,
        })
    }
}
