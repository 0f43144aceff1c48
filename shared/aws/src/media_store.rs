//! [`MediaStore`] on an S3 bucket: users' media under the keys of
//! [`media_key`](domain::media::media_key), encrypted at rest.

use std::path::Path;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;

use super::sdk_error;
use domain::error::{Error, Result};
use domain::media::{is_media_key, FetchedMedia, StoredMedia};
use domain::ports::{MediaReader, MediaStore};

/// How objects are encrypted at rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEncryption {
    /// SSE-S3 (AES256): no key to manage.
    S3Managed,
    /// SSE-KMS with this key, or the account's `aws/s3` key when `None`;
    /// lets IAM decide who may read users' media.
    Kms { key_id: Option<String> },
}

/// Users' media in one bucket.
#[derive(Debug, Clone)]
pub struct S3MediaStore {
    client: Client,
    bucket: String,
    encryption: MediaEncryption,
}

impl S3MediaStore {
    pub fn new(client: Client, bucket: impl Into<String>, encryption: MediaEncryption) -> Self {
        S3MediaStore {
            client,
            bucket: bucket.into(),
            encryption,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

fn checked(key: &str) -> Result<()> {
    if is_media_key(key) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("not a media key: {key:?}")))
    }
}

#[async_trait]
impl MediaStore for S3MediaStore {
    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        fetched: &FetchedMedia,
    ) -> Result<StoredMedia> {
        checked(key)?;
        // Read from disk as it is sent: a 100 MB document is never in memory.
        // One PUT takes up to 5 GB, far above WhatsApp's 100 MB.
        let body = ByteStream::from_path(path).await.map_err(|e| {
            Error::dependency("s3", format!("reading {}", path.display()), false, e)
        })?;
        let sha256_hex = fetched.sha256.to_hex();
        let mime = fetched.content_type().to_string();
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body)
            .content_type(&mime)
            .metadata("sha256", &sha256_hex);
        let request = match &self.encryption {
            MediaEncryption::S3Managed => {
                request.server_side_encryption(ServerSideEncryption::Aes256)
            }
            MediaEncryption::Kms { key_id } => request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(key_id.clone()),
        };
        request
            .send()
            .await
            .map_err(|e| sdk_error("s3", "storing media", e))?;
        Ok(StoredMedia {
            key: key.to_string(),
            bytes: fetched.bytes,
            sha256_hex,
            mime,
        })
    }

    async fn open(&self, key: &str) -> Result<MediaReader> {
        checked(key)?;
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|e| e.is_no_such_key()) {
                    Error::NotFound(format!("media {key}"))
                } else {
                    sdk_error("s3", "reading media", e)
                }
            })?;
        Ok(Box::pin(object.body.into_async_read()))
    }
}
