//! [`MediaStore`] as files under a data directory: `{dir}/{key}`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use domain::error::{Error, Result};
use domain::media::{is_media_key, FetchedMedia, StoredMedia};
use domain::ports::{MediaReader, MediaStore};

const SERVICE: &str = "files";

fn io_error(context: String, e: std::io::Error) -> Error {
    let retryable = !matches!(e.kind(), std::io::ErrorKind::PermissionDenied);
    Error::dependency(SERVICE, context, retryable, e)
}

/// Users' media on one machine.
#[derive(Debug, Clone)]
pub struct FileMediaStore {
    dir: PathBuf,
}

impl FileMediaStore {
    /// Media under `dir`, created if missing.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
        Ok(FileMediaStore {
            dir: dir.to_path_buf(),
        })
    }

    /// Where the file of `key` is. Only keys of the media shape: no way out
    /// of the directory.
    pub fn path_of(&self, key: &str) -> Result<PathBuf> {
        if !is_media_key(key) {
            return Err(Error::Invalid(format!("not a media key: {key:?}")));
        }
        Ok(self.dir.join(key))
    }
}

#[async_trait]
impl MediaStore for FileMediaStore {
    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        fetched: &FetchedMedia,
    ) -> Result<StoredMedia> {
        let target = self.path_of(key)?;
        let dir = target.parent().unwrap_or(&self.dir).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
        // Copied to a hidden name, then renamed: the key shows a whole file
        // or none. `copy` streams; the file is never read whole.
        let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
        let copied = tokio::fs::copy(path, &tmp).await;
        let placed = match copied {
            Ok(_) => tokio::fs::rename(&tmp, &target).await,
            Err(e) => Err(e),
        };
        if let Err(e) = placed {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error(format!("storing {}", target.display()), e));
        }
        Ok(StoredMedia {
            key: key.to_string(),
            bytes: fetched.bytes,
            sha256_hex: fetched.sha256.to_hex(),
            mime: fetched.content_type().to_string(),
        })
    }

    async fn open(&self, key: &str) -> Result<MediaReader> {
        let path = self.path_of(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(f) => Ok(Box::pin(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotFound(format!("media {key}")))
            }
            Err(e) => Err(io_error(format!("opening {}", path.display()), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::media::Sha256Digest;
    use tokio::io::AsyncReadExt;

    const KEY: &str =
        "media/2026/11/0123456789abcdef0123456789abcdef/fedcba9876543210fedcba9876543210";

    #[tokio::test]
    async fn a_stored_file_reads_back_whole() {
        let dir = tempfile::tempdir().expect("dir");
        let store = FileMediaStore::open(&dir.path().join("media-data")).expect("open");
        let src = dir.path().join("download");
        std::fs::write(&src, b"%PDF-1.4 hola").expect("write");
        let fetched = FetchedMedia {
            path: src.clone(),
            bytes: 13,
            sha256: Sha256Digest::of(b"%PDF-1.4 hola"),
            sniffed_mime: Some("application/pdf".into()),
            declared_mime: None,
        };
        let stored = store.put_file(KEY, &src, &fetched).await.expect("put");
        assert_eq!(stored.key, KEY);
        assert_eq!(stored.mime, "application/pdf");
        let mut back = Vec::new();
        store
            .open(KEY)
            .await
            .expect("open")
            .read_to_end(&mut back)
            .await
            .expect("read");
        assert_eq!(back, b"%PDF-1.4 hola");
        // Storing again is harmless.
        store.put_file(KEY, &src, &fetched).await.expect("again");
    }

    #[tokio::test]
    async fn keys_cannot_escape_and_missing_ones_are_not_found() {
        let dir = tempfile::tempdir().expect("dir");
        let store = FileMediaStore::open(dir.path()).expect("open");
        for bad in ["../x", "media/../../etc/passwd", "media/2026/11/x/y", ""] {
            assert!(
                matches!(store.open(bad).await, Err(Error::Invalid(_))),
                "{bad}"
            );
        }
        assert!(matches!(store.open(KEY).await, Err(Error::NotFound(_))));
    }
}
