//! [`PayloadArchive`] and [`Downloads`] on S3 buckets.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;

use super::sdk_error;
use domain::error::Result;
use domain::ports::{ArchiveKind, Downloads, PayloadArchive};

/// S3 user metadata travels as HTTP headers (`x-amz-meta-*`), all of it
/// within 2 KB: the reason is kept to printable ASCII and this many bytes.
const REASON_MAX: usize = 512;

/// Keeps raw payloads under `{prefix}/{yyyy}/{mm}/{dd}/{uuid}.json`.
#[derive(Debug, Clone)]
pub struct S3Archive {
    client: Client,
    bucket: String,
}

/// `reason` as S3 user metadata accepts it: printable ASCII (anything else
/// becomes `?`), at most `REASON_MAX` bytes.
pub fn metadata_value(reason: &str) -> String {
    reason
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .take(REASON_MAX)
        .collect::<String>()
        .trim()
        .to_string()
}

impl S3Archive {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Archive {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket (in the client's region, us-east-1 on emulators).
    /// For emulators and tests; a bucket we already own is fine.
    pub async fn create_bucket(client: &Client, bucket: &str) -> Result<()> {
        match client.create_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error("s3", format!("creating bucket {bucket}"), e)),
        }
    }
}

#[async_trait]
impl PayloadArchive for S3Archive {
    async fn put(&self, kind: ArchiveKind, body: &[u8], reason: &str) -> Result<String> {
        let day = jiff::Timestamp::now().strftime("%Y/%m/%d");
        let key = format!("{}/{day}/{}.json", kind.prefix(), uuid::Uuid::new_v4());
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(body.to_vec()))
            .content_type("application/json")
            .metadata("reason", metadata_value(reason))
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(|e| sdk_error("s3", "archiving a payload", e))?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_become_short_printable_ascii() {
        assert_eq!(
            metadata_value("field account_update"),
            "field account_update"
        );
        assert_eq!(metadata_value("año\nnuevo"), "a?o?nuevo");
        assert_eq!(metadata_value(&"é".repeat(2_000)).len(), REASON_MAX);
    }
}

/// How long a download link works.
const LINK_VALID: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// [`Downloads`] on a bucket of their own (its lifecycle deletes them after
/// a day): `downloads/{uuid}/{file_name}`, fetched by a presigned link.
#[derive(Debug, Clone)]
pub struct S3Downloads {
    client: Client,
    bucket: String,
}

impl S3Downloads {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Downloads {
            client,
            bucket: bucket.into(),
        }
    }
}

#[async_trait]
impl Downloads for S3Downloads {
    async fn publish(&self, file_name: &str, content_type: &str, body: Vec<u8>) -> Result<String> {
        let safe: String = file_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let key = format!("downloads/{}/{safe}", uuid::Uuid::new_v4().simple());
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(body))
            .content_type(content_type)
            .content_disposition(format!("attachment; filename=\"{safe}\""))
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await
            .map_err(|e| sdk_error("s3", "storing a download", e))?;
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(LINK_VALID)
            .map_err(|e| domain::Error::dependency("s3", "presigning", false, e))?;
        let link = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(config)
            .await
            .map_err(|e| sdk_error("s3", "presigning a download", e))?;
        Ok(link.uri().to_string())
    }
}
