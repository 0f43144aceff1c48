//! In-memory adapters for handler tests and benchmarks.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::Result;
use crate::ports::{ArchiveKind, Clock, PayloadArchive, Queue, QueueMessage};

/// Keeps what was sent, in order.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<QueueMessage>>,
}

impl MemoryQueue {
    pub fn messages(&self) -> Vec<QueueMessage> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, msg: &QueueMessage) -> Result<()> {
        if let Ok(mut v) = self.sent.lock() {
            v.push(msg.clone());
        }
        Ok(())
    }
}

/// Keeps archived payloads.
#[derive(Debug, Default)]
pub struct MemoryArchive {
    pub items: Mutex<Vec<(ArchiveKind, Vec<u8>, String)>>,
}

impl MemoryArchive {
    pub fn kinds(&self) -> Vec<ArchiveKind> {
        self.items
            .lock()
            .map(|v| v.iter().map(|(k, _, _)| *k).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl PayloadArchive for MemoryArchive {
    async fn put(&self, kind: ArchiveKind, body: &[u8], reason: &str) -> Result<String> {
        let mut v = self
            .items
            .lock()
            .map_err(|_| crate::Error::Conflict("archive lock poisoned".into()))?;
        v.push((kind, body.to_vec(), reason.to_string()));
        Ok(format!("{}/{}", kind.prefix(), v.len()))
    }
}

/// A clock that only moves when told.
#[derive(Debug, Default)]
pub struct FixedClock(pub AtomicI64);

impl FixedClock {
    pub fn at(ms: i64) -> Self {
        FixedClock(AtomicI64::new(ms))
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
