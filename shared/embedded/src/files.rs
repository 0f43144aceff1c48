//! Raw payloads kept as files: `{dir}/{prefix}/{utc time}-{uuid}.bin`, with
//! the reason beside it in `.reason.txt`.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use domain::error::{Error, Result};
use domain::ports::{ArchiveKind, PayloadArchive};

const SERVICE: &str = "files";

fn io_error(context: String, e: std::io::Error) -> Error {
    // A full disk or a passing I/O fault may clear; a missing permission will not.
    let retryable = !matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::InvalidInput
    );
    Error::dependency(SERVICE, context, retryable, e)
}

/// The payload archive for one machine.
#[derive(Debug, Clone)]
pub struct FileArchive {
    dir: PathBuf,
}

impl FileArchive {
    /// Archives under `dir`, created if missing.
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
        Ok(FileArchive {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The keys archived as `kind`, oldest first (names start with the time).
    pub async fn list(&self, kind: ArchiveKind) -> Result<Vec<String>> {
        let dir = self.dir.join(kind.prefix());
        let prefix = kind.prefix();
        blocking(move || {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_error(format!("listing {}", dir.display()), e)),
            };
            let mut keys = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| io_error(format!("listing {}", dir.display()), e))?;
                if let Some(name) = entry.file_name().to_str() {
                    if name.ends_with(".bin") && !name.starts_with('.') {
                        keys.push(format!("{prefix}/{name}"));
                    }
                }
            }
            keys.sort();
            Ok(keys)
        })
        .await
    }

    /// The body and the reason stored under `key` (as `put` returned it).
    pub async fn get(&self, key: &str) -> Result<(Vec<u8>, String)> {
        let path = self.path_of(key)?;
        blocking(move || {
            let body = fs::read(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    Error::NotFound(format!("archived payload {}", path.display()))
                }
                _ => io_error(format!("reading {}", path.display()), e),
            })?;
            // A missing reason (a crash between the two writes) is not fatal.
            let reason = fs::read_to_string(reason_path(&path)).unwrap_or_default();
            Ok((body, reason))
        })
        .await
    }

    /// Only keys of the shape `put` makes: no way out of `dir`.
    fn path_of(&self, key: &str) -> Result<PathBuf> {
        let bad = || Error::Invalid(format!("not an archive key: {key:?}"));
        let (prefix, name) = key.split_once('/').ok_or_else(bad)?;
        let known = [ArchiveKind::Quarantine, ArchiveKind::Event]
            .iter()
            .any(|k| k.prefix() == prefix);
        let clean = name.ends_with(".bin")
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !known || !clean {
            return Err(bad());
        }
        Ok(self.dir.join(prefix).join(name))
    }
}

fn reason_path(body: &Path) -> PathBuf {
    body.with_extension("reason.txt")
}

async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::dependency(SERVICE, "blocking task", true, e))?
}

/// Writes `bytes` to `path` so that it appears whole or not at all: a temp
/// file in the same directory, fsynced, then renamed over, then the
/// directory fsynced so the rename itself survives a crash.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("payload");
    let tmp = dir.join(format!(".{name}.tmp"));
    let ctx = |what: &str| format!("{what} {}", path.display());
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| io_error(ctx("creating"), e))?;
        f.write_all(bytes)
            .map_err(|e| io_error(ctx("writing"), e))?;
        f.sync_all().map_err(|e| io_error(ctx("syncing"), e))?;
        fs::rename(&tmp, path).map_err(|e| io_error(ctx("renaming"), e))
    })();
    if result.is_err() {
        // Best effort: a leftover temp file is hidden and harmless.
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir).map_err(|e| io_error(format!("syncing {}", dir.display()), e))
}

#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    // Directories cannot be opened for syncing here; the rename is still atomic.
    Ok(())
}

#[async_trait]
impl PayloadArchive for FileArchive {
    async fn put(&self, kind: ArchiveKind, body: &[u8], reason: &str) -> Result<String> {
        let now = jiff::Timestamp::now();
        let name = format!(
            "{}-{}.bin",
            now.strftime("%Y%m%dT%H%M%S%.3fZ"),
            uuid::Uuid::new_v4().simple()
        );
        let key = format!("{}/{name}", kind.prefix());
        let dir = self.dir.join(kind.prefix());
        let path = dir.join(&name);
        let (body, reason) = (body.to_vec(), reason.to_string());
        blocking(move || {
            fs::create_dir_all(&dir)
                .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
            // The reason first: a body is only listed once it is complete, and
            // then its reason is already there.
            write_atomic(&reason_path(&path), reason.as_bytes())?;
            write_atomic(&path, &body)
        })
        .await?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_writes_body_and_reason_and_returns_a_relative_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = FileArchive::open(&dir.path().join("archive")).expect("open");
        let body = br#"{"object":"whatsapp_business_account","entry":[{"bad":true}]}"#;
        let key = archive
            .put(ArchiveKind::Quarantine, body, "unknown field `bad`")
            .await
            .expect("put");
        assert!(key.starts_with("quarantine/"), "{key}");
        assert!(key.ends_with(".bin"));
        let on_disk = archive.dir().join(&key);
        assert_eq!(fs::read(&on_disk).expect("body"), body);
        assert_eq!(
            fs::read_to_string(on_disk.with_extension("reason.txt")).expect("reason"),
            "unknown field `bad`"
        );
        let (b, r) = archive.get(&key).await.expect("get");
        assert_eq!(b, body);
        assert_eq!(r, "unknown field `bad`");
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(archive.dir().join("quarantine"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[tokio::test]
    async fn names_sort_by_time_and_kinds_are_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = FileArchive::open(dir.path()).expect("open");
        let mut keys = Vec::new();
        for i in 0..3 {
            keys.push(
                archive
                    .put(ArchiveKind::Event, format!("{i}").as_bytes(), "other field")
                    .await
                    .expect("put"),
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        archive
            .put(ArchiveKind::Quarantine, b"q", "bad")
            .await
            .expect("put");
        assert_eq!(archive.list(ArchiveKind::Event).await.expect("list"), keys);
        assert_eq!(
            archive
                .list(ArchiveKind::Quarantine)
                .await
                .expect("list")
                .len(),
            1
        );
        let name = keys[0].trim_start_matches("events/");
        // 20250101T120000.123Z-<32 hex>.bin
        assert_eq!(name.len(), 20 + 1 + 32 + 4, "{name}");
        assert!(
            name.as_bytes()[8] == b'T' && name.as_bytes()[19] == b'Z',
            "{name}"
        );
    }

    #[tokio::test]
    async fn keys_cannot_escape_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = FileArchive::open(dir.path()).expect("open");
        for bad in [
            "../etc/passwd",
            "quarantine/../../x.bin",
            "other/x.bin",
            "quarantine/x",
            "x",
        ] {
            assert!(
                matches!(archive.get(bad).await, Err(Error::Invalid(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            archive.get("events/nothing.bin").await,
            Err(Error::NotFound(_))
        ));
    }
}
